package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/mcp-preflight/preflight"
)

// MaxDescriptorBytes bounds a server descriptor.
const MaxDescriptorBytes = 1 << 20

// DescriptorTrustKey is the _meta member of a server.json that holds
// Preflight's trust section.
const DescriptorTrustKey = "dev.mcp-preflight/trust"

// Limits on a descriptor's trust section.
const (
	MaxDescriptorArtifacts = 64
	MaxDescriptorSigners   = 64
	MaxDescriptorPins      = 4096
)

// Descriptor is an MCP registry server.json, as published in a TUF
// repository, with Preflight's trust section read from
// _meta["dev.mcp-preflight/trust"].
type Descriptor struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	// Packages are the registry's package entries, kept as they are.
	Packages []json.RawMessage `json:"packages,omitempty"`
	// Trust is nil when the descriptor has no trust section.
	Trust *DescriptorTrust `json:"trust,omitempty"`
}

// DescriptorTrust is the trust section of a descriptor: the artifacts per
// platform and the expectations the publisher adds (which can only narrow
// the local policy, see Narrow).
type DescriptorTrust struct {
	Artifacts []DescriptorArtifact `json:"artifacts,omitempty"`
	Expectations
}

// DescriptorArtifact is the server binary for one platform.
type DescriptorArtifact struct {
	// Platform is "os/arch" (e.g. "linux/amd64") or "any".
	Platform string `json:"platform"`
	// Target is the TUF target path of the binary.
	Target string `json:"target"`
	// Bundles are TUF target paths of .sigstore.json bundles for it.
	Bundles []string `json:"bundles,omitempty"`
	// Args are arguments the server needs.
	Args []string `json:"args,omitempty"`
}

// Expectations are what a descriptor's trust section may require beyond
// the local policy: signers, provenance constraints and pinned digests of
// the surface (name, or uri for resources, to canonical digest).
type Expectations struct {
	Signers    []Signer          `json:"signers,omitempty"`
	Provenance *Provenance       `json:"provenance,omitempty"`
	Tools      map[string]string `json:"tools,omitempty"`
	Prompts    map[string]string `json:"prompts,omitempty"`
	Resources  map[string]string `json:"resources,omitempty"`
}

func (e *Expectations) surface(kind string) map[string]string {
	switch kind {
	case KindPrompt:
		return e.Prompts
	case KindResource:
		return e.Resources
	}
	return e.Tools
}

// UnmarshalJSON reads a provenance section strictly, with Required true
// unless the section says otherwise.
func (p *Provenance) UnmarshalJSON(data []byte) error {
	type plain Provenance
	var aux struct {
		plain
		Required *bool `json:"required"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	*p = Provenance(aux.plain)
	p.Required = aux.Required == nil || *aux.Required
	return nil
}

var platformRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+/[a-z0-9]+$`) })

// ParseDescriptor reads a server descriptor. It is lenient on the registry
// part of server.json, which evolves (unknown members are ignored), and
// strict on the trust section: unknown fields, invalid signer rules or
// patterns, malformed digests and unsafe target paths are refused. Duplicate
// keys are refused anywhere. Errors match preflight.ErrMalformed.
func ParseDescriptor(data []byte) (*Descriptor, error) {
	fail := func(err error) (*Descriptor, error) {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "server descriptor", Err: err}
	}
	if len(data) > MaxDescriptorBytes {
		return fail(fmt.Errorf("%d bytes, more than the limit of %d", len(data), MaxDescriptorBytes))
	}
	if err := checkJSON(data); err != nil {
		return fail(err)
	}
	var raw struct {
		Name        string                     `json:"name"`
		Version     string                     `json:"version"`
		Description string                     `json:"description"`
		Packages    []json.RawMessage          `json:"packages"`
		Meta        map[string]json.RawMessage `json:"_meta"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return fail(err)
	}
	if _, err := dec.Token(); err == nil {
		return fail(fmt.Errorf("data after the JSON value"))
	}
	if raw.Name == "" {
		return fail(fmt.Errorf("no name"))
	}
	if raw.Version == "" {
		return fail(fmt.Errorf("server %q: no version", raw.Name))
	}
	d := &Descriptor{Name: raw.Name, Version: raw.Version, Description: raw.Description, Packages: raw.Packages}
	if t, ok := raw.Meta[DescriptorTrustKey]; ok {
		var trust DescriptorTrust
		if err := decodeStrict(t, &trust); err != nil {
			return fail(fmt.Errorf("_meta[%q]: %w", DescriptorTrustKey, err))
		}
		if err := trust.check(); err != nil {
			return fail(fmt.Errorf("_meta[%q]: %w", DescriptorTrustKey, err))
		}
		d.Trust = &trust
	}
	return d, nil
}

func (t *DescriptorTrust) check() error {
	if len(t.Artifacts) > MaxDescriptorArtifacts {
		return fmt.Errorf("%d artifacts, more than %d", len(t.Artifacts), MaxDescriptorArtifacts)
	}
	if len(t.Signers) > MaxDescriptorSigners {
		return fmt.Errorf("%d signers, more than %d", len(t.Signers), MaxDescriptorSigners)
	}
	seen := map[string]bool{}
	for i, a := range t.Artifacts {
		if a.Platform != "any" && !platformRE().MatchString(a.Platform) {
			return fmt.Errorf("artifacts[%d].platform: %q is neither os/arch nor any", i, a.Platform)
		}
		if seen[a.Platform] {
			return fmt.Errorf("artifacts[%d].platform: %q appears twice", i, a.Platform)
		}
		seen[a.Platform] = true
		if err := checkTargetPath(a.Target); err != nil {
			return fmt.Errorf("artifacts[%d].target: %w", i, err)
		}
		for j, b := range a.Bundles {
			if err := checkTargetPath(b); err != nil {
				return fmt.Errorf("artifacts[%d].bundles[%d]: %w", i, j, err)
			}
		}
	}
	for i, s := range t.Signers {
		if is := signerIssues(s); len(is) > 0 {
			return fmt.Errorf("signers[%d]%s", i, issueText(is))
		}
	}
	if t.Provenance != nil {
		if is := provenanceIssues(t.Provenance); len(is) > 0 {
			return fmt.Errorf("provenance%s", issueText(is))
		}
	}
	for _, kind := range []string{KindTool, KindPrompt, KindResource} {
		m := t.surface(kind)
		if len(m) > MaxDescriptorPins {
			return fmt.Errorf("%ss: %d pins, more than %d", kind, len(m), MaxDescriptorPins)
		}
		for _, name := range sortedKeys(m) {
			if name == "" {
				return fmt.Errorf("%ss: empty name", kind)
			}
			if msg := checkDigest(m[name], "sha256"); msg != "" {
				return fmt.Errorf("%ss[%q]: %s", kind, name, msg)
			}
		}
	}
	return nil
}

func issueText(is []issue) string {
	var b strings.Builder
	for i, x := range is {
		if i > 0 {
			b.WriteString(";")
		}
		if x.Field != "" {
			b.WriteString(".")
			b.WriteString(x.Field)
		}
		b.WriteString(": ")
		b.WriteString(x.Msg)
	}
	return b.String()
}

// checkTargetPath accepts relative, clean, slash-separated TUF target paths.
func checkTargetPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty target path")
	case len(p) > 1024:
		return fmt.Errorf("target path longer than 1024 bytes")
	case strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0):
		return fmt.Errorf("%q is not a relative target path", p)
	case path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == "..":
		return fmt.Errorf("%q is not a clean target path", p)
	}
	return nil
}

// Artifact returns the artifact for platform ("os/arch"): the exact
// platform first, then "any". No match is an error matching
// preflight.ErrNotFound.
func (d *Descriptor) Artifact(platform string) (*DescriptorArtifact, error) {
	var platforms []string
	if d.Trust != nil {
		for i := range d.Trust.Artifacts {
			if d.Trust.Artifacts[i].Platform == platform {
				a := d.Trust.Artifacts[i]
				return &a, nil
			}
			platforms = append(platforms, d.Trust.Artifacts[i].Platform)
		}
		for i := range d.Trust.Artifacts {
			if d.Trust.Artifacts[i].Platform == "any" {
				a := d.Trust.Artifacts[i]
				return &a, nil
			}
		}
	}
	hint := "the descriptor has no artifacts"
	if len(platforms) > 0 {
		hint = "the descriptor has artifacts for " + strings.Join(platforms, ", ")
	}
	return nil, &preflight.Error{Class: preflight.ErrNotFound, Subject: "server " + quote(d.Name) + " artifact",
		Expected: platform + " or any", Hint: hint}
}
