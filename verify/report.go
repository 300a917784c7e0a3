package verify

import (
	"errors"
	"time"

	"github.com/mcp-preflight/preflight/gate"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
)

// ReportMediaType identifies the JSON form of Report. The version changes
// when a field changes meaning or is removed; new fields may be added.
const ReportMediaType = "application/vnd.dev.mcp-preflight.report+json;version=1"

// Report is everything Preflight established and decided about one server.
// It is the same data for the CLI's human output, --format json and the
// audit log.
type Report struct {
	MediaType string          `json:"mediaType"`
	Server    string          `json:"server"`
	Time      time.Time       `json:"time"`
	Facts     policy.Facts    `json:"facts"`
	Decision  policy.Decision `json:"decision"`
	// TrustRoot says where the Sigstore trusted material came from.
	TrustRoot tuf.TrustRootInfo `json:"trustRoot"`
	// Surface is set once the server has been launched and listed.
	Surface *SurfaceReport `json:"surface,omitempty"`
}

// SurfaceReport lists what the gate exposed and withheld, per kind.
type SurfaceReport struct {
	Tools     KindReport `json:"tools"`
	Prompts   KindReport `json:"prompts,omitempty"`
	Resources KindReport `json:"resources,omitempty"`
}

// KindReport is the gate's view of one kind of definition.
type KindReport struct {
	Exposed  []string       `json:"exposed,omitempty"`
	Withheld []WithheldItem `json:"withheld,omitempty"`
}

// WithheldItem is one definition the host did not see, and why.
type WithheldItem struct {
	Name   string `json:"name"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

func surfaceReport(s gate.Snapshot) *SurfaceReport {
	kind := func(k gate.Kind) KindReport {
		var r KindReport
		ks := s.Kinds[k]
		r.Exposed = append(r.Exposed, ks.Exposed...)
		for _, w := range ks.Withheld {
			r.Withheld = append(r.Withheld, WithheldItem{Name: w.Item.Name, Code: w.Code, Reason: w.Reason})
		}
		return r
	}
	return &SurfaceReport{Tools: kind(gate.KindTool), Prompts: kind(gate.KindPrompt), Resources: kind(gate.KindResource)}
}

// Refusal is the error returned when the policy refuses a server. It carries
// the complete report and matches the class of the first blocking finding.
type Refusal struct {
	Report *Report
	Err    error // the decision's error: a *preflight.Error with a class
}

func (r *Refusal) Error() string { return r.Err.Error() }

// Unwrap returns the decision's error.
func (r *Refusal) Unwrap() error { return r.Err }

// ReportOf returns the report carried by a refusal anywhere in err's chain.
func ReportOf(err error) (*Report, bool) {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Report, true
	}
	return nil, false
}

func surfaceFacts(snap gate.Snapshot, prev *policy.SurfaceFacts) *policy.SurfaceFacts {
	sf := &policy.SurfaceFacts{}
	if prev != nil {
		sf.Instructions = prev.Instructions
	}
	collect := func(k gate.Kind) (map[string]string, map[string]policy.PartDigests) {
		ks, ok := snap.Kinds[k]
		if !ok {
			return nil, nil
		}
		m := make(map[string]string, len(ks.Items))
		parts := make(map[string]policy.PartDigests, len(ks.Items))
		for _, it := range ks.Items {
			m[it.Name] = it.Digest
			// Part digests let drift say which field changed; an item
			// the gate could digest always has parts.
			if p, err := policy.SurfaceParts(string(k), it.Raw); err == nil {
				parts[it.Name] = p
			}
		}
		return m, parts
	}
	sf.Tools, sf.ToolParts = collect(gate.KindTool)
	sf.Prompts, sf.PromptParts = collect(gate.KindPrompt)
	sf.Resources, sf.ResourceParts = collect(gate.KindResource)
	return sf
}
