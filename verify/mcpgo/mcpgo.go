// Package mcpgo runs mcp-go clients on verified, gated servers.
//
// Launch verifies and starts a server with a verify.Verifier, connects an
// mcp-go client to the host's end of the gate, completes the MCP handshake
// and lists the server's tools, so the report says what the model may see.
// It is a separate package so that programs that do not use mcp-go (the
// preflight CLI, hosts on the official go-sdk) do not link it.
package mcpgo

import (
	"context"
	"log/slog"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-preflight/preflight/verify"
)

// Options configure one Launch. The zero value is ready to use.
type Options struct {
	// ClientOptions are passed to the mcp-go client (for example a
	// sampling handler).
	ClientOptions []client.ClientOption
	// ClientInfo names the host to the server; default "preflight".
	ClientInfo mcp.Implementation
	// Logger receives the transport's messages; nil discards them.
	Logger *slog.Logger
}

// Session is a verified, running server behind the gate with an initialized
// mcp-go client. It is safe for concurrent use; Close ends it and reaps the
// process.
type Session struct {
	*verify.Conn
	// Client is an initialized mcp-go client whose transport is gated.
	Client *client.Client
}

// Launch verifies the server like verify.Verifier.Check, starts exactly the
// verified bytes with the policy's environment, completes the MCP handshake
// through the gate and lists the server's tools, within the Verifier's
// HandshakeTimeout. The process outlives ctx, which bounds only
// verification and the handshake. A refusal is a *verify.Refusal carrying
// the report.
func Launch(ctx context.Context, v *verify.Verifier, server string, opts Options) (*Session, error) {
	conn, err := v.Connect(ctx, server)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := transport.NewIO(conn, conn, nil)
	// NewIO logs to slog.Default; a library writes only to its own logger.
	transport.WithCommandLogger(log)(t)
	s := &Session{Conn: conn, Client: client.NewClient(t, opts.ClientOptions...)}
	info := opts.ClientInfo
	if info.Name == "" {
		info = mcp.Implementation{Name: "preflight", Version: "1"}
	}
	hctx, cancel := context.WithTimeout(ctx, conn.HandshakeTimeout())
	defer cancel()
	instructions, err := s.handshake(hctx, info)
	if err != nil {
		s.Close()
		return nil, err
	}
	conn.RecordSurface(instructions)
	return s, nil
}

// handshake initializes the client and lists every page of tools, so the
// gate has decided on the whole surface before the host sees any of it.
func (s *Session) handshake(ctx context.Context, info mcp.Implementation) (string, error) {
	if err := s.Client.Start(ctx); err != nil {
		return "", s.Diagnose(ctx, "start", err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = info
	res, err := s.Client.Initialize(ctx, req)
	if err != nil {
		return "", s.Diagnose(ctx, "initialize", err)
	}
	if res.Capabilities.Tools != nil {
		if _, err := s.Client.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
			return "", s.Diagnose(ctx, "tools/list", err)
		}
	}
	return res.Instructions, nil
}

// Close closes the client and ends the session; see verify.Conn.Close.
func (s *Session) Close() error {
	s.Client.Close()
	return s.Conn.Close()
}
