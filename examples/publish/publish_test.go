package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
)

func publish(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustPublish(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := publish(t, args...)
	if code != 0 {
		t.Fatalf("publish %q: exit %d: %s", args, code, stderr)
	}
	return stdout
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// catalogue is a repository made by publish with one publisher, acme,
// and its server weather 1.0.0, served by a plain static file server.
type catalogue struct {
	dir, url string
	work     string // where the input files are
	root     []byte
	requests *requestLog
}

type requestLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *requestLog) add(p string) { l.mu.Lock(); l.paths = append(l.paths, p); l.mu.Unlock() }
func (l *requestLog) reset()       { l.mu.Lock(); l.paths = nil; l.mu.Unlock() }
func (l *requestLog) targets() (n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.paths {
		if strings.HasPrefix(p, "/targets/") {
			n++
		}
	}
	return n
}

const pin = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func newCatalogue(t *testing.T) *catalogue {
	t.Helper()
	c := &catalogue{dir: filepath.Join(t.TempDir(), "repo"), work: t.TempDir(), requests: &requestLog{}}
	mustPublish(t, "init", c.dir)
	mustPublish(t, "delegate", c.dir, "--role", "acme", "--prefix", "io.github.acme/")
	art := writeFile(t, c.work, "weather-linux-amd64", "#!/bin/sh\necho weather\n")
	bundle := writeFile(t, c.work, "weather-linux-amd64.sigstore.json", `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
	pins := writeFile(t, c.work, "tools.json", `{"get_weather":"`+pin+`"}`)
	mustPublish(t, "add", c.dir, "--role", "acme", "--server", "io.github.acme/weather", "--version", "1.0.0",
		"--artifact", art, "--bundle", bundle, "--platform", "linux/amd64", "--args", "serve", "--args", "--port=0", "--tool-pins", pins)
	fs := http.FileServer(http.Dir(filepath.Join(c.dir, "repository")))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.add(r.URL.Path)
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	var err error
	if c.root, err = os.ReadFile(filepath.Join(c.dir, "repository", "metadata", "1.root.json")); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *catalogue) client(t *testing.T, now time.Time) *tuf.Client {
	t.Helper()
	client, err := tuf.New(tuf.Config{MetadataURL: c.url + "/metadata", TargetsURL: c.url + "/targets", Root: c.root,
		CacheDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// resolve reads and parses the descriptor of server.
func resolve(t *testing.T, client *tuf.Client, server string) (*tuf.Target, *policy.Descriptor) {
	t.Helper()
	ctx := context.Background()
	target, err := client.Target(ctx, server+"/server.json")
	if err != nil {
		t.Fatal(err)
	}
	data, err := client.ReadTarget(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	d, err := policy.ParseDescriptor(data)
	if err != nil {
		t.Fatal(err)
	}
	return target, d
}

// fileStore is a tuf.TargetStore keeping each target as its SHA-256.
type fileStore struct{ dir string }

func (s fileStore) Lookup(h string) (string, bool) {
	p := filepath.Join(s.dir, h)
	_, err := os.Stat(p)
	return p, err == nil
}

func (s fileStore) Put(_ context.Context, r io.Reader, limit, size int64, want map[string]string) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(data)) != size {
		return "", &preflight.Error{Class: preflight.ErrTampered, Subject: "size"}
	}
	p := filepath.Join(s.dir, want["sha256"])
	return p, os.WriteFile(p, data, 0o600)
}

func TestPublishedRepositoryReads(t *testing.T) {
	c := newCatalogue(t)
	client := c.client(t, time.Now())
	target, d := resolve(t, client, "io.github.acme/weather")
	if target.SignedBy != "acme" || d.Name != "io.github.acme/weather" || d.Version != "1.0.0" {
		t.Fatalf("descriptor %s %s signed by %q", d.Name, d.Version, target.SignedBy)
	}
	if d.Trust == nil || d.Trust.Tools["get_weather"] != pin {
		t.Fatalf("trust section %+v", d.Trust)
	}
	a, err := d.Artifact("linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if a.Target != "io.github.acme/weather/1.0.0/weather-linux-amd64" || strings.Join(a.Args, " ") != "serve --port=0" ||
		len(a.Bundles) != 1 || a.Bundles[0] != "io.github.acme/weather/1.0.0/weather-linux-amd64.sigstore.json" {
		t.Fatalf("artifact %+v", a)
	}
	ctx := context.Background()
	for _, name := range append([]string{a.Target}, a.Bundles...) {
		at, err := client.Target(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if at.SignedBy != "acme" {
			t.Errorf("%s signed by %q", name, at.SignedBy)
		}
	}
	at, err := client.Target(ctx, a.Target)
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.DownloadTarget(ctx, at, fileStore{t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "#!/bin/sh\necho weather\n" {
		t.Fatalf("artifact bytes %q", got)
	}

	// The keys: ed25519 PKCS #8 PEM, owner-only.
	keys := filepath.Join(c.dir, "keys")
	if fi, err := os.Stat(keys); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("keys dir: %v %v", fi.Mode(), err)
	}
	for _, name := range []string{"root.pem", "targets.pem", "snapshot.pem", "timestamp.pem", "acme.pem"} {
		fi, err := os.Stat(filepath.Join(keys, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
		data, _ := os.ReadFile(filepath.Join(keys, name))
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("%s is not PKCS #8 PEM", name)
		}
		if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			t.Fatalf("%s: %v", name, err)
		} else if _, ok := k.(ed25519.PrivateKey); !ok {
			t.Fatalf("%s holds a %T", name, k)
		}
	}
	// Nothing under the served directory is a key.
	filepath.WalkDir(filepath.Join(c.dir, "repository"), func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pem") {
			t.Errorf("%s is served", p)
		}
		return nil
	})
}

func TestPublishUpdates(t *testing.T) {
	c := newCatalogue(t)
	ctx := context.Background()
	client := c.client(t, time.Now())
	if err := client.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Another platform of the same version joins the descriptor.
	mac := writeFile(t, c.work, "weather-darwin-arm64", "mac binary")
	mustPublish(t, "add", c.dir, "--role", "acme", "--server", "io.github.acme/weather", "--version", "1.0.0",
		"--artifact", mac, "--platform", "darwin/arm64")
	if err := client.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, d := resolve(t, client, "io.github.acme/weather")
	if len(d.Trust.Artifacts) != 2 || d.Trust.Tools["get_weather"] != pin {
		t.Fatalf("after adding a platform: %+v", d.Trust)
	}
	// A new version replaces the descriptor.
	v2 := writeFile(t, c.work, "weather", "v2 binary")
	mustPublish(t, "add", c.dir, "--role", "acme", "--server", "io.github.acme/weather", "--version", "2.0.0", "--artifact", v2)
	if err := client.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, d = resolve(t, client, "io.github.acme/weather")
	if d.Version != "2.0.0" || len(d.Trust.Artifacts) != 1 || d.Trust.Artifacts[0].Platform != "any" || d.Trust.Tools != nil {
		t.Fatalf("after a new version: %s %+v", d.Version, d.Trust)
	}
	// The old release stays available by its path.
	if _, err := client.Target(ctx, "io.github.acme/weather/1.0.0/weather-darwin-arm64"); err != nil {
		t.Fatal(err)
	}

	// A client that trusted the first state follows timestamp, resign and
	// a new root version.
	mustPublish(t, "timestamp", c.dir)
	mustPublish(t, "resign", c.dir, "acme")
	mustPublish(t, "resign", c.dir, "targets")
	mustPublish(t, "resign", c.dir, "snapshot")
	mustPublish(t, "resign", c.dir, "timestamp")
	mustPublish(t, "resign", c.dir, "root")
	c.requests.reset()
	if err := client.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, d = resolve(t, client, "io.github.acme/weather"); d.Version != "2.0.0" {
		t.Fatalf("version %s", d.Version)
	}
	if c.requests.targets() != 0 {
		t.Errorf("an unchanged descriptor was downloaded again: %q", c.requests.paths)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "repository", "metadata", "2.root.json")); err != nil {
		t.Fatal(err)
	}

	// Without `publish timestamp`, the repository freezes after a day.
	if err := c.client(t, time.Now().Add(25*time.Hour)).Refresh(ctx); !errors.Is(err, preflight.ErrMetadata) {
		t.Fatalf("a day later: %v, want ErrMetadata", err)
	}
}

func TestPublishRefusals(t *testing.T) {
	c := newCatalogue(t)
	art := writeFile(t, c.work, "x", "x")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"init over a repository", []string{"init", c.dir}, 1, "already holds keys"},
		{"outside the prefix", []string{"add", c.dir, "--role", "acme", "--server", "io.github.evil/x", "--version", "1", "--artifact", art}, 1, "prefix"},
		{"nested server name", []string{"add", c.dir, "--role", "acme", "--server", "io.github.acme/a/b", "--version", "1", "--artifact", art}, 1, "prefix"},
		{"unknown role", []string{"add", c.dir, "--role", "bob", "--server", "io.github.acme/x", "--version", "1", "--artifact", art}, 1, "not delegated"},
		{"version with a slash", []string{"add", c.dir, "--role", "acme", "--server", "io.github.acme/x", "--version", "1/../2", "--artifact", art}, 2, "--version"},
		{"missing artifact", []string{"add", c.dir, "--role", "acme", "--server", "io.github.acme/x", "--version", "1", "--artifact", filepath.Join(c.work, "none")}, 1, "no such file"},
		{"bad tool pin", []string{"add", c.dir, "--role", "acme", "--server", "io.github.acme/x", "--version", "1", "--artifact", art,
			"--tool-pins", writeFile(t, c.work, "bad.json", `{"t":"md5:00"}`)}, 1, "tools"},
		{"bad platform", []string{"add", c.dir, "--role", "acme", "--server", "io.github.acme/x", "--version", "1", "--artifact", art, "--platform", "Linux"}, 1, "platform"},
		{"top-level role name", []string{"delegate", c.dir, "--role", "snapshot", "--prefix", "io.github.s/"}, 2, "top-level"},
		{"delegated twice", []string{"delegate", c.dir, "--role", "acme", "--prefix", "io.github.other/"}, 1, "already delegated"},
		{"overlapping prefix", []string{"delegate", c.dir, "--role", "acme2", "--prefix", "io.github.acme/team/"}, 1, "overlaps"},
		{"pattern in prefix", []string{"delegate", c.dir, "--role", "evil", "--prefix", "io.github.*/"}, 2, "--prefix"},
		{"prefix without slash", []string{"delegate", c.dir, "--role", "evil", "--prefix", "io.github.e"}, 2, "--prefix"},
		{"unknown role to resign", []string{"resign", c.dir, "bob"}, 1, "no role"},
		{"not a repository", []string{"timestamp", c.work}, 1, "not a repository"},
		{"no arguments", []string{"timestamp"}, 2, "want DIR"},
		{"unknown command", []string{"sign"}, 2, "unknown command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := publish(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tt.code, tt.want)
			}
		})
	}
	// None of them changed the repository: the client still reads it, and
	// no lock is left behind.
	if _, d := resolve(t, c.client(t, time.Now()), "io.github.acme/weather"); d.Version != "1.0.0" {
		t.Fatalf("version %s", d.Version)
	}
	if _, err := os.Stat(filepath.Join(c.dir, ".publish.lock")); err == nil {
		t.Fatal("a lock was left behind")
	}
}

// publish signs only what verifies: a metadata file edited on disk is
// refused rather than signed over.
func TestPublishRefusesModifiedRepository(t *testing.T) {
	c := newCatalogue(t)
	meta := filepath.Join(c.dir, "repository", "metadata")
	p := filepath.Join(meta, "2.acme.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte("amd64.sigstore.json"), []byte("amd65.sigstore.json"), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("nothing to edit in 2.acme.json")
	}
	if err := os.WriteFile(p, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := publish(t, "timestamp", c.dir)
	if code != 1 || !strings.Contains(stderr, "acme.json") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// A swapped descriptor is refused when add reads it back.
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(c.dir, "repository", "targets", "io.github.acme", "weather", "*.server.json"))
	if len(matches) != 1 {
		t.Fatalf("descriptor files %q", matches)
	}
	if err := os.WriteFile(matches[0], []byte(`{"name":"io.github.acme/weather","version":"6.6.6"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = publish(t, "add", c.dir, "--role", "acme", "--server", "io.github.acme/weather", "--version", "1.0.0",
		"--artifact", writeFile(t, c.work, "y", "y"))
	if code != 1 || !strings.Contains(stderr, "modified") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// The Preflight CLI's TUF client reads a repository made by publish, as a
// separate process, as a host would run it.
func TestPreflightTUFReadsPublishedRepository(t *testing.T) {
	c := newCatalogue(t)
	bin := filepath.Join(t.TempDir(), "preflight")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mcp-preflight/preflight/examples/preflight").CombinedOutput(); err != nil {
		t.Fatalf("building the preflight CLI: %v\n%s", err, out)
	}
	work := t.TempDir()
	md, td := filepath.Join(work, "metadata"), filepath.Join(work, "targets")
	rootFile := writeFile(t, work, "root.json", string(c.root))
	preflightTUF := func(args ...string) (int, string) {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"tuf"}, args...)...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := preflightTUF("--metadata-dir", md, "init", rootFile); code != 0 {
		t.Fatalf("init: %d %s", code, out)
	}
	if code, out := preflightTUF("--metadata-url", c.url+"/metadata", "--metadata-dir", md, "refresh"); code != 0 {
		t.Fatalf("refresh: %d %s", code, out)
	}
	const artifact = "io.github.acme/weather/1.0.0/weather-linux-amd64"
	download := []string{"--metadata-url", c.url + "/metadata", "--metadata-dir", md, "--target-base-url", c.url + "/targets",
		"--target-dir", td, "--target-name", "io.github.acme/weather/server.json", "--target-name", artifact, "download"}
	if code, out := preflightTUF(download...); code != 0 {
		t.Fatalf("download: %d %s", code, out)
	}
	got, err := os.ReadFile(filepath.Join(td, tuf.TargetFileName(artifact)))
	if err != nil || string(got) != "#!/bin/sh\necho weather\n" {
		t.Fatalf("artifact %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(md, "acme.json")); err != nil {
		t.Fatal(err)
	}
	// Once expired, the repository is refused.
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	if code, out := preflightTUF("--metadata-url", c.url+"/metadata", "--metadata-dir", md, "--time", future, "refresh"); code != 1 {
		t.Fatalf("refresh two days ahead: %d %s", code, out)
	}
}
