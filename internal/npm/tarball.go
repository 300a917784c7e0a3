package npm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/store"
)

// indexDir is where, below the store's root, the client remembers which
// store entry holds the tarball of a SHA-512: DIR/npm/sha512/<hex> holds
// the entry's SHA-256. The index is only a hint: Install hashes every
// tarball again while unpacking it and refuses a mismatch.
const indexDir = "npm/sha512"

// FetchTarball returns the store entry holding v's tarball, downloading it
// only when the store does not hold it yet. The download is bounded by
// Config.MaxTarballBytes and checked against v.Integrity while it is
// written; nothing is left in the store when it fails. Errors: ErrTampered
// (other bytes than the integrity names), ErrMalformed (too large, or no
// usable integrity), ErrNotFound, ErrUnavailable (including a body cut
// short), ErrTimeout, ErrStore.
func (c *Client) FetchTarball(ctx context.Context, v *Version, st *store.Store) (store.Entry, error) {
	if v == nil || st == nil {
		return store.Entry{}, &preflight.Error{Class: preflight.ErrConfig, Subject: "npm tarball", Expected: "a version and a store", Found: "nil"}
	}
	subject := "npm " + v.Name + "@" + v.Version
	sum, err := v.SHA512()
	if err != nil {
		return store.Entry{}, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a sha512 integrity", Found: fmt.Sprintf("%q", v.Integrity), Err: err}
	}
	if e, ok := lookupIndex(st, sum); ok {
		return e, nil
	}
	u, err := c.tarballURL(v.Name, v.Version, v.Tarball)
	if err != nil {
		return store.Entry{}, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.get(ctx, u, "application/octet-stream")
	if err != nil {
		return store.Entry{}, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > c.cfg.MaxTarballBytes {
		return store.Entry{}, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject,
			Expected: fmt.Sprintf("a tarball of at most %d bytes", c.cfg.MaxTarballBytes), Found: fmt.Sprintf("%d bytes declared", resp.ContentLength),
			Hint: "raise Config.MaxTarballBytes if the package is known to be that large"}
	}
	e, err := st.Put(ctx, resp.Body, store.PutOptions{Limit: c.cfg.MaxTarballBytes, Want: store.Digests{"sha512": sum}})
	if err != nil {
		return store.Entry{}, annotate(err, subject, u)
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "npm tarball stored", slog.String("package", v.Name+"@"+v.Version), slog.String("sha256", e.SHA256))
	writeIndex(st, sum, e.SHA256)
	return e, nil
}

// annotate names the package in a store error.
func annotate(err error, subject string, u *url.URL) error {
	if pe, ok := err.(*preflight.Error); ok {
		cp := *pe
		cp.Subject = subject + " (" + redact(u) + ")"
		if cp.Class == preflight.ErrTampered {
			cp.Hint = "the registry served other bytes than the integrity it published or the lockfile pins; do not run them"
		}
		return &cp
	}
	return err
}

func lookupIndex(st *store.Store, sha512Hex string) (store.Entry, bool) {
	b, err := os.ReadFile(filepath.Join(st.Dir(), indexDir, sha512Hex))
	if err != nil || len(b) > 64 {
		return store.Entry{}, false
	}
	return st.Lookup(strings.TrimSpace(string(b)))
}

// writeIndex records the entry best-effort: without it, the next fetch
// downloads again.
func writeIndex(st *store.Store, sha512Hex, sha256Hex string) {
	dir := filepath.Join(st.Dir(), indexDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.WriteString(sha256Hex)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), filepath.Join(dir, sha512Hex)) != nil {
		os.Remove(f.Name())
	}
}

// Attestations returns the Sigstore bundles the registry holds for
// name@version (GET {registry}/-/npm/v1/attestations/NAME@VERSION), each
// as its JSON, in the registry's order: typically the SLSA provenance
// (keyless, from the publishing workflow) and the publish attestation
// (signed with the registry's key). They are unverified: pass them to
// verify.VerifyEvidence with the tarball's SHA-512. Errors: ErrNotFound
// when the version has no attestations, ErrMalformed, ErrUnavailable,
// ErrTimeout.
func (c *Client) Attestations(ctx context.Context, name, version string) ([][]byte, error) {
	if !validName(name) {
		return nil, badName(name)
	}
	if _, ok := parseSemver(version); !ok {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm " + name, Expected: "an exact version", Found: fmt.Sprintf("%q", version)}
	}
	u := c.registryURL("/-/npm/v1/attestations/" + strings.Replace(name, "/", "%2f", 1) + "@" + version)
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.get(ctx, u, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := c.readBounded(ctx, u, resp.Body, maxAttestationsBytes, "an attestations document")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Attestations []struct {
			PredicateType string          `json:"predicateType"`
			Bundle        json.RawMessage `json:"bundle"`
		} `json:"attestations"`
	}
	subject := "npm attestations of " + name + "@" + version
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: `{"attestations":[{"predicateType":...,"bundle":{...}}]}`, Found: "invalid JSON", Err: err}
	}
	if len(doc.Attestations) == 0 {
		return nil, &preflight.Error{Class: preflight.ErrNotFound, Subject: subject, Expected: "at least one attestation", Found: "an empty list",
			Hint: "the package was published without provenance (npm publish --provenance)"}
	}
	if len(doc.Attestations) > 64 {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "at most 64 attestations", Found: fmt.Sprint(len(doc.Attestations))}
	}
	out := make([][]byte, 0, len(doc.Attestations))
	for i, a := range doc.Attestations {
		if len(a.Bundle) == 0 || a.Bundle[0] != '{' {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: fmt.Sprintf("attestation %d with a bundle object", i), Found: "none"}
		}
		out = append(out, []byte(a.Bundle))
	}
	return out, nil
}
