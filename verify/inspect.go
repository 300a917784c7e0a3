package verify

import (
	"context"
	"errors"

	"github.com/mcp-preflight/preflight/internal/mcpclient"
)

// Inspect verifies and starts the server like Connect, completes the MCP
// handshake through the gate with Preflight's own small client, lists every
// page of its tools (and prompts and resources, when it offers them), stops
// it, and returns the report with the surface the gate saw: the facts a
// lockfile records (`preflight lock`) or compares (`preflight check`).
func (v *Verifier) Inspect(ctx context.Context, server string) (*Report, error) {
	conn, err := v.Connect(ctx, server)
	if err != nil {
		return nil, err
	}
	client := mcpclient.New(conn)
	defer client.Close()
	hctx, cancel := context.WithTimeout(ctx, v.cfg.HandshakeTimeout)
	defer cancel()
	init, err := client.Initialize(hctx)
	if err != nil {
		return nil, conn.Diagnose(hctx, "initialize", err)
	}
	for _, l := range []struct {
		offered   bool
		method    string
		key       string
		mustExist bool
	}{
		{init.Tools, "tools/list", "tools", true},
		{init.Prompts, "prompts/list", "prompts", false},
		{init.Resources, "resources/list", "resources", false},
	} {
		if !l.offered {
			continue
		}
		if _, err := client.ListAll(hctx, l.method, l.key); err != nil {
			var rpc *mcpclient.RPCError
			if errors.As(err, &rpc) && !l.mustExist {
				continue // a capability advertised but not served
			}
			return nil, conn.Diagnose(hctx, l.method, err)
		}
	}
	conn.RecordSurface(init.Instructions)
	if err := conn.Close(); err != nil {
		return nil, err
	}
	return conn.Report, nil
}
