package policy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Evaluate judges one server's verified Facts against its rules and, when
// lock is not nil, against its lockfile entry. It does no I/O and does not
// modify its arguments. The checks, in order:
//
//   - the server has signer rules, and at least one verified signature;
//   - every signature's identity matches at least one Signer;
//   - the provenance constraints of the server and of its descriptor
//     expectations (see Narrow) hold for every provenance statement;
//   - the artifact digest matches the digest pinned by the source
//     (file, url and oci digest, npm integrity) and the version the source
//     pins;
//   - nothing drifted from the lockfile entry: artifact digest, version,
//     signer, source commit and, when f.Surface is set, instructions and the
//     surfaces pinned by the lockfile.
//
// In audit mode the Decision allows the server and keeps every finding.
func Evaluate(s *Server, mode Mode, f Facts, lock *LockEntry) Decision {
	if s == nil {
		return decide(mode, []Finding{{Code: CodeServerUnknown, Severity: SeverityError, Subject: f.Server,
			Message: "no policy for this server"}})
	}
	var out []Finding
	if s.AllowUnsigned {
		out = append(out, Finding{Code: CodeSignatureUnsigned, Severity: SeverityWarning, Subject: artifactSubject(f),
			Expected: "a digest pinned by the policy", Found: "no signature checked",
			Message: "the server is trusted by its pinned digest only (allow_unsigned): nobody's signature or provenance vouches for it"})
	} else {
		out = append(out, checkSigners(s, f)...)
	}
	if s.Provenance != nil {
		out = append(out, checkProvenance(s.Provenance, f, "policy")...)
	}
	if s.Descriptor != nil && s.Descriptor.Provenance != nil {
		out = append(out, checkProvenance(s.Descriptor.Provenance, f, "descriptor")...)
	}
	out = append(out, checkPins(s.Source, f.Artifact)...)
	if lock != nil {
		out = append(out, lockFindings(s, Drift(lock, EntryFromFacts(f)))...)
	}
	return decide(mode, out)
}

func checkSigners(s *Server, f Facts) []Finding {
	var out []Finding
	if len(s.Signers) == 0 {
		msg := "the server has no signer rules, so no signature can be accepted"
		if s.Descriptor != nil && len(s.Descriptor.Signers) > 0 {
			msg = "none of the descriptor's signers is allowed by the local signer rules"
		}
		out = append(out, Finding{Code: CodeSignerNone, Severity: SeverityError, Subject: s.Name, Message: msg})
	}
	if len(f.Signatures) == 0 {
		return append(out, Finding{Code: CodeSignatureMissing, Severity: SeverityError, Subject: artifactSubject(f),
			Expected: "at least one verified signature", Message: "the artifact carries no verified signature"})
	}
	if len(s.Signers) == 0 {
		return out
	}
	for i, sig := range f.Signatures {
		best := mismatch{rank: -1}
		matched := false
		for _, sg := range s.Signers {
			m := matchSigner(sg, sig)
			if m.ok {
				matched = true
				break
			}
			if m.rank > best.rank {
				best = m
			}
		}
		if matched {
			continue
		}
		out = append(out, Finding{
			Code: CodeSignerIdentity, Severity: SeverityError,
			Subject:  fmt.Sprintf("signature %d (%s)", i+1, describeIdentity(sig)),
			Expected: best.field + " " + best.expected,
			Found:    orNone(best.found),
			Message:  "the signer is not allowed by any signer rule; closest rule differs in " + best.field,
		})
	}
	return out
}

func artifactSubject(f Facts) string {
	if f.Artifact.Name != "" {
		return f.Artifact.Name
	}
	return f.Server
}

func describeIdentity(sig SignatureFacts) string {
	switch {
	case sig.Certificate != nil:
		return sig.Certificate.Issuer + " " + sig.Certificate.Subject
	case sig.KeyID != "":
		return "key " + sig.KeyID
	}
	return "no identity"
}

// mismatch says why a signer rule did not match; rank grows with the number
// of fields that matched before the first difference.
type mismatch struct {
	ok                     bool
	rank                   int
	field, expected, found string
}

func matchSigner(sg Signer, sig SignatureFacts) mismatch {
	if sg.PublicKey != "" {
		id, err := KeyID(sg.PublicKey)
		if err != nil {
			return mismatch{rank: 0, field: "public_key", expected: "a valid public key", found: err.Error()}
		}
		if sig.KeyID == "" || !sameKey(id, sig.KeyID) {
			return mismatch{rank: 1, field: "key", expected: id, found: sig.KeyID}
		}
		return mismatch{ok: true}
	}
	c := sig.Certificate
	if c == nil {
		return mismatch{rank: 0, field: "certificate", expected: "a Fulcio certificate", found: describeIdentity(sig)}
	}
	type check struct {
		field, exact, pattern, found string
		match                        func(want, found string) bool
	}
	checks := []check{
		{"issuer", sg.Issuer, sg.IssuerPattern, c.Issuer, nil},
		{"subject", sg.Subject, sg.SubjectPattern, c.Subject, nil},
		{"repository", repoURL(sg.Repository), "", c.SourceRepositoryURI, strings.EqualFold},
		{"ref", sg.Ref, sg.RefPattern, c.SourceRepositoryRef, nil},
		{"workflow", sg.Workflow, "", c.BuildSignerURI, workflowMatches},
		{"trigger", sg.Trigger, "", c.BuildTrigger, nil},
		{"runner", sg.Runner, "", c.RunnerEnvironment, nil},
	}
	for i, ch := range checks {
		// Issuer and subject are required: a rule without them never matches.
		required := i < 2
		switch {
		case ch.exact != "":
			eq := ch.match
			if eq == nil {
				eq = func(a, b string) bool { return a == b }
			}
			if !eq(ch.exact, ch.found) {
				return mismatch{rank: i + 1, field: ch.field, expected: ch.exact, found: ch.found}
			}
		case ch.pattern != "":
			re, err := compilePattern(ch.pattern)
			if err != nil {
				return mismatch{rank: i + 1, field: ch.field, expected: "a valid pattern", found: err.Error()}
			}
			if !re.MatchString(ch.found) {
				return mismatch{rank: i + 1, field: ch.field, expected: "match of " + ch.pattern, found: ch.found}
			}
		case required:
			return mismatch{rank: i + 1, field: ch.field, expected: "a rule naming the " + ch.field, found: ch.found}
		}
	}
	return mismatch{ok: true}
}

func repoURL(repo string) string {
	if repo == "" {
		return ""
	}
	return "https://github.com/" + repo
}

// sameKey compares a key id computed by KeyID with one from signature
// facts, which may use the npm form "SHA256:<unpadded base64>".
func sameKey(want, found string) bool {
	if strings.EqualFold(want, found) {
		return true
	}
	if b64, ok := strings.CutPrefix(found, "SHA256:"); ok {
		raw, err := hex.DecodeString(strings.TrimPrefix(want, "sha256:"))
		return err == nil && base64.RawStdEncoding.EncodeToString(raw) == b64
	}
	return false
}

// workflowMatches compares a signer rule's workflow with the certificate's
// build signer URI. A rule with "://" is a whole URI; otherwise it is the
// workflow path inside its repository. Without "@", the ref is ignored.
func workflowMatches(want, buildSigner string) bool {
	found := buildSigner
	if !strings.Contains(want, "@") {
		found, _, _ = strings.Cut(buildSigner, "@")
	}
	if strings.Contains(want, "://") {
		return want == found
	}
	rest, ok := strings.CutPrefix(found, "https://")
	if !ok {
		return false
	}
	parts := strings.SplitN(rest, "/", 4) // host, owner, name, path
	return len(parts) == 4 && parts[3] == want
}

func checkProvenance(p *Provenance, f Facts, origin string) []Finding {
	var out []Finding
	sev := SeverityError
	types := map[string]bool{}
	for _, sig := range f.Signatures {
		if sig.PredicateType != "" {
			types[sig.PredicateType] = true
		}
		if sig.Provenance != nil && sig.Provenance.PredicateType != "" {
			types[sig.Provenance.PredicateType] = true
		}
	}
	if !p.Required {
		sev = SeverityWarning
	}
	for _, t := range p.PredicateTypes {
		if !types[t] {
			out = append(out, Finding{Code: CodeProvenancePredicate, Severity: sev, Subject: artifactSubject(f),
				Expected: t, Found: strings.Join(sortedKeys(types), ", "),
				Message: "no verified attestation of the predicate type the " + origin + " requires"})
		}
	}
	n := 0
	for i, sig := range f.Signatures {
		pf := sig.Provenance
		if pf == nil {
			continue
		}
		n++
		subject := fmt.Sprintf("provenance in signature %d", i+1)
		// A provenance statement that exists and disagrees is refused even
		// when provenance is optional.
		if len(p.Builders) > 0 && !slices.Contains(p.Builders, pf.BuilderID) {
			out = append(out, Finding{Code: CodeProvenanceBuilder, Severity: SeverityError, Subject: subject,
				Expected: strings.Join(p.Builders, " or "), Found: orNone(pf.BuilderID),
				Message: "built by a builder the " + origin + " does not allow"})
		}
		if p.Repository != "" && !strings.EqualFold(normalizeRepo(pf.SourceRepository), repoURL(p.Repository)) {
			out = append(out, Finding{Code: CodeProvenanceRepo, Severity: SeverityError, Subject: subject,
				Expected: repoURL(p.Repository), Found: orNone(pf.SourceRepository),
				Message: "built from a source repository the " + origin + " does not allow"})
		}
		if len(p.RefPatterns) > 0 && !matchesAnyPattern(p.RefPatterns, pf.SourceRef) {
			out = append(out, Finding{Code: CodeProvenanceRef, Severity: SeverityError, Subject: subject,
				Expected: "a ref matching " + strings.Join(p.RefPatterns, " or "), Found: orNone(pf.SourceRef),
				Message: "built from a source ref the " + origin + " does not allow"})
		}
		if p.HostedRunners {
			found := ""
			if sig.Certificate != nil {
				found = sig.Certificate.RunnerEnvironment
			}
			if found != "github-hosted" {
				out = append(out, Finding{Code: CodeProvenanceRunner, Severity: SeverityError, Subject: subject,
					Expected: "github-hosted", Found: orNone(found),
					Message: "not built on a GitHub-hosted runner, as the " + origin + " requires (taken from the signing certificate)"})
			}
		}
	}
	if n == 0 {
		out = append(out, Finding{Code: CodeProvenanceMissing, Severity: sev, Subject: artifactSubject(f),
			Expected: "a verified SLSA provenance attestation", Message: "no build provenance was verified for the artifact; the " + origin + " asks for it"})
	}
	return out
}

func normalizeRepo(s string) string {
	s = strings.TrimPrefix(s, "git+")
	s, _, _ = strings.Cut(s, "@")
	return strings.TrimSuffix(s, ".git")
}

func matchesAnyPattern(patterns []string, s string) bool {
	for _, p := range patterns {
		if re, err := compilePattern(p); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

// checkPins compares the artifact with what the source pins.
func checkPins(src Source, a ArtifactFacts) []Finding {
	var out []Finding
	var pins []string // "alg:hex"
	switch {
	case src.File != nil && src.File.Digest != "":
		pins = []string{src.File.Digest}
	case src.URL != nil && src.URL.Digest != "":
		pins = []string{src.URL.Digest}
	case src.OCI != nil && src.OCI.Digest != "":
		pins = []string{src.OCI.Digest}
	case src.NPM != nil && src.NPM.Integrity != "":
		for _, tok := range strings.Fields(src.NPM.Integrity) {
			alg, b64, _ := strings.Cut(tok, "-")
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				pins = append(pins, alg+":invalid")
				continue
			}
			pins = append(pins, alg+":"+hex.EncodeToString(raw))
		}
	}
	if len(pins) > 0 {
		compared := false
		for _, pin := range pins {
			alg, want, _ := strings.Cut(pin, ":")
			got, ok := a.Digests[alg]
			if !ok {
				continue
			}
			compared = true
			if !strings.EqualFold(got, want) {
				out = append(out, Finding{Code: CodeArtifactDigest, Severity: SeverityError, Subject: a.Name,
					Expected: pin, Found: alg + ":" + got, Message: "the artifact's bytes differ from the digest the policy pins"})
			}
		}
		if !compared {
			out = append(out, Finding{Code: CodeArtifactDigest, Severity: SeverityError, Subject: a.Name,
				Expected: strings.Join(pins, " or "), Found: "digests of " + strings.Join(sortedKeys(a.Digests), ", "),
				Message: "no digest of the algorithm the policy pins was computed"})
		}
	}
	want := ""
	switch {
	case src.TUF != nil:
		want = src.TUF.Version
	case src.NPM != nil:
		want = src.NPM.Version
	}
	if want != "" && a.Version != want {
		out = append(out, Finding{Code: CodeArtifactVersion, Severity: SeverityError, Subject: a.Name,
			Expected: want, Found: orNone(a.Version), Message: "the resolved version is not the one the policy pins"})
	}
	return out
}

func lockFindings(s *Server, items []DriftItem) []Finding {
	out := make([]Finding, 0, len(items))
	for _, it := range items {
		f := Finding{Code: string(it.Kind), Severity: SeverityError, Subject: it.Subject, Expected: it.Expected, Found: it.Found}
		kind, suffix, surface := strings.Cut(string(it.Kind), ".")
		if surface && (kind == KindTool || kind == KindPrompt || kind == KindResource) {
			rules := s.Rules(kind)
			if rules.Pin.effective() != PinLockfile {
				continue
			}
			// The gate withholds changed items; only "end" makes a change
			// refuse the server as a whole.
			if rules.OnChange.effective() != ChangeEnd || suffix == SurfaceRemoved {
				f.Severity = SeverityWarning
			}
			f.Message = fmt.Sprintf("the %s differs from the lockfile (%s)", kind, suffix)
		} else {
			switch it.Kind {
			case DriftInstructions:
				if s.Tools.Pin.effective() != PinLockfile {
					continue
				}
				f.Message = "the server instructions differ from the lockfile"
			case DriftDigest:
				f.Message = "the artifact differs from the lockfile; run preflight lock after reviewing the change"
			case DriftVersion:
				f.Message = "the version differs from the lockfile; run preflight lock to accept the new version"
			case DriftSigner:
				f.Message = "the signer differs from the one recorded in the lockfile"
			case DriftSourceCommit:
				f.Message = "the source commit differs from the one recorded in the lockfile"
			default:
				f.Message = "differs from the lockfile"
			}
		}
		out = append(out, f)
	}
	return out
}

func digestHex(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
