package policy

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"sync"
)

// issue is a problem with one field of a value, relative to the value.
// Field is a yaml field name, a path below the value (e.g. "allow[2]"), or
// "" for the value as a whole.
type issue struct {
	Field string
	Msg   string
}

func (d *decoder) report(path string, issues []issue) {
	for _, is := range issues {
		p := path
		if is.Field != "" {
			if strings.HasPrefix(is.Field, "[") {
				p = path + is.Field
			} else {
				p = joinField(path, is.Field)
			}
		}
		d.errorf(p, "%s", is.Msg)
	}
}

var (
	serverNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._/@-]{1,128}$`) })
	envNameRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`) })
	repoRE       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$`) })
	npmNameRE    = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~-][a-z0-9._~-]*$`)
	})
	semverRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	})
	hexRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]+$`) })
)

func (d *decoder) validatePolicy(p *Policy) {
	if d.present["version"] && p.Version != 1 {
		d.errorf("version", "unsupported version %d; this Preflight reads version 1", p.Version)
	}
	switch p.Mode {
	case "", ModeEnforce, ModeAudit:
	default:
		d.errorf("mode", "unknown mode %q; use enforce or audit", p.Mode)
	}

	st := p.Trust.Sigstore
	switch st.Instance {
	case "", InstancePublicGood:
	case InstancePrivate:
		if st.TrustedRoot == "" && st.TUF == nil {
			d.errorf("trust.sigstore", "a private Sigstore instance needs trusted_root or tuf")
		}
	default:
		d.errorf("trust.sigstore.instance", "unknown instance %q; use public-good or private", st.Instance)
	}
	if d.present["trust.sigstore.trusted_root"] && st.TrustedRoot == "" {
		d.errorf("trust.sigstore.trusted_root", "empty path")
	}
	if st.TUF != nil {
		d.report("trust.sigstore.tuf", repositoryIssues(st.TUF))
	}
	for _, name := range sortedKeys(p.Trust.Repositories) {
		rp := joinKey("trust.repositories", name)
		if !serverNameRE().MatchString(name) {
			d.errorf(rp, "repository name %q must be 1 to 128 characters of A-Z a-z 0-9 . _ / @ -", name)
		}
		d.report(rp, repositoryIssues(p.Trust.Repositories[name]))
	}

	for _, kind := range []string{"tools", "prompts", "resources"} {
		if r := p.Defaults.section(kind); r != nil {
			d.report("defaults."+kind, rulesIssues(*r))
		}
	}

	if d.present["servers"] && len(p.Servers) == 0 {
		d.errorf("servers", "no servers; name at least one")
	}
	for _, name := range sortedKeys(p.Servers) {
		sp := joinKey("servers", name)
		if !serverNameRE().MatchString(name) {
			d.problemAt(d.keyPos[sp], "%s: server name %q must be 1 to 128 characters of A-Z a-z 0-9 . _ / @ -", displayPath(sp), name)
		}
		d.validateServer(p, p.Servers[name], sp)
	}
}

func (d *decoder) validateServer(p *Policy, s *Server, sp string) {
	// Source.
	if !d.present[sp+".source"] {
		d.errorf(sp, "source is required: one of tuf, file, npm, oci, url, server_json")
	} else {
		n := 0
		for _, k := range []string{"tuf", "file", "npm", "oci", "url", "server_json"} {
			if d.present[sp+".source."+k] {
				n++
			}
		}
		switch {
		case n == 0:
			d.errorf(sp+".source", "names no source; set one of tuf, file, npm, oci, url, server_json")
		case n > 1:
			d.errorf(sp+".source", "names %d sources; set exactly one", n)
		}
	}
	src := s.Source
	if t := src.TUF; t != nil {
		if t.Repository == "" {
			d.errorf(sp+".source.tuf.repository", "required: the name of a repository under trust.repositories")
		} else if _, ok := p.Trust.Repositories[t.Repository]; !ok {
			d.errorf(sp+".source.tuf.repository", "repository %q is not defined under trust.repositories%s", t.Repository, knownList(sortedKeys(p.Trust.Repositories)))
		}
		if t.Server == "" {
			d.errorf(sp+".source.tuf.server", "required: the server's name in the repository")
		}
	}
	if f := src.File; f != nil {
		if f.Path == "" {
			d.errorf(sp+".source.file.path", "required")
		}
		if f.Digest != "" {
			if err := checkDigest(f.Digest, "sha256", "sha512"); err != "" {
				d.errorf(sp+".source.file.digest", "%s", err)
			}
		}
		for i, b := range f.Bundles {
			if b == "" {
				d.errorf(joinIndex(sp+".source.file.bundles", i), "empty path")
			}
		}
	}
	if n := src.NPM; n != nil {
		switch {
		case n.Package == "":
			d.errorf(sp+".source.npm.package", "required")
		case len(n.Package) > 214 || !npmNameRE().MatchString(n.Package):
			d.errorf(sp+".source.npm.package", "%q is not a valid npm package name", n.Package)
		}
		switch {
		case n.Version == "":
			d.errorf(sp+".source.npm.version", "required: an exact version such as 1.2.3")
		case !semverRE().MatchString(n.Version):
			d.errorf(sp+".source.npm.version", "%q is not an exact version; ranges and dist-tags are refused", n.Version)
		}
		if n.Registry != "" {
			if err := checkURL(n.Registry, false); err != "" {
				d.errorf(sp+".source.npm.registry", "%s", err)
			}
		}
		if n.Integrity != "" {
			if err := checkIntegrity(n.Integrity); err != "" {
				d.errorf(sp+".source.npm.integrity", "%s", err)
			}
		}
	}
	if o := src.OCI; o != nil {
		switch {
		case o.Image == "":
			d.errorf(sp+".source.oci.image", "required")
		case strings.ContainsAny(o.Image, "@ \t\n"):
			d.errorf(sp+".source.oci.image", "%q: write the image without a digest and put the digest in source.oci.digest", o.Image)
		}
		if o.Digest != "" {
			if err := checkDigest(o.Digest, "sha256", "sha512"); err != "" {
				d.errorf(sp+".source.oci.digest", "%s", err)
			}
		}
	}
	if u := src.URL; u != nil {
		if err := checkURL(u.URL, true); err != "" {
			d.errorf(sp+".source.url.url", "%s", err)
		}
		if u.Digest != "" {
			if err := checkDigest(u.Digest, "sha256", "sha512"); err != "" {
				d.errorf(sp+".source.url.digest", "%s", err)
			}
		}
		if u.Bundle != "" {
			if err := checkURL(u.Bundle, true); err != "" {
				d.errorf(sp+".source.url.bundle", "%s", err)
			}
		}
	}
	if j := src.ServerJSON; j != nil {
		if (j.Path == "") == (j.URL == "") {
			d.errorf(sp+".source.server_json", "set exactly one of path and url")
		}
		if j.URL != "" {
			if err := checkURL(j.URL, true); err != "" {
				d.errorf(sp+".source.server_json.url", "%s", err)
			}
		}
		if j.Package == "" {
			d.errorf(sp+".source.server_json.package", "required: the registry type of the package to run (npm, oci, mcpb, ...)")
		}
	}

	// Environment.
	for i, e := range s.Env {
		if !envNameRE().MatchString(e) {
			d.errorf(joinIndex(sp+".env", i), "%q is not an environment variable name", e)
		}
	}
	for _, k := range sortedKeys(s.SetEnv) {
		if !envNameRE().MatchString(k) {
			d.errorf(joinKey(sp+".set_env", k), "%q is not an environment variable name", k)
		}
		for _, e := range s.Env {
			if e == k {
				d.errorf(joinKey(sp+".set_env", k), "%s is both passed through (env) and set (set_env); keep one", k)
			}
		}
	}

	// Signers.
	switch {
	case s.AllowUnsigned:
		if len(s.Signers) > 0 {
			d.errorf(sp+".signers", "allow_unsigned accepts no signature, so signer rules could never apply; remove one of them")
		}
		if s.Provenance != nil {
			d.errorf(sp+".provenance", "allow_unsigned accepts no attestation, so provenance could never be checked; remove one of them")
		}
		if !sourcePinsDigest(s.Source) {
			d.errorf(sp+".allow_unsigned", "an unsigned server must be pinned by digest: set source.npm.integrity, source.file.digest, source.url.digest or source.oci.digest")
		}
	case !d.present[sp+".signers"]:
		d.errorf(sp, "signers is required: name who may sign this server (or pin an unsigned artifact by digest with allow_unsigned)")
	case len(s.Signers) == 0:
		d.errorf(sp+".signers", "empty; name at least one signer")
	}
	for i, sg := range s.Signers {
		d.report(joinIndex(sp+".signers", i), signerIssues(sg))
	}

	if s.Provenance != nil {
		d.report(sp+".provenance", provenanceIssues(s.Provenance))
	}

	for _, kind := range []string{"tools", "prompts", "resources"} {
		rp := sp + "." + kind
		rules, inherited := *s.section(kind), false
		if d.present[rp] {
			d.report(rp, rulesIssues(rules))
		} else if def := p.Defaults.section(kind); def != nil {
			rules, inherited = *def, true
		}
		if rules.Pin == PinDescriptor && s.Source.TUF == nil && s.Source.ServerJSON == nil && s.Source.Kind() != "" {
			if inherited {
				d.errorf(sp, "defaults.%s has pin: descriptor, which needs a tuf or server_json source; this server's source is %s: write a %s section for it", kind, s.Source.Kind(), kind)
			} else {
				d.errorf(rp+".pin", "pin: descriptor needs a tuf or server_json source; this server's source is %s", s.Source.Kind())
			}
		}
	}
}

func (s *Server) section(kind string) *SurfaceRules {
	switch kind {
	case "tools":
		return &s.Tools
	case "prompts":
		return &s.Prompts
	}
	return &s.Resources
}

func (d Defaults) section(kind string) *SurfaceRules {
	switch kind {
	case "tools":
		return d.Tools
	case "prompts":
		return d.Prompts
	}
	return d.Resources
}

func (d *decoder) fillDefaults(p *Policy) {
	if p.Mode == "" {
		p.Mode = ModeEnforce
	}
	if p.Trust.Sigstore.Instance == "" {
		p.Trust.Sigstore.Instance = InstancePublicGood
	}
	fillRepository(p.Trust.Sigstore.TUF)
	for _, r := range p.Trust.Repositories {
		fillRepository(r)
	}
	for _, kind := range []string{"tools", "prompts", "resources"} {
		if r := p.Defaults.section(kind); r != nil {
			fillRules(r)
		}
	}
	for name, s := range p.Servers {
		sp := joinKey("servers", name)
		s.Name = name
		for _, kind := range []string{"tools", "prompts", "resources"} {
			if !d.present[sp+"."+kind] {
				if def := p.Defaults.section(kind); def != nil {
					*s.section(kind) = cloneRules(*def)
				}
			}
			fillRules(s.section(kind))
		}
		if s.Provenance != nil && !d.present[sp+".provenance.required"] {
			s.Provenance.Required = true
		}
	}
}

func fillRepository(r *Repository) {
	if r != nil && r.TargetsURL == "" && r.URL != "" {
		r.TargetsURL = strings.TrimRight(r.URL, "/") + "/targets"
	}
}

func fillRules(r *SurfaceRules) {
	r.Pin = r.Pin.effective()
	r.OnChange = r.OnChange.effective()
}

func cloneRules(r SurfaceRules) SurfaceRules {
	r.Allow = clone(r.Allow)
	r.Deny = clone(r.Deny)
	return r
}

func repositoryIssues(r *Repository) []issue {
	var out []issue
	if r.URL == "" {
		out = append(out, issue{"url", "required: the metadata base URL"})
	} else if err := checkURL(r.URL, false); err != "" {
		out = append(out, issue{"url", err})
	}
	if r.TargetsURL != "" {
		if err := checkURL(r.TargetsURL, false); err != "" {
			out = append(out, issue{"targets_url", err})
		}
	}
	if r.Root == "" && r.RootDigest == "" {
		out = append(out, issue{"", "pin the repository's root: set root (a file) or root_digest (sha256:<hex>) or both"})
	}
	if r.RootDigest != "" {
		if err := checkDigest(r.RootDigest, "sha256"); err != "" {
			out = append(out, issue{"root_digest", err})
		}
	}
	return out
}

// signerIssues validates one signer rule. An empty field is never a
// wildcard, so a rule must name an issuer and a subject (each exactly or by
// an anchored pattern) or a public key.
func signerIssues(s Signer) []issue {
	var out []issue
	keyless := s.Issuer != "" || s.IssuerPattern != "" || s.Subject != "" || s.SubjectPattern != "" ||
		s.Repository != "" || s.Ref != "" || s.RefPattern != "" || s.Workflow != "" || s.Trigger != "" || s.Runner != ""
	if s.NPMRegistry {
		if keyless || s.PublicKey != "" {
			out = append(out, issue{"npm_registry", "npm_registry names the registry's keys and nothing else; put other signers in their own entries"})
		}
		return out
	}
	if s.PublicKey != "" {
		if keyless {
			out = append(out, issue{"public_key", "a key signer names only public_key; identity fields (issuer, subject, repository, ...) apply to keyless signers"})
		}
		if _, err := KeyID(s.PublicKey); err != nil {
			out = append(out, issue{"public_key", err.Error()})
		}
		return out
	}
	if !keyless {
		return append(out, issue{"", "empty signer: set issuer and subject (or subject_pattern), or public_key, or npm_registry"})
	}
	switch {
	case s.Issuer != "" && s.IssuerPattern != "":
		out = append(out, issue{"issuer_pattern", "set issuer or issuer_pattern, not both"})
	case s.Issuer == "" && s.IssuerPattern == "":
		out = append(out, issue{"", "no issuer: set issuer (e.g. https://token.actions.githubusercontent.com) or issuer_pattern"})
	}
	switch {
	case s.Subject != "" && s.SubjectPattern != "":
		out = append(out, issue{"subject_pattern", "set subject or subject_pattern, not both"})
	case s.Subject == "" && s.SubjectPattern == "":
		out = append(out, issue{"", "no subject: set subject (the certificate identity) or an anchored subject_pattern"})
	}
	if s.Ref != "" && s.RefPattern != "" {
		out = append(out, issue{"ref_pattern", "set ref or ref_pattern, not both"})
	}
	for _, f := range []struct{ name, val string }{{"issuer_pattern", s.IssuerPattern}, {"subject_pattern", s.SubjectPattern}, {"ref_pattern", s.RefPattern}} {
		if f.val != "" {
			if err := checkPattern(f.val); err != nil {
				out = append(out, issue{f.name, err.Error()})
			}
		}
	}
	if s.Repository != "" && !repoRE().MatchString(s.Repository) {
		out = append(out, issue{"repository", fmt.Sprintf("%q is not OWNER/NAME", s.Repository)})
	}
	switch s.Runner {
	case "", "github-hosted", "self-hosted":
	default:
		out = append(out, issue{"runner", fmt.Sprintf("unknown runner %q; use github-hosted or self-hosted", s.Runner)})
	}
	return out
}

func provenanceIssues(p *Provenance) []issue {
	var out []issue
	if len(p.Builders) == 0 && p.Repository == "" {
		out = append(out, issue{"", "provenance names neither builders nor repository; provenance from any builder of any source proves little"})
	}
	for i, b := range p.Builders {
		if b == "" {
			out = append(out, issue{fmt.Sprintf("builders[%d]", i), "empty builder id"})
		}
	}
	for i, t := range p.PredicateTypes {
		if t == "" {
			out = append(out, issue{fmt.Sprintf("predicate_types[%d]", i), "empty predicate type"})
		}
	}
	if p.Repository != "" && !repoRE().MatchString(p.Repository) {
		out = append(out, issue{"repository", fmt.Sprintf("%q is not OWNER/NAME", p.Repository)})
	}
	for i, r := range p.RefPatterns {
		if err := checkPattern(r); err != nil {
			out = append(out, issue{fmt.Sprintf("ref_patterns[%d]", i), err.Error()})
		}
	}
	return out
}

func rulesIssues(r SurfaceRules) []issue {
	var out []issue
	switch r.Pin {
	case "", PinLockfile, PinDescriptor, PinNone:
	default:
		out = append(out, issue{"pin", fmt.Sprintf("unknown pin mode %q; use lockfile, descriptor or none", r.Pin)})
	}
	switch r.OnChange {
	case "", ChangeBlock, ChangeEnd:
	default:
		out = append(out, issue{"on_change", fmt.Sprintf("unknown action %q; use block or end", r.OnChange)})
	}
	if r.Pin == PinNone && len(r.Allow) == 0 {
		out = append(out, issue{"", "pin: none needs an explicit allow list; write allow: [\"*\"] to expose every name on purpose"})
	}
	allowed := map[string]bool{}
	for i, g := range r.Allow {
		if err := checkGlob(g); err != "" {
			out = append(out, issue{fmt.Sprintf("allow[%d]", i), err})
		}
		if isLiteral(g) {
			allowed[g] = true
		}
	}
	for i, g := range r.Deny {
		if err := checkGlob(g); err != "" {
			out = append(out, issue{fmt.Sprintf("deny[%d]", i), err})
		}
		if isLiteral(g) && allowed[g] {
			out = append(out, issue{fmt.Sprintf("deny[%d]", i), fmt.Sprintf("%q is both allowed and denied; remove it from one list", g)})
		}
	}
	return out
}

// MaxPatternLength and MaxPatternProgram bound the regular expressions a
// policy may contain. RE2 matching is linear in the input, so the program
// size is what bounds the cost of a pattern.
const (
	MaxPatternLength  = 1024
	MaxPatternProgram = 4096
)

// checkPattern accepts RE2 patterns anchored as a whole: ^ first, $ last,
// and no top-level alternation that would unanchor one branch.
func checkPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern")
	}
	if len(p) > MaxPatternLength {
		return fmt.Errorf("pattern is %d bytes, more than %d", len(p), MaxPatternLength)
	}
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return fmt.Errorf("pattern %q does not compile: %v", p, err)
	}
	anchored := re.Op == syntax.OpConcat && len(re.Sub) >= 2 &&
		re.Sub[0].Op == syntax.OpBeginText && re.Sub[len(re.Sub)-1].Op == syntax.OpEndText
	if !anchored {
		return fmt.Errorf("pattern %q is not anchored; write it as ^(?:...)$ so it matches whole values only", p)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return fmt.Errorf("pattern %q does not compile: %v", p, err)
	}
	if len(prog.Inst) > MaxPatternProgram {
		return fmt.Errorf("pattern %q is too complex (%d instructions, limit %d)", p, len(prog.Inst), MaxPatternProgram)
	}
	return nil
}

func compilePattern(p string) (*regexp.Regexp, error) {
	if err := checkPattern(p); err != nil {
		return nil, err
	}
	return regexp.Compile(p)
}

func checkGlob(g string) string {
	if g == "" {
		return "empty pattern"
	}
	if len(g) > 512 {
		return "pattern longer than 512 bytes"
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Sprintf("%q is not a valid glob: %v", g, err)
	}
	return ""
}

func isLiteral(g string) bool { return !strings.ContainsAny(g, `*?[\`) }

// checkDigest accepts "ALG:<lower-case hex>" for the given algorithms.
func checkDigest(d string, algs ...string) string {
	alg, hexPart, ok := strings.Cut(d, ":")
	want := map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}
	if ok {
		for _, a := range algs {
			if a == alg {
				if len(hexPart) != want[a] || !hexRE().MatchString(hexPart) {
					return fmt.Sprintf("%q: a %s digest is %d lower-case hex digits", d, a, want[a])
				}
				return ""
			}
		}
	}
	return fmt.Sprintf("%q is not a digest; write %s:<hex>", d, strings.Join(algs, ":<hex> or "))
}

// checkIntegrity accepts subresource-integrity strings of sha256, sha384
// or sha512, space separated.
func checkIntegrity(s string) string {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return "empty integrity"
	}
	sizes := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64}
	for _, f := range fields {
		alg, b64, ok := strings.Cut(f, "-")
		size, known := sizes[alg]
		if !ok || !known {
			return fmt.Sprintf("%q is not a subresource integrity value; write sha512-<base64>", f)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != size {
			return fmt.Sprintf("%q: the %s value is not %d bytes of base64", f, alg, size)
		}
	}
	return ""
}

// checkURL accepts https URLs, and http for loopback hosts only.
func checkURL(raw string, allowQuery bool) string {
	if raw == "" {
		return "required"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%q is not a URL: %v", raw, err)
	}
	if u.User != nil {
		return fmt.Sprintf("%q: credentials do not belong in a policy URL", raw)
	}
	if u.Fragment != "" || (!allowQuery && u.RawQuery != "") {
		return fmt.Sprintf("%q: a base URL has no query or fragment", raw)
	}
	if u.Host == "" {
		return fmt.Sprintf("%q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if isLoopback(u.Hostname()) {
			return ""
		}
		return fmt.Sprintf("%q: plain http is allowed for loopback hosts only; use https", raw)
	}
	return fmt.Sprintf("%q: scheme %q is not https", raw, u.Scheme)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// KeyID returns the identifier of a PEM public key as signature facts carry
// it: "sha256:" and the lower-case hex SHA-256 of the DER
// SubjectPublicKeyInfo. A signature whose KeyID equals this value, or the
// npm registry's form of the same hash ("SHA256:" and unpadded base64),
// was made by the key.
func KeyID(pemKey string) (string, error) {
	block, rest := pem.Decode([]byte(strings.TrimSpace(pemKey)))
	if block == nil || block.Type != "PUBLIC KEY" {
		return "", fmt.Errorf("public_key is not a PEM \"PUBLIC KEY\" block")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return "", fmt.Errorf("public_key holds more than one PEM block")
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return "", fmt.Errorf("public_key does not parse: %v", err)
	}
	return digestHex(block.Bytes), nil
}

func knownList(names []string) string {
	if len(names) == 0 {
		return " (none are)"
	}
	return " (defined: " + strings.Join(names, ", ") + ")"
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func clone(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}

// sourcePinsDigest reports whether the source pins the artifact's bytes.
func sourcePinsDigest(src Source) bool {
	switch {
	case src.File != nil:
		return src.File.Digest != ""
	case src.URL != nil:
		return src.URL.Digest != ""
	case src.OCI != nil:
		return src.OCI.Digest != ""
	case src.NPM != nil:
		return src.NPM.Integrity != ""
	}
	return false
}
