package tuf_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// benchFixture is a repository with 20 publishers of 10 targets each.
func benchFixture(b *testing.B) *fixture {
	b.Helper()
	f := newFixture(b, verifytest.TUFOptions{})
	for p := range 20 {
		role := fmt.Sprintf("pub%02d", p)
		must(b, f.repo.Delegate(role, []string{role + "/*"}, 1, 1, false))
		for i := range 10 {
			must(b, f.repo.AddDelegatedTarget(role, fmt.Sprintf("%s/server-%d.json", role, i), []byte(fmt.Sprintf(`{"n":%d}`, i))))
		}
	}
	must(b, f.repo.Publish())
	return f
}

// BenchmarkRefreshCold measures a first refresh with an empty cache.
func BenchmarkRefreshCold(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	f.repo.ResetRequests()
	for b.Loop() {
		b.StopTimer()
		cfg := f.config(b)
		b.StartTimer()
		c, err := tuf.New(cfg)
		must(b, err)
		must(b, c.Refresh(ctx))
		b.StopTimer()
		os.RemoveAll(cfg.CacheDir)
		b.StartTimer()
	}
	b.ReportMetric(float64(len(f.repo.RequestLog()))/float64(b.N), "requests/op")
}

// BenchmarkRefreshWarm measures a refresh with nothing new: the root probe
// (404) and timestamp.json.
func BenchmarkRefreshWarm(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	c := newClient(b, f.config(b))
	must(b, c.Refresh(ctx))
	f.repo.ResetRequests()
	for b.Loop() {
		must(b, c.Refresh(ctx))
	}
	b.ReportMetric(float64(len(f.repo.RequestLog()))/float64(b.N), "requests/op")
}

// BenchmarkTargetLookup measures resolving a delegated target in a
// refreshed client.
func BenchmarkTargetLookup(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	c := newClient(b, f.config(b))
	must(b, c.Refresh(ctx))
	if _, err := c.Target(ctx, "pub19/server-9.json"); err != nil {
		b.Fatal(err)
	}
	f.repo.ResetRequests()
	for b.Loop() {
		if _, err := c.Target(ctx, "pub19/server-9.json"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(f.repo.RequestLog()))/float64(b.N), "requests/op")
}
