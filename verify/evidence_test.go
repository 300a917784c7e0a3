package verify_test

import (
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

const (
	evRepo     = "acme/weather-mcp"
	evWorkflow = ".github/workflows/release.yml"
	evRef      = "refs/tags/v1.0.0"
	evCommit   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	evIssuer   = "https://token.actions.githubusercontent.com"
	evSubject  = "https://github.com/acme/weather-mcp/.github/workflows/release.yml@refs/tags/v1.0.0"
)

var evServer = []byte("#!/usr/bin/env node\nconsole.log('weather')\n")

// One virtual Sigstore for the file (it is safe for concurrent use), and a
// second one whose CA nobody trusts.
var (
	evSigstore      = sync.OnceValues(verifytest.NewSigstore)
	evOtherSigstore = sync.OnceValues(verifytest.NewSigstore)
)

type evEnv struct {
	s        *verifytest.Sigstore
	material root.TrustedMaterial
	id       verifytest.Identity
	digests  map[string]string
}

func newEvEnv(t *testing.T) *evEnv {
	t.Helper()
	s, err := evSigstore()
	if err != nil {
		t.Fatalf("NewSigstore: %v", err)
	}
	raw, err := s.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRootFromJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	s256 := sha256.Sum256(evServer)
	s384 := sha512.Sum384(evServer)
	s512 := sha512.Sum512(evServer)
	return &evEnv{s: s, material: tr, id: verifytest.GitHubActions(evRepo, evWorkflow, evRef, evCommit),
		digests: map[string]string{"sha256": hex.EncodeToString(s256[:]), "sha384": hex.EncodeToString(s384[:]), "sha512": hex.EncodeToString(s512[:])}}
}

// evWithoutLogs is a deployment with a Fulcio CA and a TSA but no
// transparency log: the verifier then requires no log entry, only a
// verified timestamp.
type evWithoutLogs struct{ root.TrustedMaterial }

func (evWithoutLogs) RekorLogs() map[string]*root.TransparencyLog { return nil }

func (e *evEnv) signer() policy.Signer {
	return policy.Signer{Issuer: evIssuer, Subject: evSubject, Repository: evRepo, Ref: evRef,
		Workflow: evWorkflow, Trigger: "push", Runner: "github-hosted"}
}

func (e *evEnv) check(bundles ...[]byte) verify.EvidenceCheck {
	c := verify.EvidenceCheck{Material: e.material, Artifact: e.digests, Signers: []policy.Signer{e.signer()}}
	for i, b := range bundles {
		c.Bundles = append(c.Bundles, verify.Bundle{Name: "b" + string(rune('0'+i)), JSON: b})
	}
	return c
}

func (e *evEnv) signBlob(t *testing.T, id verifytest.Identity, artifact []byte, opts verifytest.SignOptions) []byte {
	t.Helper()
	b, err := e.s.SignBlob(id, artifact, opts)
	if err != nil {
		t.Fatalf("SignBlob: %v", err)
	}
	return b
}

func (e *evEnv) attest(t *testing.T, id verifytest.Identity, statement []byte, opts verifytest.SignOptions) []byte {
	t.Helper()
	b, err := e.s.Attest(id, statement, opts)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	return b
}

func (e *evEnv) provenanceV1(t *testing.T, digests map[string]string, p verifytest.Provenance) []byte {
	t.Helper()
	st, err := verifytest.SLSAProvenanceV1("weather-mcp.tgz", digests, p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func evWantClass(t *testing.T, facts []policy.SignatureFacts, err error, class *preflight.Class) {
	t.Helper()
	if err == nil {
		t.Fatalf("verified (%d facts), want %v", len(facts), class)
	}
	if facts != nil {
		t.Errorf("facts returned alongside an error")
	}
	var pe *preflight.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%v is not a *preflight.Error", err)
	}
	if !errors.Is(err, class) {
		t.Fatalf("class %v, want %v: %v", pe.Class, class, err)
	}
	t.Log(err)
	if pe.Expected == "" || pe.Subject == "" {
		t.Errorf("error without Subject or Expected: %v", err)
	}
	if class.Security() && pe.Hint == "" {
		t.Errorf("security error without a Hint: %v", err)
	}
}

func TestVerifyEvidenceVirtualSigstore(t *testing.T) {
	e := newEvEnv(t)
	prov := verifytest.ProvenanceFor(e.id)
	tests := []struct {
		name   string
		bundle func(t *testing.T) []byte
		kind   string
	}{
		{"message signature v0.3", func(t *testing.T) []byte { return e.signBlob(t, e.id, evServer, verifytest.SignOptions{}) }, "message-signature"},
		{"message signature v0.2", func(t *testing.T) []byte {
			return e.signBlob(t, e.id, evServer, verifytest.SignOptions{BundleVersion: "v0.2"})
		}, "message-signature"},
		{"message signature v0.1", func(t *testing.T) []byte {
			return e.signBlob(t, e.id, evServer, verifytest.SignOptions{BundleVersion: "v0.1"})
		}, "message-signature"},
		{"message signature sha384", func(t *testing.T) []byte {
			return e.signBlob(t, e.id, evServer, verifytest.SignOptions{DigestAlgorithm: crypto.SHA384})
		}, "message-signature"},
		{"message signature sha512", func(t *testing.T) []byte {
			return e.signBlob(t, e.id, evServer, verifytest.SignOptions{DigestAlgorithm: crypto.SHA512})
		}, "message-signature"},
		{"expired certificate, signed in its validity", func(t *testing.T) []byte {
			return e.signBlob(t, e.id, evServer, verifytest.SignOptions{SignedAt: time.Now().Add(-48 * time.Hour)})
		}, "message-signature"},
		{"timestamp only, in a deployment without a log", func(t *testing.T) []byte {
			return e.signBlob(t, e.id, evServer, verifytest.SignOptions{NoTlogEntry: true})
		}, "message-signature"},
		{"SLSA v1 provenance, sha512 subject", func(t *testing.T) []byte {
			return e.attest(t, e.id, e.provenanceV1(t, map[string]string{"sha512": e.digests["sha512"]}, prov), verifytest.SignOptions{})
		}, "dsse"},
		{"SLSA v1 provenance, intoto entry, v0.1", func(t *testing.T) []byte {
			return e.attest(t, e.id, e.provenanceV1(t, map[string]string{"sha256": e.digests["sha256"]}, prov),
				verifytest.SignOptions{BundleVersion: "v0.1", TlogEntryKind: "intoto"})
		}, "dsse"},
		{"SLSA v0.2 provenance", func(t *testing.T) []byte {
			st, err := verifytest.SLSAProvenanceV02("weather-mcp.tgz", map[string]string{"sha256": e.digests["sha256"]}, prov)
			if err != nil {
				t.Fatal(err)
			}
			return e.attest(t, e.id, st, verifytest.SignOptions{BundleVersion: "v0.2"})
		}, "dsse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.check(tt.bundle(t))
			if strings.Contains(tt.name, "without a log") {
				c.Material = evWithoutLogs{c.Material}
			}
			facts, err := verify.VerifyEvidence(c)
			if err != nil {
				t.Fatalf("VerifyEvidence: %v", err)
			}
			f := facts[0]
			if f.Kind != tt.kind || f.Certificate == nil || f.Certificate.Subject != evSubject || f.SignedAt.IsZero() || len(f.Timestamps) == 0 {
				t.Errorf("facts = %+v", f)
			}
			if tt.kind == "dsse" {
				p := f.Provenance
				if p == nil || p.SourceCommit != evCommit || p.SourceRef != evRef || p.WorkflowPath != evWorkflow ||
					p.SourceRepository != "https://github.com/"+evRepo || p.BuilderID != prov.BuilderID {
					t.Errorf("provenance = %+v", p)
				}
			}
		})
	}
}

func TestVerifyEvidenceKeySigner(t *testing.T) {
	e := newEvEnv(t)
	k, err := verifytest.NewKeySigner()
	if err != nil {
		t.Fatal(err)
	}
	st, err := verifytest.SLSAProvenanceV1("weather-mcp.tgz", map[string]string{"sha256": e.digests["sha256"]}, verifytest.ProvenanceFor(e.id))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.s.AttestWithKey(k, st, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := e.check(b)
	c.Signers = []policy.Signer{{PublicKey: string(k.PublicKeyPEM())}}
	facts, err := verify.VerifyEvidence(c)
	if err != nil {
		t.Fatalf("VerifyEvidence: %v", err)
	}
	if facts[0].KeyID == "" || facts[0].Certificate != nil || facts[0].Provenance == nil {
		t.Errorf("facts = %+v", facts[0])
	}

	other, err := verifytest.NewKeySigner()
	if err != nil {
		t.Fatal(err)
	}
	c.Signers = []policy.Signer{{PublicKey: string(other.PublicKeyPEM())}}
	facts, err = verify.VerifyEvidence(c)
	evWantClass(t, facts, err, preflight.ErrIdentity)

	c.Signers = []policy.Signer{e.signer()}
	facts, err = verify.VerifyEvidence(c)
	evWantClass(t, facts, err, preflight.ErrIdentity)
}

// TestVerifyEvidenceRefusals has one negative for every check, each
// asserting the class of the failure.
func TestVerifyEvidenceRefusals(t *testing.T) {
	e := newEvEnv(t)
	prov := verifytest.ProvenanceFor(e.id)
	sha256Only := map[string]string{"sha256": e.digests["sha256"]}
	selfHosted := e.id
	selfHosted.RunnerEnvironment = "self-hosted"

	tests := []struct {
		name  string
		check func(t *testing.T) verify.EvidenceCheck
		class *preflight.Class
	}{
		{"wrong subject", func(t *testing.T) verify.EvidenceCheck {
			id := verifytest.GitHubActions(evRepo, ".github/workflows/evil.yml", evRef, evCommit)
			return e.check(e.signBlob(t, id, evServer, verifytest.SignOptions{}))
		}, preflight.ErrIdentity},
		{"wrong issuer", func(t *testing.T) verify.EvidenceCheck {
			id := e.id
			id.Issuer = "https://evil.example"
			return e.check(e.signBlob(t, id, evServer, verifytest.SignOptions{}))
		}, preflight.ErrIdentity},
		{"issuer pattern does not match", func(t *testing.T) verify.EvidenceCheck {
			c := e.check(e.signBlob(t, e.id, evServer, verifytest.SignOptions{}))
			c.Signers[0].Issuer, c.Signers[0].IssuerPattern = "", `^https://gitlab\.com$`
			return c
		}, preflight.ErrIdentity},
		{"ref is a branch, tags required", func(t *testing.T) verify.EvidenceCheck {
			id := verifytest.GitHubActions(evRepo, evWorkflow, "refs/heads/main", evCommit)
			c := e.check(e.signBlob(t, id, evServer, verifytest.SignOptions{}))
			c.Signers[0].Subject, c.Signers[0].SubjectPattern = "", `^https://github\.com/acme/weather-mcp/\.github/workflows/release\.yml@.*$`
			c.Signers[0].Ref, c.Signers[0].RefPattern = "", `^refs/tags/v[0-9.]+$`
			return c
		}, preflight.ErrIdentity},
		{"self-hosted runner, hosted required", func(t *testing.T) verify.EvidenceCheck {
			return e.check(e.signBlob(t, selfHosted, evServer, verifytest.SignOptions{}))
		}, preflight.ErrIdentity},
		{"tampered artifact, message signature", func(t *testing.T) verify.EvidenceCheck {
			return e.check(e.signBlob(t, e.id, []byte("other bytes"), verifytest.SignOptions{}))
		}, preflight.ErrTampered},
		{"tampered signature", func(t *testing.T) verify.EvidenceCheck {
			b, err := verifytest.TamperSignature(e.signBlob(t, e.id, evServer, verifytest.SignOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			return e.check(b)
		}, preflight.ErrSignature},
		{"tampered DSSE signature", func(t *testing.T) verify.EvidenceCheck {
			b, err := verifytest.TamperSignature(e.attest(t, e.id, e.provenanceV1(t, sha256Only, prov), verifytest.SignOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			return e.check(b)
		}, preflight.ErrSignature},
		{"swapped statement under a genuine signature", func(t *testing.T) verify.EvidenceCheck {
			evil := prov
			evil.Repository = "https://github.com/evil/weather-mcp"
			b, err := verifytest.TamperPayload(e.attest(t, e.id, e.provenanceV1(t, sha256Only, prov), verifytest.SignOptions{}), e.provenanceV1(t, sha256Only, evil))
			if err != nil {
				t.Fatal(err)
			}
			return e.check(b)
		}, preflight.ErrSignature},
		{"certificate expired and no timestamp", func(t *testing.T) verify.EvidenceCheck {
			// A deployment without a log, so that only the missing time fails.
			c := e.check(e.signBlob(t, e.id, evServer, verifytest.SignOptions{
				SignedAt: time.Now().Add(-48 * time.Hour), NoTimestamp: true, NoTlogEntry: true}))
			c.Material = evWithoutLogs{c.Material}
			return c
		}, preflight.ErrSignature},
		{"no transparency-log entry", func(t *testing.T) verify.EvidenceCheck {
			return e.check(e.signBlob(t, e.id, evServer, verifytest.SignOptions{NoTlogEntry: true, NoTimestamp: true}))
		}, preflight.ErrSignature},
		{"v0.3 bundle without an inclusion proof", func(t *testing.T) verify.EvidenceCheck {
			return e.check(e.signBlob(t, e.id, evServer, verifytest.SignOptions{NoInclusionProof: true}))
		}, preflight.ErrSignature},
		{"untrusted CA", func(t *testing.T) verify.EvidenceCheck {
			other, err := evOtherSigstore()
			if err != nil {
				t.Fatal(err)
			}
			b, err := other.SignBlob(e.id, evServer, verifytest.SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return e.check(b)
		}, preflight.ErrSignature},
		{"digest algorithm mismatch", func(t *testing.T) verify.EvidenceCheck {
			c := e.check(e.signBlob(t, e.id, evServer, verifytest.SignOptions{DigestAlgorithm: crypto.SHA384}))
			c.Artifact = map[string]string{"sha256": e.digests["sha256"], "sha512": e.digests["sha512"]}
			return c
		}, preflight.ErrConfig},
		{"statement subject mismatch", func(t *testing.T) verify.EvidenceCheck {
			other := sha256.Sum256([]byte("other bytes"))
			return e.check(e.attest(t, e.id, e.provenanceV1(t, map[string]string{"sha256": hex.EncodeToString(other[:])}, prov), verifytest.SignOptions{}))
		}, preflight.ErrTampered},
		{"predicate builder hosted, certificate self-hosted", func(t *testing.T) verify.EvidenceCheck {
			c := e.check(e.attest(t, selfHosted, e.provenanceV1(t, sha256Only, prov), verifytest.SignOptions{}))
			c.Signers[0].Runner = "" // the signer rule allows either; the provenance must still not lie
			return c
		}, preflight.ErrProvenance},
		{"predicate repository disagrees with certificate", func(t *testing.T) verify.EvidenceCheck {
			p := prov
			p.Repository = "https://github.com/acme/other"
			return e.check(e.attest(t, e.id, e.provenanceV1(t, sha256Only, p), verifytest.SignOptions{}))
		}, preflight.ErrProvenance},
		{"predicate commit disagrees with certificate", func(t *testing.T) verify.EvidenceCheck {
			p := prov
			p.Commit = strings.Repeat("0", 40)
			st, err := verifytest.SLSAProvenanceV02("weather-mcp.tgz", sha256Only, p)
			if err != nil {
				t.Fatal(err)
			}
			return e.check(e.attest(t, e.id, st, verifytest.SignOptions{}))
		}, preflight.ErrProvenance},
		{"predicate workflow disagrees with certificate", func(t *testing.T) verify.EvidenceCheck {
			p := prov
			p.WorkflowPath = ".github/workflows/other.yml"
			return e.check(e.attest(t, e.id, e.provenanceV1(t, sha256Only, p), verifytest.SignOptions{}))
		}, preflight.ErrProvenance},
		{"predicate builder is another workflow", func(t *testing.T) verify.EvidenceCheck {
			p := prov
			p.BuilderID = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0"
			return e.check(e.attest(t, e.id, e.provenanceV1(t, sha256Only, p), verifytest.SignOptions{}))
		}, preflight.ErrProvenance},
		{"required provenance missing", func(t *testing.T) verify.EvidenceCheck {
			c := e.check(e.signBlob(t, e.id, evServer, verifytest.SignOptions{}))
			c.PredicateTypes = []string{verify.PredicateSLSAProvenanceV1}
			return c
		}, preflight.ErrProvenance},
		{"malformed provenance", func(t *testing.T) verify.EvidenceCheck {
			st := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"` + e.digests["sha256"] + `"}}],` +
				`"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":"nope"}}`)
			return e.check(e.attest(t, e.id, st, verifytest.SignOptions{}))
		}, preflight.ErrProvenance},
		{"one good bundle, one bad", func(t *testing.T) verify.EvidenceCheck {
			id := e.id
			id.Issuer = "https://evil.example"
			return e.check(e.signBlob(t, e.id, evServer, verifytest.SignOptions{}), e.signBlob(t, id, evServer, verifytest.SignOptions{}))
		}, preflight.ErrIdentity},
		{"key signature where keyless is required", func(t *testing.T) verify.EvidenceCheck {
			k, err := verifytest.NewKeySigner()
			if err != nil {
				t.Fatal(err)
			}
			b, err := e.s.SignBlobWithKey(k, evServer, verifytest.SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return e.check(b)
		}, preflight.ErrIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts, err := verify.VerifyEvidence(tt.check(t))
			evWantClass(t, facts, err, tt.class)
		})
	}
}

// TestVerifyEvidenceReusableWorkflow: a reusable workflow signs as itself
// (BuildSignerURI), so the policy names it with its repository.
func TestVerifyEvidenceReusableWorkflow(t *testing.T) {
	e := newEvEnv(t)
	id := e.id
	id.BuildSignerURI = "https://github.com/acme/shared/.github/workflows/publish.yml@refs/tags/v3"
	id.Subject = id.BuildSignerURI
	b := e.signBlob(t, id, evServer, verifytest.SignOptions{})
	c := e.check(b)
	c.Signers[0].Subject = id.Subject
	c.Signers[0].Workflow = "acme/shared/.github/workflows/publish.yml"
	if _, err := verify.VerifyEvidence(c); err != nil {
		t.Fatalf("reusable workflow named with its repository: %v", err)
	}
	c.Signers[0].Workflow = ".github/workflows/publish.yml" // would mean acme/weather-mcp's own
	facts, err := verify.VerifyEvidence(c)
	evWantClass(t, facts, err, preflight.ErrIdentity)
}

func TestVerifyEvidenceSignerRules(t *testing.T) {
	e := newEvEnv(t)
	b := e.signBlob(t, e.id, evServer, verifytest.SignOptions{})
	tests := []struct {
		name   string
		signer policy.Signer
		class  *preflight.Class // nil: accepted and matching
	}{
		{"anchored patterns", policy.Signer{IssuerPattern: `^https://token\.actions\.githubusercontent\.com$`,
			SubjectPattern: `^https://github\.com/acme/weather-mcp/\.github/workflows/release\.yml@refs/tags/v.*$`}, nil},
		{"anchored alternatives", policy.Signer{Issuer: evIssuer, SubjectPattern: `^(https://github\.com/acme/x@.*|https://github\.com/acme/weather-mcp/.*)$`}, nil},
		{"unanchored start", policy.Signer{Issuer: evIssuer, SubjectPattern: `https://github\.com/acme/.*$`}, preflight.ErrConfig},
		{"unanchored end", policy.Signer{Issuer: evIssuer, SubjectPattern: `^https://github\.com/acme/`}, preflight.ErrConfig},
		{"one alternative unanchored", policy.Signer{Issuer: evIssuer, SubjectPattern: `^https://github\.com/acme/.*$|evil`}, preflight.ErrConfig},
		{"multi-line anchors", policy.Signer{Issuer: evIssuer, SubjectPattern: `(?m)^https://.*$`}, preflight.ErrConfig},
		{"unanchored issuer", policy.Signer{IssuerPattern: `token\.actions`, Subject: evSubject}, preflight.ErrConfig},
		{"unanchored ref", policy.Signer{Issuer: evIssuer, Subject: evSubject, RefPattern: `refs/tags/`}, preflight.ErrConfig},
		{"empty", policy.Signer{}, preflight.ErrConfig},
		{"issuer only", policy.Signer{Issuer: evIssuer}, preflight.ErrConfig},
		{"subject only", policy.Signer{Subject: evSubject}, preflight.ErrConfig},
		{"issuer and pattern", policy.Signer{Issuer: evIssuer, IssuerPattern: `^x$`, Subject: evSubject}, preflight.ErrConfig},
		{"key and identity", policy.Signer{PublicKey: "x", Issuer: evIssuer, Subject: evSubject}, preflight.ErrConfig},
		{"unreadable key", policy.Signer{PublicKey: "not a key"}, preflight.ErrConfig},
		{"bad runner", policy.Signer{Issuer: evIssuer, Subject: evSubject, Runner: "hosted"}, preflight.ErrConfig},
		{"bad repository", policy.Signer{Issuer: evIssuer, Subject: evSubject, Repository: "https://github.com/acme/weather-mcp"}, preflight.ErrConfig},
		{"bad workflow", policy.Signer{Issuer: evIssuer, Subject: evSubject, Workflow: "release.yml"}, preflight.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.check(b)
			c.Signers = []policy.Signer{tt.signer}
			facts, err := verify.VerifyEvidence(c)
			if tt.class == nil {
				if err != nil {
					t.Fatalf("VerifyEvidence: %v", err)
				}
				return
			}
			evWantClass(t, facts, err, tt.class)
		})
	}
}
