package preflight

import (
	"errors"
	"strings"
)

// The two umbrella classes. Every error Preflight returns matches exactly one
// of them with errors.Is, so a host can tell "something is attacking you"
// from "something is broken" without knowing every specific class.
var (
	// ErrSecurity marks a refusal on evidence: bytes, signatures, metadata
	// or a tool surface that is not what the trust policy expects.
	ErrSecurity = errors.New("preflight: security check failed")
	// ErrOperational marks a failure to complete a check: network, timeouts,
	// malformed input, misconfiguration. It is never a verdict on the server.
	ErrOperational = errors.New("preflight: operational failure")
)

// Class is one specific kind of failure. Classes are compared by identity with
// errors.Is, and each matches its umbrella (ErrSecurity or ErrOperational).
type Class struct {
	name     string
	security bool
}

func (c *Class) Error() string { return c.name }

// Is reports whether target is the umbrella class c belongs to.
func (c *Class) Is(target error) bool {
	if c.security {
		return target == ErrSecurity
	}
	return target == ErrOperational
}

// Security reports whether c is a security class.
func (c *Class) Security() bool { return c.security }

// Security classes: the evidence contradicts the trust policy.
var (
	// ErrTampered: bytes whose digest differs from the pinned or signed one.
	ErrTampered = &Class{"artifact digest mismatch", true}
	// ErrSignature: a signature, certificate chain, transparency-log entry or
	// timestamp that does not verify against the trusted material.
	ErrSignature = &Class{"signature verification failed", true}
	// ErrIdentity: a valid signature by a signer the policy does not allow.
	ErrIdentity = &Class{"signer identity not allowed", true}
	// ErrProvenance: build provenance missing, malformed or disagreeing with
	// the policy (builder, source repository, ref, runner) or the certificate.
	ErrProvenance = &Class{"provenance not allowed", true}
	// ErrMetadata: TUF metadata that is rolled back, frozen (expired), mixed,
	// under-signed or otherwise fails the TUF client workflow.
	ErrMetadata = &Class{"repository metadata rejected", true}
	// ErrPolicy: the policy denies the server or the request outright.
	ErrPolicy = &Class{"denied by policy", true}
	// ErrToolDrift: the server's tool, prompt or resource surface differs
	// from the pinned one (a rug pull), or uses a look-alike name.
	ErrToolDrift = &Class{"tool surface changed", true}
)

// Operational classes: the check could not be completed.
var (
	// ErrConfig: the caller's configuration or policy is invalid.
	ErrConfig = &Class{"invalid configuration", false}
	// ErrMalformed: untrusted input that cannot be parsed or exceeds a limit.
	ErrMalformed = &Class{"malformed input", false}
	// ErrUnavailable: a remote could not be reached or answered with an error.
	ErrUnavailable = &Class{"source unavailable", false}
	// ErrTimeout: an operation did not finish within its deadline.
	ErrTimeout = &Class{"timed out", false}
	// ErrNotFound: a named server, target or artifact does not exist.
	ErrNotFound = &Class{"not found", false}
	// ErrLaunch: the verified server could not be started or did not
	// complete the MCP handshake.
	ErrLaunch = &Class{"server launch failed", false}
	// ErrStore: the content-addressed store could not be read or written.
	ErrStore = &Class{"store failure", false}
)

// Error is a failure with its evidence. It matches its Class and its cause
// with errors.Is/As.
type Error struct {
	Class    *Class // required
	Subject  string // what was checked: a server, an artifact, a target, a tool
	Expected string // what the policy or metadata required, if it applies
	Found    string // what was observed, if it applies
	Hint     string // what the reader should do next
	Err      error  // the underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Subject != "" {
		b.WriteString(e.Subject)
		b.WriteString(": ")
	}
	b.WriteString(e.Class.name)
	if e.Expected != "" || e.Found != "" {
		b.WriteString(": expected ")
		b.WriteString(orNone(e.Expected))
		b.WriteString(", found ")
		b.WriteString(orNone(e.Found))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the class and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Err}
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
