package verify

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/gate"
	"github.com/mcp-preflight/preflight/internal/canonical"
	"github.com/mcp-preflight/preflight/policy"
)

// process is a started, verified server whose stdio is not yet relayed.
type process struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  io.ReadCloser
	exited  chan struct{}
	waitErr error
}

// start executes the verified bytes of c with the policy's environment.
func (v *Verifier) start(ctx context.Context, c *candidate) (*process, error) {
	cmd, err := v.command(ctx, c)
	if err != nil {
		return nil, err
	}
	subject := "server " + c.name
	stdin, err := cmd.StdinPipe()
	if err != nil {
		closeExtra(cmd)
		return nil, launchErr(subject, err, "")
	}
	// Not StdoutPipe: Wait closes that pipe as soon as the process exits,
	// which could cut off the last messages a dying server wrote. This
	// read end belongs to the relay, which sees EOF after the last byte.
	stdout, childOut, err := os.Pipe()
	if err != nil {
		stdin.Close()
		closeExtra(cmd)
		return nil, launchErr(subject, err, "")
	}
	cmd.Stdout = childOut
	cmd.Stderr = v.cfg.Stderr
	setProcessGroup(cmd)
	err = cmd.Start()
	closeExtra(cmd) // the child holds its own copy of the verified descriptor
	childOut.Close()
	if err != nil {
		stdin.Close()
		stdout.Close()
		return nil, launchErr(subject, err, "the verified artifact could not be executed on this platform")
	}
	p := &process{cmd: cmd, stdin: stdin, stdout: stdout, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
		// A child the server left behind may hold its stdout open; give the
		// relay a moment to read what the server wrote, then end it.
		time.AfterFunc(2*time.Second, func() { stdout.Close() })
	}()
	return p, nil
}

// stop closes the server's stdin, gives it grace to exit, then kills its
// process group; it returns once the process has been reaped.
func (p *process) stop(grace time.Duration) {
	p.stdin.Close()
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	signalGroup(p.cmd, syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	signalGroup(p.cmd, syscall.SIGKILL)
	<-p.exited
}

// Conn is the host's end of a verified server's gated stdio: what the host
// writes goes through the gate to the server, and what it reads is what the
// gate let through. It is newline-delimited JSON-RPC, so any MCP SDK can run
// over it (mcp-go's transport.NewIO, the go-sdk's mcp.IOTransport). Read and
// Write may be used concurrently; Close ends the session.
type Conn struct {
	// Report is the verification report; its Surface is filled by Launch,
	// and Surface returns the gate's current view at any time.
	Report *Report

	r      *io.PipeReader // gate → host
	w      *io.PipeWriter // host → gate
	gate   *gate.Gate
	proc   *process
	cancel context.CancelFunc
	relay  chan error // Gate.Run's result, kept for every reader
	// handshake is the Verifier's HandshakeTimeout.
	handshake time.Duration

	closeOnce sync.Once
	closeErr  error
}

// Connect verifies the server like Check, starts exactly the verified bytes
// and returns the host's end of the gated stream. The process outlives ctx,
// which bounds only verification; the session lasts until Close.
func (v *Verifier) Connect(ctx context.Context, server string) (*Conn, error) {
	c, rep, err := v.check(ctx, server)
	if err != nil {
		return nil, err
	}
	return v.connect(ctx, c, rep)
}

func (v *Verifier) connect(ctx context.Context, c *candidate, rep *Report) (*Conn, error) {
	g, err := gate.New(gate.Config{Decide: v.decider(c), Logger: v.log.With("server", c.name)})
	if err != nil {
		return nil, err
	}
	p, err := v.start(ctx, c)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hostInR, hostInW := io.Pipe()   // host → gate
	hostOutR, hostOutW := io.Pipe() // gate → host
	conn := &Conn{Report: rep, r: hostOutR, w: hostInW, gate: g, proc: p, cancel: cancel, relay: make(chan error, 1), handshake: v.cfg.HandshakeTimeout}
	go func() {
		err := g.Run(sctx, hostInR, hostOutW, p.stdout, p.stdin)
		hostOutW.CloseWithError(io.EOF)
		hostInR.Close()
		p.stdin.Close()
		conn.relay <- err
	}()
	return conn, nil
}

// Read reads what the gate passed to the host.
func (c *Conn) Read(b []byte) (int, error) { return c.r.Read(b) }

// Write sends host messages into the gate.
func (c *Conn) Write(b []byte) (int, error) { return c.w.Write(b) }

// Surface returns what the gate currently exposes and withholds.
func (c *Conn) Surface() *SurfaceReport { return surfaceReport(c.gate.Surface()) }

// Done is closed when the server process has exited.
func (c *Conn) Done() <-chan struct{} { return c.proc.exited }

// Close ends the session: the server's stdin is closed and the process is
// given two seconds to exit before its process group is terminated, then
// killed. Close reaps the process and stops every goroutine of the session.
// It returns the gate's error when the gate ended the session on policy
// grounds (for example preflight.ErrToolDrift on a rug pull under
// on_change: end), and nil for an ordinary end.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.w.Close()
		c.r.Close()
		c.cancel()
		c.proc.stop(2 * time.Second)
		err := <-c.relay
		c.relay <- err
		// Only a refusal is news at this point: once the host has closed
		// its side, the server ending its output or the relay's pipes
		// closing is the session ending, whichever the gate saw first.
		if errors.Is(err, preflight.ErrSecurity) {
			c.closeErr = err
		}
	})
	return c.closeErr
}

// relayResult returns the gate's result if it has already ended.
func (c *Conn) relayResult() (error, bool) {
	select {
	case err := <-c.relay:
		c.relay <- err
		return err, true
	default:
		return nil, false
	}
}

// Proxy verifies the server like Check, starts it and relays between the
// host's streams and the server through the gate until hostIn ends, the
// server exits or ctx ends. It is what `preflight run` does with its own
// stdin and stdout. The report is returned with the error, if any, of the
// session; a refusal before launch returns a *Refusal like Check.
func (v *Verifier) Proxy(ctx context.Context, server string, hostIn io.Reader, hostOut io.Writer) (*Report, error) {
	c, rep, err := v.check(ctx, server)
	if err != nil {
		return nil, err
	}
	g, err := gate.New(gate.Config{Decide: v.decider(c), Logger: v.log.With("server", c.name)})
	if err != nil {
		return nil, err
	}
	p, err := v.start(ctx, c)
	if err != nil {
		return nil, err
	}
	err = g.Run(ctx, hostIn, hostOut, p.stdout, p.stdin)
	p.stop(2 * time.Second)
	rep.Surface = surfaceReport(g.Surface())
	if err != nil && !errors.Is(err, context.Canceled) {
		return rep, err
	}
	return rep, nil
}

func closeExtra(cmd *exec.Cmd) {
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
}

// HandshakeTimeout is how long the Verifier's configuration allows the MCP
// handshake and first listing to take.
func (c *Conn) HandshakeTimeout() time.Duration { return c.handshake }

// Diagnose explains an error a host's MCP client met during the handshake
// step (initialize, tools/list): the server died (preflight.ErrLaunch), the
// gate ended the session (its own error), or nothing answered in time
// (preflight.ErrTimeout).
func (c *Conn) Diagnose(ctx context.Context, step string, err error) error {
	subject := "server " + c.Report.Server
	// A server that closed its output is usually exiting; give the exit a
	// moment to be reaped so the error says the server died, not the pipe.
	rerr, relayDone := c.relayResult()
	grace := time.After(0)
	if relayDone {
		grace = time.After(500 * time.Millisecond)
	}
	select {
	case <-c.Done():
		return &preflight.Error{Class: preflight.ErrLaunch, Subject: subject, Err: errors.Join(err, c.proc.waitErr),
			Hint: "the server exited during " + step + "; run it by hand to see its error output"}
	case <-grace:
	}
	if relayDone && rerr != nil {
		if errors.Is(rerr, preflight.ErrSecurity) {
			return rerr // the gate ended the session on policy grounds
		}
		// The server broke its side of the stream (closed its output, wrote
		// past the limits): it failed to start as an MCP server.
		return &preflight.Error{Class: preflight.ErrLaunch, Subject: subject, Err: rerr,
			Hint: "the server stopped speaking MCP during " + step + "; run it by hand to see its error output"}
	}
	if ctx.Err() != nil {
		return &preflight.Error{Class: preflight.ErrTimeout, Subject: subject, Err: err,
			Hint: "the server did not answer " + step + " in time; it may not speak MCP over stdio"}
	}
	return launchErr(subject, err, "the server failed the MCP handshake at "+step)
}

// RecordSurface completes the report with what the gate has listed and
// decided, and the digest of the server's instructions (empty when it gave
// none). Hosts call it after their client's first listing.
func (c *Conn) RecordSurface(instructions string) {
	snap := c.gate.Surface()
	rep := c.Report
	rep.Surface = surfaceReport(snap)
	prev := rep.Facts.Surface
	if instructions != "" {
		if prev == nil {
			prev = &policy.SurfaceFacts{}
		}
		prev.Instructions = canonical.InstructionsDigest(instructions)
	}
	rep.Facts.Surface = surfaceFacts(snap, prev)
}
