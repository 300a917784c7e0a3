package main

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// benchSession connects the official go-sdk client to cmd's stdio.
func benchSession(b *testing.B, cmd *exec.Cmd) *mcp.ClientSession {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	if _, err := cs.ListTools(ctx, nil); err != nil {
		b.Fatal(err)
	}
	return cs
}

func benchToolCalls(b *testing.B, cs *mcp.ClientSession) {
	ctx := context.Background()
	params := &mcp.CallToolParams{Name: "get_forecast", Arguments: map[string]any{"text": "x"}}
	for b.Loop() {
		if _, err := cs.CallTool(ctx, params); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunCall is a tools/call round trip with the go-sdk client
// through `preflight run` (the built CLI, a file source, warm store);
// BenchmarkRunCallDirect the same client and server without it.
func BenchmarkRunCall(b *testing.B) {
	f := sharedFixture(b)
	pol := f.filePolicy(b, "weather", cliWeather, "")
	cmd := exec.Command(f.cli(b), "run", "--policy", pol, "--store", b.TempDir(), "--server", "weather")
	benchToolCalls(b, benchSession(b, cmd))
}

func BenchmarkRunCallDirect(b *testing.B) {
	f := sharedFixture(b)
	benchToolCalls(b, benchSession(b, exec.Command(f.exe, verifytest.ServerArgs(cliWeather)...)))
}
