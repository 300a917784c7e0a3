package verifytest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/digitorus/timestamp"
	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"

	preflight "github.com/mcp-preflight/preflight"
)

// Validity of the virtual instance. Every key and certificate of a Sigstore
// is valid from ssBackdate before NewSigstore until ssLifetime after it, so
// that tests can sign "in the past" (SignOptions.SignedAt) and still verify.
const (
	ssBackdate = 366 * 24 * time.Hour
	ssLifetime = 10 * 365 * 24 * time.Hour

	ssDefaultCertLifetime = 10 * time.Minute

	// Service addresses of the virtual instance. The .invalid TLD (RFC 2606)
	// makes sure nothing ever resolves them.
	ssFulcioURL = "https://fulcio.sigstore.invalid"
	ssRekorURL  = "https://rekor.sigstore.invalid"
	ssCTLogURL  = "https://ctfe.sigstore.invalid/test"
	ssTSAURL    = "https://timestamp.sigstore.invalid/api/v1/timestamp"

	ssInTotoPayloadType = "application/vnd.in-toto+json"
)

// Sigstore is a virtual Sigstore instance: Fulcio CA with an intermediate, a Rekor
// log (a real Merkle tree; entries with inclusion proofs and signed checkpoints,
// plus SETs), a CT log (SCTs embedded in leaf certs), and an RFC 3161 TSA.
//
// Everything it writes is real Sigstore data: bundles verify with sigstore-go
// against TrustedRootJSON after a JSON round trip, and nothing is faked on
// the verifying side. Nothing leaves the process: all keys live in memory and
// die with the value.
//
// The trusted root covers signing times from one year before NewSigstore was
// called until ten years after; SignOptions.SignedAt outside that window is a
// configuration error.
//
// Safe for concurrent use.
type Sigstore struct {
	validFrom  time.Time // start of every validity window
	validUntil time.Time // NotAfter of every CA certificate

	fulcioRoot     *x509.Certificate
	fulcioInter    *x509.Certificate
	fulcioInterKey *ecdsa.PrivateKey

	tsaRoot  *x509.Certificate
	tsaInter *x509.Certificate
	tsaLeaf  *x509.Certificate
	tsaKey   *ecdsa.PrivateKey

	ctKey   *ecdsa.PrivateKey
	ctLogID [32]byte

	rekor *ssLog

	trustedRoot []byte // trusted_root.json, immutable after NewSigstore
}

// NewSigstore creates a virtual Sigstore instance with fresh keys for every
// service. Two instances never trust each other's bundles.
func NewSigstore() (*Sigstore, error) {
	now := time.Now().Truncate(time.Second)
	s := &Sigstore{
		validFrom:  now.Add(-ssBackdate),
		validUntil: now.Add(ssLifetime),
	}

	var (
		fulcioRootKey, tsaRootKey, tsaInterKey *ecdsa.PrivateKey
		err                                    error
	)
	s.fulcioRoot, fulcioRootKey, err = s.ssNewCA(pkix.Name{Organization: []string{"sigstore.invalid"}, CommonName: "sigstore"}, nil, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("verifytest: fulcio root: %w", err)
	}
	s.fulcioInter, s.fulcioInterKey, err = s.ssNewCA(pkix.Name{Organization: []string{"sigstore.invalid"}, CommonName: "sigstore-intermediate"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, s.fulcioRoot, fulcioRootKey)
	if err != nil {
		return nil, fmt.Errorf("verifytest: fulcio intermediate: %w", err)
	}
	s.tsaRoot, tsaRootKey, err = s.ssNewCA(pkix.Name{Organization: []string{"sigstore.invalid"}, CommonName: "sigstore-tsa-selfsigned"}, nil, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("verifytest: tsa root: %w", err)
	}
	s.tsaInter, tsaInterKey, err = s.ssNewCA(pkix.Name{Organization: []string{"sigstore.invalid"}, CommonName: "sigstore-tsa-intermediate"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}, s.tsaRoot, tsaRootKey)
	if err != nil {
		return nil, fmt.Errorf("verifytest: tsa intermediate: %w", err)
	}
	if s.tsaLeaf, s.tsaKey, err = s.ssNewTSALeaf(tsaInterKey); err != nil {
		return nil, fmt.Errorf("verifytest: tsa leaf: %w", err)
	}
	if s.ctKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("verifytest: ct log key: %w", err)
	}
	ctLogID, err := ssKeyID(s.ctKey.Public())
	if err != nil {
		return nil, fmt.Errorf("verifytest: ct log key: %w", err)
	}
	copy(s.ctLogID[:], ctLogID)
	if s.rekor, err = ssNewLog(ssRekorURL); err != nil {
		return nil, fmt.Errorf("verifytest: rekor: %w", err)
	}
	if s.trustedRoot, err = s.ssTrustedRoot(); err != nil {
		return nil, fmt.Errorf("verifytest: trusted root: %w", err)
	}
	return s, nil
}

// TrustedRootJSON is the trusted_root.json (media type application/vnd.dev.sigstore.trustedroot+json;version=0.1)
// for this instance: the Fulcio chain, the Rekor and CT log keys and the TSA
// chain, each valid from one year before NewSigstore with an open end.
func (s *Sigstore) TrustedRootJSON() ([]byte, error) {
	return bytes.Clone(s.trustedRoot), nil
}

// TrustedMaterial is the same material parsed, for callers that skip JSON.
// It is parsed from TrustedRootJSON, so it is exactly what a verifier loading
// the file sees. Each call returns a new value.
func (s *Sigstore) TrustedMaterial() (root.TrustedMaterial, error) {
	tr, err := root.NewTrustedRootFromJSON(s.trustedRoot)
	if err != nil {
		return nil, fmt.Errorf("verifytest: parse own trusted root: %w", err)
	}
	return tr, nil
}

func (s *Sigstore) ssTrustedRoot() ([]byte, error) {
	rekorKey := s.rekor.key.Public()
	ca := &root.FulcioCertificateAuthority{
		Root:                s.fulcioRoot,
		Intermediates:       []*x509.Certificate{s.fulcioInter},
		ValidityPeriodStart: s.validFrom,
		URI:                 ssFulcioURL,
	}
	tsa := &root.SigstoreTimestampingAuthority{
		Root:                s.tsaRoot,
		Intermediates:       []*x509.Certificate{s.tsaInter},
		Leaf:                s.tsaLeaf,
		ValidityPeriodStart: s.validFrom,
		URI:                 ssTSAURL,
	}
	// The map keys are irrelevant for marshalling; what counts is ID, which
	// must be the raw key ID (trusted_root.json carries it base64-encoded).
	rekor := map[string]*root.TransparencyLog{"rekor": {
		BaseURL:             ssRekorURL,
		ID:                  s.rekor.id,
		ValidityPeriodStart: s.validFrom,
		HashFunc:            crypto.SHA256,
		PublicKey:           rekorKey,
		SignatureHashFunc:   crypto.SHA256,
	}}
	ctlogs := map[string]*root.TransparencyLog{"ctlog": {
		BaseURL:             ssCTLogURL,
		ID:                  s.ctLogID[:],
		ValidityPeriodStart: s.validFrom,
		HashFunc:            crypto.SHA256,
		PublicKey:           s.ctKey.Public(),
		SignatureHashFunc:   crypto.SHA256,
	}}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{ca}, ctlogs, []root.TimestampingAuthority{tsa}, rekor)
	if err != nil {
		return nil, err
	}
	compact, err := tr.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	// Make sure what we hand out is what verifiers will read.
	if _, err := root.NewTrustedRootFromJSON(out.Bytes()); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Identity is the OIDC identity and GitHub workflow claims a signing certificate carries.
// Issuer and Subject are required; every other field becomes the Fulcio
// certificate extension of the same name when it is not empty.
type Identity struct {
	Issuer, Subject                                                  string // Subject goes in the SAN (URI if it parses as a URI with scheme, else email)
	SourceRepositoryURI, SourceRepositoryRef, SourceRepositoryDigest string
	BuildSignerURI, BuildSignerDigest, BuildConfigURI                string
	BuildTrigger, RunnerEnvironment, RunInvocationURI                string

	BuildConfigDigest                                           string // OID 1.3.6.1.4.1.57264.1.19
	SourceRepositoryIdentifier, SourceRepositoryOwnerIdentifier string // OIDs .15 and .17 (numeric IDs on GitHub)
	SourceRepositoryOwnerURI                                    string // OID .16
	SourceRepositoryVisibility                                  string // OID .22 ("public" or "private")
}

// GitHubActions returns the identity a GitHub Actions workflow run gets from Fulcio:
// repo "owner/name", workflow path ".github/workflows/release.yml", ref "refs/tags/v1.0.0", commit hex.
// Subject = https://github.com/OWNER/NAME/.github/workflows/release.yml@REF,
// Issuer = https://token.actions.githubusercontent.com, runner "github-hosted", trigger "push",
// BuildSignerURI = Subject, SourceRepositoryURI = https://github.com/OWNER/NAME, etc.
// The workflow run is https://github.com/OWNER/NAME/actions/runs/1/attempts/1.
func GitHubActions(repo, workflowPath, ref, commit string) Identity {
	repoURI := "https://github.com/" + repo
	owner, _, _ := strings.Cut(repo, "/")
	workflow := repoURI + "/" + strings.TrimPrefix(workflowPath, "/") + "@" + ref
	return Identity{
		Issuer:                     "https://token.actions.githubusercontent.com",
		Subject:                    workflow,
		SourceRepositoryURI:        repoURI,
		SourceRepositoryRef:        ref,
		SourceRepositoryDigest:     commit,
		SourceRepositoryOwnerURI:   "https://github.com/" + owner,
		SourceRepositoryVisibility: "public",
		BuildSignerURI:             workflow,
		BuildSignerDigest:          commit,
		BuildConfigURI:             workflow,
		BuildConfigDigest:          commit,
		BuildTrigger:               "push",
		RunnerEnvironment:          "github-hosted",
		RunInvocationURI:           repoURI + "/actions/runs/1/attempts/1",
	}
}

// Extensions returns the Fulcio certificate extensions a certificate issued
// for id carries, as sigstore-go parses them: handy as the expected value in
// verify.NewCertificateIdentity.
func (id Identity) Extensions() certificate.Extensions {
	return certificate.Extensions{
		Issuer:                              id.Issuer,
		BuildSignerURI:                      id.BuildSignerURI,
		BuildSignerDigest:                   id.BuildSignerDigest,
		RunnerEnvironment:                   id.RunnerEnvironment,
		SourceRepositoryURI:                 id.SourceRepositoryURI,
		SourceRepositoryDigest:              id.SourceRepositoryDigest,
		SourceRepositoryRef:                 id.SourceRepositoryRef,
		SourceRepositoryIdentifier:          id.SourceRepositoryIdentifier,
		SourceRepositoryOwnerURI:            id.SourceRepositoryOwnerURI,
		SourceRepositoryOwnerIdentifier:     id.SourceRepositoryOwnerIdentifier,
		BuildConfigURI:                      id.BuildConfigURI,
		BuildConfigDigest:                   id.BuildConfigDigest,
		BuildTrigger:                        id.BuildTrigger,
		RunInvocationURI:                    id.RunInvocationURI,
		SourceRepositoryVisibilityAtSigning: id.SourceRepositoryVisibility,
	}
}

// SignOptions change how a bundle is produced, mostly to build negative cases. Zero value = a normal v0.3 bundle.
//
// Some combinations produce bundles that sigstore-go refuses on purpose:
// NoInclusionProof with BundleVersion v0.2 or v0.3 fails already when the
// bundle is parsed (those versions require a proof); NoTimestamp together
// with NoTlogEntry leaves a certificate without an observer timestamp.
type SignOptions struct {
	BundleVersion       string        // "v0.1", "v0.2" or "v0.3" (default); v0.1/0.2 use x509CertificateChain + inclusion promise, v0.3 a single certificate
	SignedAt            time.Time     // integrated time / timestamp time; default time.Now()
	NoInclusionProof    bool          // omit the Rekor inclusion proof (keep the promise/SET)
	NoTimestamp         bool          // omit the RFC 3161 timestamp
	NoTlogEntry         bool          // omit the transparency-log entry
	CertificateLifetime time.Duration // default 10m; combine with SignedAt in the past to get a cert expired "now"
	DigestAlgorithm     crypto.Hash   // message-signature digest: SHA256 (default), SHA384, SHA512; the signing key's curve follows it (P-256, P-384, P-521). DSSE and key signatures support SHA256 only, as Rekor does.
	// TlogEntryKind is the Rekor entry type: "hashedrekord" (the default and
	// only choice for SignBlob), "dsse" (the default for Attest) or "intoto"
	// (v0.0.2, as npm publishes attestations).
	TlogEntryKind string
}

// ssPlan is SignOptions checked and with defaults filled in.
type ssPlan struct {
	version   string
	mediaType string
	at        time.Time
	lifetime  time.Duration
	hash      crypto.Hash
	curve     elliptic.Curve
	kind      string
	proof     bool
	timestamp bool
	tlog      bool
}

func (s *Sigstore) ssPlan(opts SignOptions, dsseContent bool) (ssPlan, error) {
	p := ssPlan{
		version:   opts.BundleVersion,
		at:        opts.SignedAt,
		lifetime:  opts.CertificateLifetime,
		hash:      opts.DigestAlgorithm,
		kind:      opts.TlogEntryKind,
		proof:     !opts.NoInclusionProof,
		timestamp: !opts.NoTimestamp,
		tlog:      !opts.NoTlogEntry,
	}
	switch p.version {
	case "", "v0.3":
		p.version, p.mediaType = "v0.3", "application/vnd.dev.sigstore.bundle.v0.3+json"
	case "v0.1", "v0.2":
		p.mediaType = "application/vnd.dev.sigstore.bundle+json;version=" + strings.TrimPrefix(p.version, "v")
	default:
		return p, ssConfigError("SignOptions.BundleVersion", `"v0.1", "v0.2" or "v0.3"`, p.version)
	}
	if p.at.IsZero() {
		p.at = time.Now()
	}
	if p.lifetime == 0 {
		p.lifetime = ssDefaultCertLifetime
	}
	if p.lifetime < time.Second {
		return p, ssConfigError("SignOptions.CertificateLifetime", "at least one second", p.lifetime.String())
	}
	if p.at.Before(s.validFrom) || p.at.Add(p.lifetime).After(s.validUntil) {
		return p, ssConfigError("SignOptions.SignedAt",
			"a time between "+s.validFrom.Format(time.RFC3339)+" and "+s.validUntil.Add(-p.lifetime).Format(time.RFC3339),
			p.at.Format(time.RFC3339))
	}
	switch p.hash {
	case 0, crypto.SHA256:
		p.hash, p.curve = crypto.SHA256, elliptic.P256()
	case crypto.SHA384:
		p.curve = elliptic.P384()
	case crypto.SHA512:
		p.curve = elliptic.P521()
	default:
		return p, ssConfigError("SignOptions.DigestAlgorithm", "SHA256, SHA384 or SHA512", p.hash.String())
	}
	if dsseContent && p.hash != crypto.SHA256 {
		// Rekor verifies DSSE signatures with SHA-256 only.
		return p, ssConfigError("SignOptions.DigestAlgorithm", "SHA256 for DSSE envelopes", p.hash.String())
	}
	switch {
	case p.kind == "" && dsseContent:
		p.kind = ssKindDSSE
	case p.kind == "":
		p.kind = ssKindHashedRekord
	case dsseContent && (p.kind == ssKindDSSE || p.kind == ssKindIntoto):
	case !dsseContent && p.kind == ssKindHashedRekord:
	default:
		want := `"hashedrekord"`
		if dsseContent {
			want = `"dsse" or "intoto"`
		}
		return p, ssConfigError("SignOptions.TlogEntryKind", want, p.kind)
	}
	return p, nil
}

func ssConfigError(subject, expected, found string) error {
	return &preflight.Error{
		Class:    preflight.ErrConfig,
		Subject:  "verifytest: " + subject,
		Expected: expected,
		Found:    found,
	}
}

// SignBlob signs artifact (hashedrekord message signature) and returns bundle JSON.
// The signer gets a fresh key and a Fulcio certificate for id, with an SCT
// embedded; the bundle carries an RFC 3161 timestamp and a Rekor entry unless
// opts say otherwise.
func (s *Sigstore) SignBlob(id Identity, artifact []byte, opts SignOptions) ([]byte, error) {
	p, err := s.ssPlan(opts, false)
	if err != nil {
		return nil, err
	}
	signer, err := s.ssCertSigner(id, p)
	if err != nil {
		return nil, err
	}
	return s.ssSign(signer, ssBlob(artifact), p)
}

// Attest signs an in-toto statement in a DSSE envelope (payload type application/vnd.in-toto+json) and returns bundle JSON (Rekor dsse or intoto entry).
// The statement is signed as given, so malformed statements can be signed too.
func (s *Sigstore) Attest(id Identity, statement []byte, opts SignOptions) ([]byte, error) {
	p, err := s.ssPlan(opts, true)
	if err != nil {
		return nil, err
	}
	signer, err := s.ssCertSigner(id, p)
	if err != nil {
		return nil, err
	}
	return s.ssSign(signer, ssEnvelope(statement), p)
}

// ssSigner is a signing key with the verification material that names it:
// a Fulcio certificate or a public-key hint.
type ssSigner struct {
	key  crypto.Signer
	cert *x509.Certificate // nil for key signers
	hint string            // public-key hint for key signers
}

// rekorPublicKey is the PEM that goes into the Rekor entry.
func (sg ssSigner) rekorPublicKey() ([]byte, error) {
	if sg.cert != nil {
		return cryptoutils.MarshalCertificateToPEM(sg.cert)
	}
	return cryptoutils.MarshalPublicKeyToPEM(sg.key.Public())
}

// ssContent is what gets signed: a blob or a DSSE payload.
type ssContent struct {
	data []byte
	dsse bool
}

func ssBlob(b []byte) ssContent     { return ssContent{data: b} }
func ssEnvelope(b []byte) ssContent { return ssContent{data: b, dsse: true} }

func (s *Sigstore) ssSign(sg ssSigner, c ssContent, p ssPlan) ([]byte, error) {
	b := &protobundle.Bundle{MediaType: p.mediaType, VerificationMaterial: &protobundle.VerificationMaterial{}}
	var (
		sig       []byte
		tlogInput []byte // what the Rekor entry is computed from
		err       error
	)
	if c.dsse {
		sig, err = ssSignDigest(sg.key, p.hash, ssHash(p.hash, dsse.PAE(ssInTotoPayloadType, c.data)))
		if err != nil {
			return nil, err
		}
		env := &protodsse.Envelope{
			Payload:     bytes.Clone(c.data),
			PayloadType: ssInTotoPayloadType,
			Signatures:  []*protodsse.Signature{{Sig: sig}},
		}
		b.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env}
		// Rekor receives the envelope in its JSON form.
		tlogInput, err = json.Marshal(dsse.Envelope{
			PayloadType: env.PayloadType,
			Payload:     ssB64(env.Payload),
			Signatures:  []dsse.Signature{{Sig: ssB64(sig)}},
		})
		if err != nil {
			return nil, fmt.Errorf("verifytest: envelope: %w", err)
		}
	} else {
		digest := ssHash(p.hash, c.data)
		sig, err = ssSignDigest(sg.key, p.hash, digest)
		if err != nil {
			return nil, err
		}
		b.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: ssProtoHash(p.hash), Digest: digest},
			Signature:     sig,
		}}
		tlogInput = digest
	}

	vm := b.VerificationMaterial
	switch {
	case sg.cert == nil:
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: sg.hint}}
	case p.version == "v0.3":
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: sg.cert.Raw}}
	default:
		// Older bundles carry the chain without the root, as cosign wrote them.
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: sg.cert.Raw}, {RawBytes: s.fulcioInter.Raw}},
		}}
	}

	if p.timestamp {
		tsr, err := s.ssTimestamp(sig, p.at)
		if err != nil {
			return nil, err
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
		}
	}

	if p.tlog {
		pub, err := sg.rekorPublicKey()
		if err != nil {
			return nil, fmt.Errorf("verifytest: rekor entry key: %w", err)
		}
		body, err := ssRekorBody(p.kind, p.hash, tlogInput, pub, sig)
		if err != nil {
			return nil, err
		}
		entry, err := s.rekor.append(p.kind, body, p.at, p.proof)
		if err != nil {
			return nil, err
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{entry}
	}

	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("verifytest: marshal bundle: %w", err)
	}
	return out, nil
}

// ssSignDigest signs a digest made with h, as Sigstore clients do: ECDSA over the
// hash that matches the key's curve.
func ssSignDigest(key crypto.Signer, h crypto.Hash, digest []byte) ([]byte, error) {
	sig, err := key.Sign(rand.Reader, digest, h)
	if err != nil {
		return nil, fmt.Errorf("verifytest: sign: %w", err)
	}
	return sig, nil
}

func ssHash(h crypto.Hash, message []byte) []byte {
	hasher := h.New()
	hasher.Write(message)
	return hasher.Sum(nil)
}

func ssProtoHash(h crypto.Hash) protocommon.HashAlgorithm {
	switch h {
	case crypto.SHA384:
		return protocommon.HashAlgorithm_SHA2_384
	case crypto.SHA512:
		return protocommon.HashAlgorithm_SHA2_512
	default:
		return protocommon.HashAlgorithm_SHA2_256
	}
}

// ssCertSigner does what Fulcio does for a signing request: a fresh key, and
// a short-lived certificate for it, logged to CT with the SCT embedded.
func (s *Sigstore) ssCertSigner(id Identity, p ssPlan) (ssSigner, error) {
	if id.Issuer == "" || id.Subject == "" {
		return ssSigner{}, ssConfigError("Identity", "an issuer and a subject", fmt.Sprintf("issuer %q, subject %q", id.Issuer, id.Subject))
	}
	key, err := ecdsa.GenerateKey(p.curve, rand.Reader)
	if err != nil {
		return ssSigner{}, fmt.Errorf("verifytest: signing key: %w", err)
	}
	cert, err := s.ssIssue(id, key.Public(), p.at, p.lifetime)
	if err != nil {
		return ssSigner{}, err
	}
	return ssSigner{key: key, cert: cert}, nil
}

// ssIssue issues a Fulcio leaf certificate valid from at (to the second) for
// lifetime, with the identity's extensions and an embedded SCT from the CT
// log. Like Fulcio, it first issues a precertificate carrying the CT poison
// extension, has the CT log sign it, and then issues the final certificate
// with the SCT list in the poison's place, so both share one TBS.
func (s *Sigstore) ssIssue(id Identity, pub crypto.PublicKey, at time.Time, lifetime time.Duration) (*x509.Certificate, error) {
	exts, err := ssIdentityExtensions(id)
	if err != nil {
		return nil, err
	}
	skid, err := cryptoutils.SKID(pub)
	if err != nil {
		return nil, fmt.Errorf("verifytest: leaf key id: %w", err)
	}
	serial, err := ssSerial()
	if err != nil {
		return nil, err
	}
	notBefore := at.Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		SubjectKeyId: skid,
	}
	if u, err := url.Parse(id.Subject); err == nil && u.Scheme != "" {
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{id.Subject}
	}

	poison := pkix.Extension{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTPoison), Critical: true, Value: asn1.NullBytes}
	tmpl.ExtraExtensions = append(exts, poison)
	precert, err := ssCreateCert(tmpl, s.fulcioInter, pub, s.fulcioInterKey)
	if err != nil {
		return nil, fmt.Errorf("verifytest: precertificate: %w", err)
	}
	sctExt, err := s.ssSCT(precert, at)
	if err != nil {
		return nil, err
	}
	tmpl.ExtraExtensions[len(tmpl.ExtraExtensions)-1] = sctExt
	cert, err := ssCreateCert(tmpl, s.fulcioInter, pub, s.fulcioInterKey)
	if err != nil {
		return nil, fmt.Errorf("verifytest: leaf certificate: %w", err)
	}
	return cert, nil
}

// ssSCT has the CT log sign a precertificate entry for precert at time at,
// and returns the SCT list extension for the final certificate.
func (s *Sigstore) ssSCT(precert *x509.Certificate, at time.Time) (pkix.Extension, error) {
	tbs, err := ctx509.BuildPrecertTBS(precert.RawTBSCertificate, nil)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("verifytest: precertificate TBS: %w", err)
	}
	sct := ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1,
		LogID:      ct.LogID{KeyID: s.ctLogID},
		Timestamp:  uint64(at.UnixMilli()),
	}
	entry := ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
		Version:  ct.V1,
		LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			Timestamp: sct.Timestamp,
			EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{
				IssuerKeyHash:  sha256.Sum256(s.fulcioInter.RawSubjectPublicKeyInfo),
				TBSCertificate: tbs,
			},
		},
	}}
	input, err := ct.SerializeSCTSignatureInput(sct, entry)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("verifytest: SCT input: %w", err)
	}
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, digest[:])
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("verifytest: sign SCT: %w", err)
	}
	sct.Signature = ct.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sig,
	}
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("verifytest: SCT list: %w", err)
	}
	tlsList, err := cttls.Marshal(*list)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("verifytest: SCT list: %w", err)
	}
	value, err := asn1.Marshal(tlsList)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("verifytest: SCT list: %w", err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier(ctx509.OIDExtensionCTSCT), Value: value}, nil
}

// ssIdentityExtensions encodes id as Fulcio does: the deprecated issuer
// extension (.1.1) as raw bytes, and every v2 extension as a DER UTF8String.
func ssIdentityExtensions(id Identity) ([]pkix.Extension, error) {
	//lint:ignore SA1019 Fulcio still writes the v1 issuer extension beside the v2 one
	exts := []pkix.Extension{{Id: certificate.OIDIssuer, Value: []byte(id.Issuer)}}
	for _, e := range []struct {
		oid   asn1.ObjectIdentifier
		value string
	}{
		{certificate.OIDIssuerV2, id.Issuer},
		{certificate.OIDBuildSignerURI, id.BuildSignerURI},
		{certificate.OIDBuildSignerDigest, id.BuildSignerDigest},
		{certificate.OIDRunnerEnvironment, id.RunnerEnvironment},
		{certificate.OIDSourceRepositoryURI, id.SourceRepositoryURI},
		{certificate.OIDSourceRepositoryDigest, id.SourceRepositoryDigest},
		{certificate.OIDSourceRepositoryRef, id.SourceRepositoryRef},
		{certificate.OIDSourceRepositoryIdentifier, id.SourceRepositoryIdentifier},
		{certificate.OIDSourceRepositoryOwnerURI, id.SourceRepositoryOwnerURI},
		{certificate.OIDSourceRepositoryOwnerIdentifier, id.SourceRepositoryOwnerIdentifier},
		{certificate.OIDBuildConfigURI, id.BuildConfigURI},
		{certificate.OIDBuildConfigDigest, id.BuildConfigDigest},
		{certificate.OIDBuildTrigger, id.BuildTrigger},
		{certificate.OIDRunInvocationURI, id.RunInvocationURI},
		{certificate.OIDSourceRepositoryVisibilityAtSigning, id.SourceRepositoryVisibility},
	} {
		if e.value == "" {
			continue
		}
		der, err := asn1.MarshalWithParams(e.value, "utf8")
		if err != nil {
			return nil, ssConfigError("Identity", "UTF-8 claim values", fmt.Sprintf("%q", e.value))
		}
		exts = append(exts, pkix.Extension{Id: e.oid, Value: der})
	}
	return exts, nil
}

// ssTimestamp is the TSA: an RFC 3161 response over sig at time at.
func (s *Sigstore) ssTimestamp(sig []byte, at time.Time) ([]byte, error) {
	digest := sha256.Sum256(sig)
	ts := timestamp.Timestamp{
		HashAlgorithm: crypto.SHA256,
		HashedMessage: digest[:],
		Time:          at,
		Policy:        asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
	}
	resp, err := ts.CreateResponseWithOpts(s.tsaLeaf, s.tsaKey, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("verifytest: timestamp: %w", err)
	}
	return resp, nil
}

// ssNewCA makes a CA certificate valid for the whole life of s; self-signed
// when parent is nil.
func (s *Sigstore) ssNewCA(name pkix.Name, eku []x509.ExtKeyUsage, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := ssSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		NotBefore:             s.validFrom,
		NotAfter:              s.validUntil,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	} else {
		tmpl.MaxPathLenZero = true
	}
	cert, err := ssCreateCert(tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// ssNewTSALeaf makes the TSA signing certificate. RFC 3161 requires its
// extended key usage to be timeStamping only, and critical.
func (s *Sigstore) ssNewTSALeaf(interKey crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := ssSerial()
	if err != nil {
		return nil, nil, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{Organization: []string{"sigstore.invalid"}, CommonName: "sigstore-tsa"},
		NotBefore:       s.validFrom,
		NotAfter:        s.validUntil,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	cert, err := ssCreateCert(tmpl, s.tsaInter, key.Public(), interKey)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func ssCreateCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func ssSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, fmt.Errorf("verifytest: serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

// ssKeyID is the Sigstore/CT key ID: SHA-256 of the DER SubjectPublicKeyInfo.
func ssKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}
