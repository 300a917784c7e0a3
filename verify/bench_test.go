package verify_test

import (
	"context"
	"os"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// benchFixture publishes the weather server; b.Loop bodies then measure
// only the work named by each benchmark.
func benchFixture(b *testing.B) (*verify.Verifier, string) {
	b.Helper()
	f := newFixtureTB(b)
	v, err := verify.New(verify.Config{Policy: f.policy, PolicyDir: f.sc.Dir, StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	return v, exe
}

func plainClient(b *testing.B, exe string) *client.Client {
	b.Helper()
	c, err := client.NewStdioMCPClient(exe, []string{}, verifytest.ServerArgs(weatherCfg)...)
	if err != nil {
		b.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkLaunchWarm is a verified launch with a warm store and trust root:
// TUF refresh, evidence verification, one hash pass, exec, handshake, list.
func BenchmarkLaunchWarm(b *testing.B) {
	v, _ := benchFixture(b)
	ctx := context.Background()
	s, err := v.Launch(ctx, "weather") // warm the store and the trust root
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	for b.Loop() {
		s, err := v.Launch(ctx, "weather")
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkLaunchPlain is the baseline: mcp-go starting the same binary
// directly, with the same handshake and listing.
func BenchmarkLaunchPlain(b *testing.B) {
	_, exe := benchFixture(b)
	for b.Loop() {
		plainClient(b, exe).Close()
	}
}

// BenchmarkCheckWarm is Check alone (no launch) with a warm store.
func BenchmarkCheckWarm(b *testing.B) {
	v, _ := benchFixture(b)
	ctx := context.Background()
	if _, err := v.Check(ctx, "weather"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.Check(ctx, "weather"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCall(b *testing.B, c *client.Client) {
	req := mcp.CallToolRequest{}
	req.Params.Name = "get_forecast"
	req.Params.Arguments = map[string]any{"text": "x"}
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.CallTool(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallGated is a tools/call round trip through the gate.
func BenchmarkCallGated(b *testing.B) {
	v, _ := benchFixture(b)
	s, err := v.Launch(context.Background(), "weather")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchCall(b, s.Client)
}

// BenchmarkCallDirect is the same round trip without the gate.
func BenchmarkCallDirect(b *testing.B) {
	_, exe := benchFixture(b)
	c := plainClient(b, exe)
	defer c.Close()
	benchCall(b, c)
}
