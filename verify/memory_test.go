package verify_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
// and the process's peak RSS (VmHWM-MiB; it includes the test's own
// scenario, so it is an upper bound; VmHWM-setup-MiB is the peak before
// the first Check).
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
	setup := vmHWM(b) / 1024
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
	b.ReportMetric(vmHWM(b)/1024, "VmHWM-MiB")
	b.ReportMetric(setup, "VmHWM-setup-MiB")
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// vmHWM is the process's peak resident set size in KiB (Linux), 0
// elsewhere.
func vmHWM(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	return 0
}
