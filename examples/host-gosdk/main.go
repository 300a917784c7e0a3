// Command host-gosdk is an MCP host on the official go-sdk that launches a
// server only through Preflight. verify.Connect verifies the server, starts
// exactly the verified bytes and returns the host's end of the gated stdio,
// which the go-sdk runs over as an mcp.IOTransport. A sending middleware
// audits every request the host makes.
//
// Hosts that start the process themselves with mcp.CommandTransport can take
// the verified, unstarted command from Verifier.CommandFor instead; they
// then get the verified launch but must put package gate between the
// process and the SDK to filter tools.
//
// It runs offline against the test kit: go run ./examples/host-gosdk
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-preflight/preflight/examples/internal/hostkit"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

func main() {
	if verifytest.ServerMain(os.Args[1:]) {
		return
	}
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "host-gosdk:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	world, err := hostkit.New(ctx)
	if err != nil {
		return err
	}
	defer world.Close()

	conn, err := world.Verifier.Connect(ctx, "weather")
	if err != nil {
		return err // a *verify.Refusal when the policy refuses the server
	}
	defer conn.Close()
	fmt.Fprintf(out, "verified %s sha256:%s\n", conn.Report.Server, conn.Report.Facts.Artifact.Digests["sha256"])

	var mu sync.Mutex
	var sent []string
	client := mcp.NewClient(&mcp.Implementation{Name: "host-gosdk", Version: "1"}, nil)
	client.AddSendingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			mu.Lock()
			sent = append(sent, method)
			mu.Unlock()
			return next(ctx, method, req)
		}
	})
	session, err := client.Connect(ctx, &mcp.IOTransport{Reader: conn, Writer: conn}, nil)
	if err != nil {
		return err
	}
	defer session.Close()
	tools, err := session.ListTools(ctx, nil)
	if err != nil {
		return err
	}
	for _, t := range tools.Tools {
		fmt.Fprintf(out, "tool: %s\n", t.Name)
	}
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "get_forecast", Arguments: map[string]any{"text": "Faro"}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "get_forecast: %s\n", res.Content[0].(*mcp.TextContent).Text)
	if _, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "delete_everything", Arguments: map[string]any{"text": "/"}}); err == nil {
		return errors.New("a denied tool was callable")
	}
	fmt.Fprintln(out, "delete_everything: refused by the gate")
	mu.Lock()
	fmt.Fprintf(out, "audited requests: %v\n", sent)
	mu.Unlock()
	return nil
}
