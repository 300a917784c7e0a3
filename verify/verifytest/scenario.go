package verifytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcp-preflight/preflight/policy"
)

// Scenario is a complete, offline publishing pipeline for tests and demos: a
// virtual Sigstore, a TUF repository served on loopback in which a publisher
// role is delegated the path prefix of its servers, and a directory with the
// pinned roots a policy refers to. Publish puts a signed server into it;
// Policy writes a policy that pins all of it.
//
// A Scenario is not safe for concurrent Publish calls.
type Scenario struct {
	// Dir holds root.json (the pinned TUF root), trusted_root.json (the
	// virtual Sigstore's trust root) and the policy files written by Policy.
	Dir      string
	Sigstore *Sigstore
	Repo     *TUFRepository
	// URL is the repository's base URL; metadata is under URL+"/metadata"
	// and targets under URL+"/targets".
	URL string
	// Publisher is the delegated role that signs the servers' targets, and
	// Prefix the path prefix it is delegated.
	Publisher, Prefix string
	// Identity is the publisher's release workflow identity.
	Identity Identity
}

// ScenarioPublisher is the GitHub repository whose release workflow signs the
// scenario's servers by default.
const ScenarioPublisher = "acme/mcp-servers"

// NewScenario builds the scenario in dir (which must exist and be empty or
// new) and starts serving the repository. Close stops it.
func NewScenario(dir string) (*Scenario, error) {
	ss, err := NewSigstore()
	if err != nil {
		return nil, err
	}
	repo, err := NewTUFRepository(TUFOptions{})
	if err != nil {
		return nil, err
	}
	s := &Scenario{
		Dir: dir, Sigstore: ss, Repo: repo, Publisher: "acme", Prefix: "io.github.acme/",
		Identity: GitHubActions(ScenarioPublisher, ".github/workflows/release.yml", "refs/tags/v1.0.0", strings.Repeat("a1", 20)),
	}
	// A TUF path pattern's "*" does not cross "/": delegate the descriptor
	// (PREFIX/NAME/server.json) and release files (PREFIX/NAME/VERSION/FILE).
	if err := repo.Delegate(s.Publisher, []string{s.Prefix + "*/*", s.Prefix + "*/*/*"}, 1, 1, true); err != nil {
		return nil, err
	}
	if err := repo.Publish(); err != nil {
		return nil, err
	}
	if s.URL, err = repo.Serve(); err != nil {
		return nil, err
	}
	tr, err := ss.TrustedRootJSON()
	if err != nil {
		repo.Close()
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		repo.Close()
		return nil, err
	}
	for name, data := range map[string][]byte{"root.json": repo.RootJSON(), "trusted_root.json": tr} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			repo.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close stops serving the repository.
func (s *Scenario) Close() { s.Repo.Close() }

// Publication is one release of a server to publish.
type Publication struct {
	Server   string   // registry name under the publisher's prefix, e.g. io.github.acme/weather
	Version  string   // default 1.0.0
	Artifact []byte   // the server executable
	Args     []string // arguments the descriptor tells hosts to pass
	// Signer signs the artifact and its provenance; default the scenario's
	// Identity. A different value simulates a release signed by someone else.
	Signer *Identity
	// Tools are the pinned tool digests (name → canonical digest) carried
	// in the descriptor, as SurfaceDigests computes them.
	Tools map[string]string
	// Role signs the targets; default the scenario's publisher role.
	Role string
}

// Published tells where a publication landed.
type Published struct {
	Descriptor string            // target path of server.json
	Artifact   string            // target path of the executable
	Bundles    []string          // target paths of the signature and provenance bundles
	Digests    map[string]string // the artifact's digests
}

// Publish signs the artifact (a message-signature bundle and a SLSA v1
// provenance attestation), writes a descriptor with the trust section and
// adds everything as targets of the publisher role, then publishes new
// snapshot and timestamp metadata.
func (s *Scenario) Publish(p Publication) (*Published, error) {
	if p.Version == "" {
		p.Version = "1.0.0"
	}
	id := s.Identity
	if p.Signer != nil {
		id = *p.Signer
	}
	role := p.Role
	if role == "" {
		role = s.Publisher
	}
	sum := sha256.Sum256(p.Artifact)
	digests := map[string]string{"sha256": hex.EncodeToString(sum[:])}
	base := p.Server + "/" + p.Version + "/"
	out := &Published{Descriptor: p.Server + "/server.json", Artifact: base + "server", Digests: digests}
	sig, err := s.Sigstore.SignBlob(id, p.Artifact, SignOptions{})
	if err != nil {
		return nil, err
	}
	stmt, err := SLSAProvenanceV1("server", digests, ProvenanceFor(id))
	if err != nil {
		return nil, err
	}
	prov, err := s.Sigstore.Attest(id, stmt, SignOptions{})
	if err != nil {
		return nil, err
	}
	out.Bundles = []string{base + "server.sigstore.json", base + "server.provenance.sigstore.json"}
	desc, err := DescriptorJSON(p.Server, p.Version, policy.DescriptorArtifact{
		Platform: "any", Target: out.Artifact, Bundles: out.Bundles, Args: p.Args,
	}, p.Tools)
	if err != nil {
		return nil, err
	}
	for _, t := range []struct {
		name string
		data []byte
	}{{out.Artifact, p.Artifact}, {out.Bundles[0], sig}, {out.Bundles[1], prov}, {out.Descriptor, desc}} {
		if err := s.Repo.AddDelegatedTarget(role, t.name, t.data); err != nil {
			return nil, err
		}
	}
	if err := s.Repo.Publish(); err != nil {
		return nil, err
	}
	return out, nil
}

// PublishServer publishes exe, a binary that calls ServerMain, as server:
// the descriptor tells hosts to run it serving cfg and pins the tools cfg
// lists, as SurfaceDigests computes them. signer nil means the scenario's
// Identity.
func (s *Scenario) PublishServer(ctx context.Context, server string, exe []byte, cfg ServerConfig, signer *Identity) (*Published, error) {
	pins, err := SurfaceDigests(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s.Publish(Publication{Server: server, Artifact: exe, Args: ServerArgs(cfg), Tools: pins, Signer: signer})
}

// DescriptorJSON returns an MCP registry server.json with Preflight's trust
// section under _meta, for one artifact and optional tool pins.
func DescriptorJSON(server, version string, art policy.DescriptorArtifact, tools map[string]string) ([]byte, error) {
	trust := map[string]any{"artifacts": []policy.DescriptorArtifact{art}}
	if len(tools) > 0 {
		trust["tools"] = tools
	}
	doc := map[string]any{
		"$schema":     "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
		"name":        server,
		"description": "Test server " + server,
		"version":     version,
		"_meta":       map[string]any{"dev.mcp-preflight/trust": trust},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// PolicyServer is one server entry of the policy Policy writes.
type PolicyServer struct {
	Name   string // the policy's name for it
	Server string // the registry name in the repository
	// Signer is the identity the policy pins; default the scenario's.
	Signer *Identity
	// Pin is the tools pin mode ("descriptor" by default); OnChange is
	// "block" or "end".
	Pin, OnChange string
	Allow, Deny   []string
}

// Policy writes a policy file pinning the scenario's TUF root, its Sigstore
// trust root, and per server the signer identity (issuer, subject, source
// repository, ref, workflow and hosted runner) and SLSA v1 provenance from
// release tags. It returns the file's path.
func (s *Scenario) Policy(file string, servers ...PolicyServer) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "version: 1\nmode: enforce\ntrust:\n  sigstore:\n    trusted_root: trusted_root.json\n")
	fmt.Fprintf(&b, "  repositories:\n    scenario:\n      url: %s/metadata\n      targets_url: %s/targets\n      root: root.json\n", s.URL, s.URL)
	b.WriteString("servers:\n")
	for _, ps := range servers {
		id := s.Identity
		if ps.Signer != nil {
			id = *ps.Signer
		}
		pin, onChange := ps.Pin, ps.OnChange
		if pin == "" {
			pin = "descriptor"
		}
		if onChange == "" {
			onChange = "block"
		}
		repo := strings.TrimPrefix(id.SourceRepositoryURI, "https://github.com/")
		fmt.Fprintf(&b, "  %q:\n    source:\n      tuf:\n        repository: scenario\n        server: %q\n", ps.Name, ps.Server)
		fmt.Fprintf(&b, "    signers:\n      - issuer: %q\n        subject: %q\n        repository: %q\n        ref: %q\n        workflow: %q\n        runner: github-hosted\n",
			id.Issuer, id.Subject, repo, id.SourceRepositoryRef, workflowPath(id))
		fmt.Fprintf(&b, "    provenance:\n      predicate_types: [\"https://slsa.dev/provenance/v1\"]\n      repository: %q\n      ref_patterns: [\"^refs/tags/v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$\"]\n      hosted_runners: true\n", repo)
		fmt.Fprintf(&b, "    tools:\n      pin: %s\n      on_change: %s\n", pin, onChange)
		if len(ps.Allow) > 0 {
			fmt.Fprintf(&b, "      allow: %s\n", yamlList(ps.Allow))
		}
		if len(ps.Deny) > 0 {
			fmt.Fprintf(&b, "      deny: %s\n", yamlList(ps.Deny))
		}
	}
	p := filepath.Join(s.Dir, file)
	return p, os.WriteFile(p, b.Bytes(), 0o600)
}

// workflowPath is the workflow file of a GitHub identity's build signer URI
// (https://github.com/OWNER/NAME/.github/workflows/x.yml@REF).
func workflowPath(id Identity) string {
	u := strings.TrimPrefix(id.BuildSignerURI, id.SourceRepositoryURI+"/")
	if i := strings.LastIndex(u, "@"); i >= 0 {
		u = u[:i]
	}
	return u
}

func yamlList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = fmt.Sprintf("%q", it)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
