package verifytest_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

const (
	ssRepo     = "acme/weather-mcp"
	ssWorkflow = ".github/workflows/release.yml"
	ssRef      = "refs/tags/v1.0.0"
	ssCommit   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	ssSubject  = "https://github.com/acme/weather-mcp/.github/workflows/release.yml@refs/tags/v1.0.0"
	ssIssuer   = "https://token.actions.githubusercontent.com"
)

// ssFixture is one virtual Sigstore shared by the tests of this file; it is
// safe for concurrent use, and sharing it also puts many entries in its log.
var ssFixture = sync.OnceValues(verifytest.NewSigstore)

func ssInstance(t *testing.T) *verifytest.Sigstore {
	t.Helper()
	s, err := ssFixture()
	if err != nil {
		t.Fatalf("NewSigstore: %v", err)
	}
	return s
}

// ssLoadRoot reads the trusted root the way a verifier does: from JSON.
func ssLoadRoot(t *testing.T, s *verifytest.Sigstore) *root.TrustedRoot {
	t.Helper()
	raw, err := s.TrustedRootJSON()
	if err != nil {
		t.Fatalf("TrustedRootJSON: %v", err)
	}
	tr, err := root.NewTrustedRootFromJSON(raw)
	if err != nil {
		t.Fatalf("NewTrustedRootFromJSON: %v", err)
	}
	return tr
}

// ssRoundTrip re-reads bundle JSON as a verifier receives it, after another
// marshal/unmarshal cycle through sigstore-go.
func ssRoundTrip(t *testing.T, bundleJSON []byte) *bundle.Bundle {
	t.Helper()
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		t.Fatalf("UnmarshalJSON: %v", err)
	}
	again, err := b.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	var out bundle.Bundle
	if err := out.UnmarshalJSON(again); err != nil {
		t.Fatalf("UnmarshalJSON after round trip: %v", err)
	}
	return &out
}

// ssStrictVerifier demands everything the public-good instance provides:
// an SCT, a log entry and an observer timestamp.
func ssStrictVerifier(t *testing.T, tm root.TrustedMaterial) *verify.Verifier {
	t.Helper()
	v, err := verify.NewVerifier(tm, verify.WithSignedCertificateTimestamps(1), verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// ssCertIdentity pins issuer, SAN and the GitHub workflow extensions.
func ssCertIdentity(t *testing.T, ext certificate.Extensions) verify.PolicyOption {
	t.Helper()
	id, err := verify.NewShortCertificateIdentity(ssIssuer, "", ssSubject, "")
	if err != nil {
		t.Fatalf("NewShortCertificateIdentity: %v", err)
	}
	id.Extensions = ext
	return verify.WithCertificateIdentity(id)
}

func ssExpectedExtensions() certificate.Extensions {
	return certificate.Extensions{
		Issuer:                              ssIssuer,
		BuildSignerURI:                      ssSubject,
		BuildSignerDigest:                   ssCommit,
		RunnerEnvironment:                   "github-hosted",
		SourceRepositoryURI:                 "https://github.com/acme/weather-mcp",
		SourceRepositoryDigest:              ssCommit,
		SourceRepositoryRef:                 ssRef,
		SourceRepositoryOwnerURI:            "https://github.com/acme",
		BuildConfigURI:                      ssSubject,
		BuildConfigDigest:                   ssCommit,
		BuildTrigger:                        "push",
		RunInvocationURI:                    "https://github.com/acme/weather-mcp/actions/runs/1/attempts/1",
		SourceRepositoryVisibilityAtSigning: "public",
	}
}

// ssSigned is something signed for a test and how to present the artifact.
type ssSigned struct {
	bundleJSON []byte
	artifact   verify.ArtifactPolicyOption
}

var ssServerBytes = []byte("#!/usr/bin/env node\nconsole.log('weather')\n")

func ssSignBlob(t *testing.T, s *verifytest.Sigstore, opts verifytest.SignOptions) ssSigned {
	t.Helper()
	b, err := s.SignBlob(verifytest.GitHubActions(ssRepo, ssWorkflow, ssRef, ssCommit), ssServerBytes, opts)
	if err != nil {
		t.Fatalf("SignBlob: %v", err)
	}
	return ssSigned{b, verify.WithArtifact(bytes.NewReader(ssServerBytes))}
}

func ssProvenance(t *testing.T) ([]byte, []byte) {
	t.Helper()
	sum := sha256.Sum256(ssServerBytes)
	id := verifytest.GitHubActions(ssRepo, ssWorkflow, ssRef, ssCommit)
	st, err := verifytest.SLSAProvenanceV1("weather-mcp-1.0.0.tgz", map[string]string{"sha256": hex.EncodeToString(sum[:])}, verifytest.ProvenanceFor(id))
	if err != nil {
		t.Fatalf("SLSAProvenanceV1: %v", err)
	}
	return st, sum[:]
}

func ssAttest(t *testing.T, s *verifytest.Sigstore, opts verifytest.SignOptions) ssSigned {
	t.Helper()
	st, digest := ssProvenance(t)
	b, err := s.Attest(verifytest.GitHubActions(ssRepo, ssWorkflow, ssRef, ssCommit), st, opts)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	return ssSigned{b, verify.WithArtifactDigest("sha256", digest)}
}

func TestSigstoreBundlesVerifyAfterJSONRoundTrip(t *testing.T) {
	s := ssInstance(t)
	v := ssStrictVerifier(t, ssLoadRoot(t, s))

	type signFunc func(*testing.T, *verifytest.Sigstore, verifytest.SignOptions) ssSigned
	cases := []struct {
		name      string
		sign      signFunc
		opts      verifytest.SignOptions
		mediaType string
		chain     bool // x509CertificateChain rather than a single certificate
		proof     bool
	}{
		{"blob/v0.1", ssSignBlob, verifytest.SignOptions{BundleVersion: "v0.1"}, "application/vnd.dev.sigstore.bundle+json;version=0.1", true, true},
		{"blob/v0.2", ssSignBlob, verifytest.SignOptions{BundleVersion: "v0.2"}, "application/vnd.dev.sigstore.bundle+json;version=0.2", true, true},
		{"blob/v0.3", ssSignBlob, verifytest.SignOptions{}, "application/vnd.dev.sigstore.bundle.v0.3+json", false, true},
		{"blob/v0.3/sha384", ssSignBlob, verifytest.SignOptions{DigestAlgorithm: crypto.SHA384}, "application/vnd.dev.sigstore.bundle.v0.3+json", false, true},
		{"blob/v0.3/sha512", ssSignBlob, verifytest.SignOptions{DigestAlgorithm: crypto.SHA512}, "application/vnd.dev.sigstore.bundle.v0.3+json", false, true},
		{"blob/v0.1/promise-only", ssSignBlob, verifytest.SignOptions{BundleVersion: "v0.1", NoInclusionProof: true}, "application/vnd.dev.sigstore.bundle+json;version=0.1", true, false},
		{"blob/v0.3/signed-last-month", ssSignBlob, verifytest.SignOptions{SignedAt: time.Now().Add(-30 * 24 * time.Hour)}, "application/vnd.dev.sigstore.bundle.v0.3+json", false, true},
		{"dsse/v0.1", ssAttest, verifytest.SignOptions{BundleVersion: "v0.1"}, "application/vnd.dev.sigstore.bundle+json;version=0.1", true, true},
		{"dsse/v0.2", ssAttest, verifytest.SignOptions{BundleVersion: "v0.2"}, "application/vnd.dev.sigstore.bundle+json;version=0.2", true, true},
		{"dsse/v0.3", ssAttest, verifytest.SignOptions{}, "application/vnd.dev.sigstore.bundle.v0.3+json", false, true},
		{"dsse/v0.3/intoto-entry", ssAttest, verifytest.SignOptions{TlogEntryKind: "intoto"}, "application/vnd.dev.sigstore.bundle.v0.3+json", false, true},
		{"dsse/v0.2/intoto-entry", ssAttest, verifytest.SignOptions{BundleVersion: "v0.2", TlogEntryKind: "intoto"}, "application/vnd.dev.sigstore.bundle+json;version=0.2", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			signed := tc.sign(t, s, tc.opts)
			b := ssRoundTrip(t, signed.bundleJSON)

			if b.GetMediaType() != tc.mediaType {
				t.Errorf("media type = %q, want %q", b.GetMediaType(), tc.mediaType)
			}
			if got := b.GetVerificationMaterial().GetX509CertificateChain() != nil; got != tc.chain {
				t.Errorf("x509CertificateChain present = %v, want %v", got, tc.chain)
			}
			if !b.HasInclusionPromise() {
				t.Error("bundle has no inclusion promise (SET)")
			}
			if b.HasInclusionProof() != tc.proof {
				t.Errorf("inclusion proof present = %v, want %v", b.HasInclusionProof(), tc.proof)
			}

			res, err := v.Verify(b, verify.NewPolicy(signed.artifact, ssCertIdentity(t, ssExpectedExtensions())))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			cert := res.Signature.Certificate
			if cert == nil {
				t.Fatal("result has no certificate summary")
			}
			if cert.SubjectAlternativeName != ssSubject {
				t.Errorf("SAN = %q, want %q", cert.SubjectAlternativeName, ssSubject)
			}
			if cert.Extensions != ssExpectedExtensions() {
				t.Errorf("extensions =\n%+v\nwant\n%+v", cert.Extensions, ssExpectedExtensions())
			}
			var kinds []string
			for _, ts := range res.VerifiedTimestamps {
				kinds = append(kinds, ts.Type)
			}
			if strings.Join(kinds, ",") != "Tlog,TimestampAuthority" {
				t.Errorf("verified timestamps = %v, want [Tlog TimestampAuthority]", kinds)
			}
			if strings.HasPrefix(tc.name, "dsse") {
				if res.Statement == nil || res.Statement.GetPredicateType() != "https://slsa.dev/provenance/v1" {
					t.Errorf("statement = %v, want a SLSA v1 provenance", res.Statement)
				}
			}
		})
	}
}

func TestSigstoreIdentityExtensionsAreEnforced(t *testing.T) {
	s := ssInstance(t)
	v := ssStrictVerifier(t, ssLoadRoot(t, s))
	signed := ssAttest(t, s, verifytest.SignOptions{})
	b := ssRoundTrip(t, signed.bundleJSON)

	// The same workflow built from a branch instead of the release tag.
	want := ssExpectedExtensions()
	want.SourceRepositoryRef = "refs/heads/main"
	_, err := v.Verify(b, verify.NewPolicy(signed.artifact, ssCertIdentity(t, want)))
	var noMatch *verify.ErrNoMatchingCertificateIdentity
	if !errors.As(err, &noMatch) {
		t.Fatalf("Verify with another source ref = %v, want ErrNoMatchingCertificateIdentity", err)
	}
}

func TestSigstoreEmailSubject(t *testing.T) {
	s := ssInstance(t)
	id := verifytest.Identity{Issuer: "https://accounts.google.com", Subject: "maintainer@example.com"}
	b, err := s.SignBlob(id, ssServerBytes, verifytest.SignOptions{})
	if err != nil {
		t.Fatalf("SignBlob: %v", err)
	}
	certID, err := verify.NewShortCertificateIdentity(id.Issuer, "", id.Subject, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := ssStrictVerifier(t, ssLoadRoot(t, s)).Verify(ssRoundTrip(t, b),
		verify.NewPolicy(verify.WithArtifact(bytes.NewReader(ssServerBytes)), verify.WithCertificateIdentity(certID)))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := res.Signature.Certificate.SubjectAlternativeName; got != id.Subject {
		t.Errorf("SAN = %q, want %q", got, id.Subject)
	}
	if (res.Signature.Certificate.Extensions != certificate.Extensions{Issuer: id.Issuer}) {
		t.Errorf("extensions = %+v, want only the issuer", res.Signature.Certificate.Extensions)
	}
}

func TestSigstoreKeySignedBundles(t *testing.T) {
	s := ssInstance(t)
	k, err := verifytest.NewKeySigner()
	if err != nil {
		t.Fatalf("NewKeySigner: %v", err)
	}
	keyTM, err := k.TrustedMaterial()
	if err != nil {
		t.Fatalf("TrustedMaterial: %v", err)
	}
	if !strings.HasPrefix(k.KeyID(), "SHA256:") || !bytes.HasPrefix(k.PublicKeyPEM(), []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Errorf("KeyID %q / PEM %q do not look like an npm registry key", k.KeyID(), k.PublicKeyPEM())
	}
	withKey := root.TrustedMaterialCollection{ssLoadRoot(t, s), keyTM}
	v, err := verify.NewVerifier(withKey, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	withoutKey, err := verify.NewVerifier(ssLoadRoot(t, s), verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	st, digest := ssProvenance(t)

	cases := []struct {
		name     string
		sign     func() ([]byte, error)
		artifact verify.ArtifactPolicyOption
	}{
		{"attest/dsse", func() ([]byte, error) { return s.AttestWithKey(k, st, verifytest.SignOptions{}) }, verify.WithArtifactDigest("sha256", digest)},
		// The npm registry's publish attestation: intoto entry, no TSA timestamp.
		{"attest/intoto-npm", func() ([]byte, error) {
			return s.AttestWithKey(k, st, verifytest.SignOptions{TlogEntryKind: "intoto", NoTimestamp: true})
		}, verify.WithArtifactDigest("sha256", digest)},
		{"blob", func() ([]byte, error) { return s.SignBlobWithKey(k, ssServerBytes, verifytest.SignOptions{}) }, verify.WithArtifact(bytes.NewReader(ssServerBytes))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := tc.sign()
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			b := ssRoundTrip(t, raw)
			if hint := b.GetVerificationMaterial().GetPublicKey().GetHint(); hint != k.KeyID() {
				t.Errorf("public key hint = %q, want %q", hint, k.KeyID())
			}
			res, err := v.Verify(b, verify.NewPolicy(tc.artifact, verify.WithKey()))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Signature.PublicKeyID == nil || string(*res.Signature.PublicKeyID) != k.KeyID() {
				t.Errorf("verified key ID = %v, want %q", res.Signature.PublicKeyID, k.KeyID())
			}
			// sigstore-go first needs the key, looked up by its hint, to
			// compare it with the log entry's; that is where it refuses.
			_, err = withoutKey.Verify(ssRoundTrip(t, raw), verify.NewPolicy(ssFreshArtifact(tc.name, digest), verify.WithKey()))
			if err == nil || !strings.Contains(err.Error(), "transparency log certificate does not match") {
				t.Errorf("Verify without the key = %v, want the log entry's key refused", err)
			}
		})
	}
}

// ssFreshArtifact returns a new artifact option; readers cannot be reused.
func ssFreshArtifact(name string, digest []byte) verify.ArtifactPolicyOption {
	if name == "blob" {
		return verify.WithArtifact(bytes.NewReader(ssServerBytes))
	}
	return verify.WithArtifactDigest("sha256", digest)
}

// TestSigstoreManyEntries signs concurrently, so that proofs are taken at
// many tree sizes and the log's locking is exercised under -race.
func TestSigstoreManyEntries(t *testing.T) {
	s := ssInstance(t)
	v := ssStrictVerifier(t, ssLoadRoot(t, s))
	const n = 12
	bundles := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := verifytest.GitHubActions(ssRepo, ssWorkflow, ssRef, ssCommit)
			bundles[i], errs[i] = s.SignBlob(id, ssServerBytes, verifytest.SignOptions{})
		})
	}
	wg.Wait()
	indexes := map[int64]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("SignBlob %d: %v", i, errs[i])
		}
		b := ssRoundTrip(t, bundles[i])
		entry := b.GetVerificationMaterial().GetTlogEntries()[0]
		if indexes[entry.GetLogIndex()] {
			t.Errorf("log index %d used twice", entry.GetLogIndex())
		}
		indexes[entry.GetLogIndex()] = true
		if got, want := entry.GetInclusionProof().GetTreeSize(), entry.GetLogIndex()+1; got != want {
			t.Errorf("entry %d: proof tree size %d, want %d", entry.GetLogIndex(), got, want)
		}
		if _, err := v.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(ssServerBytes)), ssCertIdentity(t, ssExpectedExtensions()))); err != nil {
			t.Errorf("Verify entry %d: %v", entry.GetLogIndex(), err)
		}
	}
}

func TestSigstoreRefusals(t *testing.T) {
	s := ssInstance(t)
	tr := ssLoadRoot(t, s)
	strict := ssStrictVerifier(t, tr)
	policy := func(signed ssSigned) verify.PolicyBuilder {
		return verify.NewPolicy(signed.artifact, ssCertIdentity(t, ssExpectedExtensions()))
	}

	t.Run("tampered message signature", func(t *testing.T) {
		signed := ssSignBlob(t, s, verifytest.SignOptions{})
		var err error
		if signed.bundleJSON, err = verifytest.TamperSignature(signed.bundleJSON); err != nil {
			t.Fatalf("TamperSignature: %v", err)
		}
		_, err = strict.Verify(ssRoundTrip(t, signed.bundleJSON), policy(signed))
		if err == nil || !strings.Contains(err.Error(), "transparency log signature does not match") {
			t.Fatalf("Verify = %v, want the log entry to disown the signature", err)
		}
		// Without the log entry the signature itself is checked, and fails.
		signed = ssSignBlob(t, s, verifytest.SignOptions{NoTlogEntry: true})
		if signed.bundleJSON, err = verifytest.TamperSignature(signed.bundleJSON); err != nil {
			t.Fatalf("TamperSignature: %v", err)
		}
		v, err := verify.NewVerifier(tr, verify.WithSignedCertificateTimestamps(1), verify.WithSignedTimestamps(1))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(ssRoundTrip(t, signed.bundleJSON), policy(signed))
		if err == nil || !strings.Contains(err.Error(), "timestamp") {
			// The TSA timestamp is over the signature bytes, so it is the first to object.
			t.Fatalf("Verify = %v, want the timestamp to disown the signature", err)
		}
	})

	t.Run("tampered DSSE signature", func(t *testing.T) {
		signed := ssAttest(t, s, verifytest.SignOptions{})
		var err error
		if signed.bundleJSON, err = verifytest.TamperSignature(signed.bundleJSON); err != nil {
			t.Fatalf("TamperSignature: %v", err)
		}
		_, err = strict.Verify(ssRoundTrip(t, signed.bundleJSON), policy(signed))
		if err == nil || !strings.Contains(err.Error(), "transparency log signature does not match") {
			t.Fatalf("Verify = %v, want the log entry to disown the signature", err)
		}
	})

	// Without log entry and timestamp, only the signature check is left.
	t.Run("tampered signature checked alone", func(t *testing.T) {
		now, err := verify.NewVerifier(tr, verify.WithSignedCertificateTimestamps(1), verify.WithCurrentTime())
		if err != nil {
			t.Fatal(err)
		}
		bare := verifytest.SignOptions{NoTlogEntry: true, NoTimestamp: true}
		for _, signed := range []ssSigned{ssSignBlob(t, s, bare), ssAttest(t, s, bare)} {
			tampered, err := verifytest.TamperSignature(signed.bundleJSON)
			if err != nil {
				t.Fatalf("TamperSignature: %v", err)
			}
			_, err = now.Verify(ssRoundTrip(t, tampered), policy(signed))
			if err == nil || !strings.Contains(err.Error(), "failed to verify signature") {
				t.Errorf("Verify = %v, want a signature refusal", err)
			}
		}
	})

	t.Run("swapped DSSE payload", func(t *testing.T) {
		signed := ssAttest(t, s, verifytest.SignOptions{})
		sum := sha256.Sum256(ssServerBytes)
		forged, err := verifytest.SLSAProvenanceV1("weather-mcp-1.0.0.tgz", map[string]string{"sha256": hex.EncodeToString(sum[:])},
			verifytest.Provenance{BuilderID: "https://evil.example/builder", Repository: "https://github.com/evil/fork", Ref: ssRef, Commit: ssCommit})
		if err != nil {
			t.Fatal(err)
		}
		if signed.bundleJSON, err = verifytest.TamperPayload(signed.bundleJSON, forged); err != nil {
			t.Fatalf("TamperPayload: %v", err)
		}
		_, err = strict.Verify(ssRoundTrip(t, signed.bundleJSON), policy(signed))
		if err == nil || !strings.Contains(err.Error(), "payload hash") {
			t.Fatalf("Verify = %v, want a log entry payload hash mismatch", err)
		}
	})

	// sigstore-go refuses a v0.2+ bundle without an inclusion proof when it
	// parses the bundle, before any verification: the promise alone is
	// enough only for v0.1 (see the promise-only case above).
	for _, version := range []string{"v0.2", "v0.3"} {
		t.Run("no inclusion proof/"+version, func(t *testing.T) {
			signed := ssSignBlob(t, s, verifytest.SignOptions{BundleVersion: version, NoInclusionProof: true})
			var b bundle.Bundle
			err := b.UnmarshalJSON(signed.bundleJSON)
			if err == nil || !strings.Contains(err.Error(), "inclusion proof missing") {
				t.Fatalf("UnmarshalJSON = %v, want inclusion proof missing", err)
			}
		})
	}

	t.Run("expired certificate without observer timestamps", func(t *testing.T) {
		signedAt := time.Now().Add(-time.Hour)
		signed := ssSignBlob(t, s, verifytest.SignOptions{SignedAt: signedAt, NoTimestamp: true, NoTlogEntry: true})
		b := ssRoundTrip(t, signed.bundleJSON)
		if _, err := strict.Verify(b, policy(signed)); err == nil {
			t.Fatal("strict verifier accepted a bundle without log entry or timestamp")
		}
		// A verifier that falls back to the current time sees the
		// certificate expired 50 minutes ago.
		now, err := verify.NewVerifier(tr, verify.WithSignedCertificateTimestamps(1), verify.WithCurrentTime())
		if err != nil {
			t.Fatal(err)
		}
		_, err = now.Verify(b, policy(signed))
		if err == nil || !strings.Contains(err.Error(), "leaf certificate verification failed") {
			t.Fatalf("Verify at the current time = %v, want a leaf certificate refusal", err)
		}
		vc, err := b.VerificationContent()
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.FulcioCertificateAuthorities()[0].Verify(vc.Certificate(), time.Now())
		var invalid x509.CertificateInvalidError
		if !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
			t.Errorf("chain verification now = %v, want x509 Expired", err)
		}
		if _, err := tr.FulcioCertificateAuthorities()[0].Verify(vc.Certificate(), signedAt.Add(time.Minute)); err != nil {
			t.Errorf("chain verification at signing time: %v", err)
		}
		// Control: the same verifier accepts a fresh certificate.
		fresh := ssSignBlob(t, s, verifytest.SignOptions{NoTimestamp: true, NoTlogEntry: true})
		if _, err := now.Verify(ssRoundTrip(t, fresh.bundleJSON), policy(fresh)); err != nil {
			t.Errorf("Verify of a fresh certificate at the current time: %v", err)
		}
	})

	t.Run("untrusted instance", func(t *testing.T) {
		other, err := verifytest.NewSigstore()
		if err != nil {
			t.Fatalf("NewSigstore: %v", err)
		}
		signed := ssSignBlob(t, other, verifytest.SignOptions{})
		b := ssRoundTrip(t, signed.bundleJSON)
		if _, err := strict.Verify(b, policy(signed)); err == nil {
			t.Fatal("Verify accepted a bundle from another Sigstore instance")
		}
		vc, err := b.VerificationContent()
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.FulcioCertificateAuthorities()[0].Verify(vc.Certificate(), time.Now())
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("chain verification against the first instance = %v, want x509 UnknownAuthorityError", err)
		}
	})
}

func TestSigstoreSignOptionsRefused(t *testing.T) {
	s := ssInstance(t)
	id := verifytest.GitHubActions(ssRepo, ssWorkflow, ssRef, ssCommit)
	k, err := verifytest.NewKeySigner()
	if err != nil {
		t.Fatal(err)
	}
	st, _ := ssProvenance(t)
	cases := []struct {
		name string
		sign func() ([]byte, error)
	}{
		{"unknown bundle version", func() ([]byte, error) {
			return s.SignBlob(id, ssServerBytes, verifytest.SignOptions{BundleVersion: "v0.4"})
		}},
		{"unsupported digest", func() ([]byte, error) {
			return s.SignBlob(id, ssServerBytes, verifytest.SignOptions{DigestAlgorithm: crypto.SHA1})
		}},
		{"DSSE with SHA-384", func() ([]byte, error) {
			return s.Attest(id, st, verifytest.SignOptions{DigestAlgorithm: crypto.SHA384})
		}},
		{"key signer with SHA-512", func() ([]byte, error) {
			return s.SignBlobWithKey(k, ssServerBytes, verifytest.SignOptions{DigestAlgorithm: crypto.SHA512})
		}},
		{"nil key signer", func() ([]byte, error) { return s.AttestWithKey(nil, st, verifytest.SignOptions{}) }},
		{"signed before the trusted root", func() ([]byte, error) {
			return s.SignBlob(id, ssServerBytes, verifytest.SignOptions{SignedAt: time.Now().Add(-2 * 366 * 24 * time.Hour)})
		}},
		{"negative lifetime", func() ([]byte, error) {
			return s.SignBlob(id, ssServerBytes, verifytest.SignOptions{CertificateLifetime: -time.Minute})
		}},
		{"blob with dsse entry", func() ([]byte, error) {
			return s.SignBlob(id, ssServerBytes, verifytest.SignOptions{TlogEntryKind: "dsse"})
		}},
		{"attestation with hashedrekord entry", func() ([]byte, error) {
			return s.Attest(id, st, verifytest.SignOptions{TlogEntryKind: "hashedrekord"})
		}},
		{"identity without issuer", func() ([]byte, error) {
			return s.SignBlob(verifytest.Identity{Subject: "a@example.com"}, ssServerBytes, verifytest.SignOptions{})
		}},
		{"statement without digest", func() ([]byte, error) {
			return verifytest.SLSAProvenanceV02("x.tgz", nil, verifytest.ProvenanceFor(id))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.sign()
			if !errors.Is(err, preflight.ErrConfig) || !errors.Is(err, preflight.ErrOperational) {
				t.Fatalf("err = %v, want class ErrConfig", err)
			}
			var pe *preflight.Error
			if !errors.As(err, &pe) || pe.Subject == "" {
				t.Errorf("err = %#v, want a *preflight.Error naming its subject", err)
			}
			if out != nil {
				t.Errorf("got output %q alongside an error", out)
			}
		})
	}
}

func TestTamperHelpersRefuseNonBundles(t *testing.T) {
	s := ssInstance(t)
	blob := ssSignBlob(t, s, verifytest.SignOptions{})
	for name, tamper := range map[string]func() ([]byte, error){
		"signature of garbage":   func() ([]byte, error) { return verifytest.TamperSignature([]byte("{not json")) },
		"signature of nothing":   func() ([]byte, error) { return verifytest.TamperSignature([]byte("{}")) },
		"payload of garbage":     func() ([]byte, error) { return verifytest.TamperPayload([]byte("[]"), []byte("x")) },
		"payload of a blob sig.": func() ([]byte, error) { return verifytest.TamperPayload(blob.bundleJSON, []byte("x")) },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tamper()
			if !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("err = %v, want class ErrMalformed", err)
			}
		})
	}
}

func TestSigstoreTrustedRoot(t *testing.T) {
	s := ssInstance(t)
	raw, err := s.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		MediaType string `json:"mediaType"`
		Tlogs     []struct {
			BaseURL   string `json:"baseUrl"`
			PublicKey struct {
				ValidFor struct {
					Start time.Time  `json:"start"`
					End   *time.Time `json:"end"`
				} `json:"validFor"`
			} `json:"publicKey"`
		} `json:"tlogs"`
		CertificateAuthorities []json.RawMessage `json:"certificateAuthorities"`
		Ctlogs                 []json.RawMessage `json:"ctlogs"`
		TimestampAuthorities   []json.RawMessage `json:"timestampAuthorities"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("trusted_root.json: %v", err)
	}
	if doc.MediaType != "application/vnd.dev.sigstore.trustedroot+json;version=0.1" {
		t.Errorf("mediaType = %q", doc.MediaType)
	}
	if len(doc.Tlogs) != 1 || len(doc.CertificateAuthorities) != 1 || len(doc.Ctlogs) != 1 || len(doc.TimestampAuthorities) != 1 {
		t.Fatalf("want one of each service, got %d tlogs, %d CAs, %d ctlogs, %d TSAs",
			len(doc.Tlogs), len(doc.CertificateAuthorities), len(doc.Ctlogs), len(doc.TimestampAuthorities))
	}
	vf := doc.Tlogs[0].PublicKey.ValidFor
	if !vf.Start.Before(time.Now().Add(-364*24*time.Hour)) || vf.End != nil {
		t.Errorf("rekor key valid from %v to %v, want from a year ago with an open end", vf.Start, vf.End)
	}
	// The parsed material is keyed as sigstore-go looks entries up.
	tm, err := s.TrustedMaterial()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.RekorLogs()) != 1 || len(tm.CTLogs()) != 1 || len(tm.FulcioCertificateAuthorities()) != 1 || len(tm.TimestampingAuthorities()) != 1 {
		t.Error("TrustedMaterial does not hold one of each service")
	}
	for id, l := range tm.RekorLogs() {
		if id != hex.EncodeToString(l.ID) {
			t.Errorf("rekor log keyed %q, ID %x", id, l.ID)
		}
	}
}

func TestSLSAProvenance(t *testing.T) {
	id := verifytest.GitHubActions(ssRepo, ssWorkflow, ssRef, ssCommit)
	p := verifytest.ProvenanceFor(id)
	want := verifytest.Provenance{
		BuilderID:    "https://github.com/actions/runner/github-hosted",
		BuildType:    "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
		Repository:   "https://github.com/acme/weather-mcp",
		Ref:          ssRef,
		Commit:       ssCommit,
		WorkflowPath: ssWorkflow,
		InvocationID: "https://github.com/acme/weather-mcp/actions/runs/1/attempts/1",
	}
	if p != want {
		t.Fatalf("ProvenanceFor =\n%+v\nwant\n%+v", p, want)
	}
	digests := map[string]string{"sha256": strings.Repeat("ab", 32), "sha512": strings.Repeat("cd", 64)}

	type generic = map[string]any
	get := func(t *testing.T, v any, path ...any) any {
		t.Helper()
		for _, step := range path {
			switch k := step.(type) {
			case string:
				m, ok := v.(generic)
				if !ok {
					t.Fatalf("%v: not an object at %q", path, k)
				}
				v = m[k]
			case int:
				a, ok := v.([]any)
				if !ok || len(a) <= k {
					t.Fatalf("%v: no element %d", path, k)
				}
				v = a[k]
			}
		}
		return v
	}

	t.Run("v1", func(t *testing.T) {
		raw, err := verifytest.SLSAProvenanceV1("pkg.tgz", digests, p)
		if err != nil {
			t.Fatal(err)
		}
		var st generic
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			path []any
			want string
		}{
			{[]any{"_type"}, "https://in-toto.io/Statement/v1"},
			{[]any{"predicateType"}, "https://slsa.dev/provenance/v1"},
			{[]any{"subject", 0, "name"}, "pkg.tgz"},
			{[]any{"subject", 0, "digest", "sha512"}, digests["sha512"]},
			{[]any{"predicate", "buildDefinition", "buildType"}, want.BuildType},
			{[]any{"predicate", "buildDefinition", "externalParameters", "workflow", "repository"}, want.Repository},
			{[]any{"predicate", "buildDefinition", "externalParameters", "workflow", "ref"}, ssRef},
			{[]any{"predicate", "buildDefinition", "externalParameters", "workflow", "path"}, ssWorkflow},
			{[]any{"predicate", "buildDefinition", "resolvedDependencies", 0, "uri"}, "git+https://github.com/acme/weather-mcp@refs/tags/v1.0.0"},
			{[]any{"predicate", "buildDefinition", "resolvedDependencies", 0, "digest", "gitCommit"}, ssCommit},
			{[]any{"predicate", "runDetails", "builder", "id"}, want.BuilderID},
			{[]any{"predicate", "runDetails", "metadata", "invocationId"}, want.InvocationID},
		} {
			if got := get(t, st, c.path...); got != c.want {
				t.Errorf("%v = %v, want %q", c.path, got, c.want)
			}
		}
	})

	t.Run("v0.2", func(t *testing.T) {
		raw, err := verifytest.SLSAProvenanceV02("pkg.tgz", digests, p)
		if err != nil {
			t.Fatal(err)
		}
		var st generic
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			path []any
			want string
		}{
			{[]any{"_type"}, "https://in-toto.io/Statement/v0.1"},
			{[]any{"predicateType"}, "https://slsa.dev/provenance/v0.2"},
			{[]any{"subject", 0, "digest", "sha256"}, digests["sha256"]},
			{[]any{"predicate", "builder", "id"}, want.BuilderID},
			{[]any{"predicate", "buildType"}, want.BuildType},
			{[]any{"predicate", "invocation", "configSource", "uri"}, "git+https://github.com/acme/weather-mcp@refs/tags/v1.0.0"},
			{[]any{"predicate", "invocation", "configSource", "digest", "sha1"}, ssCommit},
			{[]any{"predicate", "invocation", "configSource", "entryPoint"}, ssWorkflow},
			{[]any{"predicate", "metadata", "buildInvocationId"}, want.InvocationID},
			{[]any{"predicate", "materials", 0, "digest", "sha1"}, ssCommit},
		} {
			if got := get(t, st, c.path...); got != c.want {
				t.Errorf("%v = %v, want %q", c.path, got, c.want)
			}
		}
	})

	t.Run("v0.2 attestation verifies", func(t *testing.T) {
		s := ssInstance(t)
		sum := sha256.Sum256(ssServerBytes)
		raw, err := verifytest.SLSAProvenanceV02("pkg.tgz", map[string]string{"sha256": hex.EncodeToString(sum[:])}, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Attest(id, raw, verifytest.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := ssStrictVerifier(t, ssLoadRoot(t, s)).Verify(ssRoundTrip(t, b),
			verify.NewPolicy(verify.WithArtifactDigest("sha256", sum[:]), ssCertIdentity(t, ssExpectedExtensions())))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got := res.Statement.GetPredicateType(); got != "https://slsa.dev/provenance/v0.2" {
			t.Errorf("predicate type = %q", got)
		}
	})
}
