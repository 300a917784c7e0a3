package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/mcpb"
	"github.com/mcp-preflight/preflight/internal/safefile"
	"github.com/mcp-preflight/preflight/internal/store"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
)

// Limits on what a TUF repository or a policy may make Preflight read.
const (
	maxDescriptorBytes = 1 << 20
	maxBundleBytes     = 16 << 20
	maxBundles         = 16
)

// candidate is a server after resolve and fetch: the effective rules and the
// artifact in the store, with its evidence, not yet verified.
type candidate struct {
	name       string
	server     *policy.Server // effective rules (local, narrowed by the descriptor)
	findings   []policy.Finding
	entry      store.Entry
	artifact   policy.ArtifactFacts
	bundles    []Bundle
	args       []string
	descriptor *policy.DescriptorFacts
	// dependencies is the verified closure the artifact runs with.
	dependencies []policy.Dependency
	// verified holds the signature facts when the source verified the
	// evidence itself (release binaries are checked before download).
	verified []policy.SignatureFacts
	// oci is set for container images, which run by digest.
	oci *ociLaunch
	// mcpb is set for MCP bundles: how the manifest starts the server.
	mcpb *mcpb.Launch
	// npm is set for npm servers, which run with node from an install of
	// verified tarballs rather than by executing the artifact.
	npm *npmLaunch
}

// Check resolves, fetches, verifies and decides without launching. It
// returns the report when the server is allowed (or in audit mode), and a
// *Refusal carrying the report when the policy refuses it.
func (v *Verifier) Check(ctx context.Context, server string) (*Report, error) {
	_, rep, err := v.check(ctx, server)
	return rep, err
}

func (v *Verifier) check(ctx context.Context, server string) (*candidate, *Report, error) {
	c, err := v.resolve(ctx, server)
	if err != nil {
		return nil, nil, err
	}
	rep, err := v.decide(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	return c, rep, nil
}

// resolve reads the policy entry and fetches the artifact and its evidence.
func (v *Verifier) resolve(ctx context.Context, name string) (*candidate, error) {
	s, err := v.cfg.Policy.Server(name)
	if err != nil {
		return nil, err
	}
	if s, err = v.expandSigners(ctx, s); err != nil {
		return nil, err
	}
	switch {
	case s.Source.TUF != nil:
		return v.resolveTUF(ctx, s)
	case s.Source.File != nil:
		return v.resolveFile(ctx, s)
	case s.Source.NPM != nil:
		return v.resolveNPM(ctx, s)
	case s.Source.URL != nil:
		return v.resolveURL(ctx, s)
	case s.Source.ServerJSON != nil:
		return v.resolveServerJSON(ctx, s)
	case s.Source.OCI != nil:
		return v.resolveOCI(ctx, s)
	}
	return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "server " + name,
		Expected: "one source: tuf, file, npm, oci, url or server_json", Found: "none",
		Hint: "give the server a source in the policy"}
}

func (v *Verifier) resolveTUF(ctx context.Context, s *policy.Server) (*candidate, error) {
	src := s.Source.TUF
	client, ok := v.repos[src.Repository]
	if !ok {
		return nil, configErr("server "+s.Name+" source", "a repository named in trust.repositories", src.Repository, "add the repository with its pinned root")
	}
	if err := client.Refresh(ctx); err != nil {
		return nil, err
	}
	descName := DescriptorTarget(src.Server)
	dt, err := client.Target(ctx, descName)
	if err != nil {
		return nil, err
	}
	if dt.Length > maxDescriptorBytes {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "descriptor " + descName, Expected: fmt.Sprintf("at most %d bytes", maxDescriptorBytes), Found: fmt.Sprintf("%d bytes", dt.Length)}
	}
	raw, err := client.ReadTarget(ctx, dt)
	if err != nil {
		return nil, err
	}
	desc, err := policy.ParseDescriptor(raw)
	if err != nil {
		return nil, err
	}
	if desc.Name != src.Server {
		return nil, &preflight.Error{Class: preflight.ErrMetadata, Subject: "descriptor " + descName, Expected: "server " + src.Server, Found: "server " + desc.Name,
			Hint: "the repository maps this name to another server's descriptor; report it to the repository's maintainers"}
	}
	if src.Version != "" && desc.Version != src.Version {
		return nil, &preflight.Error{Class: preflight.ErrPolicy, Subject: "server " + s.Name, Expected: "version " + src.Version, Found: "version " + desc.Version,
			Hint: "the repository publishes another version; update the policy to accept it"}
	}
	if desc.Trust == nil {
		return nil, &preflight.Error{Class: preflight.ErrMetadata, Subject: "descriptor " + descName, Expected: "a _meta trust section with artifacts", Found: "none"}
	}
	art, err := desc.Artifact(v.cfg.Platform)
	if err != nil {
		return nil, err
	}
	eff, findings := policy.Narrow(s, &desc.Trust.Expectations)

	at, err := client.Target(ctx, art.Target)
	if err != nil {
		return nil, err
	}
	if at.Hashes["sha256"] == "" {
		return nil, &preflight.Error{Class: preflight.ErrMetadata, Subject: "target " + art.Target, Expected: "a sha256 hash in the targets metadata", Found: "none"}
	}
	if _, err := client.DownloadTarget(ctx, at, targetStore{v.store}); err != nil {
		return nil, err
	}
	entry, ok := v.store.Lookup(at.Hashes["sha256"])
	if !ok {
		return nil, &preflight.Error{Class: preflight.ErrStore, Subject: "target " + art.Target, Hint: "the store lost an entry it just wrote; check the store directory"}
	}
	if len(art.Bundles) > maxBundles {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "descriptor " + descName, Expected: fmt.Sprintf("at most %d bundles", maxBundles), Found: fmt.Sprint(len(art.Bundles))}
	}
	var bundles []Bundle
	for _, b := range art.Bundles {
		bt, err := client.Target(ctx, b)
		if err != nil {
			return nil, err
		}
		if bt.Length > maxBundleBytes {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "bundle " + b, Expected: fmt.Sprintf("at most %d bytes", maxBundleBytes), Found: fmt.Sprintf("%d bytes", bt.Length)}
		}
		data, err := client.ReadTarget(ctx, bt)
		if err != nil {
			return nil, err
		}
		bundles = append(bundles, Bundle{Name: b, JSON: data})
	}
	digests := map[string]string{"sha256": entry.SHA256}
	for alg, h := range at.Hashes {
		digests[alg] = h
	}
	return &candidate{
		name:     s.Name,
		server:   eff,
		findings: findings,
		entry:    entry,
		artifact: policy.ArtifactFacts{Name: path.Base(art.Target), Version: desc.Version, Source: "tuf", Size: entry.Size, Digests: digests},
		bundles:  bundles,
		args:     append(append([]string(nil), art.Args...), s.Args...),
		descriptor: &policy.DescriptorFacts{
			Repository: src.Repository, Target: descName, TargetsVersion: dt.TargetsVersion, SignedBy: dt.SignedBy, Expires: dt.Expires,
		},
	}, nil
}

func (v *Verifier) resolveFile(ctx context.Context, s *policy.Server) (*candidate, error) {
	src := s.Source.File
	p := v.path(src.Path)
	f, err := os.Open(p)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrNotFound, Subject: "server " + s.Name + " artifact", Err: err}
	}
	defer f.Close()
	opts := store.PutOptions{Limit: v.cfg.MaxArtifactBytes, Executable: true}
	if src.Digest != "" {
		alg, hexDigest, ok := splitDigest(src.Digest)
		if !ok {
			return nil, configErr("server "+s.Name+" source.file.digest", "ALG:HEX", src.Digest, "")
		}
		opts.Want = store.Digests{alg: hexDigest}
	}
	entry, err := v.store.Put(ctx, f, opts)
	if err != nil {
		return nil, err
	}
	var bundles []Bundle
	for _, b := range src.Bundles {
		data, err := readBounded(v.path(b), maxBundleBytes)
		if err != nil {
			return nil, err
		}
		bundles = append(bundles, Bundle{Name: b, JSON: data})
	}
	return &candidate{
		name:     s.Name,
		server:   s,
		entry:    entry,
		artifact: policy.ArtifactFacts{Name: path.Base(src.Path), Source: "file", Size: entry.Size, Digests: map[string]string{"sha256": entry.SHA256}},
		bundles:  bundles,
		args:     append([]string(nil), s.Args...),
	}, nil
}

// decide verifies the evidence and applies the policy.
func (v *Verifier) decide(ctx context.Context, c *candidate) (*Report, error) {
	mode := v.cfg.Policy.Mode
	var info tuf.TrustRootInfo
	facts := policy.Facts{Server: c.name, Artifact: c.artifact, Descriptor: c.descriptor, Dependencies: c.dependencies}
	var evidenceErr error
	switch {
	case c.verified != nil:
		facts.Signatures = c.verified
		info = v.loadedRootInfo()
	case c.server.AllowUnsigned:
		// Trusted by the pinned digest alone; Evaluate checks the pin and
		// reports the server as unsigned.
	case len(c.bundles) == 0:
		evidenceErr = &preflight.Error{Class: preflight.ErrSignature, Subject: "server " + c.name, Expected: "at least one Sigstore bundle", Found: "none",
			Hint: "publish the artifact's .sigstore.json bundle beside it"}
	default:
		material, rootInfo, err := v.trustedMaterial(ctx)
		if err != nil {
			return nil, err
		}
		info = rootInfo
		var preds []string
		if c.server.Provenance != nil {
			preds = c.server.Provenance.PredicateTypes
		}
		sigs, err := v.verdicts.verify(EvidenceCheck{
			Material: material, Artifact: c.artifact.Digests, Bundles: c.bundles,
			Signers: c.server.Signers, PredicateTypes: preds,
		})
		if err != nil {
			evidenceErr = err
		} else {
			facts.Signatures = sigs
		}
	}
	var lock *policy.LockEntry
	if v.cfg.Lock != nil {
		lock = v.cfg.Lock.Servers[c.name]
	}
	decision := policy.Evaluate(c.server, mode, facts, lock)
	decision.Findings = append(append([]policy.Finding(nil), c.findings...), decision.Findings...)
	if evidenceErr != nil {
		decision.Findings = append([]policy.Finding{evidenceFinding(evidenceErr)}, decision.Findings...)
		if mode != policy.ModeAudit {
			decision.Allow = false
		}
	}
	rep := &Report{MediaType: ReportMediaType, Server: c.name, Time: v.cfg.Now().UTC(), Facts: facts, Decision: decision, TrustRoot: info}
	v.logDecision(rep)
	if !decision.Allow {
		cause := decision.Err("server " + c.name)
		if evidenceErr != nil {
			cause = evidenceErr
		}
		return nil, &Refusal{Report: rep, Err: cause}
	}
	return rep, nil
}

// evidenceFinding records a failed evidence check as a finding, keeping the
// class of the failure in its code.
func evidenceFinding(err error) policy.Finding {
	code := "signature.invalid"
	switch {
	case errors.Is(err, preflight.ErrIdentity):
		code = "signer.identity"
	case errors.Is(err, preflight.ErrProvenance):
		code = "provenance.invalid"
	case errors.Is(err, preflight.ErrTampered):
		code = "artifact.digest"
	case errors.Is(err, preflight.ErrOperational):
		code = "evidence.unverifiable"
	}
	f := policy.Finding{Code: code, Severity: policy.SeverityError, Subject: "evidence", Message: err.Error()}
	var pe *preflight.Error
	if errors.As(err, &pe) {
		f.Expected, f.Found = pe.Expected, pe.Found
	}
	return f
}

func (v *Verifier) logDecision(rep *Report) {
	v.log.Info("preflight decision", "server", rep.Server, "allow", rep.Decision.Allow, "mode", string(rep.Decision.Mode),
		"sha256", rep.Facts.Artifact.Digests["sha256"], "findings", len(rep.Decision.Findings))
	for _, f := range rep.Decision.Findings {
		v.log.Warn("preflight finding", "server", rep.Server, "code", f.Code, "severity", string(f.Severity),
			"subject", f.Subject, "expected", f.Expected, "found", f.Found, "message", f.Message)
	}
}

// DescriptorTarget is the TUF target path of a server's descriptor:
// the server name followed by "/server.json".
func DescriptorTarget(server string) string { return server + "/server.json" }

func splitDigest(d string) (alg, hexDigest string, ok bool) {
	for i := 0; i < len(d); i++ {
		if d[i] == ':' {
			return d[:i], d[i+1:], i > 0 && i < len(d)-1
		}
	}
	return "", "", false
}

func readBounded(p string, limit int64) ([]byte, error) {
	data, err := safefile.ReadLimited(p, limit)
	switch {
	case errors.Is(err, safefile.ErrTooLarge):
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: p, Expected: fmt.Sprintf("at most %d bytes", limit), Found: "more", Err: err}
	case errors.Is(err, fs.ErrNotExist):
		return nil, &preflight.Error{Class: preflight.ErrNotFound, Subject: p, Err: err}
	case err != nil:
		return nil, &preflight.Error{Class: preflight.ErrUnavailable, Subject: p, Err: err}
	}
	return data, nil
}

// targetStore adapts the store to the TUF client's TargetStore.
type targetStore struct{ s *store.Store }

func (t targetStore) Lookup(sha256Hex string) (string, bool) {
	e, ok := t.s.Lookup(sha256Hex)
	return e.Path, ok
}

var _ tuf.TargetStore = targetStore{}

func (t targetStore) Put(ctx context.Context, r io.Reader, limit, size int64, want map[string]string) (string, error) {
	e, err := t.s.Put(ctx, r, store.PutOptions{Limit: limit, Size: size, Want: want, Executable: true})
	return e.Path, err
}
