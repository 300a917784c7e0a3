package verify

import (
	"context"
	"errors"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/canonical"
	"github.com/mcp-preflight/preflight/policy"
)

// Session is a verified, running server behind the gate with an initialized
// mcp-go client. Everything the server lists passes the gate first. A
// Session is safe for concurrent use; Close ends it and reaps the process.
type Session struct {
	*Conn
	// Client is an initialized mcp-go client whose transport is gated.
	Client *client.Client
}

// Launch verifies the server like Check, starts exactly the verified bytes
// with the policy's environment, completes the MCP handshake through the
// gate and lists the server's tools, so the report says what was exposed.
// The process outlives ctx: ctx bounds only verification and the handshake.
func (v *Verifier) Launch(ctx context.Context, server string) (*Session, error) {
	c, rep, err := v.check(ctx, server)
	if err != nil {
		return nil, err
	}
	conn, err := v.connect(ctx, c, rep)
	if err != nil {
		return nil, err
	}
	t := transport.NewIO(conn, conn.w, nil)
	// NewIO logs to slog.Default; a library writes only to its own logger.
	transport.WithCommandLogger(v.log.With("server", server))(t)
	s := &Session{Conn: conn, Client: client.NewClient(t, v.cfg.ClientOptions...)}
	if err := s.handshake(ctx, v.cfg.HandshakeTimeout); err != nil {
		s.Close()
		return nil, err
	}
	snap := conn.gate.Surface()
	rep.Surface = surfaceReport(snap)
	rep.Facts.Surface = surfaceFacts(snap, rep.Facts.Surface)
	v.log.Info("preflight session", "server", server, "tools", rep.Surface.Tools.Exposed, "withheld", len(rep.Surface.Tools.Withheld))
	return s, nil
}

// handshake initializes the client and lists every page of tools, so the
// gate has decided on the whole surface before the host sees any of it.
func (s *Session) handshake(ctx context.Context, timeout time.Duration) error {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	subject := "server " + s.Report.Server
	if err := s.Client.Start(hctx); err != nil {
		return launchErr(subject, err, "")
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "preflight", Version: "1"}
	res, err := s.Client.Initialize(hctx, req)
	if err != nil {
		return s.handshakeErr(hctx, subject, "initialize", err)
	}
	if res.Instructions != "" {
		if s.Report.Facts.Surface == nil {
			s.Report.Facts.Surface = &policy.SurfaceFacts{}
		}
		s.Report.Facts.Surface.Instructions = canonical.InstructionsDigest(res.Instructions)
	}
	if res.Capabilities.Tools != nil {
		if _, err := s.Client.ListTools(hctx, mcp.ListToolsRequest{}); err != nil {
			return s.handshakeErr(hctx, subject, "tools/list", err)
		}
	}
	return nil
}

func (s *Session) handshakeErr(ctx context.Context, subject, step string, err error) error {
	// A server that closed its output is usually exiting; give the exit a
	// moment to be reaped so the error says the server died, not the pipe.
	rerr, relayDone := s.relayResult()
	grace := time.After(0)
	if relayDone {
		grace = time.After(500 * time.Millisecond)
	}
	select {
	case <-s.Done():
		return &preflight.Error{Class: preflight.ErrLaunch, Subject: subject, Err: errors.Join(err, s.proc.waitErr),
			Hint: "the server exited during " + step + "; run it by hand to see its error output"}
	case <-grace:
	}
	if relayDone && rerr != nil {
		return rerr
	}
	if ctx.Err() != nil {
		return &preflight.Error{Class: preflight.ErrTimeout, Subject: subject, Err: err,
			Hint: "the server did not answer " + step + " in time; it may not speak MCP over stdio"}
	}
	return launchErr(subject, err, "the server failed the MCP handshake at "+step)
}

// Close closes the client and ends the session; see Conn.Close.
func (s *Session) Close() error {
	s.Client.Close()
	return s.Conn.Close()
}
