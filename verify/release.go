package verify

import (
	"context"
	"errors"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/release"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
)

// resolveURL fetches a release binary (or an archive holding it). Unlike the
// other sources, its evidence is verified before the binary is downloaded,
// against the pinned digest or the digest the bundle signs, so bytes that
// nobody allowed never enter the store; a refusal at that point still
// returns a *Refusal with the findings.
func (v *Verifier) resolveURL(ctx context.Context, s *policy.Server) (*candidate, error) {
	src := s.Source.URL
	f, info, err := v.releaseFetcher(ctx, s)
	if err != nil {
		return nil, err
	}
	asset := release.Asset{URL: src.URL, BundleURL: src.Bundle, Binary: src.Binary}
	if src.Digest != "" {
		alg, hexDigest, ok := splitDigest(src.Digest)
		if !ok || alg != "sha256" {
			return nil, configErr("server "+s.Name+" source.url.digest", "sha256:HEX", src.Digest, "release binaries are pinned by SHA-256")
		}
		asset.SHA256 = strings.ToLower(hexDigest)
	}
	res, err := f.Fetch(ctx, asset)
	if err != nil {
		if errors.Is(err, preflight.ErrSecurity) {
			return nil, v.refuseEarly(s, policy.ArtifactFacts{Name: src.URL, Source: "url"}, info, err)
		}
		return nil, err
	}
	bundles := make([]Bundle, len(res.Bundles))
	for i, b := range res.Bundles {
		bundles[i] = Bundle(b)
	}
	art := res.Artifact
	if res.Entry.SHA256 != res.File.SHA256 {
		// An archive: what runs is the executable taken from it.
		art.Digests = map[string]string{"sha256": res.Entry.SHA256}
		for alg, d := range res.Artifact.Digests {
			art.Digests["archive-"+alg] = d
		}
		art.Size = res.Entry.Size
	}
	return &candidate{
		name: s.Name, server: s, entry: res.Entry, artifact: art, bundles: bundles,
		verified: res.Signatures, args: append([]string(nil), s.Args...),
	}, nil
}

// releaseFetcher returns a fetcher for release files (and MCP bundles) that
// verifies their evidence against the server's signers before it downloads
// them, or, for unsigned servers, checks only the pinned digest.
func (v *Verifier) releaseFetcher(ctx context.Context, s *policy.Server) (*release.Fetcher, tuf.TrustRootInfo, error) {
	cfg := release.Config{Store: v.store, MaxBytes: v.cfg.MaxArtifactBytes}
	if s.AllowUnsigned {
		f, err := release.New(cfg)
		return f, tuf.TrustRootInfo{}, err
	}
	material, info, err := v.trustedMaterial(ctx)
	if err != nil {
		return nil, tuf.TrustRootInfo{}, err
	}
	var preds []string
	if s.Provenance != nil {
		preds = s.Provenance.PredicateTypes
	}
	cfg.Verify = func(artifact map[string]string, bundles []release.Bundle) ([]policy.SignatureFacts, error) {
		bs := make([]Bundle, len(bundles))
		for i, b := range bundles {
			bs[i] = Bundle(b)
		}
		return v.verdicts.verify(EvidenceCheck{Material: material, Artifact: artifact, Bundles: bs, Signers: s.Signers, PredicateTypes: preds})
	}
	f, err := release.New(cfg)
	return f, info, err
}

// refuseEarly reports a security failure found while fetching, before a
// full set of facts exists, as a Refusal with the evidence as its finding.
// In audit mode the failure still refuses: nothing verified could be run.
func (v *Verifier) refuseEarly(s *policy.Server, art policy.ArtifactFacts, info tuf.TrustRootInfo, err error) error {
	mode := v.cfg.Policy.Mode
	rep := &Report{MediaType: ReportMediaType, Server: s.Name, Time: v.cfg.Now().UTC(),
		Facts:     policy.Facts{Server: s.Name, Artifact: art},
		Decision:  policy.Decision{Mode: mode, Allow: false, Findings: []policy.Finding{evidenceFinding(err)}},
		TrustRoot: info}
	v.logDecision(rep)
	return &Refusal{Report: rep, Err: err}
}
