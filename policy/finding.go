package policy

import (
	"strconv"
	"strings"

	"github.com/mcp-preflight/preflight"
)

// Severity ranks a finding.
type Severity string

// The severities. Only SeverityError blocks, and only in enforce mode.
const (
	SeverityInfo    Severity = "info"
	SeverityWarning Severity = "warning"
	SeverityError   Severity = "error"
)

// Finding is one observation of Evaluate, EvaluateSurface or Narrow.
// Codes are stable and listed in the package documentation.
type Finding struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Subject  string   `json:"subject,omitempty"`
	Expected string   `json:"expected,omitempty"`
	Found    string   `json:"found,omitempty"`
	Message  string   `json:"message"`
}

// Finding codes that do not depend on the surface kind. Surface codes are
// the kind ("tool", "prompt", "resource") followed by one of the Surface*
// suffixes, e.g. "tool.drift".
const (
	CodeServerUnknown       = "server.unknown"
	CodeSignatureMissing    = "signature.missing"
	CodeSignatureUnsigned   = "signature.unsigned"
	CodeSignerNone          = "signer.none"
	CodeSignerIdentity      = "signer.identity"
	CodeProvenanceMissing   = "provenance.missing"
	CodeProvenancePredicate = "provenance.predicate"
	CodeProvenanceBuilder   = "provenance.builder"
	CodeProvenanceRepo      = "provenance.repository"
	CodeProvenanceRef       = "provenance.ref"
	CodeProvenanceRunner    = "provenance.runner"
	CodeArtifactDigest      = "artifact.digest"
	CodeArtifactVersion     = "artifact.version"
	CodePolicyInvalid       = "policy.invalid"
	CodeDescriptorWiden     = "descriptor.widen"
	CodeDescriptorConflict  = "descriptor.conflict"
	CodeInstructionsChanged = "instructions.changed"
	CodeSigner              = "signer"
	CodeVersion             = "version"
	CodeSource              = "source"
	CodeSourceCommit        = "source.commit"
)

// Suffixes of surface finding and drift codes.
const (
	SurfaceDenied      = "denied"
	SurfaceNotAllowed  = "not-allowed"
	SurfaceName        = "name"
	SurfaceLookalike   = "lookalike"
	SurfaceDrift       = "drift"
	SurfaceAdded       = "added"
	SurfaceRemoved     = "removed"
	SurfaceUnpinned    = "unpinned"
	SurfaceLimit       = "limit"
	SurfaceDuplicate   = "duplicate"
	SurfaceDescription = "description"
	SurfaceSchema      = "schema"
	SurfaceChanged     = "changed"
)

var codeClass = map[string]*preflight.Class{
	CodeServerUnknown:       preflight.ErrPolicy,
	CodeSignatureMissing:    preflight.ErrSignature,
	CodeSignatureUnsigned:   preflight.ErrSignature,
	CodeSignerNone:          preflight.ErrPolicy,
	CodeSignerIdentity:      preflight.ErrIdentity,
	CodeSigner:              preflight.ErrIdentity,
	CodeProvenanceMissing:   preflight.ErrProvenance,
	CodeProvenancePredicate: preflight.ErrProvenance,
	CodeProvenanceBuilder:   preflight.ErrProvenance,
	CodeProvenanceRepo:      preflight.ErrProvenance,
	CodeProvenanceRef:       preflight.ErrProvenance,
	CodeProvenanceRunner:    preflight.ErrProvenance,
	CodeSourceCommit:        preflight.ErrProvenance,
	CodeArtifactDigest:      preflight.ErrTampered,
	CodeArtifactVersion:     preflight.ErrPolicy,
	CodeVersion:             preflight.ErrPolicy,
	CodeSource:              preflight.ErrPolicy,
	CodePolicyInvalid:       preflight.ErrPolicy,
	CodeDescriptorWiden:     preflight.ErrPolicy,
	CodeDescriptorConflict:  preflight.ErrPolicy,
	CodeInstructionsChanged: preflight.ErrToolDrift,
	SurfaceDenied:           preflight.ErrPolicy,
	SurfaceNotAllowed:       preflight.ErrPolicy,
	SurfaceName:             preflight.ErrPolicy,
	SurfaceUnpinned:         preflight.ErrPolicy,
	SurfaceLimit:            preflight.ErrPolicy,
	SurfaceDuplicate:        preflight.ErrToolDrift,
	SurfaceLookalike:        preflight.ErrToolDrift,
	SurfaceDrift:            preflight.ErrToolDrift,
	SurfaceAdded:            preflight.ErrToolDrift,
	SurfaceRemoved:          preflight.ErrToolDrift,
	SurfaceDescription:      preflight.ErrToolDrift,
	SurfaceSchema:           preflight.ErrToolDrift,
	SurfaceChanged:          preflight.ErrToolDrift,
}

// Class returns the error class a finding maps to: ErrIdentity, ErrSignature,
// ErrProvenance, ErrTampered, ErrToolDrift or ErrPolicy. Unknown codes map to
// ErrPolicy.
func (f Finding) Class() *preflight.Class {
	if c, ok := codeClass[f.Code]; ok {
		return c
	}
	for _, kind := range []string{KindTool, KindPrompt, KindResource} {
		if suffix, ok := strings.CutPrefix(f.Code, kind+"."); ok {
			if c, ok := codeClass[suffix]; ok {
				return c
			}
		}
	}
	return preflight.ErrPolicy
}

// Blocking reports whether the finding blocks in enforce mode.
func (f Finding) Blocking() bool { return f.Severity == SeverityError }

// String renders the finding on one line.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(string(f.Severity))
	b.WriteString(" ")
	b.WriteString(f.Code)
	if f.Subject != "" {
		b.WriteString(" ")
		b.WriteString(f.Subject)
	}
	b.WriteString(": ")
	b.WriteString(f.Message)
	if f.Expected != "" || f.Found != "" {
		b.WriteString(" (expected ")
		b.WriteString(orNone(f.Expected))
		b.WriteString(", found ")
		b.WriteString(orNone(f.Found))
		b.WriteString(")")
	}
	return b.String()
}

// Findings is a list of findings. As an error it is the cause inside the
// *preflight.Error that Decision.Err returns, so errors.As can recover
// every blocking finding.
type Findings []Finding

func (fs Findings) Error() string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}

// Decision is the outcome of Evaluate.
type Decision struct {
	// Mode is the effective mode the decision was made in.
	Mode Mode `json:"mode"`
	// Allow is true when no finding blocks, and always in audit mode.
	Allow bool `json:"allow"`
	// Findings lists every finding, blocking or not, in a stable order.
	Findings []Finding `json:"findings"`
}

func decide(mode Mode, fs []Finding) Decision {
	d := Decision{Mode: mode.effective(), Allow: true, Findings: fs}
	if d.Findings == nil {
		d.Findings = []Finding{}
	}
	if d.Mode != ModeAudit {
		for _, f := range fs {
			if f.Blocking() {
				d.Allow = false
			}
		}
	}
	return d
}

// Blocking returns the findings of severity error.
func (d Decision) Blocking() Findings {
	var out Findings
	for _, f := range d.Findings {
		if f.Blocking() {
			out = append(out, f)
		}
	}
	return out
}

// Err returns nil when the decision allows the server. Otherwise it returns
// a *preflight.Error whose Class is the class of the first blocking finding,
// with that finding's expectation and observation, and whose cause is the
// Findings list of every blocking finding.
func (d Decision) Err(subject string) error {
	if d.Allow {
		return nil
	}
	blocking := d.Blocking()
	if len(blocking) == 0 {
		// Allow false without a blocking finding cannot come from Evaluate;
		// a hand-made Decision still fails closed.
		return &preflight.Error{Class: preflight.ErrPolicy, Subject: subject, Hint: "the decision refused the server without a finding"}
	}
	first := blocking[0]
	hint := "see the findings; run in audit mode to record them without enforcing"
	if len(blocking) > 1 {
		hint = strconv.Itoa(len(blocking)) + " blocking findings; " + hint
	}
	return &preflight.Error{
		Class:    first.Class(),
		Subject:  subject,
		Expected: first.Expected,
		Found:    first.Found,
		Hint:     hint,
		Err:      blocking,
	}
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func quote(s string) string { return strconv.Quote(s) }
