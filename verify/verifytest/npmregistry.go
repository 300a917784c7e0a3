package verifytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NPMRegistry is a fake npm registry served on loopback. It serves
// packuments (GET /NAME, scoped names as @scope%2fname or @scope/name),
// tarballs (GET /NAME/-/NAME-VERSION.tgz) and the attestations endpoint
// (GET /-/npm/v1/attestations/NAME@VERSION) as registry.npmjs.org lays
// them out, and it can misbehave on request: other bytes, delays, short or
// oversized bodies, error statuses and redirects.
//
// Safe for concurrent use. Close stops the server.
type NPMRegistry struct {
	srv *httptest.Server

	mu       sync.Mutex
	pkgs     map[string]*npmPackument
	tarballs map[string]*npmPublished // tarball path → version
	attest   map[string][][]byte      // NAME@VERSION → bundles
	raw      map[string][]byte        // NAME → packument bytes served as is
	delay    time.Duration
	truncate bool
	chunked  bool
	oversize int64
	status   int
	redirect string
	counts   NPMRequests
}

// NPMRequests counts the requests an NPMRegistry answered, by kind.
type NPMRequests struct {
	Packuments, Tarballs, Attestations int
}

type npmPackument struct {
	versions map[string]*npmPublished
	tags     map[string]string
}

type npmPublished struct {
	pkg       NPMPackage
	path      string // tarball path
	tarball   []byte
	served    []byte // what the tarball URL serves (TamperTarball)
	integrity string
	shasum    string
}

// NPMPackage is a package version to publish.
type NPMPackage struct {
	Name, Version string
	// Files are the package's files by path below package/. A
	// package.json is generated (name, version, bin, dependencies) unless
	// Files has one.
	Files map[string][]byte
	// Bin maps command names to paths in Files; those files are packed
	// executable.
	Bin map[string]string
	// Dependencies maps names to version specifications.
	Dependencies map[string]string
	// Shrinkwrap adds an npm-shrinkwrap.json (lockfileVersion 3) pinning
	// the dependencies by integrity, unless Files has one. Dependencies
	// must then name exact versions or dist-tags of packages already
	// published; the lockfile nests every dependency below its dependent.
	Shrinkwrap bool
	// Tarball, when set, is published as is instead of a tarball built
	// from Files (for unsafe or malformed archives); the packument still
	// describes Bin and Dependencies.
	Tarball []byte
}

// NewNPMRegistry starts an empty registry on a loopback port.
func NewNPMRegistry() (*NPMRegistry, error) {
	r := &NPMRegistry{
		pkgs:     map[string]*npmPackument{},
		tarballs: map[string]*npmPublished{},
		attest:   map[string][][]byte{},
		raw:      map[string][]byte{},
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.npmServe))
	return r, nil
}

// URL is the registry's base URL, http://127.0.0.1:PORT.
func (r *NPMRegistry) URL() string { return r.srv.URL }

// Close stops the server and waits for requests in flight.
func (r *NPMRegistry) Close() {
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// Requests returns how many requests of each kind were answered so far.
func (r *NPMRegistry) Requests() NPMRequests {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts
}

// Publish packs p into a real .tgz (entries under package/, files 0644,
// bins 0755, a fixed modification time), adds the version to its
// packument with dist.tarball, dist.integrity (sha512 SRI) and dist.shasum,
// and moves the "latest" dist-tag to it. It returns the tarball and its
// integrity.
func (r *NPMRegistry) Publish(p NPMPackage) (tarball []byte, integrity string, err error) {
	if p.Name == "" || p.Version == "" || strings.ContainsAny(p.Name+p.Version, " \\?#") {
		return nil, "", fmt.Errorf("verifytest: npm publish: name and version are required, found %q@%q", p.Name, p.Version)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tarball = p.Tarball
	if tarball == nil {
		files := make(map[string][]byte, len(p.Files)+2)
		for k, v := range p.Files {
			files[k] = v
		}
		if _, ok := files["package.json"]; !ok {
			pj, err := json.MarshalIndent(map[string]any{"name": p.Name, "version": p.Version, "bin": p.Bin, "dependencies": p.Dependencies}, "", "  ")
			if err != nil {
				return nil, "", err
			}
			files["package.json"] = pj
		}
		if _, ok := files["npm-shrinkwrap.json"]; p.Shrinkwrap && !ok {
			sw, err := r.npmShrinkwrap(p)
			if err != nil {
				return nil, "", err
			}
			files["npm-shrinkwrap.json"] = sw
		}
		exec := map[string]bool{}
		for _, b := range p.Bin {
			exec[strings.TrimPrefix(b, "./")] = true
		}
		if tarball, err = NPMTarball(files, exec); err != nil {
			return nil, "", err
		}
	}
	sum := sha512.Sum512(tarball)
	s1 := sha1.Sum(tarball)
	integrity = "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	base := p.Name
	if i := strings.IndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	pub := &npmPublished{pkg: p, path: "/" + p.Name + "/-/" + base + "-" + p.Version + ".tgz", tarball: tarball, served: tarball,
		integrity: integrity, shasum: hex.EncodeToString(s1[:])}
	pk := r.pkgs[p.Name]
	if pk == nil {
		pk = &npmPackument{versions: map[string]*npmPublished{}, tags: map[string]string{}}
		r.pkgs[p.Name] = pk
	}
	pk.versions[p.Version] = pub
	pk.tags["latest"] = p.Version
	r.tarballs[pub.path] = pub
	return bytes.Clone(tarball), integrity, nil
}

// npmShrinkwrap nests each dependency below its dependent. It runs with
// r.mu held.
func (r *NPMRegistry) npmShrinkwrap(p NPMPackage) ([]byte, error) {
	packages := map[string]any{"": map[string]any{"name": p.Name, "version": p.Version, "dependencies": p.Dependencies}}
	var add func(dir string, deps map[string]string, depth int) error
	add = func(dir string, deps map[string]string, depth int) error {
		if depth > 16 {
			return fmt.Errorf("verifytest: npm shrinkwrap of %s: dependencies nest deeper than 16", p.Name)
		}
		for name, spec := range deps {
			pk := r.pkgs[name]
			if pk == nil {
				return fmt.Errorf("verifytest: npm shrinkwrap of %s: %s is not published", p.Name, name)
			}
			v := strings.TrimPrefix(spec, "=")
			if t, ok := pk.tags[v]; ok {
				v = t
			}
			pub := pk.versions[v]
			if pub == nil {
				return fmt.Errorf("verifytest: npm shrinkwrap of %s: %s@%s is not published (exact versions or dist-tags only)", p.Name, name, spec)
			}
			path := "node_modules/" + name
			if dir != "" {
				path = dir + "/node_modules/" + name
			}
			packages[path] = map[string]any{"version": v, "resolved": r.srv.URL + pub.path, "integrity": pub.integrity, "dependencies": pub.pkg.Dependencies}
			if err := add(path, pub.pkg.Dependencies, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := add("", p.Dependencies, 0); err != nil {
		return nil, err
	}
	return json.MarshalIndent(map[string]any{"name": p.Name, "version": p.Version, "lockfileVersion": 3, "requires": true, "packages": packages}, "", "  ")
}

// NPMTarball packs files (by path below package/) into a gzipped tar as
// npm pack lays it out; paths in exec are packed 0755, others 0644.
func NPMTarball(files map[string][]byte, exec map[string]bool) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	mtime := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC) // npm's fixed mtime
	for _, n := range names {
		mode := int64(0o644)
		if exec[n] {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + n, Mode: mode, Size: int64(len(files[n])), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return nil, fmt.Errorf("verifytest: npm tarball: %w", err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, fmt.Errorf("verifytest: npm tarball: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("verifytest: npm tarball: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("verifytest: npm tarball: %w", err)
	}
	return buf.Bytes(), nil
}

// AddAttestations serves bundles (Sigstore bundle JSON) at
// /-/npm/v1/attestations/NAME@VERSION as the registry does:
// {"attestations":[{"predicateType":...,"bundle":{...}}]}, each
// predicate type read from the bundle's DSSE statement. The packument then
// names the endpoint in dist.attestations.
func (r *NPMRegistry) AddAttestations(name, version string, bundles ...[]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := name + "@" + version
	for _, b := range bundles {
		r.attest[key] = append(r.attest[key], bytes.Clone(b))
	}
}

// TamperTarball makes the tarball URL of name@version serve data instead
// of the published bytes; the packument keeps the published integrity.
func (r *NPMRegistry) TamperTarball(name, version string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pk := r.pkgs[name]; pk != nil && pk.versions[version] != nil {
		pk.versions[version].served = bytes.Clone(data)
	}
}

// SetPackument serves raw as the packument of name, whatever was published.
func (r *NPMRegistry) SetPackument(name string, raw []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.raw[name] = bytes.Clone(raw)
}

// SetDistTag points a dist-tag of name at version.
func (r *NPMRegistry) SetDistTag(name, tag, version string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pk := r.pkgs[name]; pk != nil {
		pk.tags[tag] = version
	}
}

// SetDelay delays every answer by d (0 turns it off). A client that gives
// up earlier ends the wait.
func (r *NPMRegistry) SetDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Truncate makes every answer declare its full Content-Length but send
// only half of the body, then close the connection.
func (r *NPMRegistry) Truncate(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.truncate = on
}

// Chunked makes every answer omit its Content-Length, so that a client
// learns the size only by reading.
func (r *NPMRegistry) Chunked(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chunked = on
}

// Oversize pads every answer body to at least n bytes (0 turns it off):
// JSON with trailing spaces, so that it still parses, tarballs with zero
// bytes.
func (r *NPMRegistry) Oversize(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.oversize = n
}

// Status makes every answer an empty one with this HTTP status (0 turns
// it off).
func (r *NPMRegistry) Status(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = code
}

// RedirectTarballs answers tarball requests with a 302 to base followed
// by the same path ("" turns it off); base is typically another
// registry's URL.
func (r *NPMRegistry) RedirectTarballs(base string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.redirect = strings.TrimSuffix(base, "/")
}

func (r *NPMRegistry) npmServe(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.mu.Lock()
	delay, status := r.delay, r.status
	r.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		}
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	p := req.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/-/npm/v1/attestations/"):
		r.npmServeAttestations(w, strings.TrimPrefix(p, "/-/npm/v1/attestations/"))
	case strings.Contains(p, "/-/"):
		r.npmServeTarball(w, req)
	default:
		name, err := url.PathUnescape(strings.TrimPrefix(p, "/"))
		if err != nil {
			http.NotFound(w, req)
			return
		}
		r.npmServePackument(w, name)
	}
}

func (r *NPMRegistry) npmServePackument(w http.ResponseWriter, name string) {
	r.mu.Lock()
	r.counts.Packuments++
	if raw, ok := r.raw[name]; ok {
		r.mu.Unlock()
		r.npmWrite(w, "application/json", raw, ' ')
		return
	}
	pk := r.pkgs[name]
	if pk == nil {
		r.mu.Unlock()
		http.Error(w, `{"error":"Not found"}`, http.StatusNotFound)
		return
	}
	versions := map[string]any{}
	for v, pub := range pk.versions {
		dist := map[string]any{"tarball": r.srv.URL + pub.path, "integrity": pub.integrity, "shasum": pub.shasum}
		if len(r.attest[name+"@"+v]) > 0 {
			dist["attestations"] = map[string]any{
				"url":        r.srv.URL + "/-/npm/v1/attestations/" + name + "@" + v,
				"provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"},
			}
		}
		m := map[string]any{"name": name, "version": v, "dist": dist}
		if len(pub.pkg.Bin) > 0 {
			m["bin"] = pub.pkg.Bin
		}
		if len(pub.pkg.Dependencies) > 0 {
			m["dependencies"] = pub.pkg.Dependencies
		}
		if pub.pkg.Shrinkwrap {
			m["_hasShrinkwrap"] = true
		}
		versions[v] = m
	}
	doc, err := json.Marshal(map[string]any{"name": name, "dist-tags": pk.tags, "versions": versions})
	r.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	r.npmWrite(w, "application/json", doc, ' ')
}

func (r *NPMRegistry) npmServeTarball(w http.ResponseWriter, req *http.Request) {
	path, err := url.PathUnescape(req.URL.EscapedPath())
	if err != nil {
		http.NotFound(w, req)
		return
	}
	r.mu.Lock()
	r.counts.Tarballs++
	pub, redirect := r.tarballs[path], r.redirect
	var body []byte
	if pub != nil {
		body = pub.served
	}
	r.mu.Unlock()
	if redirect != "" {
		http.Redirect(w, req, redirect+req.URL.EscapedPath(), http.StatusFound)
		return
	}
	if pub == nil {
		http.NotFound(w, req)
		return
	}
	r.npmWrite(w, "application/octet-stream", body, 0)
}

func (r *NPMRegistry) npmServeAttestations(w http.ResponseWriter, escaped string) {
	spec, err := url.PathUnescape(escaped)
	at := strings.LastIndexByte(spec, '@')
	r.mu.Lock()
	r.counts.Attestations++
	var bundles [][]byte
	if err == nil && at > 0 {
		bundles = r.attest[spec]
	}
	r.mu.Unlock()
	if len(bundles) == 0 {
		http.Error(w, `{"error":"Not found"}`, http.StatusNotFound)
		return
	}
	type entry struct {
		PredicateType string          `json:"predicateType"`
		Bundle        json.RawMessage `json:"bundle"`
	}
	doc := struct {
		Attestations []entry `json:"attestations"`
	}{}
	for _, b := range bundles {
		doc.Attestations = append(doc.Attestations, entry{PredicateType: npmPredicateType(b), Bundle: b})
	}
	out, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	r.npmWrite(w, "application/json", out, ' ')
}

// npmPredicateType reads the predicate type of a DSSE bundle's statement;
// "" for anything else.
func npmPredicateType(bundle []byte) string {
	var b struct {
		DSSEEnvelope struct {
			Payload string `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if json.Unmarshal(bundle, &b) != nil {
		return ""
	}
	payload, err := base64.StdEncoding.DecodeString(b.DSSEEnvelope.Payload)
	if err != nil {
		return ""
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(payload, &st) != nil {
		return ""
	}
	return st.PredicateType
}

// npmWrite writes body with the faults in effect; pad pads oversized
// bodies.
func (r *NPMRegistry) npmWrite(w http.ResponseWriter, contentType string, body []byte, pad byte) {
	r.mu.Lock()
	truncate, oversize, chunked := r.truncate, r.oversize, r.chunked
	r.mu.Unlock()
	if int64(len(body)) < oversize {
		body = append(bytes.Clone(body), bytes.Repeat([]byte{pad}, int(oversize-int64(len(body))))...)
	}
	w.Header().Set("Content-Type", contentType)
	if !chunked {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(http.StatusOK)
	if chunked {
		// Two writes with a flush between: the server cannot compute a
		// length and sends the body chunked.
		w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		w.Write(body[len(body)/2:])
		return
	}
	if truncate {
		w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// Returning with fewer bytes than declared makes the server
		// close the connection, which the client sees as a short body.
		return
	}
	w.Write(body)
}

// NPMPurl is the package URL npm attestations name as their subject:
// pkg:npm/NAME@VERSION, with the @ of a scope escaped (%40scope/name).
func NPMPurl(name, version string) string {
	return "pkg:npm/" + strings.Replace(name, "@", "%40", 1) + "@" + version
}

// NPMPublishStatement returns the in-toto statement of the npm registry's
// publish attestation (predicate type
// https://github.com/npm/attestation/tree/main/specs/publish/v0.1) for
// name@version whose tarball has the given SHA-512 (hex). Sign it with
// Sigstore.AttestWithKey and a KeySigner standing in for the registry key
// (SignOptions{TlogEntryKind: "intoto", NoTimestamp: true}, as the
// registry does).
func NPMPublishStatement(name, version, tarballSHA512 string) ([]byte, error) {
	if b, err := hex.DecodeString(tarballSHA512); err != nil || len(b) != sha512.Size {
		return nil, fmt.Errorf("verifytest: npm publish statement: %q is not a hex SHA-512", tarballSHA512)
	}
	return json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"subject":       []any{map[string]any{"name": NPMPurl(name, version), "digest": map[string]string{"sha512": tarballSHA512}}},
		"predicateType": "https://github.com/npm/attestation/tree/main/specs/publish/v0.1",
		"predicate":     map[string]any{"name": name, "version": version, "registry": "https://registry.npmjs.org"},
	})
}
