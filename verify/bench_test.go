package verify_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

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
	s, err := launch(ctx, v, "weather") // warm the store and the trust root
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	for b.Loop() {
		s, err := launch(ctx, v, "weather")
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
	s, err := launch(context.Background(), v, "weather")
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

// rawPeer drives an MCP server over newline-delimited JSON-RPC with no SDK,
// so the proxy benchmarks measure the relay rather than a client library.
type rawPeer struct {
	w  io.Writer
	r  *bufio.Reader
	id int
}

func (p *rawPeer) send(method, params string) {
	p.id++
	fmt.Fprintf(p.w, `{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`+"\n", p.id, method, params)
}

// response reads lines until one carries an id (skipping notifications).
func (p *rawPeer) response(b *testing.B) {
	for {
		line, err := p.r.ReadBytes('\n')
		if err != nil {
			b.Fatal(err)
		}
		if bytes.Contains(line, []byte(`"id"`)) {
			if bytes.Contains(line, []byte(`"error"`)) {
				b.Fatalf("error response: %s", line)
			}
			return
		}
	}
}

func (p *rawPeer) handshake(b *testing.B) {
	p.send("initialize", `{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}`)
	p.response(b)
	fmt.Fprintln(p.w, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	p.send("tools/list", `{}`)
	p.response(b)
}

const benchCallParams = `{"name":"get_forecast","arguments":{"text":"x"}}`

// benchRoundTrips measures sequential tools/call round trips.
func benchRoundTrips(b *testing.B, p *rawPeer) {
	for b.Loop() {
		p.send("tools/call", benchCallParams)
		p.response(b)
	}
}

// benchThroughput keeps 16 calls in flight and reports calls per second.
func benchThroughput(b *testing.B, p *rawPeer) {
	const window = 16
	inFlight := 0
	start := time.Now()
	for i := 0; i < b.N; i++ {
		p.send("tools/call", benchCallParams)
		if inFlight++; inFlight == window {
			p.response(b)
			inFlight--
		}
	}
	for ; inFlight > 0; inFlight-- {
		p.response(b)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// proxyPeer runs verify.Proxy (what `preflight run` does) with pipes as the
// host's stdio and returns a peer on the host side.
func proxyPeer(b *testing.B) *rawPeer {
	v, _ := benchFixture(b)
	hostInR, hostInW := io.Pipe()
	hostOutR, hostOutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := v.Proxy(context.Background(), "weather", hostInR, hostOutW)
		hostOutW.Close()
		done <- err
	}()
	b.Cleanup(func() {
		hostInW.Close()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	p := &rawPeer{w: hostInW, r: bufio.NewReader(hostOutR)}
	p.handshake(b)
	return p
}

// directPeer starts the same server binary with no Preflight in between.
func directPeer(b *testing.B) *rawPeer {
	_, exe := benchFixture(b)
	cmd := exec.Command(exe, verifytest.ServerArgs(weatherCfg)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	p := &rawPeer{w: in, r: bufio.NewReader(out)}
	p.handshake(b)
	return p
}

// BenchmarkProxyCall is a tools/call round trip through verify.Proxy, the
// relay `preflight run` uses; BenchmarkDirectCall is the same without it.
func BenchmarkProxyCall(b *testing.B)  { benchRoundTrips(b, proxyPeer(b)) }
func BenchmarkDirectCall(b *testing.B) { benchRoundTrips(b, directPeer(b)) }

// BenchmarkProxyThroughput and BenchmarkDirectThroughput keep 16 calls in
// flight and report calls/s.
func BenchmarkProxyThroughput(b *testing.B)  { benchThroughput(b, proxyPeer(b)) }
func BenchmarkDirectThroughput(b *testing.B) { benchThroughput(b, directPeer(b)) }
