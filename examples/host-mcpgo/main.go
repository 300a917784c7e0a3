// Command host-mcpgo is an MCP host on mcp-go that launches a server only
// through Preflight: mcpgo.Launch (package verify/mcpgo) returns an initialized mcp-go client whose
// transport is gated, so the host never sees a tool the policy withholds.
//
// It runs offline against the test kit: go run ./examples/host-mcpgo
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/examples/internal/hostkit"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/mcpgo"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

func main() {
	if verifytest.ServerMain(os.Args[1:]) {
		return
	}
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "host-mcpgo:", err)
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

	s, err := mcpgo.Launch(ctx, world.Verifier, "weather", mcpgo.Options{})
	var refusal *verify.Refusal
	switch {
	case errors.As(err, &refusal):
		return fmt.Errorf("refused: %w (findings: %d)", err, len(refusal.Report.Decision.Findings))
	case errors.Is(err, preflight.ErrOperational):
		return fmt.Errorf("could not verify: %w", err)
	case err != nil:
		return err
	}
	defer s.Close()
	fmt.Fprintf(out, "verified %s sha256:%s signed by %s\n", s.Report.Server,
		s.Report.Facts.Artifact.Digests["sha256"], s.Report.Facts.Signatures[0].Certificate.Subject)

	tools, err := s.Client.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return err
	}
	for _, t := range tools.Tools {
		fmt.Fprintf(out, "tool: %s\n", t.Name)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "get_forecast"
	req.Params.Arguments = map[string]any{"text": "Porto"}
	res, err := s.Client.CallTool(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "get_forecast: %s\n", res.Content[0].(mcp.TextContent).Text)
	req.Params.Name = "delete_everything"
	if _, err := s.Client.CallTool(ctx, req); err != nil {
		fmt.Fprintf(out, "delete_everything: refused by the gate\n")
	} else {
		return errors.New("a denied tool was callable")
	}
	return s.Close()
}
