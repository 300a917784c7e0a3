package verify

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
)

// MaxBundleSize bounds the JSON of one Sigstore bundle. Real bundles are a
// few kilobytes; DSSE attestations carrying an SBOM or a large provenance
// predicate reach a few megabytes. 16 MiB leaves room for those while keeping
// a hostile input from exhausting memory (parsing costs a small multiple of
// the input size).
const MaxBundleSize = 16 << 20

// evMaxBundles bounds how many bundles one check accepts.
const evMaxBundles = 64

// Bundle is one Sigstore bundle as received: its JSON and a name for
// messages (a file name or a URL).
type Bundle struct {
	Name string
	JSON []byte
}

// EvidenceCheck says which evidence must prove what about which artifact.
// All fields but PredicateTypes are required; a zero or empty field is an
// ErrConfig failure, never a wildcard.
type EvidenceCheck struct {
	// Material is the Sigstore trust root (see tuf.LoadSigstoreRoot). The
	// verifier requires what the material can check: an inclusion proof or
	// promise from a listed transparency log when the material lists any
	// Rekor log, an SCT when it lists any CT log, and always at least one
	// verified observer timestamp (log integrated time or RFC 3161).
	Material root.TrustedMaterial
	// Artifact holds the artifact's digests by algorithm ("sha256",
	// "sha384", "sha512") as hex. Hash once with DigestFile or
	// DigestReader, asking for every algorithm the evidence uses (npm
	// attestations use sha512).
	Artifact map[string]string
	// Bundles is the evidence. Every bundle must verify and match a signer.
	Bundles []Bundle
	// Signers are the identities allowed to sign. Each bundle must match at
	// least one.
	Signers []policy.Signer
	// PredicateTypes lists in-toto predicate types that must each be present
	// among the verified DSSE statements, for example
	// "https://slsa.dev/provenance/v1".
	PredicateTypes []string
}

// Predicate types Preflight understands.
const (
	PredicateSLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	PredicateSLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	PredicateNPMPublishV01     = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
)

// VerifyEvidence verifies every bundle against the trusted material, the
// artifact digests and the allowed signers, and returns one SignatureFacts
// per bundle, in order. Nothing is returned alongside an error.
//
// Failures match these classes: ErrConfig (an invalid check or signer),
// ErrMalformed (bundle JSON that cannot be parsed, exceeds MaxBundleSize or
// has an unknown media type), ErrTampered (the evidence is about other
// bytes), ErrSignature (signature, certificate chain, SCT, transparency log
// or timestamp), ErrIdentity (a valid signature by a signer the check does
// not allow) and ErrProvenance (a predicate that is missing, malformed or
// contradicts the certificate). Every error is a *preflight.Error.
//
// VerifyEvidence does no I/O and is safe for concurrent use as long as the
// trusted material is.
func VerifyEvidence(c EvidenceCheck) ([]policy.SignatureFacts, error) {
	signers, err := evCompileCheck(c)
	if err != nil {
		return nil, err
	}
	facts := make([]policy.SignatureFacts, 0, len(c.Bundles))
	for _, b := range c.Bundles {
		f, err := evVerifyBundle(c, signers, b)
		if err != nil {
			return nil, err
		}
		facts = append(facts, f)
	}
	for _, want := range c.PredicateTypes {
		found := false
		for _, f := range facts {
			if f.Kind == evKindDSSE && f.PredicateType == want {
				found = true
				break
			}
		}
		if !found {
			return nil, &preflight.Error{
				Class:    preflight.ErrProvenance,
				Subject:  "evidence",
				Expected: "a verified attestation with predicate type " + want,
				Found:    evFoundPredicates(facts),
				Hint:     "supply the bundle carrying that attestation (for npm, the provenance bundle from the registry's attestations endpoint)",
			}
		}
	}
	return facts, nil
}

const (
	evKindMessage = "message-signature"
	evKindDSSE    = "dsse"
)

func evFoundPredicates(facts []policy.SignatureFacts) string {
	var types []string
	for _, f := range facts {
		if f.PredicateType != "" {
			types = append(types, f.PredicateType)
		}
	}
	if len(types) == 0 {
		return "no attestation"
	}
	return strings.Join(types, ", ")
}

func evCompileCheck(c EvidenceCheck) (*evSigners, error) {
	cfg := func(expected, found, hint string) error {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "evidence check", Expected: expected, Found: found, Hint: hint}
	}
	if c.Material == nil {
		return nil, cfg("trusted material", "", "load it once with tuf.LoadSigstoreRoot and pass it in")
	}
	if len(c.Artifact) == 0 {
		return nil, cfg("at least one artifact digest", "", "hash the artifact with DigestFile or DigestReader")
	}
	for alg, d := range c.Artifact {
		n, ok := evDigestSizes[alg]
		if !ok {
			return nil, cfg("digest algorithm sha256, sha384 or sha512", alg, "")
		}
		if b, err := hex.DecodeString(d); err != nil || len(b) != n {
			return nil, cfg(fmt.Sprintf("%d hex characters for %s", 2*n, alg), d, "")
		}
	}
	if len(c.Bundles) == 0 {
		return nil, cfg("at least one bundle", "", "")
	}
	if len(c.Bundles) > evMaxBundles {
		return nil, cfg(fmt.Sprintf("at most %d bundles", evMaxBundles), fmt.Sprint(len(c.Bundles)), "")
	}
	return evCompileSigners(c.Signers)
}

var evDigestSizes = map[string]int{"sha256": sha256.Size, "sha384": sha512.Size384, "sha512": sha512.Size}

// evMediaTypes maps the bundle media types Preflight accepts to versions.
var evMediaTypes = map[string]string{
	"application/vnd.dev.sigstore.bundle+json;version=0.1": "v0.1",
	"application/vnd.dev.sigstore.bundle+json;version=0.2": "v0.2",
	"application/vnd.dev.sigstore.bundle+json;version=0.3": "v0.3",
	"application/vnd.dev.sigstore.bundle.v0.3+json":        "v0.3",
}

// evParseBundle parses and structurally validates one bundle. It reports a
// tlog entry without the inclusion proof (v0.2+) or promise (v0.1) its
// version requires as ErrSignature: the JSON is fine, the evidence is not.
func evParseBundle(b Bundle) (*sgbundle.Bundle, string, error) {
	subject := evBundleName(b)
	malformed := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: expected, Found: found, Err: err,
			Hint: "pass the bundle exactly as the signer produced it (a Sigstore bundle v0.1 to v0.3 in JSON)"}
	}
	if len(b.JSON) > MaxBundleSize {
		return nil, "", malformed(fmt.Sprintf("at most %d bytes of bundle JSON", MaxBundleSize), fmt.Sprintf("%d bytes", len(b.JSON)), nil)
	}
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(b.JSON, &head); err != nil {
		return nil, "", malformed("Sigstore bundle JSON", "invalid JSON", err)
	}
	version, ok := evMediaTypes[head.MediaType]
	if !ok {
		return nil, "", malformed("a Sigstore bundle media type (v0.1, v0.2 or v0.3)", fmt.Sprintf("%q", head.MediaType), nil)
	}
	pb := new(protobundle.Bundle)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b.JSON, pb); err != nil {
		return nil, "", malformed("Sigstore bundle JSON", "a document that does not follow the bundle schema", err)
	}
	for i, e := range pb.GetVerificationMaterial().GetTlogEntries() {
		missing := ""
		switch {
		case version == "v0.1" && e.GetInclusionPromise() == nil:
			missing = "an inclusion promise"
		case version != "v0.1" && e.GetInclusionProof() == nil:
			missing = "an inclusion proof"
		}
		if missing != "" {
			return nil, "", &preflight.Error{Class: preflight.ErrSignature, Subject: subject,
				Expected: fmt.Sprintf("transparency-log entry %d with %s (required by bundle %s)", i, missing, version),
				Found:    "an entry without it",
				Hint:     "ask the signer for a complete bundle; an entry that is not proven to be in the log proves nothing"}
		}
	}
	sb, err := sgbundle.NewBundle(pb)
	if err != nil {
		return nil, "", malformed("a valid Sigstore bundle "+version, "an invalid bundle", err)
	}
	return sb, version, nil
}

func evBundleName(b Bundle) string {
	if b.Name != "" {
		return "bundle " + b.Name
	}
	return "bundle"
}

// evHashNames maps protobuf hash algorithm names to Preflight's.
var evHashNames = map[string]string{"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}

// evStatement is the part of an in-toto statement Preflight reads.
type evStatement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

// evBindArtifact checks, before any cryptography, that the bundle is about
// the artifact, so that a digest mismatch is reported as ErrTampered rather
// than as a signature failure. It returns the digest sigstore-go must
// check (the signature itself is then verified over it) and, for DSSE, the
// statement as decoded from the not yet verified payload.
func evBindArtifact(c EvidenceCheck, sb *sgbundle.Bundle, subject string) (sgverify.ArtifactDigest, *evStatement, error) {
	content, err := sb.SignatureContent()
	if err != nil {
		return sgverify.ArtifactDigest{}, nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a message signature or DSSE envelope", Err: err}
	}
	algs := evSortedKeys(c.Artifact)
	if msg := content.MessageSignatureContent(); msg != nil {
		alg := evHashNames[msg.DigestAlgorithm()]
		want, ok := c.Artifact[alg]
		if !ok {
			return sgverify.ArtifactDigest{}, nil, evAlgorithmMismatch(subject, []string{evOr(alg, msg.DigestAlgorithm())}, algs)
		}
		if !strings.EqualFold(hex.EncodeToString(msg.Digest()), want) {
			return sgverify.ArtifactDigest{}, nil, &preflight.Error{Class: preflight.ErrTampered, Subject: subject,
				Expected: alg + ":" + strings.ToLower(want) + " (the artifact)", Found: alg + ":" + hex.EncodeToString(msg.Digest()) + " (signed by the bundle)",
				Hint: "the artifact is not the one that was signed; fetch it again from the publisher"}
		}
		raw, _ := hex.DecodeString(want)
		return sgverify.ArtifactDigest{Algorithm: alg, Digest: raw}, nil, nil
	}
	env := content.EnvelopeContent()
	if env == nil || env.RawEnvelope() == nil {
		return sgverify.ArtifactDigest{}, nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a message signature or DSSE envelope", Found: "neither"}
	}
	raw := env.RawEnvelope()
	if raw.PayloadType != "application/vnd.in-toto+json" {
		return sgverify.ArtifactDigest{}, nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject,
			Expected: "DSSE payload type application/vnd.in-toto+json", Found: raw.PayloadType}
	}
	payload, err := raw.DecodeB64Payload()
	if err != nil {
		return sgverify.ArtifactDigest{}, nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a base64 DSSE payload", Err: err}
	}
	st := new(evStatement)
	if err := json.Unmarshal(payload, st); err != nil {
		return sgverify.ArtifactDigest{}, nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "an in-toto statement", Found: "invalid JSON", Err: err}
	}
	digests := 0
	for _, s := range st.Subject {
		digests += len(s.Digest)
	}
	if digests == 0 {
		// Nothing to bind the artifact to (and no algorithm to name below).
		return sgverify.ArtifactDigest{}, nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject,
			Expected: "an in-toto statement whose subject carries a digest", Found: fmt.Sprintf("%d subjects without digests", len(st.Subject))}
	}
	common := map[string]bool{}
	var found []string
	for _, s := range st.Subject {
		for alg, d := range s.Digest {
			found = append(found, alg+":"+d)
			want, ok := c.Artifact[alg]
			if !ok {
				continue
			}
			common[alg] = true
			if strings.EqualFold(d, want) {
				rawDigest, _ := hex.DecodeString(want)
				return sgverify.ArtifactDigest{Algorithm: alg, Digest: rawDigest}, st, nil
			}
		}
	}
	if len(common) == 0 {
		var stAlgs []string
		for _, s := range st.Subject {
			stAlgs = append(stAlgs, evSortedKeys(s.Digest)...)
		}
		return sgverify.ArtifactDigest{}, nil, evAlgorithmMismatch(subject, evUnique(stAlgs), algs)
	}
	var want []string
	for _, alg := range algs {
		want = append(want, alg+":"+strings.ToLower(c.Artifact[alg]))
	}
	if len(found) > 4 {
		found = append(found[:4], fmt.Sprintf("and %d more", len(found)-4))
	}
	return sgverify.ArtifactDigest{}, nil, &preflight.Error{Class: preflight.ErrTampered, Subject: subject,
		Expected: "a statement subject with " + strings.Join(want, " or "), Found: strings.Join(found, ", "),
		Hint: "the attestation is about other bytes; fetch the artifact again or supply the attestation made for it"}
}

// evAlgorithmMismatch: the bundle binds a digest in an algorithm the caller
// did not compute. This is not a verdict on the artifact, so it is
// operational; it fails closed all the same.
func evAlgorithmMismatch(subject string, bundleAlgs, have []string) error {
	return &preflight.Error{Class: preflight.ErrConfig, Subject: subject,
		Expected: "an artifact digest in " + strings.Join(bundleAlgs, " or ") + " (what the bundle signs)",
		Found:    "digests in " + strings.Join(have, ", "),
		Hint:     fmt.Sprintf("hash the artifact with %s too (DigestFile(path, %q), or --digest-algorithm %s)", bundleAlgs[0], bundleAlgs[0], bundleAlgs[0])}
}

func evVerifyBundle(c EvidenceCheck, signers *evSigners, b Bundle) (policy.SignatureFacts, error) {
	subject := evBundleName(b)
	sb, _, err := evParseBundle(b)
	if err != nil {
		return policy.SignatureFacts{}, err
	}
	digest, st, err := evBindArtifact(c, sb, subject)
	if err != nil {
		return policy.SignatureFacts{}, err
	}
	vc, err := sb.VerificationContent()
	if err != nil {
		return policy.SignatureFacts{}, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a certificate or public key hint", Err: err}
	}

	facts := policy.SignatureFacts{BundleMediaType: sb.MediaType, Kind: evKindMessage}
	if st != nil {
		facts.Kind = evKindDSSE
		facts.PredicateType = st.PredicateType
	}

	var result *sgverify.VerificationResult
	if leaf := vc.Certificate(); leaf != nil {
		summary, err := certificate.SummarizeCertificate(leaf)
		if err != nil {
			return policy.SignatureFacts{}, &preflight.Error{Class: preflight.ErrSignature, Subject: subject, Expected: "a Fulcio certificate with an identity", Err: err}
		}
		if len(signers.keyless) == 0 {
			return policy.SignatureFacts{}, &preflight.Error{Class: preflight.ErrIdentity, Subject: subject,
				Expected: "a signature by " + signers.describe(), Found: "a keyless signature by " + evDescribeSummary(summary),
				Hint: "allow this identity in the policy only if you trust it"}
		}
		result, err = evSigstoreVerify(c.Material, sb, digest, signers.sigstoreIdentities())
		if err != nil {
			var noMatch *sgverify.ErrNoMatchingCertificateIdentity
			if errors.As(err, &noMatch) {
				return policy.SignatureFacts{}, signers.identityError(subject, summary, err)
			}
			return policy.SignatureFacts{}, evSignatureError(subject, err)
		}
		if _, err := signers.matchKeyless(summary); err != nil {
			return policy.SignatureFacts{}, signers.identityError(subject, summary, err)
		}
		facts.Certificate = evCertificateFacts(summary)
	} else {
		if len(signers.keys) == 0 {
			return policy.SignatureFacts{}, &preflight.Error{Class: preflight.ErrIdentity, Subject: subject,
				Expected: "a keyless signature by " + signers.describe(), Found: "a signature by public key " + evOr(vc.PublicKey().Hint(), "(no hint)"),
				Hint: "add the publisher's key to the signers only if you trust it"}
		}
		var key *evKeySigner
		result, key, err = signers.verifyWithKeys(c.Material, sb, digest, vc.PublicKey().Hint(), subject)
		if err != nil {
			return policy.SignatureFacts{}, err
		}
		facts.KeyID = key.id
	}

	facts.SignedAt, facts.Timestamps = evTimestamps(sb, result)
	if st != nil {
		// The payload was decoded before verification; sigstore-go has now
		// verified the envelope signature over these same bytes.
		prov, err := evProvenance(st, facts.Certificate, subject)
		if err != nil {
			return policy.SignatureFacts{}, err
		}
		facts.Provenance = prov
	}
	return facts, nil
}

// evSigstoreVerify runs sigstore-go's verifier with requirements derived
// from the trusted material: see EvidenceCheck.Material.
func evSigstoreVerify(tm root.TrustedMaterial, sb *sgbundle.Bundle, digest sgverify.ArtifactDigest, ids []sgverify.CertificateIdentity) (*sgverify.VerificationResult, error) {
	opts := []sgverify.VerifierOption{sgverify.WithObserverTimestamps(1), sgverify.WithoutStatementPredicate()}
	if len(tm.RekorLogs()) > 0 {
		opts = append(opts, sgverify.WithTransparencyLog(1))
	}
	if ids != nil && len(tm.CTLogs()) > 0 {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	v, err := sgverify.NewVerifier(tm, opts...)
	if err != nil {
		return nil, err
	}
	var popts []sgverify.PolicyOption
	if ids == nil {
		popts = append(popts, sgverify.WithKey())
	}
	for _, id := range ids {
		popts = append(popts, sgverify.WithCertificateIdentity(id))
	}
	return v.Verify(sb, sgverify.NewPolicy(sgverify.WithArtifactDigest(digest.Algorithm, digest.Digest), popts...))
}

func evSignatureError(subject string, err error) error {
	return &preflight.Error{Class: preflight.ErrSignature, Subject: subject,
		Expected: "a signature, certificate chain, transparency-log entry and timestamp that verify against the trusted root",
		Found:    "a bundle that does not", Err: err,
		Hint: "do not run this artifact; if the bundle comes from a private Sigstore instance, pass its trusted_root.json"}
}

// evTimestamps returns the earliest verified signing time and where the
// verified times came from.
func evTimestamps(sb *sgbundle.Bundle, r *sgverify.VerificationResult) (time.Time, []string) {
	var earliest time.Time
	var sources []string
	for _, ts := range r.VerifiedTimestamps {
		if earliest.IsZero() || ts.Timestamp.Before(earliest) {
			earliest = ts.Timestamp
		}
		if ts.Type == "TimestampAuthority" {
			sources = append(sources, "tsa:"+evOr(ts.URI, "unknown"))
		}
	}
	// The entries were verified by sigstore-go; read their coordinates
	// from the protobuf rather than parsing the log bodies a second time.
	for _, e := range sb.GetVerificationMaterial().GetTlogEntries() {
		sources = append(sources, fmt.Sprintf("rekor:%s#%d", hex.EncodeToString(e.GetLogId().GetKeyId()), e.GetLogIndex()))
	}
	return earliest.UTC(), sources
}

func evCertificateFacts(s certificate.Summary) *policy.CertificateFacts {
	return &policy.CertificateFacts{
		Issuer:                 s.Issuer,
		Subject:                s.SubjectAlternativeName,
		SourceRepositoryURI:    s.SourceRepositoryURI,
		SourceRepositoryRef:    s.SourceRepositoryRef,
		SourceRepositoryDigest: s.SourceRepositoryDigest,
		BuildSignerURI:         s.BuildSignerURI,
		BuildSignerDigest:      s.BuildSignerDigest,
		BuildConfigURI:         s.BuildConfigURI,
		BuildTrigger:           s.BuildTrigger,
		RunnerEnvironment:      s.RunnerEnvironment,
		RunInvocationURI:       s.RunInvocationURI,
	}
}

func evDescribeSummary(s certificate.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s from %s", s.SubjectAlternativeName, evOr(s.Issuer, "an unknown issuer"))
	for _, kv := range [][2]string{
		{"repository", s.SourceRepositoryURI}, {"ref", s.SourceRepositoryRef},
		{"signer", s.BuildSignerURI}, {"trigger", s.BuildTrigger}, {"runner", s.RunnerEnvironment},
	} {
		if kv[1] != "" {
			fmt.Fprintf(&b, ", %s %s", kv[0], kv[1])
		}
	}
	return b.String()
}

// DigestFile hashes the file at path once with every named algorithm
// ("sha256", "sha384", "sha512"; sha256 when none is named) and returns the
// hex digests by algorithm.
func DigestFile(path string, algs ...string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrNotFound, Subject: path, Err: err}
	}
	defer f.Close()
	return DigestReader(f, algs...)
}

// DigestReader reads r to its end once, hashing with every named algorithm
// (sha256 when none is named), and returns the hex digests by algorithm.
func DigestReader(r io.Reader, algs ...string) (map[string]string, error) {
	if len(algs) == 0 {
		algs = []string{"sha256"}
	}
	hashes := map[string]hash.Hash{}
	writers := make([]io.Writer, 0, len(algs))
	for _, alg := range algs {
		if _, dup := hashes[alg]; dup {
			continue
		}
		var h hash.Hash
		switch alg {
		case "sha256":
			h = sha256.New()
		case "sha384":
			h = sha512.New384()
		case "sha512":
			h = sha512.New()
		default:
			return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "digest", Expected: "sha256, sha384 or sha512", Found: alg}
		}
		hashes[alg] = h
		writers = append(writers, h)
	}
	if _, err := io.Copy(io.MultiWriter(writers...), r); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrUnavailable, Subject: "digest", Err: err, Hint: "the artifact could not be read to the end"}
	}
	out := make(map[string]string, len(hashes))
	for alg, h := range hashes {
		out[alg] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

// BundleAlgorithms returns the digest algorithms the bundle binds its
// artifact with ("sha256", "sha512", ...), so that a caller can hash an
// artifact once with exactly what the evidence needs. It reads unverified
// content and is only a hint for hashing.
func BundleAlgorithms(b Bundle) ([]string, error) {
	sb, _, err := evParseBundle(b)
	if err != nil {
		return nil, err
	}
	content, err := sb.SignatureContent()
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: evBundleName(b), Err: err}
	}
	if msg := content.MessageSignatureContent(); msg != nil {
		if alg, ok := evHashNames[msg.DigestAlgorithm()]; ok {
			return []string{alg}, nil
		}
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: evBundleName(b), Expected: "sha256, sha384 or sha512", Found: msg.DigestAlgorithm()}
	}
	payload, err := content.EnvelopeContent().RawEnvelope().DecodeB64Payload()
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: evBundleName(b), Err: err}
	}
	var st evStatement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: evBundleName(b), Expected: "an in-toto statement", Err: err}
	}
	var algs []string
	for _, s := range st.Subject {
		for alg := range s.Digest {
			if _, ok := evDigestSizes[alg]; ok {
				algs = append(algs, alg)
			}
		}
	}
	return evUnique(algs), nil
}

func evSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func evUnique(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func evOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
