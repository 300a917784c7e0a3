package verify_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// BenchmarkCheck50Servers is one Verifier checking 50 servers of one TUF
// repository (a host with a large configuration at start-up), each a
// distinct small artifact with its own bundles. One operation is a fresh
// Verifier and store checking all 50. It reports the heap the Verifier
// still holds afterwards (retained-MiB, after a GC, the Verifier alive)
// and the process's peak RSS while checking (VmHWM-MiB, reset through
// /proc/self/clear_refs after the setup; it includes the test binary and
// the scenario it serves, VmRSS-before-MiB, so it is an upper bound).
func BenchmarkCheck50Servers(b *testing.B) {
	const n = 50
	dir := b.TempDir()
	sc, err := verifytest.NewScenario(filepath.Join(dir, "scenario"))
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	var servers []verifytest.PolicyServer
	for i := range n {
		name := fmt.Sprintf("io.github.acme/server-%02d", i)
		art := []byte(fmt.Sprintf("#!/bin/sh\n# server %d\nexec cat\n", i))
		if _, err := sc.Publish(verifytest.Publication{Server: name, Artifact: art}); err != nil {
			b.Fatal(err)
		}
		servers = append(servers, verifytest.PolicyServer{Name: fmt.Sprintf("s%02d", i), Server: name})
	}
	path, err := sc.Policy("fifty.yaml", servers...)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	pol, err := policy.Parse(path, data)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Other benchmarks may have run in this process: return their memory
	// and reset the peak, so VmHWM covers the Checks from here on.
	debug.FreeOSMemory()
	resetPeak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	base := procStatus(b, "VmRSS:") / 1024
	var retained float64
	i := 0
	for b.Loop() {
		b.StopTimer()
		base := heapInUse()
		store := filepath.Join(dir, fmt.Sprintf("store-%d", i))
		i++
		b.StartTimer()
		v, err := verify.New(verify.Config{Policy: pol, PolicyDir: sc.Dir, StoreDir: store})
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range servers {
			if _, err := v.Check(ctx, s.Name); err != nil {
				b.Fatalf("%s: %v", s.Name, err)
			}
		}
		b.StopTimer()
		retained = max(retained, float64(heapInUse()-base)/(1<<20))
		runtime.KeepAlive(v)
		os.RemoveAll(store)
		b.StartTimer()
	}
	b.ReportMetric(retained, "retained-MiB")
	if resetPeak {
		b.ReportMetric(procStatus(b, "VmHWM:")/1024, "VmHWM-MiB")
		b.ReportMetric(base, "VmRSS-before-MiB")
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// procStatus returns a field of /proc/self/status in KiB (Linux), 0
// elsewhere.
func procStatus(b *testing.B, field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	return 0
}
