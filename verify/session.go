package verify

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/gate"
	"github.com/mcp-preflight/preflight/internal/canonical"
	"github.com/mcp-preflight/preflight/policy"
)

// Session is a verified, running server behind the gate. The host talks to it
// through Client; everything the server lists passes the gate first. A
// Session is safe for concurrent use; Close ends it and reaps the process.
type Session struct {
	// Client is an initialized mcp-go client whose transport is gated.
	Client *client.Client
	// Report is the verification report, with the surface the gate exposed
	// after the first listing.
	Report *Report

	gate    *gate.Gate
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	relay   chan error // Gate.Run's result
	exited  chan struct{}
	waitErr error

	closeOnce sync.Once
	closeErr  error
}

// Launch verifies the server like Check, starts exactly the verified bytes
// with the policy's environment, completes the MCP handshake through the gate
// and lists the server's surface. The process outlives ctx: ctx bounds only
// verification and the handshake; the session lasts until Close.
func (v *Verifier) Launch(ctx context.Context, server string) (*Session, error) {
	c, rep, err := v.check(ctx, server)
	if err != nil {
		return nil, err
	}
	cmd, err := v.command(c)
	if err != nil {
		return nil, err
	}
	serverIn, err := cmd.StdinPipe()
	if err != nil {
		closeExtra(cmd)
		return nil, launchErr("server "+server, err, "")
	}
	serverOut, err := cmd.StdoutPipe()
	if err != nil {
		closeExtra(cmd)
		return nil, launchErr("server "+server, err, "")
	}
	cmd.Stderr = v.cfg.Stderr
	setProcessGroup(cmd)
	err = cmd.Start()
	closeExtra(cmd) // the child has its own copy of the verified descriptor
	if err != nil {
		return nil, launchErr("server "+server, err, "the verified artifact could not be executed on this platform")
	}

	g, err := gate.New(gate.Config{Decide: v.decider(c), Logger: v.log.With("server", server)})
	if err != nil {
		killAndReap(cmd)
		return nil, err
	}
	// The session's lifetime is its own, not the caller's verification ctx.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hostInR, hostInW := io.Pipe()   // client → gate
	hostOutR, hostOutW := io.Pipe() // gate → client
	s := &Session{Report: rep, gate: g, cmd: cmd, cancel: cancel, relay: make(chan error, 1), exited: make(chan struct{})}
	go func() {
		err := g.Run(sctx, hostInR, hostOutW, serverOut, serverIn)
		hostOutW.CloseWithError(io.EOF)
		hostInR.Close()
		serverIn.Close()
		s.relay <- err
	}()
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	s.Client = client.NewClient(transport.NewIO(hostOutR, hostInW, nil), v.cfg.ClientOptions...)
	if err := s.handshake(ctx, v.cfg.HandshakeTimeout); err != nil {
		s.Close()
		return nil, err
	}
	rep.Surface = surfaceReport(g.Surface())
	rep.Facts.Surface = surfaceFacts(g.Surface(), rep.Facts.Surface)
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
	select {
	case <-s.exited:
		return &preflight.Error{Class: preflight.ErrLaunch, Subject: subject, Err: errors.Join(err, s.waitErr),
			Hint: "the server exited during " + step + "; run it by hand to see its error output"}
	case rerr := <-s.relay:
		s.relay <- rerr
		if rerr != nil {
			return rerr
		}
	default:
	}
	if ctx.Err() != nil {
		return &preflight.Error{Class: preflight.ErrTimeout, Subject: subject, Err: err,
			Hint: "the server did not answer " + step + " in time; it may not speak MCP over stdio"}
	}
	return launchErr(subject, err, "the server failed the MCP handshake at "+step)
}

// Surface returns what the gate currently exposes and withholds.
func (s *Session) Surface() *SurfaceReport { return surfaceReport(s.gate.Surface()) }

// Done is closed when the server process has exited.
func (s *Session) Done() <-chan struct{} { return s.exited }

// Close ends the session: the client is closed, the server's stdin closed,
// and the process is given two seconds to exit before it is killed. Close
// reaps the process and stops every goroutine of the session. It returns the
// gate's error when the gate ended the session (for example on a rug pull
// under on_change: end).
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.Client.Close()
		s.cancel()
		select {
		case <-s.exited:
		case <-time.After(2 * time.Second):
			if s.cmd.Process != nil {
				signalGroup(s.cmd, syscall.SIGKILL)
			}
			<-s.exited
		}
		err := <-s.relay
		s.relay <- err
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
			s.closeErr = err
		}
	})
	return s.closeErr
}

func closeExtra(cmd *exec.Cmd) {
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
}

func killAndReap(cmd *exec.Cmd) {
	signalGroup(cmd, syscall.SIGKILL)
	cmd.Wait()
}

func surfaceFacts(snap gate.Snapshot, prev *policy.SurfaceFacts) *policy.SurfaceFacts {
	sf := &policy.SurfaceFacts{}
	if prev != nil {
		sf.Instructions = prev.Instructions
	}
	collect := func(k gate.Kind) map[string]string {
		ks := snap.Kinds[k]
		if len(ks.Items) == 0 {
			return nil
		}
		m := make(map[string]string, len(ks.Items))
		for _, it := range ks.Items {
			m[it.Name] = it.Digest
		}
		return m
	}
	sf.Tools = collect(gate.KindTool)
	sf.Prompts = collect(gate.KindPrompt)
	sf.Resources = collect(gate.KindResource)
	return sf
}
