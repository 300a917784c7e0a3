package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// The real npm bundles of sigstore@1.3.0 from sigstore-go's examples/,
// read from the module cache (never copied into this repository).
const (
	vbNPMDigest  = "sha512:76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751"
	vbNPMSubject = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
	vbNPMIssuer  = "https://token.actions.githubusercontent.com"
)

var vbExamplesDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/sigstore/sigstore-go").Output()
	if err != nil {
		return "", err
	}
	return filepath.Join(strings.TrimSpace(string(out)), "examples"), nil
})

func vbExample(tb testing.TB, name string) string {
	tb.Helper()
	dir, err := vbExamplesDir()
	if err != nil {
		tb.Fatalf("locating sigstore-go in the module cache: %v", err)
	}
	return filepath.Join(dir, name)
}

func vbRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cmdVerifyBundle(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVerifyBundleRealNPM(t *testing.T) {
	root := vbExample(t, "trusted-root-public-good.json")
	prov := vbExample(t, "bundle-provenance.json")
	tests := []struct {
		name   string
		args   []string
		code   int
		output string // expected in stdout (exit 0) or stderr
	}{
		{"identity", []string{"--bundle", prov, "--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer,
			"--trusted-root", root, vbNPMDigest}, 0, "VERIFIED artifact"},
		{"flags after the artifact", []string{"--bundle", prov, vbNPMDigest, "--certificate-identity", vbNPMSubject,
			"--certificate-oidc-issuer", vbNPMIssuer, "--trusted-root", root}, 0, "built from https://github.com/sigstore/sigstore-js@refs/heads/main"},
		{"embedded snapshot, offline", []string{"--offline", "--bundle", prov, "--certificate-identity", vbNPMSubject,
			"--certificate-oidc-issuer", vbNPMIssuer, vbNPMDigest}, 0, "trust root: embedded-snapshot"},
		{"extensions and predicate", []string{"--bundle", prov, "--certificate-identity-regexp", `^https://github\.com/sigstore/sigstore-js/.*$`,
			"--certificate-oidc-issuer", vbNPMIssuer, "--repository", "sigstore/sigstore-js", "--source-ref", "refs/heads/main",
			"--signer-workflow", ".github/workflows/release.yml", "--predicate-type", "https://slsa.dev/provenance/v0.2",
			"--trusted-root", root, vbNPMDigest}, 0, "VERIFIED"},
		{"npm publish key", []string{"--bundle", vbExample(t, "bundle-publish.json"), "--key", vbExample(t, "publish_key.pub"),
			"--trusted-root", root, vbNPMDigest}, 0, "signed by key SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA"},
		{"wrong identity", []string{"--bundle", prov, "--certificate-identity", "https://github.com/evil/x/.github/workflows/r.yml@refs/heads/main",
			"--certificate-oidc-issuer", vbNPMIssuer, "--trusted-root", root, vbNPMDigest}, 1, "signer identity not allowed"},
		{"wrong tag required", []string{"--bundle", prov, "--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer,
			"--source-ref", "refs/tags/v1.3.0", "--trusted-root", root, vbNPMDigest}, 1, "signer identity not allowed"},
		{"other bytes", []string{"--bundle", prov, "--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer,
			"--trusted-root", root, "sha512:" + strings.Repeat("00", 64)}, 1, "artifact digest mismatch"},
		{"missing predicate", []string{"--bundle", prov, "--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer,
			"--predicate-type", "https://slsa.dev/provenance/v1", "--trusted-root", root, vbNPMDigest}, 1, "provenance not allowed"},
		{"no artifact", []string{"--bundle", prov, "--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer}, 2, "exactly one ARTIFACT"},
		{"no bundle", []string{"--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer, vbNPMDigest}, 2, "--bundle is required"},
		{"no identity", []string{"--bundle", prov, vbNPMDigest}, 2, "--certificate-identity"},
		{"no issuer", []string{"--bundle", prov, "--certificate-identity", vbNPMSubject, vbNPMDigest}, 2, "--certificate-oidc-issuer"},
		{"key and identity", []string{"--bundle", prov, "--key", vbExample(t, "publish_key.pub"), "--certificate-identity", vbNPMSubject, vbNPMDigest}, 2, "--key excludes"},
		{"unknown flag", []string{"--bundel", prov, vbNPMDigest}, 2, "flag provided but not defined"},
		{"bad format", []string{"--format", "yaml", "--bundle", prov, "--key", "k", vbNPMDigest}, 2, "--format"},
		{"missing artifact file", []string{"--bundle", prov, "--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer,
			"--trusted-root", root, filepath.Join(t.TempDir(), "none.tgz")}, 2, "reading ARTIFACT"},
		{"unanchored regexp", []string{"--bundle", prov, "--certificate-identity-regexp", `sigstore-js`, "--certificate-oidc-issuer", vbNPMIssuer,
			"--trusted-root", root, vbNPMDigest}, 1, "anchored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := vbRun(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			where := stderr
			if code == 0 {
				where = stdout
			}
			if !strings.Contains(where, tt.output) {
				t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", tt.output, stdout, stderr)
			}
		})
	}
}

func TestVerifyBundleJSON(t *testing.T) {
	root := vbExample(t, "trusted-root-public-good.json")
	for _, tt := range []struct {
		name     string
		identity string
		code     int
	}{{"verified", vbNPMSubject, 0}, {"refused", "https://github.com/evil/x/.github/workflows/r.yml@refs/heads/main", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := vbRun(t, "--format", "json", "--bundle", vbExample(t, "bundle-provenance.json"),
				"--certificate-identity", tt.identity, "--certificate-oidc-issuer", vbNPMIssuer, "--trusted-root", root, vbNPMDigest)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			var r verify.BundleResult
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("output is not a BundleResult: %v\n%s", err, stdout)
			}
			if r.MediaType != verify.BundleResultMediaType || r.TrustRoot.Source != "pinned-file" || r.TrustRoot.Digest == "" ||
				r.Artifact.Digests["sha512"] == "" {
				t.Errorf("result = %+v", r)
			}
			if tt.code == 0 && (!r.Verified || len(r.Signatures) != 1 || r.Signatures[0].Provenance == nil || r.Error != "") {
				t.Errorf("verified result = %+v", r)
			}
			if tt.code != 0 && (r.Verified || r.Signatures != nil || r.ErrorClass != "ErrIdentity" || r.Error == "") {
				t.Errorf("refused result = %+v", r)
			}
		})
	}
}

// TestVerifyBundleFileArtifact hashes a file once with the algorithm the
// bundle uses, on a private (virtual) Sigstore instance.
func TestVerifyBundleFileArtifact(t *testing.T) {
	s, err := verifytest.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	artifact := []byte("#!/usr/bin/env node\n")
	id := verifytest.GitHubActions("acme/srv", ".github/workflows/release.yml", "refs/tags/v1.0.0", strings.Repeat("a", 40))
	bundle, err := s.SignBlob(id, artifact, verifytest.SignOptions{DigestAlgorithm: crypto.SHA384})
	if err != nil {
		t.Fatal(err)
	}
	trustedRoot, err := s.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"--bundle", write("srv.sigstore.json", bundle), "--trusted-root", write("trusted_root.json", trustedRoot),
		"--certificate-identity", id.Subject, "--certificate-oidc-issuer", id.Issuer, "--repository", "acme/srv",
		"--signer-workflow", ".github/workflows/release.yml"}
	art := write("srv.js", artifact)

	if code, stdout, stderr := vbRun(t, append(args, art)...); code != 0 || !strings.Contains(stdout, "sha384:") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if code, _, stderr := vbRun(t, append(args, "--digest-algorithm", "sha256", art)...); code != 1 || !strings.Contains(stderr, "sha384") {
		t.Fatalf("forced sha256 on a sha384 bundle: exit %d, stderr: %s", code, stderr)
	}
	write("srv.js", []byte("#!/usr/bin/env node\nevil()\n"))
	if code, _, stderr := vbRun(t, append(args, art)...); code != 1 || !strings.Contains(stderr, "artifact digest mismatch") {
		t.Fatalf("tampered file: exit %d, stderr: %s", code, stderr)
	}
}
