package verify

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
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
