package policy

import (
	"sort"
	"strings"

	"github.com/mcp-preflight/preflight"
)

// Mode says what a blocking finding does.
type Mode string

// The modes. The zero value means ModeEnforce.
const (
	// ModeEnforce refuses a server (or withholds an item) on any finding of
	// severity error. It is the default.
	ModeEnforce Mode = "enforce"
	// ModeAudit records every finding and lets the launch go on. It exists
	// for roll-out; reports say loudly that nothing was enforced.
	ModeAudit Mode = "audit"
)

// effective returns the mode with the empty default resolved.
func (m Mode) effective() Mode {
	if m == "" {
		return ModeEnforce
	}
	return m
}

// PinMode says where the pinned digests of a server's surface come from.
type PinMode string

// The pin modes. The zero value means PinLockfile.
const (
	// PinLockfile compares the surface with the digests in preflight.lock.
	PinLockfile PinMode = "lockfile"
	// PinDescriptor compares the surface with the digests the server's
	// TUF descriptor carries. Only valid for servers with a tuf or
	// server_json source.
	PinDescriptor PinMode = "descriptor"
	// PinNone pins nothing; an explicit allow list is then required.
	PinNone PinMode = "none"
)

func (p PinMode) effective() PinMode {
	if p == "" {
		return PinLockfile
	}
	return p
}

// ChangeAction says what happens when a pinned item changes or a new one
// appears during a session.
type ChangeAction string

// The change actions. The zero value means ChangeBlock.
const (
	// ChangeBlock withholds the changed or added item; the rest of the
	// surface stays available.
	ChangeBlock ChangeAction = "block"
	// ChangeEnd ends the session on the first change.
	ChangeEnd ChangeAction = "end"
)

func (c ChangeAction) effective() ChangeAction {
	if c == "" {
		return ChangeBlock
	}
	return c
}

// Policy is a parsed, validated trust policy (preflight.yaml). Values
// returned by Parse are complete: defaults are filled in and every rule has
// been checked, so a Policy never needs validating again. A Policy is not
// modified by any function of this package and is safe for concurrent reads.
type Policy struct {
	Version  int                `json:"version" yaml:"version"`
	Mode     Mode               `json:"mode,omitempty" yaml:"mode,omitempty"`
	Trust    Trust              `json:"trust" yaml:"trust"`
	Defaults Defaults           `json:"defaults,omitempty" yaml:"defaults,omitempty"`
	Servers  map[string]*Server `json:"servers" yaml:"servers"`
}

// Trust holds the roots of trust: the Sigstore instance and the TUF
// repositories that publish server descriptors.
type Trust struct {
	Sigstore     SigstoreTrust          `json:"sigstore,omitempty" yaml:"sigstore,omitempty"`
	Repositories map[string]*Repository `json:"repositories,omitempty" yaml:"repositories,omitempty"`
}

// The Sigstore instances a policy can name.
const (
	InstancePublicGood = "public-good"
	InstancePrivate    = "private"
)

// SigstoreTrust selects the Sigstore trusted material.
type SigstoreTrust struct {
	// Instance is "public-good" (the default) or "private". A private
	// instance needs TrustedRoot or TUF.
	Instance string `json:"instance,omitempty" yaml:"instance,omitempty"`
	// TrustedRoot is the path of a pinned trusted_root.json (air-gapped
	// use). A relative path is relative to the policy file; the policy
	// package only stores the string.
	TrustedRoot string `json:"trusted_root,omitempty" yaml:"trusted_root,omitempty"`
	// TUF is a Sigstore TUF repository (a private instance or a mirror)
	// with a pinned root.
	TUF *Repository `json:"tuf,omitempty" yaml:"tuf,omitempty"`
}

// Repository is a TUF metadata repository with a pinned root.
type Repository struct {
	// URL is the metadata base URL: https, or http for loopback hosts only.
	URL string `json:"url" yaml:"url"`
	// TargetsURL is the targets base URL; Parse fills in URL + "/targets".
	TargetsURL string `json:"targets_url,omitempty" yaml:"targets_url,omitempty"`
	// Root is the path of the pinned root.json (relative to the policy file).
	Root string `json:"root,omitempty" yaml:"root,omitempty"`
	// RootDigest is "sha256:<hex>" of the pinned root.json. At least one of
	// Root and RootDigest is required; with both, the file must match.
	RootDigest string `json:"root_digest,omitempty" yaml:"root_digest,omitempty"`
}

// Defaults are the surface rules for servers that leave a section out.
// A server that writes a section replaces the default section as a whole;
// sections are not merged field by field.
type Defaults struct {
	Tools     *SurfaceRules `json:"tools,omitempty" yaml:"tools,omitempty"`
	Prompts   *SurfaceRules `json:"prompts,omitempty" yaml:"prompts,omitempty"`
	Resources *SurfaceRules `json:"resources,omitempty" yaml:"resources,omitempty"`
}

// Server is the policy for one MCP server.
type Server struct {
	// Name is the key of the server in Policy.Servers.
	Name   string `json:"-" yaml:"-"`
	Source Source `json:"source" yaml:"source"`
	// Args are extra arguments for the server process, after those of the
	// descriptor.
	Args []string `json:"args,omitempty" yaml:"args,omitempty"`
	// Env names host environment variables passed through to the server.
	// Nothing else from the host environment is passed.
	Env []string `json:"env,omitempty" yaml:"env,omitempty"`
	// SetEnv sets variables to fixed values.
	SetEnv map[string]string `json:"set_env,omitempty" yaml:"set_env,omitempty"`
	// Signers are the identities allowed to sign the artifact and its
	// attestations. Every verified signature must match one of them.
	Signers []Signer `json:"signers" yaml:"signers"`
	// AllowUnsigned accepts an artifact that carries no signature at all,
	// trusted by the digest the source pins (file, url or oci digest, npm
	// integrity) and nothing else. It is for packages whose publisher does
	// not sign; every evaluation reports it with the warning
	// "signature.unsigned". Signers and provenance must then be absent.
	AllowUnsigned bool `json:"allow_unsigned,omitempty" yaml:"allow_unsigned,omitempty"`
	// Provenance, when set, constrains the SLSA build provenance.
	Provenance *Provenance `json:"provenance,omitempty" yaml:"provenance,omitempty"`

	Tools     SurfaceRules `json:"tools,omitempty" yaml:"tools,omitempty"`
	Prompts   SurfaceRules `json:"prompts,omitempty" yaml:"prompts,omitempty"`
	Resources SurfaceRules `json:"resources,omitempty" yaml:"resources,omitempty"`

	// Descriptor holds the expectations a TUF server descriptor added
	// through Narrow. They hold in addition to the local rules. It is never
	// read from the policy file.
	Descriptor *Expectations `json:"descriptor,omitempty" yaml:"-"`
}

// Source says where a server's artifact comes from. Exactly one member is set.
type Source struct {
	TUF        *TUFSource        `json:"tuf,omitempty" yaml:"tuf,omitempty"`
	File       *FileSource       `json:"file,omitempty" yaml:"file,omitempty"`
	NPM        *NPMSource        `json:"npm,omitempty" yaml:"npm,omitempty"`
	OCI        *OCISource        `json:"oci,omitempty" yaml:"oci,omitempty"`
	URL        *URLSource        `json:"url,omitempty" yaml:"url,omitempty"`
	ServerJSON *ServerJSONSource `json:"server_json,omitempty" yaml:"server_json,omitempty"`
}

// Kind returns the name of the member that is set ("tuf", "file", "npm",
// "oci", "url", "server_json"), or "" when none is.
func (s Source) Kind() string {
	switch {
	case s.TUF != nil:
		return "tuf"
	case s.File != nil:
		return "file"
	case s.NPM != nil:
		return "npm"
	case s.OCI != nil:
		return "oci"
	case s.URL != nil:
		return "url"
	case s.ServerJSON != nil:
		return "server_json"
	}
	return ""
}

// TUFSource is a server published as a descriptor in a TUF repository.
type TUFSource struct {
	// Repository is the name of a repository in Trust.Repositories.
	Repository string `json:"repository" yaml:"repository"`
	// Server is the server's name in the repository, e.g. io.github.acme/weather.
	Server string `json:"server" yaml:"server"`
	// Version pins the descriptor version; empty takes the one the
	// repository's signed metadata names as current.
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
}

// FileSource is a local file with its Sigstore bundles.
type FileSource struct {
	Path string `json:"path" yaml:"path"`
	// Digest, when set, pins the bytes: "sha256:<hex>" or "sha512:<hex>".
	Digest string `json:"digest,omitempty" yaml:"digest,omitempty"`
	// Bundles are paths of .sigstore.json bundles for the file.
	Bundles []string `json:"bundles,omitempty" yaml:"bundles,omitempty"`
}

// NPMSource is an npm package.
type NPMSource struct {
	Package string `json:"package" yaml:"package"`
	// Version is an exact version; ranges and dist-tags are refused.
	Version string `json:"version" yaml:"version"`
	// Registry defaults to https://registry.npmjs.org.
	Registry string `json:"registry,omitempty" yaml:"registry,omitempty"`
	// Integrity, when set, pins the tarball: a subresource-integrity
	// string such as "sha512-<base64>".
	Integrity string `json:"integrity,omitempty" yaml:"integrity,omitempty"`
}

// OCISource is a container image.
type OCISource struct {
	// Image is a reference without digest, e.g. ghcr.io/acme/weather:1.2.0.
	Image string `json:"image" yaml:"image"`
	// Digest, when set, pins the manifest: "sha256:<hex>".
	Digest string `json:"digest,omitempty" yaml:"digest,omitempty"`
}

// URLSource is a release binary downloaded over HTTPS.
type URLSource struct {
	URL string `json:"url" yaml:"url"`
	// Digest, when set, pins the bytes: "sha256:<hex>" or "sha512:<hex>".
	Digest string `json:"digest,omitempty" yaml:"digest,omitempty"`
	// Bundle is the URL of the .sigstore.json bundle; the verify package
	// defaults it to URL + ".sigstore.json".
	Bundle string `json:"bundle,omitempty" yaml:"bundle,omitempty"`
	// Binary makes the download an archive (.tar.gz, .tgz, .tar, .zip) and
	// names the executable in it: a slash-separated path, or a bare file
	// name that must match exactly one file.
	Binary string `json:"binary,omitempty" yaml:"binary,omitempty"`
}

// ServerJSONSource is an MCP registry server.json, local or remote.
// Exactly one of Path and URL is set.
type ServerJSONSource struct {
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	URL  string `json:"url,omitempty" yaml:"url,omitempty"`
	// Package is the registry type of the package entry to use: "npm",
	// "oci", "mcpb", ...
	Package string `json:"package" yaml:"package"`
}

// Provenance constrains the SLSA build provenance of an artifact. Every
// provenance statement among the verified attestations must satisfy every
// constraint that is set.
type Provenance struct {
	// Required makes missing provenance a blocking finding. Parse sets it
	// to true when the key is absent.
	Required bool `json:"required" yaml:"required"`
	// PredicateTypes must each be present among the verified attestations,
	// e.g. https://slsa.dev/provenance/v1.
	PredicateTypes []string `json:"predicate_types,omitempty" yaml:"predicate_types,omitempty"`
	// Builders are the allowed builder ids, compared exactly.
	Builders []string `json:"builders,omitempty" yaml:"builders,omitempty"`
	// Repository is OWNER/NAME of the source repository.
	Repository string `json:"repository,omitempty" yaml:"repository,omitempty"`
	// RefPatterns are anchored RE2 patterns; the source ref must match one.
	RefPatterns []string `json:"ref_patterns,omitempty" yaml:"ref_patterns,omitempty"`
	// HostedRunners requires the build to have run on a GitHub-hosted
	// runner, as the signing certificate states.
	HostedRunners bool `json:"hosted_runners,omitempty" yaml:"hosted_runners,omitempty"`
}

// SurfaceRules govern which tools (or prompts, or resources) of a server
// reach the model.
//
// An empty Allow never means "anything": with pinning (PinLockfile or
// PinDescriptor) the pinned names are the allowed names, and with PinNone
// Parse requires an explicit Allow (write ["*"] to expose every name).
type SurfaceRules struct {
	// Allow lists globs (path.Match syntax, where * does not cross "/")
	// of names that may be exposed; the pattern "*" alone matches every name.
	Allow []string `json:"allow,omitempty" yaml:"allow,omitempty"`
	// Deny lists globs of names that are never exposed; Deny beats Allow.
	Deny []string `json:"deny,omitempty" yaml:"deny,omitempty"`
	// Pin says where pinned digests come from; default PinLockfile.
	Pin PinMode `json:"pin,omitempty" yaml:"pin,omitempty"`
	// OnChange says what a changed or added item does; default ChangeBlock.
	OnChange ChangeAction `json:"on_change,omitempty" yaml:"on_change,omitempty"`
	// AllowNonstandardNames exposes tool and prompt names outside the MCP
	// tool-name rules (still never empty, over-long, or with control
	// characters).
	AllowNonstandardNames bool `json:"allow_nonstandard_names,omitempty" yaml:"allow_nonstandard_names,omitempty"`
}

// Rules returns the surface rules for kind ("tool", "prompt" or "resource").
func (s *Server) Rules(kind string) SurfaceRules {
	switch kind {
	case KindPrompt:
		return s.Prompts
	case KindResource:
		return s.Resources
	}
	return s.Tools
}

// Pins returns the pinned digests of kind according to the server's pin
// mode: from lock for PinLockfile, from the descriptor expectations (set by
// Narrow) for PinDescriptor, nil for PinNone. A nil result under a pin mode
// means nothing is pinned yet; EvaluateSurface then withholds every item.
func (s *Server) Pins(kind string, lock *LockEntry) map[string]string {
	switch s.Rules(kind).Pin.effective() {
	case PinLockfile:
		if lock == nil {
			return nil
		}
		return lock.surface(kind)
	case PinDescriptor:
		if s.Descriptor == nil {
			return nil
		}
		return s.Descriptor.surface(kind)
	}
	return nil
}

// Server returns the policy for the named server. An unknown name is an
// error matching preflight.ErrNotFound whose hint lists the known names.
func (p *Policy) Server(name string) (*Server, error) {
	if s, ok := p.Servers[name]; ok && s != nil {
		return s, nil
	}
	names := make([]string, 0, len(p.Servers))
	for n := range p.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	hint := "the policy names no servers"
	if len(names) > 0 {
		hint = "known servers: " + strings.Join(names, ", ")
	}
	return nil, &preflight.Error{Class: preflight.ErrNotFound, Subject: "server " + quote(name), Hint: hint}
}

// The kinds of surface item.
const (
	KindTool     = "tool"
	KindPrompt   = "prompt"
	KindResource = "resource"
)
