package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/canonical"
)

// MaxLockBytes bounds the size of a lockfile.
const MaxLockBytes = 16 << 20

// LockVersion is the lockfile format version this package reads and writes.
const LockVersion = 1

// Lock is the content of preflight.lock: what was observed when the
// servers were approved. It is JSON:
//
//	{"version": 1, "servers": {"NAME": LockEntry, ...}}
type Lock struct {
	Version int                   `json:"version"`
	Servers map[string]*LockEntry `json:"servers"`
}

// LockEntry records one approved server. A nil map means "not recorded"
// and is never compared; an empty map means "recorded: none".
type LockEntry struct {
	Version string            `json:"version,omitempty"` // resolved artifact version
	Source  string            `json:"source,omitempty"`  // source kind: file, tuf, npm, oci, url, mcpb
	Digests map[string]string `json:"digests,omitempty"` // algorithm to lower-case hex of the artifact

	// Signer is the observed keyless signer (the run-specific invocation
	// URI is left out); SignerKeyID the observed key, for key signatures.
	Signer       *CertificateFacts `json:"signer,omitempty"`
	SignerKeyID  string            `json:"signerKeyId,omitempty"`
	SourceCommit string            `json:"sourceCommit,omitempty"` // from provenance, else the certificate

	// Dependencies pins the dependency closure (npm packages without a
	// shrinkwrap): a later launch installs exactly these, by integrity.
	Dependencies []Dependency `json:"dependencies,omitempty"`

	Instructions string `json:"instructions,omitempty"` // canonical digest of the server instructions
	// The surface: null when it was not recorded, {} when the server
	// offered none, so that a first tool appearing later is drift.
	Tools     map[string]string `json:"tools"`     // name to canonical digest
	Prompts   map[string]string `json:"prompts"`   // name to canonical digest
	Resources map[string]string `json:"resources"` // uri to canonical digest

	// Per-field digests (see SurfaceParts), so drift can tell a changed
	// description from a changed schema.
	ToolParts     map[string]PartDigests `json:"toolParts,omitempty"`
	PromptParts   map[string]PartDigests `json:"promptParts,omitempty"`
	ResourceParts map[string]PartDigests `json:"resourceParts,omitempty"`
}

// PartDigests maps a field of a definition (a member name of its canonical
// form, e.g. "description" or "inputSchema") to the canonical digest of the
// object holding that field alone.
type PartDigests map[string]string

func (e *LockEntry) surface(kind string) map[string]string {
	switch kind {
	case KindPrompt:
		return e.Prompts
	case KindResource:
		return e.Resources
	}
	return e.Tools
}

func (e *LockEntry) parts(kind string) map[string]PartDigests {
	switch kind {
	case KindPrompt:
		return e.PromptParts
	case KindResource:
		return e.ResourceParts
	}
	return e.ToolParts
}

// SurfaceParts returns the per-field digests of one definition: for each
// member of its canonical form (canonical.Fields), the canonical digest of
// the object holding that member alone. kind is "tool", "prompt" or
// "resource". Errors match preflight.ErrMalformed.
func SurfaceParts(kind string, raw json.RawMessage) (PartDigests, error) {
	ck := canonical.Kind(kind)
	fields, ok := canonical.Fields[ck]
	if !ok {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "surface parts", Expected: "tool, prompt or resource", Found: kind}
	}
	form, err := canonical.Form(ck, raw)
	if err != nil {
		return nil, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(form, &members); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: kind + " definition", Err: err}
	}
	out := PartDigests{}
	for _, f := range fields {
		v, ok := members[f]
		if !ok {
			continue
		}
		one, err := json.Marshal(map[string]json.RawMessage{f: v})
		if err != nil {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: kind + " definition", Err: err}
		}
		d, err := canonical.Digest(ck, one)
		if err != nil {
			return nil, err
		}
		out[f] = d
	}
	return out, nil
}

// ParseLock reads a lockfile. It is strict: unknown fields, duplicate keys,
// trailing data, a version other than 1, invalid server names and malformed
// digests are refused with an error matching preflight.ErrMalformed.
func ParseLock(data []byte) (*Lock, error) {
	fail := func(err error) (*Lock, error) {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "lockfile", Err: err,
			Hint: "regenerate it with preflight lock"}
	}
	if len(data) > MaxLockBytes {
		return fail(fmt.Errorf("%d bytes, more than the limit of %d", len(data), MaxLockBytes))
	}
	if err := checkJSON(data); err != nil {
		return fail(err)
	}
	var l Lock
	if err := decodeStrict(data, &l); err != nil {
		return fail(err)
	}
	if l.Version != LockVersion {
		return fail(fmt.Errorf("version %d; this Preflight reads version %d", l.Version, LockVersion))
	}
	if l.Servers == nil {
		return fail(fmt.Errorf("no servers object"))
	}
	for _, name := range sortedKeys(l.Servers) {
		e := l.Servers[name]
		if !serverNameRE().MatchString(name) {
			return fail(fmt.Errorf("invalid server name %q", name))
		}
		if e == nil {
			return fail(fmt.Errorf("server %q: null entry", name))
		}
		if err := e.check(); err != nil {
			return fail(fmt.Errorf("server %q: %w", name, err))
		}
	}
	return &l, nil
}

func (e *LockEntry) check() error {
	for alg, h := range e.Digests {
		if msg := checkDigest(alg+":"+h, "sha256", "sha384", "sha512"); msg != "" {
			return fmt.Errorf("digests: %s", msg)
		}
	}
	if e.Instructions != "" {
		if msg := checkDigest(e.Instructions, "sha256"); msg != "" {
			return fmt.Errorf("instructions: %s", msg)
		}
	}
	for _, kind := range []string{KindTool, KindPrompt, KindResource} {
		for name, d := range e.surface(kind) {
			if name == "" {
				return fmt.Errorf("%ss: empty name", kind)
			}
			if msg := checkDigest(d, "sha256"); msg != "" {
				return fmt.Errorf("%ss[%q]: %s", kind, name, msg)
			}
		}
		for name, parts := range e.parts(kind) {
			for field, d := range parts {
				if msg := checkDigest(d, "sha256"); msg != "" {
					return fmt.Errorf("%sParts[%q].%s: %s", kind, name, field, msg)
				}
			}
		}
	}
	return nil
}

// Marshal returns the lockfile bytes: keys sorted, two-space indentation,
// no HTML escaping, a trailing newline. The same Lock always gives the same
// bytes, so lockfiles diff cleanly.
func (l *Lock) Marshal() ([]byte, error) {
	out := Lock{Version: l.Version, Servers: l.Servers}
	if out.Version == 0 {
		out.Version = LockVersion
	}
	if out.Servers == nil {
		out.Servers = map[string]*LockEntry{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "lockfile", Err: err}
	}
	return b.Bytes(), nil
}

// EntryFromFacts records what verification observed, for preflight lock.
// The signer is the certificate of the first keyless signature and the key
// of the first key signature; the source commit comes from the first
// provenance statement, else from the certificate. The surface is recorded
// only when f.Surface is set.
func EntryFromFacts(f Facts) *LockEntry {
	e := &LockEntry{Version: f.Artifact.Version, Source: f.Artifact.Source, Digests: copyMap(f.Artifact.Digests)}
	for _, sig := range f.Signatures {
		if sig.Certificate != nil && e.Signer == nil {
			c := *sig.Certificate
			c.RunInvocationURI = ""
			e.Signer = &c
		}
		if sig.KeyID != "" && e.SignerKeyID == "" {
			e.SignerKeyID = sig.KeyID
		}
		if sig.Provenance != nil && sig.Provenance.SourceCommit != "" && e.SourceCommit == "" {
			e.SourceCommit = sig.Provenance.SourceCommit
		}
	}
	if e.SourceCommit == "" && e.Signer != nil {
		e.SourceCommit = e.Signer.SourceRepositoryDigest
	}
	e.Dependencies = append([]Dependency(nil), f.Dependencies...)
	if s := f.Surface; s != nil {
		e.Instructions = s.Instructions
		e.Tools = nonNil(copyMap(s.Tools))
		e.Prompts = nonNil(copyMap(s.Prompts))
		e.Resources = nonNil(copyMap(s.Resources))
		e.ToolParts = copyParts(s.ToolParts)
		e.PromptParts = copyParts(s.PromptParts)
		e.ResourceParts = copyParts(s.ResourceParts)
	}
	return e
}

// DriftKind names one sort of difference between a lockfile entry and what
// was observed. Surface kinds are "tool.", "prompt." or "resource."
// followed by added, removed, description, schema or changed.
type DriftKind string

// The drift kinds that do not depend on the surface kind.
const (
	DriftDigest       DriftKind = CodeArtifactDigest
	DriftVersion      DriftKind = CodeVersion
	DriftSource       DriftKind = CodeSource
	DriftSigner       DriftKind = CodeSigner
	DriftSourceCommit DriftKind = CodeSourceCommit
	DriftInstructions DriftKind = CodeInstructionsChanged
	// DriftDependency: a package of the pinned dependency closure was
	// added, removed or changed its version or integrity.
	DriftDependency DriftKind = "dependency"
)

// DriftItem is one difference.
type DriftItem struct {
	Kind     DriftKind `json:"kind"`
	Subject  string    `json:"subject"`
	Expected string    `json:"expected,omitempty"`
	Found    string    `json:"found,omitempty"`
}

// Drift lists the differences between a lockfile entry and the current
// observation, in a stable order. Fields or maps that either side did not
// record (empty strings, nil maps) are not compared. Instructions are
// compared when the current entry recorded a surface.
func Drift(locked, current *LockEntry) []DriftItem {
	if locked == nil || current == nil {
		return nil
	}
	var out []DriftItem
	add := func(k DriftKind, subject, expected, found string) {
		out = append(out, DriftItem{Kind: k, Subject: subject, Expected: expected, Found: found})
	}
	if len(locked.Digests) > 0 && current.Digests != nil {
		common := false
		for _, alg := range sortedKeys(locked.Digests) {
			if got, ok := current.Digests[alg]; ok {
				common = true
				if !strings.EqualFold(got, locked.Digests[alg]) {
					add(DriftDigest, "artifact", alg+":"+locked.Digests[alg], alg+":"+got)
				}
			}
		}
		if !common {
			add(DriftDigest, "artifact", "digests of "+strings.Join(sortedKeys(locked.Digests), ", "), "digests of "+strings.Join(sortedKeys(current.Digests), ", "))
		}
	}
	if locked.Version != "" && locked.Version != current.Version {
		add(DriftVersion, "artifact", locked.Version, current.Version)
	}
	if locked.Source != "" && current.Source != "" && locked.Source != current.Source {
		add(DriftSource, "artifact", locked.Source, current.Source)
	}
	if locked.Signer != nil {
		if want, got := signerIdentity(locked.Signer), signerIdentity(current.Signer); want != got {
			add(DriftSigner, "signer", want, got)
		}
	}
	if locked.SignerKeyID != "" && locked.SignerKeyID != current.SignerKeyID {
		add(DriftSigner, "signer key", locked.SignerKeyID, current.SignerKeyID)
	}
	if locked.SourceCommit != "" && locked.SourceCommit != current.SourceCommit {
		add(DriftSourceCommit, "source", locked.SourceCommit, current.SourceCommit)
	}
	if len(locked.Dependencies) > 0 && current.Dependencies != nil {
		lockedDeps, currentDeps := dependencyIndex(locked.Dependencies), dependencyIndex(current.Dependencies)
		paths := map[string]bool{}
		for p := range lockedDeps {
			paths[p] = true
		}
		for p := range currentDeps {
			paths[p] = true
		}
		for _, p := range sortedKeys(paths) {
			if lockedDeps[p] != currentDeps[p] {
				add(DriftDependency, p, lockedDeps[p], currentDeps[p])
			}
		}
	}
	observed := current.Tools != nil || current.Prompts != nil || current.Resources != nil
	if observed && locked.Instructions != current.Instructions && (locked.Tools != nil || locked.Instructions != "") {
		add(DriftInstructions, "instructions", locked.Instructions, current.Instructions)
	}
	for _, kind := range []string{KindTool, KindPrompt, KindResource} {
		lm, cm := locked.surface(kind), current.surface(kind)
		if lm == nil || cm == nil {
			continue
		}
		names := map[string]bool{}
		for n := range lm {
			names[n] = true
		}
		for n := range cm {
			names[n] = true
		}
		for _, n := range sortedKeys(names) {
			want, inLock := lm[n]
			got, inCur := cm[n]
			switch {
			case !inLock:
				add(DriftKind(kind+"."+SurfaceAdded), n, "", got)
			case !inCur:
				add(DriftKind(kind+"."+SurfaceRemoved), n, want, "")
			case want != got:
				for _, suffix := range changedParts(kind, locked.parts(kind)[n], current.parts(kind)[n]) {
					add(DriftKind(kind+"."+suffix), n, want, got)
				}
			}
		}
	}
	return out
}

// changedParts classifies a changed definition by the fields that differ.
func changedParts(kind string, locked, current PartDigests) []string {
	if locked == nil || current == nil {
		return []string{SurfaceChanged}
	}
	found := map[string]bool{}
	fields := map[string]bool{}
	for f := range locked {
		fields[f] = true
	}
	for f := range current {
		fields[f] = true
	}
	for f := range fields {
		if locked[f] == current[f] {
			continue
		}
		switch {
		case f == "description":
			found[SurfaceDescription] = true
		case f == "inputSchema" || f == "outputSchema" || (kind == KindPrompt && f == "arguments"):
			found[SurfaceSchema] = true
		default:
			found[SurfaceChanged] = true
		}
	}
	if len(found) == 0 {
		// The whole digest differs but no recorded part does: the parts
		// are stale or incomplete, so say only that it changed.
		return []string{SurfaceChanged}
	}
	out := sortedKeys(found)
	return out
}

// signerIdentity renders the identity fields of a certificate that must
// stay the same between releases approved under one lock entry.
func signerIdentity(c *CertificateFacts) string {
	if c == nil {
		return "no certificate"
	}
	parts := []string{"issuer=" + c.Issuer, "subject=" + c.Subject}
	for _, kv := range [][2]string{
		{"repository", c.SourceRepositoryURI}, {"ref", c.SourceRepositoryRef}, {"workflow", c.BuildSignerURI},
		{"config", c.BuildConfigURI}, {"trigger", c.BuildTrigger}, {"runner", c.RunnerEnvironment},
	} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return strings.Join(parts, " ")
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func copyParts(m map[string]PartDigests) map[string]PartDigests {
	if m == nil {
		return nil
	}
	out := make(map[string]PartDigests, len(m))
	for k, v := range m {
		out[k] = PartDigests(copyMap(v))
	}
	return out
}

// decodeStrict decodes one JSON value with unknown fields refused and
// nothing after it.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("data after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

// MaxJSONDepth bounds the nesting of JSON this package parses.
const MaxJSONDepth = 64

// checkJSON walks a JSON value and refuses duplicate object keys and
// nesting deeper than MaxJSONDepth, which encoding/json would accept.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool // object: the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			if len(stack) == 0 && errors.Is(err, io.EOF) {
				return nil // decodeStrict reports missing data
			}
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			key, ok := tok.(string)
			if ok {
				if top.keys[key] {
					return fmt.Errorf("duplicate key %q", key)
				}
				top.keys[key] = true
				top.expect = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= MaxJSONDepth {
				return fmt.Errorf("nested deeper than %d levels", MaxJSONDepth)
			}
			stack = append(stack, &frame{object: tok == json.Delim('{'), keys: map[string]bool{}, expect: tok == json.Delim('{')})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			if t := stack[len(stack)-1]; t.object {
				t.expect = true
			}
		} else {
			return nil
		}
	}
}

// dependencyIndex maps each install path to "name@version integrity".
func dependencyIndex(deps []Dependency) map[string]string {
	m := make(map[string]string, len(deps))
	for _, d := range deps {
		m[d.Path] = d.Name + "@" + d.Version + " " + d.Integrity
	}
	return m
}
