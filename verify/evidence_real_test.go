package verify

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
)

// The real bundles shipped in sigstore-go's examples/ directory, read from
// the module cache at test time (never copied into this repository).
const (
	evNPMDigest   = "76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751"
	evNPMIssuer   = "https://token.actions.githubusercontent.com"
	evNPMSubject  = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
	evNPMCommit   = "dae8bd8eb433a4147b4655c00fe73e0f22bc0fb1"
	evNPMKeyID    = "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA"
	evNPMRepo     = "sigstore/sigstore-js"
	evNPMWorkflow = ".github/workflows/release.yml"
)

var evExamplesDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/sigstore/sigstore-go").Output()
	if err != nil {
		return "", err
	}
	return filepath.Join(strings.TrimSpace(string(out)), "examples"), nil
})

func evExample(tb testing.TB, name string) []byte {
	tb.Helper()
	dir, err := evExamplesDir()
	if err != nil {
		tb.Fatalf("locating sigstore-go in the module cache: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func evExampleRoot(tb testing.TB) root.TrustedMaterial {
	tb.Helper()
	tr, err := root.NewTrustedRootFromJSON(evExample(tb, "trusted-root-public-good.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func evNPMCheck(tb testing.TB) EvidenceCheck {
	tb.Helper()
	return EvidenceCheck{
		Material: evExampleRoot(tb),
		Artifact: map[string]string{"sha512": evNPMDigest},
		Bundles: []Bundle{
			{Name: "bundle-provenance.json", JSON: evExample(tb, "bundle-provenance.json")},
			{Name: "bundle-publish.json", JSON: evExample(tb, "bundle-publish.json")},
		},
		Signers: []policy.Signer{
			{Issuer: evNPMIssuer, Subject: evNPMSubject, Repository: evNPMRepo, Ref: "refs/heads/main",
				Workflow: evNPMWorkflow, Trigger: "push", Runner: "github-hosted"},
			{PublicKey: string(evExample(tb, "publish_key.pub"))},
		},
		PredicateTypes: []string{PredicateSLSAProvenanceV02, PredicateNPMPublishV01},
	}
}

func TestVerifyEvidenceRealNPMBundles(t *testing.T) {
	facts, err := VerifyEvidence(evNPMCheck(t))
	if err != nil {
		t.Fatalf("VerifyEvidence: %v", err)
	}
	if len(facts) != 2 {
		t.Fatalf("got %d facts, want 2", len(facts))
	}
	prov, pub := facts[0], facts[1]
	if prov.Kind != "dsse" || prov.PredicateType != PredicateSLSAProvenanceV02 {
		t.Errorf("provenance kind/type = %s/%s", prov.Kind, prov.PredicateType)
	}
	c := prov.Certificate
	if c == nil || c.Issuer != evNPMIssuer || c.Subject != evNPMSubject || c.SourceRepositoryDigest != evNPMCommit ||
		c.RunnerEnvironment != "github-hosted" || c.SourceRepositoryURI != "https://github.com/sigstore/sigstore-js" {
		t.Errorf("certificate facts = %+v", c)
	}
	p := prov.Provenance
	if p == nil || p.SourceCommit != evNPMCommit || p.WorkflowPath != evNPMWorkflow || p.SourceRef != "refs/heads/main" ||
		p.BuilderID != "https://github.com/actions/runner" || p.BuildType != "https://github.com/npm/cli/gha/v2" ||
		p.SourceRepository != "https://github.com/sigstore/sigstore-js" ||
		p.InvocationID != "https://github.com/sigstore/sigstore-js/actions/runs/4735384265/attempts/1" {
		t.Errorf("provenance facts = %+v", p)
	}
	if prov.SignedAt.Unix() != 1681839912 {
		t.Errorf("SignedAt = %v, want the Rekor integrated time 2023-04-18T17:45:12Z", prov.SignedAt)
	}
	if len(prov.Timestamps) != 1 || !strings.HasPrefix(prov.Timestamps[0], "rekor:") || !strings.HasSuffix(prov.Timestamps[0], "#18300934") {
		t.Errorf("Timestamps = %v", prov.Timestamps)
	}
	if pub.KeyID != evNPMKeyID || pub.Certificate != nil || pub.PredicateType != PredicateNPMPublishV01 || pub.Provenance != nil {
		t.Errorf("publish facts = %+v", pub)
	}
}

func TestVerifyEvidenceRealNPMBundlesRefusals(t *testing.T) {
	tests := []struct {
		name   string
		change func(*EvidenceCheck)
		class  *preflight.Class
	}{
		{"other package bytes", func(c *EvidenceCheck) { c.Artifact = map[string]string{"sha512": strings.Repeat("ab", 64)} }, preflight.ErrTampered},
		{"only a sha256 digest", func(c *EvidenceCheck) { c.Artifact = map[string]string{"sha256": strings.Repeat("ab", 32)} }, preflight.ErrConfig},
		{"other workflow", func(c *EvidenceCheck) { c.Signers[0].Workflow = ".github/workflows/publish.yml" }, preflight.ErrIdentity},
		{"other repository", func(c *EvidenceCheck) { c.Signers[0].Repository = "sigstore/sigstore-go" }, preflight.ErrIdentity},
		{"release tags only", func(c *EvidenceCheck) { c.Signers[0].Ref = ""; c.Signers[0].RefPattern = `^refs/tags/v.*$` }, preflight.ErrIdentity},
		{"self-hosted required", func(c *EvidenceCheck) { c.Signers[0].Runner = "self-hosted" }, preflight.ErrIdentity},
		{"other key", func(c *EvidenceCheck) { c.Signers[1].PublicKey = evOtherKeyPEM }, preflight.ErrIdentity},
		{"keyless only", func(c *EvidenceCheck) { c.Signers = c.Signers[:1] }, preflight.ErrIdentity},
		{"SLSA v1 required", func(c *EvidenceCheck) { c.PredicateTypes = []string{PredicateSLSAProvenanceV1} }, preflight.ErrProvenance},
		{"unanchored subject pattern", func(c *EvidenceCheck) {
			c.Signers[0].Subject = ""
			c.Signers[0].SubjectPattern = `https://github\.com/sigstore/`
		}, preflight.ErrConfig},
		{"no signers", func(c *EvidenceCheck) { c.Signers = nil }, preflight.ErrConfig},
		{"issuer without subject", func(c *EvidenceCheck) { c.Signers[0].Subject = "" }, preflight.ErrConfig},
		{"no material", func(c *EvidenceCheck) { c.Material = nil }, preflight.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := evNPMCheck(t)
			tt.change(&c)
			facts, err := VerifyEvidence(c)
			evAssertClass(t, facts, err, tt.class)
		})
	}
}

// evOtherKeyPEM is an unrelated P-256 public key.
const evOtherKeyPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g==
-----END PUBLIC KEY-----
`

func evAssertClass(t *testing.T, facts []policy.SignatureFacts, err error, class *preflight.Class) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified (%d facts), want %v", len(facts), class)
	}
	if facts != nil {
		t.Errorf("facts returned alongside an error")
	}
	var pe *preflight.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *preflight.Error", err)
	}
	if !errors.Is(err, class) {
		t.Fatalf("error class %v, want %v: %v", pe.Class, class, err)
	}
	if pe.Expected == "" {
		t.Errorf("error without Expected: %v", err)
	}
}

func TestVerifyEvidenceMalformedBundles(t *testing.T) {
	good := evExample(t, "bundle-provenance.json")
	tests := []struct {
		name string
		json []byte
	}{
		{"empty", nil},
		{"not JSON", []byte("not json")},
		{"truncated", good[:len(good)/2]},
		{"JSON array", []byte(`[1,2]`)},
		{"unknown media type", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=9.9"}`)},
		{"no media type", []byte(`{"verificationMaterial":{}}`)},
		{"schema violation", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":"x"}`)},
		{"no content", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)},
		{"oversized", append(append([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","x":"`), make([]byte, MaxBundleSize)...), `"}`...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := evNPMCheck(t)
			c.Bundles = []Bundle{{Name: "in.json", JSON: tt.json}}
			facts, err := VerifyEvidence(c)
			evAssertClass(t, facts, err, preflight.ErrMalformed)
			if !strings.Contains(err.Error(), "in.json") {
				t.Errorf("error does not name the bundle: %v", err)
			}
		})
	}
}

func TestBundleAlgorithms(t *testing.T) {
	algs, err := BundleAlgorithms(Bundle{JSON: evExample(t, "bundle-provenance.json")})
	if err != nil || len(algs) != 1 || algs[0] != "sha512" {
		t.Fatalf("BundleAlgorithms = %v, %v; want [sha512]", algs, err)
	}
	if _, err := BundleAlgorithms(Bundle{JSON: []byte("{}")}); !errors.Is(err, preflight.ErrMalformed) {
		t.Fatalf("BundleAlgorithms({}) error = %v, want ErrMalformed", err)
	}
}

func TestDigestReader(t *testing.T) {
	d, err := DigestReader(strings.NewReader("abc"), "sha256", "sha512", "sha256")
	if err != nil {
		t.Fatal(err)
	}
	if d["sha256"] != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" || len(d) != 2 ||
		!strings.HasPrefix(d["sha512"], "ddaf35a193617aba") {
		t.Errorf("digests = %v", d)
	}
	if _, err := DigestReader(strings.NewReader(""), "md5"); !errors.Is(err, preflight.ErrConfig) {
		t.Errorf("md5: %v, want ErrConfig", err)
	}
	if _, err := DigestFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, preflight.ErrNotFound) {
		t.Errorf("missing file: %v, want ErrNotFound", err)
	}
}

// FuzzVerifyEvidence feeds arbitrary bundle JSON to the verifier. It must
// never panic, never return facts with an error, and fail only with a
// *preflight.Error of a known class.
func FuzzVerifyEvidence(f *testing.F) {
	for _, name := range []string{"bundle-provenance.json", "bundle-publish.json"} {
		f.Add(evExample(f, name))
	}
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_512","digest":"AA=="},"signature":"AA=="}}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.2"}`))
	check := evNPMCheck(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			t.Skip("bounded: larger inputs only exercise the size limit")
		}
		c := check
		c.Bundles = []Bundle{{Name: "fuzz", JSON: data}}
		c.PredicateTypes = nil
		facts, err := VerifyEvidence(c)
		if err == nil {
			if len(facts) != 1 {
				t.Fatalf("verified with %d facts", len(facts))
			}
			return
		}
		if facts != nil {
			t.Fatal("facts alongside an error")
		}
		var pe *preflight.Error
		if !errors.As(err, &pe) || pe.Class == nil {
			t.Fatalf("not a classified *preflight.Error: %v", err)
		}
	})
}

// BenchmarkVerifyNPMProvenance verifies the real npm provenance bundle of
// sigstore@1.3.0 in-process: parse, Rekor SET, Fulcio chain, SCT, DSSE
// signature, identity, predicate. The trusted root is parsed once, outside
// the loop, as a process does.
func BenchmarkVerifyNPMProvenance(b *testing.B) {
	c := evNPMCheck(b)
	c.Bundles = c.Bundles[:1]
	c.Signers = c.Signers[:1]
	c.PredicateTypes = []string{PredicateSLSAProvenanceV02}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyEvidence(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyNPMProvenanceSigstoreGo is the baseline for
// BenchmarkVerifyNPMProvenance: sigstore-go alone (parse and Verify with the
// same requirements and identity), so that the difference is the cost of
// Preflight's evidence layer (classification pre-checks, identity claims,
// predicate parsing and cross-checks).
func BenchmarkVerifyNPMProvenanceSigstoreGo(b *testing.B) {
	tm := evExampleRoot(b)
	raw := evExample(b, "bundle-provenance.json")
	digest, err := hex.DecodeString(evNPMDigest)
	if err != nil {
		b.Fatal(err)
	}
	id, err := sgverify.NewShortCertificateIdentity(evNPMIssuer, "", evNPMSubject, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var bun sgbundle.Bundle
		if err := bun.UnmarshalJSON(raw); err != nil {
			b.Fatal(err)
		}
		v, err := sgverify.NewVerifier(tm, sgverify.WithObserverTimestamps(1), sgverify.WithTransparencyLog(1),
			sgverify.WithSignedCertificateTimestamps(1), sgverify.WithoutStatementPredicate())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(&bun, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha512", digest), sgverify.WithCertificateIdentity(id))); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyEvidenceNPMKeyWindow: with npm's keys.json in the trusted
// material, the pinned publish key is only good within its validity window.
func TestVerifyEvidenceNPMKeyWindow(t *testing.T) {
	c := evNPMCheck(t)
	c.Bundles, c.Signers, c.PredicateTypes = c.Bundles[1:], c.Signers[1:], nil
	npm, err := tuf.NPMAttestationKeys(tuf.EmbeddedNPMKeys())
	if err != nil {
		t.Fatal(err)
	}
	c.Material = root.TrustedMaterialCollection{npm, c.Material}
	if _, err := VerifyEvidence(c); err != nil {
		t.Fatalf("publish attestation of 2023 within the key's window: %v", err)
	}
	// The same key, valid only from 2024: the 2023 signature is outside.
	late := strings.Replace(string(tuf.EmbeddedNPMKeys()), `"start": "2022-12-01T00:00:00.000Z"`, `"start": "2024-01-01T00:00:00.000Z"`, 1)
	npmLate, err := tuf.NPMAttestationKeys([]byte(late))
	if err != nil {
		t.Fatal(err)
	}
	c.Material = root.TrustedMaterialCollection{npmLate, evExampleRoot(t)}
	facts, err := VerifyEvidence(c)
	evAssertClass(t, facts, err, preflight.ErrSignature)
}
