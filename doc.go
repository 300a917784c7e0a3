// Package preflight verifies MCP servers before an MCP host launches them.
//
// This root package holds the error classes shared by every Preflight
// package; the work is done in the subpackages (see the package map below).
//
// # Verifying servers
//
// A host builds a verify.Verifier from a policy and calls Check (dry run),
// Connect (a verified start, returning the gated stdio any MCP SDK runs on),
// mcpgo.Launch in package verify/mcpgo (the same with an initialized mcp-go
// client) or CommandFor (an unstarted command of the verified bytes).
//
// # Errors
//
// Every error matches exactly one of ErrSecurity and ErrOperational, and a
// specific Class such as ErrTampered or ErrTimeout. Errors that carry
// evidence are *Error values with the expected and found values.
//
// # Package map
//
//   - policy: the trust policy, lockfile and the pure Evaluate.
//   - tuf: TUF clients for server metadata and the Sigstore trust root.
//   - verify: the embeddable API (Verifier, Report, Session).
//   - gate: the tool gate on JSON-RPC messages.
//   - verify/verifytest: the public test kit.
package preflight
