package npm

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/mcp-preflight/preflight"
)

// Version is one published version of a package, as its packument
// describes it. The packument is not signed: Integrity is trusted only
// because it is checked against the tarball and, by the caller, against the
// Sigstore attestations (whose subject is the tarball's SHA-512).
type Version struct {
	Name    string
	Version string
	// Tarball is the tarball URL (dist.tarball).
	Tarball string
	// Integrity is dist.integrity reduced to its SHA-512 member:
	// "sha512-<base64>" (Subresource Integrity).
	Integrity string
	// Shasum is dist.shasum (SHA-1, hex), informational only.
	Shasum string
	// Bin maps command names to paths inside the package, as the
	// packument states them. Install takes the bin from the verified
	// tarball's package.json instead.
	Bin map[string]string
	// Dependencies are the production dependencies (optional ones
	// included, as npm lists them), name to range.
	Dependencies map[string]string
	// OptionalDependencies are the dependencies whose resolution may fail.
	OptionalDependencies map[string]string
	// PeerDependencies are the non-optional peer dependencies, which npm
	// installs too.
	PeerDependencies map[string]string
	// BundleDependencies are shipped inside the tarball and not resolved.
	BundleDependencies []string
	// HasShrinkwrap says the packument claims an npm-shrinkwrap.json in the
	// tarball. Only the tarball is authoritative (see Client.Closure).
	HasShrinkwrap bool
	// Attestations points to the registry's attestations for this version,
	// when it has any.
	Attestations *Attestations
}

// Attestations is a version's dist.attestations.
type Attestations struct {
	URL        string
	Provenance struct{ PredicateType string }
}

// SHA512 returns the hex SHA-512 of the tarball named by Integrity.
func (v *Version) SHA512() (string, error) {
	return integrityHex(v.Integrity)
}

// packument is the part of a packument Preflight reads.
type packument struct {
	Name     string                     `json:"name"`
	DistTags map[string]string          `json:"dist-tags"`
	Versions map[string]json.RawMessage `json:"versions"`
}

type manifest struct {
	Name                 string            `json:"name"`
	Version              string            `json:"version"`
	Bin                  json.RawMessage   `json:"bin"`
	Dependencies         map[string]string `json:"dependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
	PeerDependenciesMeta map[string]struct {
		Optional bool `json:"optional"`
	} `json:"peerDependenciesMeta"`
	BundleDependencies  json.RawMessage `json:"bundleDependencies"`
	BundledDependencies json.RawMessage `json:"bundledDependencies"`
	HasShrinkwrap       bool            `json:"_hasShrinkwrap"`
	Dist                struct {
		Tarball      string `json:"tarball"`
		Integrity    string `json:"integrity"`
		Shasum       string `json:"shasum"`
		Attestations *struct {
			URL        string `json:"url"`
			Provenance struct {
				PredicateType string `json:"predicateType"`
			} `json:"provenance"`
		} `json:"attestations"`
	} `json:"dist"`
}

const (
	maxNameLen = 214 // npm's own limit
	maxDeps    = 4096
)

// validName reports whether name is an npm package name safe to use as a
// path: an optional @scope/ and a name of URL-safe characters that does not
// start with a dot or an underscore. Upper case is accepted for old
// packages.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	rest := name
	if strings.HasPrefix(name, "@") {
		scope, n, ok := strings.Cut(name[1:], "/")
		if !ok || !validPart(scope) {
			return false
		}
		rest = n
	}
	return validPart(rest) && rest != "node_modules" && rest != "favicon.ico"
}

func validPart(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '_' {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

func unscoped(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

func badName(name string) error {
	return &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm package name", Expected: "an npm package name ([@scope/]name)", Found: fmt.Sprintf("%q", name)}
}

// packumentPath is the escaped registry path of a packument: scoped names
// keep the @ and escape the slash, as npm does.
func packumentPath(name string) string {
	return "/" + strings.Replace(name, "/", "%2f", 1)
}

// fetchPackument downloads and parses the packument of name.
func (c *Client) fetchPackument(ctx context.Context, name string) (*packument, error) {
	if !validName(name) {
		return nil, badName(name)
	}
	u := c.registryURL(packumentPath(name))
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.get(ctx, u, "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > c.cfg.MaxPackumentBytes {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm packument " + name,
			Expected: fmt.Sprintf("at most %d bytes", c.cfg.MaxPackumentBytes), Found: fmt.Sprintf("%d bytes declared", resp.ContentLength),
			Hint: "raise Config.MaxPackumentBytes if the registry is trusted to send that much"}
	}
	body, err := c.readBounded(ctx, u, resp.Body, c.cfg.MaxPackumentBytes, "a packument")
	if err != nil {
		return nil, err
	}
	var p packument
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm packument " + name, Expected: "packument JSON", Found: "invalid JSON", Err: err}
	}
	if p.Name != name {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm packument " + name, Expected: "name " + name, Found: fmt.Sprintf("name %q", p.Name),
			Hint: "the registry answered with another package"}
	}
	return &p, nil
}

// Resolve reads the packument of name and returns the version that
// versionOrRange selects:
//
//   - a dist-tag such as "latest" (an empty string means "latest");
//   - an exact version;
//   - a range in the supported subset of node-semver (see versionRange):
//     the "latest" tag's version when it is in the range, as npm prefers
//     it, and otherwise the highest version in the range.
//
// The returned version has a SHA-512 Integrity; a version without one is
// refused (ErrMalformed), since nothing could pin its bytes. Errors:
// ErrNotFound (no such package or no matching version), ErrMalformed,
// ErrUnavailable, ErrTimeout.
func (c *Client) Resolve(ctx context.Context, name, versionOrRange string) (*Version, error) {
	p, err := c.fetchPackument(ctx, name)
	if err != nil {
		return nil, err
	}
	return c.pick(p, versionOrRange)
}

func (c *Client) pick(p *packument, spec string) (*Version, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		spec = "latest"
	}
	notFound := func(found string) error {
		return &preflight.Error{Class: preflight.ErrNotFound, Subject: "npm " + p.Name + "@" + spec, Expected: "a published version matching " + spec, Found: found,
			Hint: "check the version or range; published versions are listed by `npm view " + p.Name + " versions`"}
	}
	if v, ok := p.DistTags[spec]; ok && !strings.ContainsAny(spec, "<>=^~*| ") {
		raw, ok := p.Versions[v]
		if !ok {
			return nil, notFound("dist-tag " + spec + " naming unpublished version " + v)
		}
		return c.parseVersion(p.Name, v, raw)
	}
	if _, ok := p.Versions[spec]; ok {
		return c.parseVersion(p.Name, spec, p.Versions[spec])
	}
	r, err := parseRange(spec)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm " + p.Name + "@" + spec,
			Expected: "a dist-tag, a version or a range (^, ~, x, comparators, hyphen, ||)", Found: fmt.Sprintf("%q", spec), Err: err}
	}
	if latest, ok := p.DistTags["latest"]; ok {
		if lv, ok := parseSemver(latest); ok && r.contains(lv) {
			if raw, ok := p.Versions[latest]; ok {
				return c.parseVersion(p.Name, latest, raw)
			}
		}
	}
	best, bestKey := semver{}, ""
	for key := range p.Versions {
		v, ok := parseSemver(key)
		if !ok || !r.contains(v) {
			continue
		}
		if bestKey == "" || v.compare(best) > 0 {
			best, bestKey = v, key
		}
	}
	if bestKey == "" {
		return nil, notFound(fmt.Sprintf("%d versions, none in range", len(p.Versions)))
	}
	return c.parseVersion(p.Name, bestKey, p.Versions[bestKey])
}

func (c *Client) parseVersion(name, version string, raw json.RawMessage) (*Version, error) {
	subject := "npm " + name + "@" + version
	malformed := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: expected, Found: found, Err: err}
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, malformed("a version manifest", "invalid JSON", err)
	}
	if m.Name != name || m.Version != version {
		return nil, malformed("manifest of "+name+"@"+version, fmt.Sprintf("%s@%s", m.Name, m.Version), nil)
	}
	if _, ok := parseSemver(version); !ok {
		return nil, malformed("a semantic version", fmt.Sprintf("%q", version), nil)
	}
	integrity, err := pickIntegrity(m.Dist.Integrity)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "dist.integrity with a sha512 digest", Found: fmt.Sprintf("%q", m.Dist.Integrity), Err: err,
			Hint: "versions published before npm 5 have only a SHA-1 shasum, which cannot pin bytes; use a newer version"}
	}
	v := &Version{Name: name, Version: version, Tarball: m.Dist.Tarball, Integrity: integrity, Shasum: m.Dist.Shasum, HasShrinkwrap: m.HasShrinkwrap}
	if v.Bin, err = parseBin(name, m.Bin); err != nil {
		return nil, malformed("bin as a path or a map of names to paths", string(m.Bin), err)
	}
	if err := depMap(&v.Dependencies, m.Dependencies); err != nil {
		return nil, malformed("dependencies", "", err)
	}
	if err := depMap(&v.OptionalDependencies, m.OptionalDependencies); err != nil {
		return nil, malformed("optionalDependencies", "", err)
	}
	for dep, r := range m.PeerDependencies {
		if m.PeerDependenciesMeta[dep].Optional {
			continue
		}
		if v.PeerDependencies == nil {
			v.PeerDependencies = map[string]string{}
		}
		v.PeerDependencies[dep] = r
	}
	if err := depMap(&v.PeerDependencies, v.PeerDependencies); err != nil {
		return nil, malformed("peerDependencies", "", err)
	}
	bundled := m.BundleDependencies
	if len(bundled) == 0 {
		bundled = m.BundledDependencies
	}
	if v.BundleDependencies, err = parseBundled(bundled, v.Dependencies); err != nil {
		return nil, malformed("bundleDependencies as a list of names or a boolean", string(bundled), err)
	}
	if a := m.Dist.Attestations; a != nil {
		v.Attestations = &Attestations{URL: a.URL}
		v.Attestations.Provenance.PredicateType = a.Provenance.PredicateType
	}
	return v, nil
}

func depMap(dst *map[string]string, src map[string]string) error {
	if len(src) > maxDeps {
		return fmt.Errorf("%d entries, more than %d", len(src), maxDeps)
	}
	for name := range src {
		if !validName(name) {
			return fmt.Errorf("invalid dependency name %q", name)
		}
	}
	if len(src) > 0 {
		*dst = src
	}
	return nil
}

func parseBundled(raw json.RawMessage, deps map[string]string) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "false" {
		return nil, nil
	}
	if string(raw) == "true" {
		names := make([]string, 0, len(deps))
		for n := range deps {
			names = append(names, n)
		}
		sort.Strings(names)
		return names, nil
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, err
	}
	for _, n := range names {
		if !validName(n) {
			return nil, fmt.Errorf("invalid name %q", n)
		}
	}
	return names, nil
}

// parseBin normalises bin: a string names one command called after the
// unscoped package name.
func parseBin(name string, raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return checkBin(map[string]string{unscoped(name): one})
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return checkBin(m)
}

func checkBin(m map[string]string) (map[string]string, error) {
	if len(m) > 1024 {
		return nil, fmt.Errorf("%d bin entries", len(m))
	}
	out := make(map[string]string, len(m))
	for cmd, p := range m {
		if cmd == "" || strings.ContainsAny(cmd, "/\\\x00") || cmd == "." || cmd == ".." {
			return nil, fmt.Errorf("invalid command name %q", cmd)
		}
		clean, ok := cleanRel(p)
		if !ok {
			return nil, fmt.Errorf("bin %q is not a path inside the package", p)
		}
		out[cmd] = clean // "./bin/x.js" and "bin/x.js/" name the same file
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// cleanRel cleans a slash-separated relative path and reports whether it
// stays inside its root and names something below it.
func cleanRel(p string) (string, bool) {
	if p == "" || strings.ContainsRune(p, 0) || strings.Contains(p, "\\") || path.IsAbs(p) {
		return "", false
	}
	c := path.Clean(p)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// pickIntegrity returns the single sha512 member of an SRI string
// ("sha512-<base64>", possibly among others, separated by spaces).
func pickIntegrity(sri string) (string, error) {
	found := ""
	for _, f := range strings.Fields(sri) {
		alg, _, ok := strings.Cut(f, "-")
		if !ok || alg != "sha512" {
			continue
		}
		if i := strings.IndexByte(f, '?'); i >= 0 {
			f = f[:i] // SRI options
		}
		if _, err := integrityHex(f); err != nil {
			return "", err
		}
		if found != "" && found != f {
			return "", fmt.Errorf("two different sha512 digests")
		}
		found = f
	}
	if found == "" {
		return "", fmt.Errorf("no sha512 member")
	}
	return found, nil
}

// integrityHex decodes "sha512-<base64>" to hex.
func integrityHex(sri string) (string, error) {
	b64, ok := strings.CutPrefix(sri, "sha512-")
	if !ok {
		return "", fmt.Errorf("integrity %q is not sha512", sri)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sum) != sha512.Size {
		return "", fmt.Errorf("integrity %q is not a base64 SHA-512 digest", sri)
	}
	return hex.EncodeToString(sum), nil
}

// tarballURL checks a version's tarball URL. npm writes the public
// registry's host into lockfiles; like npm (replace-registry-host), a URL on
// registry.npmjs.org is redirected to the configured registry, which
// serves the same path. A missing URL is derived from the name and version.
func (c *Client) tarballURL(name, version, raw string) (*url.URL, error) {
	if raw == "" {
		return c.registryURL("/" + name + "/-/" + unscoped(name) + "-" + version + ".tgz"), nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm " + name + "@" + version, Expected: "an http(s) tarball URL", Found: fmt.Sprintf("%q", raw), Err: err}
	}
	u.User = nil
	if strings.EqualFold(u.Host, "registry.npmjs.org") && !strings.EqualFold(c.registry.Host, u.Host) {
		v := c.registryURL(u.EscapedPath())
		return v, nil
	}
	return u, nil
}
