package verify

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/crypto/ssh"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
)

// evMaxPatternLength bounds identity patterns; RE2 matching is linear, this
// bounds compilation.
const evMaxPatternLength = 1024

// evSigners is the compiled, validated form of []policy.Signer.
type evSigners struct {
	keyless []*evKeylessSigner
	keys    []*evKeySigner
}

type evKeylessSigner struct {
	src        policy.Signer
	identity   sgverify.CertificateIdentity
	refPattern *regexp.Regexp
}

type evKeySigner struct {
	src      policy.Signer
	pub      crypto.PublicKey
	verifier signature.Verifier
	id       string   // SHA256:<base64>, the SSH-style fingerprint npm uses as key ID
	hints    []string // the key IDs bundles use for this key: npm's, and cosign's hex or base64 SHA-256 of the DER
}

func evCompileSigners(in []policy.Signer) (*evSigners, error) {
	if len(in) == 0 {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "evidence check", Expected: "at least one signer",
			Hint: "name an issuer and subject (or a public key) for who may sign this artifact"}
	}
	out := &evSigners{}
	for i, s := range in {
		if err := evCompileSigner(out, s); err != nil {
			var pe *preflight.Error
			if errors.As(err, &pe) {
				pe.Subject = fmt.Sprintf("signer %d", i)
				return nil, pe
			}
			return nil, err
		}
	}
	return out, nil
}

func evCompileSigner(out *evSigners, s policy.Signer) error {
	cfg := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrConfig, Expected: expected, Found: found, Err: err}
	}
	if s.PublicKey != "" {
		if s.Issuer != "" || s.IssuerPattern != "" || s.Subject != "" || s.SubjectPattern != "" ||
			s.Repository != "" || s.Ref != "" || s.RefPattern != "" || s.Workflow != "" || s.Trigger != "" || s.Runner != "" {
			return cfg("either a public key or a keyless identity", "both", nil)
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(s.PublicKey))
		if err != nil {
			return cfg("a PEM public key", "an unreadable key", err)
		}
		v, err := signature.LoadDefaultVerifier(pub)
		if err != nil {
			return cfg("an ECDSA, RSA or Ed25519 public key", fmt.Sprintf("%T", pub), err)
		}
		der, err := cryptoutils.MarshalPublicKeyToDER(pub)
		if err != nil {
			return cfg("a PEM public key", "an unencodable key", err)
		}
		sshKey, err := ssh.NewPublicKey(pub)
		if err != nil {
			return cfg("an ECDSA, RSA or Ed25519 public key", fmt.Sprintf("%T", pub), err)
		}
		sum := sha256.Sum256(der)
		out.keys = append(out.keys, &evKeySigner{src: s, pub: pub, verifier: v,
			id: ssh.FingerprintSHA256(sshKey),
			hints: []string{ssh.FingerprintSHA256(sshKey), hex.EncodeToString(sum[:]),
				base64.StdEncoding.EncodeToString(sum[:]), "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])}})
		return nil
	}
	if (s.Issuer == "") == (s.IssuerPattern == "") {
		return cfg("exactly one of issuer or issuer_pattern", fmt.Sprintf("issuer %q, issuer_pattern %q", s.Issuer, s.IssuerPattern), nil)
	}
	if (s.Subject == "") == (s.SubjectPattern == "") {
		return cfg("exactly one of subject or subject_pattern", fmt.Sprintf("subject %q, subject_pattern %q", s.Subject, s.SubjectPattern), nil)
	}
	for _, p := range []string{s.IssuerPattern, s.SubjectPattern, s.RefPattern} {
		if p != "" {
			if err := evCheckAnchored(p); err != nil {
				return err
			}
		}
	}
	if s.Ref != "" && s.RefPattern != "" {
		return cfg("at most one of ref or ref_pattern", "both", nil)
	}
	if s.Runner != "" && s.Runner != "github-hosted" && s.Runner != "self-hosted" {
		return cfg(`runner "github-hosted" or "self-hosted"`, s.Runner, nil)
	}
	var ext certificate.Extensions
	if s.Repository != "" {
		if !evOwnerName(s.Repository) {
			return cfg("repository as OWNER/NAME", s.Repository, nil)
		}
		ext.SourceRepositoryURI = "https://github.com/" + s.Repository
	}
	if s.Workflow != "" {
		if _, _, err := evSplitWorkflow(s.Workflow); err != nil {
			return cfg("workflow as .github/workflows/FILE or OWNER/NAME/.github/workflows/FILE", s.Workflow, err)
		}
	}
	ext.SourceRepositoryRef = s.Ref
	ext.BuildTrigger = s.Trigger
	ext.RunnerEnvironment = s.Runner
	san, err := sgverify.NewSANMatcher(s.Subject, s.SubjectPattern)
	if err != nil {
		return cfg("a valid subject_pattern", s.SubjectPattern, err)
	}
	iss, err := sgverify.NewIssuerMatcher(s.Issuer, s.IssuerPattern)
	if err != nil {
		return cfg("a valid issuer_pattern", s.IssuerPattern, err)
	}
	id, err := sgverify.NewCertificateIdentity(san, iss, ext)
	if err != nil {
		return cfg("a complete keyless identity", "", err)
	}
	k := &evKeylessSigner{src: s, identity: id}
	if s.RefPattern != "" {
		k.refPattern = regexp.MustCompile(s.RefPattern) // validated by evCheckAnchored
	}
	out.keyless = append(out.keyless, k)
	return nil
}

// evCheckAnchored accepts an RE2 pattern only if every match must span the
// whole input: ^...$ (alternatives each anchored are fine). An unanchored
// identity pattern is the classic way to allow "evil.example/good.example".
func evCheckAnchored(p string) error {
	bad := func(err error) error {
		return &preflight.Error{Class: preflight.ErrConfig, Expected: "an anchored RE2 pattern ^...$", Found: p, Err: err,
			Hint: `anchor the pattern at both ends, e.g. ^https://github\.com/owner/repo/\.github/workflows/release\.yml@refs/tags/v.*$`}
	}
	if len(p) > evMaxPatternLength {
		return bad(fmt.Errorf("pattern longer than %d bytes", evMaxPatternLength))
	}
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return bad(err)
	}
	if !evAnchored(re.Simplify(), true) || !evAnchored(re.Simplify(), false) {
		return bad(nil)
	}
	return nil
}

func evAnchored(re *syntax.Regexp, start bool) bool {
	switch re.Op {
	case syntax.OpBeginText:
		return start
	case syntax.OpEndText:
		return !start
	case syntax.OpCapture:
		return evAnchored(re.Sub[0], start)
	case syntax.OpConcat:
		if len(re.Sub) == 0 {
			return false
		}
		if start {
			return evAnchored(re.Sub[0], start)
		}
		return evAnchored(re.Sub[len(re.Sub)-1], start)
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if !evAnchored(s, start) {
				return false
			}
		}
		return len(re.Sub) > 0
	}
	return false
}

func evOwnerName(s string) bool {
	owner, name, ok := strings.Cut(s, "/")
	return ok && owner != "" && name != "" && !strings.ContainsAny(name, "/@ ") && !strings.ContainsAny(owner, "@ ")
}

// evSplitWorkflow splits a signer workflow into an optional OWNER/NAME and a
// path under .github/workflows/.
func evSplitWorkflow(w string) (repo, path string, err error) {
	if strings.HasPrefix(w, ".github/workflows/") {
		path = w
	} else {
		parts := strings.SplitN(w, "/", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], ".github/workflows/") {
			return "", "", errors.New("not a workflow path")
		}
		repo, path = parts[0]+"/"+parts[1], parts[2]
	}
	if strings.ContainsAny(path, "@ ") || strings.Contains(path, "..") || path == ".github/workflows/" {
		return "", "", errors.New("not a workflow path")
	}
	return repo, path, nil
}

// evGitHubURI splits https://github.com/OWNER/NAME/PATH@REF.
func evGitHubURI(uri string) (repo, path, ref string, ok bool) {
	rest, found := strings.CutPrefix(uri, "https://github.com/")
	if !found {
		return "", "", "", false
	}
	rest, ref, _ = strings.Cut(rest, "@")
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 2 {
		return "", "", "", false
	}
	repo = parts[0] + "/" + parts[1]
	if len(parts) == 3 {
		path = parts[2]
	}
	return repo, path, ref, true
}

func (s *evSigners) sigstoreIdentities() []sgverify.CertificateIdentity {
	ids := make([]sgverify.CertificateIdentity, len(s.keyless))
	for i, k := range s.keyless {
		ids[i] = k.identity
	}
	return ids
}

// matchKeyless returns the first keyless signer the certificate satisfies in
// full: sigstore-go's identity (issuer, SAN, exact extensions) and the claims
// it cannot express (workflow, ref pattern).
func (s *evSigners) matchKeyless(sum certificate.Summary) (*evKeylessSigner, error) {
	var last error
	for _, k := range s.keyless {
		if err := k.identity.Verify(sum); err != nil {
			last = err
			continue
		}
		if k.refPattern != nil && !k.refPattern.MatchString(sum.SourceRepositoryRef) {
			last = fmt.Errorf("source ref %q does not match %s", sum.SourceRepositoryRef, k.refPattern)
			continue
		}
		if k.src.Workflow != "" {
			if err := evMatchWorkflow(k.src, sum); err != nil {
				last = err
				continue
			}
		}
		return k, nil
	}
	return nil, last
}

// evMatchWorkflow checks the signer workflow against BuildSignerURI, which
// names the workflow that held the signing identity (for a reusable
// workflow, the reusable workflow itself). A bare path must lie in the
// source repository; OWNER/NAME/path names a workflow in another repository.
func evMatchWorkflow(s policy.Signer, sum certificate.Summary) error {
	wantRepo, wantPath, _ := evSplitWorkflow(s.Workflow)
	repo, path, _, ok := evGitHubURI(sum.BuildSignerURI)
	if !ok {
		return fmt.Errorf("certificate has no GitHub build signer URI (found %q)", sum.BuildSignerURI)
	}
	if wantRepo == "" {
		srcRepo, _, _, ok := evGitHubURI(sum.SourceRepositoryURI)
		if !ok {
			return fmt.Errorf("certificate has no GitHub source repository (found %q)", sum.SourceRepositoryURI)
		}
		wantRepo = srcRepo
	}
	if repo != wantRepo || path != wantPath {
		return fmt.Errorf("signer workflow %s/%s, want %s/%s", repo, path, wantRepo, wantPath)
	}
	return nil
}

func (s *evSigners) describe() string {
	var parts []string
	for _, k := range s.keyless {
		parts = append(parts, evDescribeSigner(k.src))
	}
	for _, k := range s.keys {
		parts = append(parts, "public key "+k.id)
	}
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("or %d more", len(parts)-3))
	}
	return strings.Join(parts, " or ")
}

func evDescribeSigner(s policy.Signer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s from %s", evOr(s.Subject, s.SubjectPattern), evOr(s.Issuer, s.IssuerPattern))
	for _, kv := range [][2]string{
		{"repository", s.Repository}, {"ref", evOr(s.Ref, s.RefPattern)}, {"workflow", s.Workflow},
		{"trigger", s.Trigger}, {"runner", s.Runner},
	} {
		if kv[1] != "" {
			fmt.Fprintf(&b, ", %s %s", kv[0], kv[1])
		}
	}
	return b.String()
}

func (s *evSigners) identityError(subject string, sum certificate.Summary, err error) error {
	return &preflight.Error{Class: preflight.ErrIdentity, Subject: subject,
		Expected: s.describe(), Found: evDescribeSummary(sum), Err: err,
		Hint: "the signature is valid but made by someone the policy does not allow; do not widen the policy unless you trust this signer"}
}

// verifyWithKeys tries each pinned key. The hint in the bundle is
// unauthenticated, so the key is chosen by the policy, never by the bundle.
// A key the trusted material also knows (for example npm's registry keys
// with their validity windows) keeps the material's validity window.
func (s *evSigners) verifyWithKeys(tm root.TrustedMaterial, sb *sgbundle.Bundle, digest sgverify.ArtifactDigest, hint, subject string) (*sgverify.VerificationResult, *evKeySigner, error) {
	var lastErr error
	for _, k := range s.keys {
		var v root.TimeConstrainedVerifier = root.NewExpiringKey(k.verifier, time.Time{}, time.Time{})
		if known, err := tm.PublicKeyVerifier(hint); err == nil && known != nil {
			if pub, err := known.PublicKey(); err == nil && cryptoutils.EqualKeys(pub, k.pub) == nil {
				v = known
			}
		}
		keyMaterial := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return v, nil })
		res, err := evSigstoreVerify(root.TrustedMaterialCollection{keyMaterial, tm}, sb, digest, nil)
		if err == nil {
			return res, k, nil
		}
		lastErr = err
	}
	known := false
	for _, k := range s.keys {
		known = known || slices.Contains(k.hints, hint)
	}
	if hint != "" && !known {
		return nil, nil, &preflight.Error{Class: preflight.ErrIdentity, Subject: subject,
			Expected: "a signature by " + s.describe(), Found: "a bundle naming public key " + hint, Err: lastErr,
			Hint: "the bundle was signed by a key the policy does not pin"}
	}
	return nil, nil, evSignatureError(subject, lastErr)
}
