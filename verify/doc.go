// Package verify is the API an MCP host embeds: it takes a server named in
// the trust policy to a running server whose tools the model may see, and
// refuses everything else with an error that says why.
//
// # The flow
//
// Every call runs the same stages in one direction:
//
//	resolve → fetch → verify → decide → materialize → launch → gate → session
//
// Resolve reads the server's policy entry and, for TUF-published servers, its
// descriptor from the pinned TUF repository, narrowing the local rules with
// the descriptor's expectations (never widening them). Fetch places the
// artifact in the content-addressed store, checked against the digest signed
// in the TUF targets metadata or pinned in the policy. Verify checks every
// Sigstore bundle against the trusted material and the policy's signers and
// yields policy.Facts. Decide is policy.Evaluate. The launch starts exactly the
// bytes that were hashed, and the gate (package gate) filters the server's
// tools, prompts and resources before the host sees them.
//
// Check stops after decide. Connect goes all the way and returns the host's
// end of the gated stdio, on which any MCP SDK runs; package verify/mcpgo
// builds an initialized mcp-go session on it. Proxy relays a host's own
// streams through the gate (the preflight run command), Inspect lists a
// server's surface for a lockfile, and CommandFor returns the unstarted
// command of the verified bytes. This package links no MCP SDK.
//
// # Check to use
//
// On Linux the server is executed from the open file descriptor whose
// contents were just hashed (through /proc/self/fd), so replacing the file at
// its path between check and exec cannot change what runs. Elsewhere the
// store entry is executed by path; entries are read-only files in a 0700
// directory, which leaves only a window for a process running as the same
// user, which could equally attach to the host.
//
// # Refusals
//
// A refusal returns a *Refusal error that carries the complete Report (facts,
// decision, findings) and matches the class of the first blocking finding,
// so errors.Is(err, preflight.ErrIdentity) and errors.As(err, &refusal) both
// work. Operational failures match preflight.ErrOperational.
//
// # Concurrency
//
// A Verifier is safe for concurrent use; several processes may share one
// store directory. A Conn is safe for concurrent use by the host.
package verify
