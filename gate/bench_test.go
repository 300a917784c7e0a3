package gate_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-preflight/preflight/gate"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// BenchmarkRelayCall measures an echo tools/call round trip from an mcp-go
// client to the MCP test server, directly over pipes and through the gate.
// The design's budget: the gate adds at most 10%.
//
// In process, the server runs on io.Pipes; as a subprocess (the test binary
// re-executed, as verify.Launch runs a verified server) on OS pipes, the
// setting of the design's ~0.1 ms baseline.
func BenchmarkRelayCall(b *testing.B) {
	cfg := verifytest.ServerConfig{Tools: echoTools("echo")}
	for _, mode := range []string{"inprocess", "subprocess"} {
		for _, gated := range []bool{false, true} {
			b.Run(mode+map[bool]string{false: "/direct", true: "/gated"}[gated], func(b *testing.B) {
				benchmarkCall(b, mode == "subprocess", gated, cfg)
			})
		}
	}
}

func benchmarkCall(b *testing.B, subprocess, gated bool, cfg verifytest.ServerConfig) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	var in io.Reader
	var out io.WriteCloser
	if subprocess {
		exe, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(exe, verifytest.ServerArgs(cfg)...)
		if out, err = cmd.StdinPipe(); err != nil {
			b.Fatal(err)
		}
		if in, err = cmd.StdoutPipe(); err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer cmd.Wait()
		defer out.Close()
	} else {
		srv, err := verifytest.StartServer(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		in, out = srv.Out, srv.In
	}
	runErr := make(chan error, 1)
	if gated {
		g, err := gate.New(gate.Config{Decide: allow("echo")})
		if err != nil {
			b.Fatal(err)
		}
		hostInR, hostInW := io.Pipe()
		hostOutR, hostOutW := io.Pipe()
		serverIn, serverOut := in, out
		go func() { runErr <- g.Run(ctx, hostInR, hostOutW, serverIn, serverOut) }()
		in, out = hostOutR, hostInW
		defer func() { hostInW.Close(); <-runErr }()
	}
	c := client.NewClient(transport.NewIO(in, out, nil))
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		b.Fatal(err)
	}
	if _, err := c.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
		b.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "echo"
	req.Params.Arguments = map[string]any{"text": "benchmark"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.CallTool(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
