package gate_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/gate"
	"github.com/mcp-preflight/preflight/internal/jsonrpc"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// TestMain lets the test binary be re-executed as the MCP test server.
func TestMain(m *testing.M) {
	if verifytest.ServerMain(os.Args[1:]) {
		return
	}
	os.Exit(m.Run())
}

// checkGoroutines fails t if goroutines started during the test still run
// when it ends. Register it first, so that it runs after every other cleanup.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		for range 400 {
			if runtime.NumGoroutine() <= before {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before the test, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	})
}

func echoTools(names ...string) []verifytest.Tool {
	var tools []verifytest.Tool
	for _, n := range names {
		tools = append(tools, verifytest.Tool{Name: n, Description: "Echoes text (" + n + ")",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`)})
	}
	return tools
}

// allow exposes exactly the named items.
func allow(names ...string) gate.Decider {
	return func(kind gate.Kind, items []gate.Item) gate.SurfaceDecision {
		var d gate.SurfaceDecision
		for _, it := range items {
			if slicesContains(names, it.Name) {
				d.Exposed = append(d.Exposed, it.Name)
			} else {
				d.Withheld = append(d.Withheld, gate.Withheld{Item: it, Code: "test.denied", Reason: "not allowed by the test policy"})
			}
		}
		return d
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// pinned exposes the items whose digest matches pins, and withholds the rest
// as drift; with end, any drift ends the session.
func pinned(pins map[string]string, end bool) gate.Decider {
	return func(kind gate.Kind, items []gate.Item) gate.SurfaceDecision {
		var d gate.SurfaceDecision
		var drift []string
		for _, it := range items {
			if want, ok := pins[it.Name]; ok && want == it.Digest {
				d.Exposed = append(d.Exposed, it.Name)
				continue
			}
			drift = append(drift, it.Name)
			d.Withheld = append(d.Withheld, gate.Withheld{Item: it, Code: "test.drift", Reason: "differs from its pin"})
		}
		if end && len(drift) > 0 {
			d.End = &preflight.Error{Class: preflight.ErrToolDrift, Subject: "test server", Expected: "the pinned tools", Found: strings.Join(drift, ",")}
		}
		return d
	}
}

// pinsOf returns the digests of cfg's tools, as a lockfile would pin them.
func pinsOf(t *testing.T, cfg verifytest.ServerConfig) map[string]string {
	t.Helper()
	pins := map[string]string{}
	var mu sync.Mutex
	g, err := gate.New(gate.Config{Decide: func(kind gate.Kind, items []gate.Item) gate.SurfaceDecision {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			pins[it.Name] = it.Digest
		}
		return gate.SurfaceDecision{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := startGate(t, g, cfg)
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":"pins","method":"tools/list"}`)
	h.recvID(`"pins"`)
	h.close()
	return pins
}

// testLogger records the gate's structured events.
type testLogger struct {
	mu     sync.Mutex
	events []map[string]string
}

func (l *testLogger) logger() *slog.Logger {
	return slog.New(&recordHandler{l: l})
}

func (l *testLogger) find(msg string, attrs ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, e := range l.events {
		if e["msg"] != msg {
			continue
		}
		for i := 0; i+1 < len(attrs); i += 2 {
			if e[attrs[i]] != attrs[i+1] {
				continue next
			}
		}
		return true
	}
	return false
}

type recordHandler struct {
	l     *testLogger
	attrs []slog.Attr
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	e := map[string]string{"msg": r.Message}
	for _, a := range h.attrs {
		e[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { e[a.Key] = a.Value.String(); return true })
	h.l.mu.Lock()
	h.l.events = append(h.l.events, e)
	h.l.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordHandler{l: h.l, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *recordHandler) WithGroup(string) slog.Handler { return h }

// harness runs a gate between the test (as host) and a server.
type harness struct {
	t      *testing.T
	ctx    context.Context
	g      *gate.Gate
	srv    *verifytest.PipeServer
	hostW  *io.PipeWriter // the host's messages to the gate
	hostR  *io.PipeReader // the gate's messages to the host
	msgs   chan *jsonrpc.Message
	runErr chan error
	notes  []string // notifications recvID skipped
	once   sync.Once
	err    error
}

func newGate(t *testing.T, cfg gate.Config) *gate.Gate {
	t.Helper()
	g, err := gate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// startGate serves cfg in process behind g.
func startGate(t *testing.T, g *gate.Gate, cfg verifytest.ServerConfig) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	srv, err := verifytest.StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := startGateOn(t, ctx, g, srv.Out, srv.In)
	h.srv = srv
	t.Cleanup(func() { srv.Close() })
	return h
}

func startGateOn(t *testing.T, ctx context.Context, g *gate.Gate, serverIn io.Reader, serverOut io.Writer) *harness {
	t.Helper()
	hostInR, hostInW := io.Pipe()
	hostOutR, hostOutW := io.Pipe()
	h := &harness{t: t, ctx: ctx, g: g, hostW: hostInW, hostR: hostOutR, msgs: make(chan *jsonrpc.Message, 64), runErr: make(chan error, 1)}
	go func() { h.runErr <- g.Run(ctx, hostInR, hostOutW, serverIn, serverOut) }()
	go func() {
		defer close(h.msgs)
		r := jsonrpc.NewReader(hostOutR, 0)
		for {
			m, err := r.Read()
			if err != nil {
				return
			}
			h.msgs <- m
		}
	}()
	t.Cleanup(func() { h.close() })
	return h
}

func (h *harness) send(line string) {
	h.t.Helper()
	if _, err := io.WriteString(h.hostW, line+"\n"); err != nil {
		h.t.Fatalf("host write: %v", err)
	}
}

// recv returns the next message the host receives.
func (h *harness) recv() *jsonrpc.Message {
	h.t.Helper()
	select {
	case m, ok := <-h.msgs:
		if !ok {
			h.t.Fatal("the gate closed the host's stream")
		}
		return m
	case <-time.After(10 * time.Second):
		h.t.Fatal("no message for the host")
	}
	return nil
}

// recvID skips notifications and returns the response with the given id.
func (h *harness) recvID(id string) *jsonrpc.Message {
	h.t.Helper()
	for {
		m := h.recv()
		if m.Kind == jsonrpc.KindResponse || m.Kind == jsonrpc.KindError {
			if string(m.ID) != id {
				h.t.Fatalf("response with id %s, want %s: %s", m.ID, id, m.Raw)
			}
			return m
		}
		h.notes = append(h.notes, m.Method)
	}
}

// awaitNote waits for a notification, which recvID may already have skipped.
func (h *harness) awaitNote(method string) {
	h.t.Helper()
	if slicesContains(h.notes, method) {
		return
	}
	for {
		m := h.recv()
		if m.Method == method {
			return
		}
		if m.Kind != jsonrpc.KindNotification {
			h.t.Fatalf("waiting for %s: %s", method, m.Raw)
		}
	}
}

// quiet asserts that the host receives nothing for a moment.
func (h *harness) quiet() {
	h.t.Helper()
	select {
	case m, ok := <-h.msgs:
		if ok {
			h.t.Fatalf("unexpected message for the host: %s", m.Raw)
		}
	case <-time.After(50 * time.Millisecond):
	}
}

func (h *harness) initialize() {
	h.t.Helper()
	h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"sampling":{}},"clientInfo":{"name":"host","version":"1"}}}`)
	h.recvID("0")
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

// close ends the host's side and returns Run's result.
func (h *harness) close() error {
	h.once.Do(func() {
		h.hostW.Close()
		select {
		case h.err = <-h.runErr:
		case <-time.After(10 * time.Second):
			h.t.Error("Run did not return after the host closed its side")
		}
		h.hostR.Close()
		for range h.msgs {
		}
	})
	return h.err
}

// wait returns Run's result without closing the host's side.
func (h *harness) wait() error {
	h.t.Helper()
	select {
	case err := <-h.runErr:
		h.once.Do(func() {
			h.err = err
			h.hostW.Close()
			h.hostR.Close()
		})
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return")
	}
	return nil
}

func (h *harness) serverSaw(substr string) bool {
	for _, l := range h.srv.Received() {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

// mcpClient connects an mcp-go client to the gate's host side.
func (h *harness) mcpClient(opts ...client.ClientOption) *client.Client {
	h.t.Helper()
	// The harness's own reader must not compete for the host's stream.
	r, w := io.Pipe()
	go func() {
		for m := range h.msgs {
			if _, err := w.Write(append(m.Raw, '\n')); err != nil {
				break
			}
		}
		w.Close()
	}()
	c := client.NewClient(transport.NewIO(r, h.hostW, nil), opts...)
	if err := c.Start(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION // probes server/discover first
	req.Params.ClientInfo = mcp.Implementation{Name: "host", Version: "1"}
	if _, err := c.Initialize(h.ctx, req); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close(); r.Close() })
	return c
}

func callText(t *testing.T, ctx context.Context, c *client.Client, tool, text string) (string, error) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = map[string]any{"text": text}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return "", err
	}
	if len(res.Content) != 1 {
		t.Fatalf("tools/call %s: %d content items", tool, len(res.Content))
	}
	return res.Content[0].(mcp.TextContent).Text, nil
}

func toolNames(t *testing.T, ctx context.Context, c *client.Client) string {
	t.Helper()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return strings.Join(names, ",")
}

func isClass(err error, class *preflight.Class) bool {
	var pe *preflight.Error
	return errors.Is(err, class) && errors.As(err, &pe)
}

func pipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }
