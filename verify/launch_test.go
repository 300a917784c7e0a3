package verify_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// faultServer is a misbehaving MCP server, run by re-executing the test
// binary with "fault-server MODE".
func faultServer(mode string) {
	switch mode {
	case "hang": // reads requests, never answers
		io.Copy(io.Discard, os.Stdin)
	case "crash": // dies before the handshake
		os.Exit(3)
	case "flood": // floods stdout with oversized garbage lines, never answers
		line := strings.Repeat("x", 5<<20) + "\n"
		for range 20 {
			if _, err := os.Stdout.WriteString(line); err != nil {
				return
			}
		}
		io.Copy(io.Discard, os.Stdin)
	case "deaf": // never reads stdin and never answers
		time.Sleep(time.Minute)
	case "exit-on-initialize": // reads the first request, then exits
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(1)
	}
}

// publishFaults publishes one fault server per mode and returns a verifier
// whose policy names each server after its mode.
func publishFaults(t *testing.T, modes ...string) (*verify.Verifier, *fixture) {
	t.Helper()
	f := newFixture(t)
	var servers []verifytest.PolicyServer
	for _, m := range modes {
		if _, err := f.sc.Publish(verifytest.Publication{Server: "io.github.acme/fault-" + m, Artifact: f.exe, Args: []string{"fault-server", m}}); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, verifytest.PolicyServer{Name: m, Server: "io.github.acme/fault-" + m})
	}
	path, err := f.sc.Policy("faults.yaml", servers...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Policy: p, PolicyDir: f.sc.Dir, StoreDir: filepath.Join(f.dir, "store"), HandshakeTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return v, f
}

// settleGoroutines waits for the goroutine count to come back to base.
func settleGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLaunchFaultsAreReaped(t *testing.T) {
	modes := map[string]*preflight.Class{
		"hang":               preflight.ErrTimeout,
		"deaf":               preflight.ErrTimeout,
		"flood":              preflight.ErrTimeout,
		"crash":              preflight.ErrLaunch,
		"exit-on-initialize": preflight.ErrLaunch,
	}
	names := make([]string, 0, len(modes))
	for m := range modes {
		names = append(names, m)
	}
	v, f := publishFaults(t, names...)
	// Warm the store and the trust root so only the sessions' goroutines count.
	if _, err := v.Check(context.Background(), "hang"); err != nil {
		t.Fatal(err)
	}
	for mode, want := range modes {
		t.Run(mode, func(t *testing.T) {
			base := runtime.NumGoroutine()
			_, err := launch(context.Background(), v, mode)
			if !errors.Is(err, want) || !errors.Is(err, preflight.ErrOperational) {
				t.Fatalf("got %v, want %v", err, want)
			}
			settleGoroutines(t, base)
		})
	}
	// No temporary files are left in the store.
	entries, err := os.ReadDir(filepath.Join(f.dir, "store", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("%d temporary files left in the store", len(entries))
	}
}

func TestConcurrentLaunchesShareVerifierAndStore(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(t, "store")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := launch(ctx, v, "weather")
			if err != nil {
				errs <- fmt.Errorf("launch %d: %w", i, err)
				return
			}
			defer s.Close()
			res, err := callTool(ctx, s, "get_forecast")
			if err != nil {
				errs <- fmt.Errorf("call %d: %w", i, err)
				return
			}
			if len(res.Content) == 0 {
				errs <- fmt.Errorf("call %d: empty result", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	entries, _ := os.ReadDir(filepath.Join(f.dir, "store", "sha256"))
	if len(entries) != 1 {
		t.Fatalf("the store holds %d entries for one artifact", len(entries))
	}
}

// TestSwappedArtifactNeverRuns replaces the verified store entry between
// verification and exec; the bytes that run must be the verified ones.
func TestSwappedArtifactNeverRuns(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("exec from the verified descriptor is Linux-only; elsewhere the store entry is executed by path")
	}
	f := newFixture(t)
	v := f.verifier(t, "store")
	cmd, rep, err := v.CommandFor(context.Background(), "weather")
	if err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(f.dir, "store", "sha256", rep.Facts.Artifact.Digests["sha256"])
	marker := filepath.Join(t.TempDir(), "swapped-bytes-ran")
	evil := filepath.Join(filepath.Dir(entry), "evil")
	if err := os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(evil, entry); err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	stdin.Close()
	cmd.Wait()
	if err != nil || !strings.Contains(line, `"weather"`) {
		t.Fatalf("the verified server did not answer: %q %v", line, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the swapped bytes ran")
	}
	// The next verification notices the modified entry.
	if _, _, err := v.CommandFor(context.Background(), "weather"); !errors.Is(err, preflight.ErrTampered) {
		t.Fatalf("got %v, want ErrTampered for the modified store entry", err)
	}
}

func TestEnvironmentIsExplicit(t *testing.T) {
	f := newFixture(t)
	f.policy.Servers["weather"].Env = []string{"PREFLIGHT_PASSED"}
	f.policy.Servers["weather"].SetEnv = map[string]string{"FIXED": "1"}
	v, err := verify.New(verify.Config{Policy: f.policy, PolicyDir: f.sc.Dir, StoreDir: filepath.Join(f.dir, "store"),
		Environ: []string{"PREFLIGHT_PASSED=yes", "SECRET_TOKEN=hunter2", "PATH=/usr/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	cmd, _, err := v.CommandFor(context.Background(), "weather")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range cmd.ExtraFiles {
			f.Close()
		}
	}()
	got := strings.Join(cmd.Env, " ")
	if got != "PREFLIGHT_PASSED=yes FIXED=1" {
		t.Fatalf("environment %q", got)
	}
}
