package release_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/release"
	"github.com/mcp-preflight/preflight/internal/release/releasetest"
	"github.com/mcp-preflight/preflight/internal/store"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

type env struct {
	host  *verifytest.ReleaseHost
	store *store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	h, err := verifytest.NewReleaseHost()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &env{host: h, store: s}
}

func (e *env) fetcher(t *testing.T, cfg release.Config) *release.Fetcher {
	t.Helper()
	cfg.Store = e.store
	f, err := release.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// entries lists the store's entries.
func (e *env) entries(t *testing.T) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(e.store.Dir(), "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func (e *env) assertEmptyStore(t *testing.T) {
	t.Helper()
	if got := e.entries(t); len(got) != 0 {
		t.Fatalf("store holds %v after a refusal", got)
	}
	if _, err := os.Stat(filepath.Join(e.store.Dir(), "unpacked")); err == nil {
		des, _ := os.ReadDir(filepath.Join(e.store.Dir(), "unpacked"))
		if len(des) != 0 {
			t.Fatalf("store holds unpacked trees %v after a refusal", des)
		}
	}
}

const binPath = "/acme/weather/releases/download/v1.4.0/weather-linux-amd64"

var server = []byte("\x7fELF weather server v1.4.0")

// publish adds the server and its signed bundle.
func (e *env) publish(t *testing.T, id verifytest.Identity) {
	t.Helper()
	b, err := releasetest.Sigstore(t).SignBlob(id, server, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.host.Add(binPath, server)
	e.host.Add(binPath+".sigstore.json", b)
}

func wantClass(t *testing.T, err error, class *preflight.Class) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("err = %v, want %v", err, class)
	}
	var pe *preflight.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err %v is not a *preflight.Error", err)
	}
	// Exactly one umbrella: a security refusal is never also operational.
	if errors.Is(err, preflight.ErrSecurity) == errors.Is(err, preflight.ErrOperational) {
		t.Fatalf("err %v matches both or neither umbrella", err)
	}
}

func TestFetchSignedBinary(t *testing.T) {
	e := newEnv(t)
	e.publish(t, releasetest.Publisher)
	f := e.fetcher(t, release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)})
	res, err := f.Fetch(context.Background(), release.Asset{URL: e.host.URL() + binPath})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry.SHA256 != releasetest.SHA256(server) || !res.Downloaded || res.Entry != res.File {
		t.Fatalf("result = %+v", res)
	}
	got, err := os.ReadFile(res.Entry.Path)
	if err != nil || !bytes.Equal(got, server) {
		t.Fatalf("entry holds %q, %v", got, err)
	}
	info, err := os.Stat(res.Entry.Path)
	if err != nil || info.Mode().Perm() != 0o500 {
		t.Fatalf("entry mode %v, %v; want 0500", info.Mode(), err)
	}
	if len(res.Signatures) != 1 || res.Signatures[0].Certificate == nil || res.Signatures[0].Certificate.Subject != releasetest.Publisher.Subject {
		t.Fatalf("signatures = %+v", res.Signatures)
	}
	if a := res.Artifact; a.Name != "weather-linux-amd64" || a.Source != "url" || a.Size != int64(len(server)) || a.Digests["sha256"] != releasetest.SHA256(server) {
		t.Fatalf("artifact facts = %+v", a)
	}
	if len(res.Bundles) != 1 || !strings.HasSuffix(res.Bundles[0].Name, ".sigstore.json") {
		t.Fatalf("bundles = %+v", res.Bundles)
	}

	// Second fetch: the bundle is checked again, the binary comes from the
	// store.
	res2, err := f.Fetch(context.Background(), release.Asset{URL: e.host.URL() + binPath})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Downloaded || res2.Entry != res.Entry {
		t.Fatalf("second fetch = %+v", res2)
	}
	if n := e.host.Requests(binPath); n != 1 {
		t.Fatalf("binary requested %d times, want 1", n)
	}
}

func TestFetchPinnedFromStore(t *testing.T) {
	e := newEnv(t)
	e.host.Add(binPath, server)
	f := e.fetcher(t, release.Config{})
	a := release.Asset{URL: e.host.URL() + binPath, SHA256: strings.ToUpper(releasetest.SHA256(server))}
	if _, err := f.Fetch(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	before := e.host.Requests(binPath) + e.host.Requests(binPath+".sigstore.json")
	res, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	after := e.host.Requests(binPath) + e.host.Requests(binPath+".sigstore.json")
	if res.Downloaded || after != before || before != 1 {
		t.Fatalf("downloads before %d, after %d, result %+v", before, after, res)
	}
}

func TestFetchRefusals(t *testing.T) {
	other := []byte("\x7fELF something else")
	cases := []struct {
		name    string
		setup   func(t *testing.T, e *env)
		cfg     func(t *testing.T) release.Config
		asset   func(e *env) release.Asset
		class   *preflight.Class
		noFetch bool // the binary must not even be requested
	}{
		{
			name:  "tampered bytes, signed",
			setup: func(t *testing.T, e *env) { e.publish(t, releasetest.Publisher); e.host.Tamper(binPath, other) },
			cfg: func(t *testing.T) release.Config {
				return release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)}
			},
			class: preflight.ErrTampered,
		},
		{
			name:  "tampered bytes, pinned",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server); e.host.Tamper(binPath, other) },
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrTampered,
		},
		{
			name:  "pinned digest disagrees with the signed one",
			setup: func(t *testing.T, e *env) { e.publish(t, releasetest.Publisher) },
			cfg: func(t *testing.T) release.Config {
				return release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)}
			},
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(other)}
			},
			class: preflight.ErrTampered, noFetch: true,
		},
		{
			name:  "wrong signer",
			setup: func(t *testing.T, e *env) { e.publish(t, releasetest.Intruder) },
			cfg: func(t *testing.T) release.Config {
				return release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)}
			},
			class: preflight.ErrIdentity, noFetch: true,
		},
		{
			name: "signature over other bytes",
			setup: func(t *testing.T, e *env) {
				e.publish(t, releasetest.Publisher)
				b, err := releasetest.Sigstore(t).SignBlob(releasetest.Publisher, other, verifytest.SignOptions{})
				if err != nil {
					t.Fatal(err)
				}
				e.host.Add(binPath+".sigstore.json", b)
			},
			cfg: func(t *testing.T) release.Config {
				return release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)}
			},
			class: preflight.ErrTampered,
		},
		{
			name: "forged signature",
			setup: func(t *testing.T, e *env) {
				e.publish(t, releasetest.Publisher)
				b, err := releasetest.Sigstore(t).SignBlob(releasetest.Publisher, server, verifytest.SignOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if b, err = verifytest.TamperSignature(b); err != nil {
					t.Fatal(err)
				}
				e.host.Add(binPath+".sigstore.json", b)
			},
			cfg: func(t *testing.T) release.Config {
				return release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)}
			},
			class: preflight.ErrSignature, noFetch: true,
		},
		{
			name:  "missing bundle when required",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server) },
			cfg: func(t *testing.T) release.Config {
				return release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)}
			},
			class: preflight.ErrSignature, noFetch: true,
		},
		{
			name: "bundle that is not JSON",
			setup: func(t *testing.T, e *env) {
				e.host.Add(binPath, server)
				e.host.Add(binPath+".sigstore.json", []byte("<html>"))
			},
			cfg: func(t *testing.T) release.Config {
				return release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)}
			},
			class: preflight.ErrMalformed, noFetch: true,
		},
		{
			name:  "oversized by Content-Length",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server) },
			cfg:   func(t *testing.T) release.Config { return release.Config{MaxBytes: 8} },
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrMalformed,
		},
		{
			name:  "endless body",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server); e.host.Oversize(binPath) },
			cfg:   func(t *testing.T) release.Config { return release.Config{MaxBytes: 1 << 20} },
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrMalformed,
		},
		{
			name:  "truncated body",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server); e.host.Truncate(binPath) },
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrUnavailable,
		},
		{
			name:  "server error",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server); e.host.Status(binPath, http.StatusBadGateway) },
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrUnavailable,
		},
		{
			name:  "forbidden",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server); e.host.Status(binPath, http.StatusForbidden) },
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrUnavailable,
		},
		{
			name:  "not found",
			setup: func(t *testing.T, e *env) {},
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrNotFound,
		},
		{
			name:  "slow host",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server); e.host.SetDelay(binPath, 10*time.Second) },
			cfg:   func(t *testing.T) release.Config { return release.Config{Timeout: 50 * time.Millisecond} },
			asset: func(e *env) release.Asset {
				return release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrTimeout,
		},
		{
			name:  "no pin and no signer",
			setup: func(t *testing.T, e *env) { e.host.Add(binPath, server) },
			class: preflight.ErrConfig, noFetch: true,
		},
		{
			name:  "plain http to a remote host",
			setup: func(t *testing.T, e *env) {},
			asset: func(e *env) release.Asset {
				return release.Asset{URL: "http://example.com/weather", SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrConfig, noFetch: true,
		},
		{
			name:  "credentials in URL",
			setup: func(t *testing.T, e *env) {},
			asset: func(e *env) release.Asset {
				return release.Asset{URL: strings.Replace(e.host.URL(), "http://", "http://u:p@", 1) + binPath, SHA256: releasetest.SHA256(server)}
			},
			class: preflight.ErrConfig, noFetch: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.setup(t, e)
			cfg := release.Config{}
			if c.cfg != nil {
				cfg = c.cfg(t)
			}
			a := release.Asset{URL: e.host.URL() + binPath}
			if c.asset != nil {
				a = c.asset(e)
			}
			res, err := e.fetcher(t, cfg).Fetch(context.Background(), a)
			if res != nil {
				t.Fatalf("result %+v alongside error %v", res, err)
			}
			wantClass(t, err, c.class)
			if strings.Contains(err.Error(), "u:p@") {
				t.Fatalf("err %v shows the URL's password", err)
			}
			e.assertEmptyStore(t)
			if n := e.host.Requests(binPath); c.noFetch && n != 0 {
				t.Fatalf("binary requested %d times before the evidence was accepted", n)
			}
		})
	}
}

func TestFetchCanceled(t *testing.T) {
	e := newEnv(t)
	e.host.Add(binPath, server)
	e.host.SetDelay(binPath, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.fetcher(t, release.Config{}).Fetch(ctx, release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)})
	wantClass(t, err, preflight.ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v does not wrap the context's error", err)
	}
}

func TestFetchRedirects(t *testing.T) {
	e := newEnv(t)
	mirror, err := verifytest.NewReleaseHost()
	if err != nil {
		t.Fatal(err)
	}
	defer mirror.Close()
	mirror.Add("/blob/weather", server)
	e.host.RedirectTo(binPath, mirror.URL()+"/blob/weather")
	e.host.Add("/same/weather", nil)
	e.host.RedirectTo("/same/weather", binPath+"-copy")
	e.host.Add(binPath+"-copy", server)
	a := release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)}

	_, err = e.fetcher(t, release.Config{}).Fetch(context.Background(), a)
	wantClass(t, err, preflight.ErrUnavailable)
	if !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("err %v does not say a redirect was refused", err)
	}
	if n := mirror.Requests("/blob/weather"); n != 0 {
		t.Fatalf("refused host was asked %d times", n)
	}
	e.assertEmptyStore(t)

	// The same host is always fine.
	if _, err := e.fetcher(t, release.Config{}).Fetch(context.Background(), release.Asset{URL: e.host.URL() + "/same/weather", SHA256: releasetest.SHA256(server)}); err != nil {
		t.Fatal(err)
	}

	// An allowed host is fine too.
	mirrorHost := strings.TrimPrefix(mirror.URL(), "http://")
	res, err := e.fetcher(t, release.Config{AllowRedirectHosts: []string{mirrorHost}}).Fetch(context.Background(), release.Asset{URL: e.host.URL() + binPath, SHA256: releasetest.SHA256(server)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Downloaded {
		t.Fatal("the bytes were in the store already")
	}
	os.RemoveAll(e.store.Dir())
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := release.New(release.Config{Store: s, AllowRedirectHosts: []string{mirrorHost}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err = f.Fetch(context.Background(), a); err != nil || !res.Downloaded || mirror.Requests("/blob/weather") != 1 {
		t.Fatalf("allowed redirect: %+v, %v", res, err)
	}
}

const archivePath = "/acme/weather/releases/download/v1.4.0/weather_1.4.0_linux_amd64.tar.gz"

func TestFetchSignedArchive(t *testing.T) {
	e := newEnv(t)
	tgz := verifytest.TarGz(map[string][]byte{
		"weather_1.4.0/bin/weather": server,
		"weather_1.4.0/LICENSE":     []byte("Apache-2.0"),
	})
	// Attested as actions/attest-build-provenance does: a SLSA statement
	// whose subject is the archive, served as gh attestation download
	// writes it (JSON Lines).
	st, err := verifytest.SLSAProvenanceV1("weather_1.4.0_linux_amd64.tar.gz", map[string]string{"sha256": releasetest.SHA256(tgz)}, verifytest.ProvenanceFor(releasetest.Publisher))
	if err != nil {
		t.Fatal(err)
	}
	att, err := releasetest.Sigstore(t).Attest(releasetest.Publisher, st, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := releasetest.Sigstore(t).SignBlob(releasetest.Publisher, tgz, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.host.Add(archivePath, tgz)
	e.host.Add("/attestations.jsonl", append(append(compact(t, att), '\n'), append(compact(t, sig), '\n')...))

	f := e.fetcher(t, release.Config{Verify: releasetest.VerifyAs(t, releasetest.Publisher)})
	a := release.Asset{URL: e.host.URL() + archivePath, BundleURL: e.host.URL() + "/attestations.jsonl", Binary: "weather"}
	res, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if res.File.SHA256 != releasetest.SHA256(tgz) || res.Entry.SHA256 != releasetest.SHA256(server) || res.Dir == "" {
		t.Fatalf("result = %+v", res)
	}
	if len(res.Signatures) != 2 || res.Signatures[0].Provenance == nil || res.Signatures[0].PredicateType != verify.PredicateSLSAProvenanceV1 {
		t.Fatalf("signatures = %+v", res.Signatures)
	}
	info, err := os.Stat(res.Entry.Path)
	if err != nil || info.Mode().Perm() != 0o500 {
		t.Fatalf("executable mode %v, %v", info.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(res.Dir, "weather_1.4.0", "LICENSE")); err != nil || string(b) != "Apache-2.0" {
		t.Fatalf("unpacked LICENSE = %q, %v", b, err)
	}

	// Warm: no download, same tree, same executable.
	res2, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Downloaded || res2.Dir != res.Dir || res2.Entry != res.Entry || e.host.Requests(archivePath) != 1 {
		t.Fatalf("warm fetch = %+v, %d downloads", res2, e.host.Requests(archivePath))
	}

	// By exact path, and a name that is not there.
	a.Binary = "weather_1.4.0/bin/weather"
	if res3, err := f.Fetch(context.Background(), a); err != nil || res3.Entry != res.Entry {
		t.Fatalf("by path: %+v, %v", res3, err)
	}
	a.Binary = "weather-server"
	_, err = f.Fetch(context.Background(), a)
	wantClass(t, err, preflight.ErrNotFound)
}

func TestFetchUnsafeArchive(t *testing.T) {
	for name, data := range map[string][]byte{
		"traversal": verifytest.TarArchive([]verifytest.ArchiveEntry{{Name: "../../weather", Data: server}}, true),
		"symlink":   verifytest.TarArchive([]verifytest.ArchiveEntry{{Name: "weather", Type: tar.TypeSymlink, Linkname: "/bin/sh"}}, true),
		"zip dup":   verifytest.ZipArchive([]verifytest.ArchiveEntry{{Name: "weather", Data: server}, {Name: "weather", Data: server}}),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			p := archivePath
			if strings.HasPrefix(name, "zip") {
				p = strings.TrimSuffix(p, ".tar.gz") + ".zip"
			}
			e.host.Add(p, data)
			_, err := e.fetcher(t, release.Config{}).Fetch(context.Background(), release.Asset{URL: e.host.URL() + p, SHA256: releasetest.SHA256(data), Binary: "weather"})
			wantClass(t, err, preflight.ErrMalformed)
			des, _ := os.ReadDir(filepath.Join(e.store.Dir(), "unpacked"))
			if len(des) != 0 {
				t.Fatalf("unpacked tree left: %v", des)
			}
		})
	}
}

func TestReleaseFor(t *testing.T) {
	r := release.Release{"linux/amd64": {URL: "https://h/a"}, "darwin/arm64": {URL: "https://h/b"}}
	if a, err := r.For("darwin/arm64"); err != nil || a.URL != "https://h/b" {
		t.Fatalf("For = %+v, %v", a, err)
	}
	_, err := r.For("windows/amd64")
	wantClass(t, err, preflight.ErrNotFound)
	if !strings.Contains(err.Error(), "darwin/arm64, linux/amd64") {
		t.Fatalf("err %v does not list the platforms", err)
	}
}

func TestNewConfig(t *testing.T) {
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]release.Config{
		"no store":          {},
		"negative timeout":  {Store: s, Timeout: -1},
		"wildcard redirect": {Store: s, AllowRedirectHosts: []string{"*.githubusercontent.com"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := release.New(cfg)
			wantClass(t, err, preflight.ErrConfig)
		})
	}
	// The caller's client is not changed.
	c := &http.Client{}
	if _, err := release.New(release.Config{Store: s, Client: c}); err != nil || c.CheckRedirect != nil {
		t.Fatalf("New changed the caller's client: %v", err)
	}
}
