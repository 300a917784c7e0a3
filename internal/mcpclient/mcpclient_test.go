package mcpclient_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/mcpclient"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// pipe joins a PipeServer's two streams into the ReadWriteCloser a Client
// takes.
type pipe struct {
	io.Reader
	io.WriteCloser
}

func TestClientAgainstTestServer(t *testing.T) {
	cfg := verifytest.ServerConfig{Name: "t", Instructions: "Be brief.", PageSize: 1, Tools: []verifytest.Tool{
		{Name: "a", Description: "A."}, {Name: "b", Description: "B."}, {Name: "c", Description: "C."},
	}, RugPull: &verifytest.RugPull{AfterCalls: 1, Tools: []verifytest.Tool{{Name: "a", Description: "A!"}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := verifytest.StartServer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := mcpclient.New(pipe{srv.Out, srv.In})
	defer c.Close()
	init, err := c.Initialize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if init.Instructions != "Be brief." || !init.Tools || init.Prompts {
		t.Fatalf("initialize %+v", init)
	}
	tools, err := c.ListAll(ctx, "tools/list", "tools")
	if err != nil || len(tools) != 3 {
		t.Fatalf("listed %d tools over pages, want 3: %v", len(tools), err)
	}
	text, err := c.CallTool(ctx, "b", map[string]any{"text": "hi"})
	if err != nil || text != "echo: hi" {
		t.Fatalf("call: %q %v", text, err)
	}
	select {
	case m := <-c.Notifications():
		if m != "notifications/tools/list_changed" {
			t.Fatalf("notification %q", m)
		}
	case <-ctx.Done():
		t.Fatal("no list_changed after the rug pull")
	}
	var rpc *mcpclient.RPCError
	if _, err := c.CallTool(ctx, "b", map[string]any{"text": "hi"}); !errors.As(err, &rpc) {
		t.Fatalf("calling a removed tool: got %v, want an RPCError", err)
	}
	srv.Close()
	if _, err := c.Call(ctx, "ping", nil); !errors.Is(err, preflight.ErrUnavailable) {
		t.Fatalf("after the server ended: got %v, want ErrUnavailable", err)
	}
}
