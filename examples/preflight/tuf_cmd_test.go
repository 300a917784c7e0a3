package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

func tufRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cmdTUF(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// tufCLI is a client's directories and a served repository of the test kit.
type tufCLI struct {
	repo                   *verifytest.TUFRepository
	base                   string
	rootFile               string
	metadataDir, targetDir string
}

const (
	tufDescriptor = "io.github.acme/weather/server.json"
	tufArtifact   = "io.github.acme/weather/1.0.0/server"
)

// newTUFCLI serves a repository in which the publisher acme is delegated
// io.github.acme/ and has published a descriptor and an artifact, and
// installs its root with init.
func newTUFCLI(t *testing.T, opts verifytest.TUFOptions) *tufCLI {
	t.Helper()
	repo, err := verifytest.NewTUFRepository(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Close)
	// "*" does not cross "/": one pattern per depth.
	tufMust(t, repo.Delegate("acme", []string{"io.github.acme/*/*", "io.github.acme/*/*/*"}, 1, 1, true))
	tufMust(t, repo.AddDelegatedTarget("acme", tufDescriptor, []byte(`{"name":"io.github.acme/weather","version":"1.0.0"}`)))
	tufMust(t, repo.AddDelegatedTarget("acme", tufArtifact, []byte("#!/bin/sh\necho weather\n")))
	tufMust(t, repo.Publish())
	base, err := repo.Serve()
	tufMust(t, err)
	dir := t.TempDir()
	c := &tufCLI{repo: repo, base: base, rootFile: filepath.Join(dir, "initial_root.json"),
		metadataDir: filepath.Join(dir, "metadata"), targetDir: filepath.Join(dir, "targets")}
	tufMust(t, os.WriteFile(c.rootFile, repo.RootJSON(), 0o600))
	if code, _, stderr := tufRun(t, "--metadata-dir", c.metadataDir, "init", c.rootFile); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	return c
}

func tufMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (c *tufCLI) refresh(t *testing.T, extra ...string) (int, string) {
	t.Helper()
	args := append([]string{"--metadata-url", c.base + "/metadata", "--metadata-dir", c.metadataDir}, extra...)
	code, _, stderr := tufRun(t, append(args, "refresh")...)
	return code, stderr
}

func (c *tufCLI) download(t *testing.T, names ...string) (int, string, string) {
	t.Helper()
	args := []string{"--metadata-dir", c.metadataDir, "--target-dir", c.targetDir, "--target-base-url", c.base + "/targets",
		"--metadata-url", c.base + "/metadata"}
	for _, n := range names {
		args = append(args, "--target-name", n)
	}
	return tufRun(t, append(args, "download")...)
}

// tufFiles lists the regular files directly in dir, sorted.
func tufFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	tufMust(t, err)
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names
}

func tufRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	tufMust(t, err)
	return data
}

func TestTUFInitRefreshDownload(t *testing.T) {
	c := newTUFCLI(t, verifytest.TUFOptions{})
	if got := tufFiles(t, c.metadataDir); !slices.Equal(got, []string{"root.json"}) {
		t.Fatalf("after init the metadata dir holds %q", got)
	}
	if code, stderr := c.refresh(t); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, stderr)
	}
	top := []string{"root.json", "snapshot.json", "targets.json", "timestamp.json"}
	if got := tufFiles(t, c.metadataDir); !slices.Equal(got, top) {
		t.Fatalf("after refresh the metadata dir holds %q, want %q", got, top)
	}

	code, stdout, stderr := c.download(t, tufDescriptor, tufArtifact)
	if code != 0 {
		t.Fatalf("download: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, tufArtifact+": downloaded") {
		t.Errorf("download output %q", stdout)
	}
	want := []string{tuf.TargetFileName(tufArtifact), tuf.TargetFileName(tufDescriptor)}
	slices.Sort(want)
	if got := tufFiles(t, c.targetDir); !slices.Equal(got, want) {
		t.Fatalf("target dir holds %q, want %q", got, want)
	}
	if got := tufRead(t, filepath.Join(c.targetDir, tuf.TargetFileName(tufArtifact))); string(got) != "#!/bin/sh\necho weather\n" {
		t.Fatalf("artifact bytes %q", got)
	}
	// The delegated role that signed them is trusted metadata now.
	if got, want := tufFiles(t, c.metadataDir), append([]string{"acme.json"}, top...); !slices.Equal(got, want) {
		t.Fatalf("after download the metadata dir holds %q, want %q", got, want)
	}

	// Again: the root probe and the timestamp, and no target.
	c.repo.ResetRequests()
	code, stdout, stderr = c.download(t, tufDescriptor, tufArtifact)
	if code != 0 {
		t.Fatalf("second download: exit %d: %s", code, stderr)
	}
	if got, want := c.repo.RequestLog(), []string{"/metadata/2.root.json", "/metadata/timestamp.json"}; !slices.Equal(got, want) {
		t.Fatalf("second download made requests %q, want %q", got, want)
	}
	if !strings.Contains(stdout, tufArtifact+": up to date") {
		t.Errorf("second download output %q", stdout)
	}

	// New content under the same name replaces the same file.
	tufMust(t, c.repo.AddDelegatedTarget("acme", tufArtifact, []byte("#!/bin/sh\necho weather 2\n")))
	tufMust(t, c.repo.Publish())
	if code, _, stderr := c.download(t, tufArtifact); code != 0 {
		t.Fatalf("download of new content: exit %d: %s", code, stderr)
	}
	if got := tufRead(t, filepath.Join(c.targetDir, tuf.TargetFileName(tufArtifact))); string(got) != "#!/bin/sh\necho weather 2\n" {
		t.Fatalf("artifact bytes after the update %q", got)
	}
	if got := tufFiles(t, c.targetDir); !slices.Equal(got, want) {
		t.Fatalf("after the update the target dir holds %q, want %q", got, want)
	}

	// Bytes that differ from the signed hashes are refused and not kept.
	const other = "io.github.acme/weather/1.0.0/extra"
	tufMust(t, c.repo.AddDelegatedTarget("acme", other, []byte("signed")))
	tufMust(t, c.repo.Publish())
	c.repo.TamperTarget(other, []byte("swapped"))
	code, _, stderr = c.download(t, other)
	if code != 1 || !strings.Contains(stderr, "artifact digest mismatch") {
		t.Fatalf("tampered target: exit %d: %s", code, stderr)
	}
	if got := tufFiles(t, c.targetDir); !slices.Equal(got, want) {
		t.Fatalf("after the refused download the target dir holds %q, want %q", got, want)
	}

	// A target nobody signed.
	code, _, stderr = c.download(t, "io.github.acme/weather/1.0.0/missing")
	if code != 1 || !strings.Contains(stderr, "not found") {
		t.Fatalf("unknown target: exit %d: %s", code, stderr)
	}
}

func TestTUFRootRotation(t *testing.T) {
	c := newTUFCLI(t, verifytest.TUFOptions{})
	if code, stderr := c.refresh(t); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, stderr)
	}
	tufMust(t, c.repo.RotateRoot(1, true))
	if code, stderr := c.refresh(t); code != 0 {
		t.Fatalf("refresh after rotation: exit %d: %s", code, stderr)
	}
	rotated := tufRead(t, filepath.Join(c.metadataDir, "root.json"))
	if !bytes.Equal(rotated, c.repo.RootJSON()) {
		t.Fatal("root.json does not hold the verified new root")
	}
	// A rotation not signed by the trusted root keys is refused, and the
	// next run still starts from the last verified root.
	tufMust(t, c.repo.RotateRoot(1, false))
	code, stderr := c.refresh(t)
	if code != 1 || !strings.Contains(stderr, "root.json version 3") {
		t.Fatalf("refresh with a forged root: exit %d: %s", code, stderr)
	}
	if !bytes.Equal(tufRead(t, filepath.Join(c.metadataDir, "root.json")), rotated) {
		t.Fatal("a refused root replaced root.json")
	}
}

func TestTUFAttacksExitOne(t *testing.T) {
	tests := []struct {
		name   string
		attack func(*verifytest.TUFRepository) error
		want   string
	}{
		{"timestamp rollback", func(r *verifytest.TUFRepository) error { return r.Rollback("timestamp", 1) }, "rollback"},
		{"snapshot rollback", func(r *verifytest.TUFRepository) error { return r.Rollback("snapshot", 1) }, "repository metadata rejected"},
		{"targets rollback", func(r *verifytest.TUFRepository) error { return r.Rollback("targets", 1) }, "repository metadata rejected"},
		{"expired timestamp", func(r *verifytest.TUFRepository) error { return r.Expire("timestamp") }, "expired"},
		{"expired snapshot", func(r *verifytest.TUFRepository) error { return r.Expire("snapshot") }, "expired"},
		{"expired targets", func(r *verifytest.TUFRepository) error { return r.Expire("targets") }, "expired"},
		{"unknown timestamp key", func(r *verifytest.TUFRepository) error { return r.SignWithUnknownKey("timestamp") }, "too few valid signatures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTUFCLI(t, verifytest.TUFOptions{})
			// A second version of everything, so there is one to roll back to.
			tufMust(t, c.repo.AddTarget("bump.json", []byte("{}"), nil))
			tufMust(t, c.repo.Publish())
			if code, stderr := c.refresh(t); code != 0 {
				t.Fatalf("refresh: exit %d: %s", code, stderr)
			}
			trusted := tufRead(t, filepath.Join(c.metadataDir, "timestamp.json"))
			tufMust(t, tt.attack(c.repo))
			code, stderr := c.refresh(t)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("refresh: exit %d, stderr %q, want exit 1 mentioning %q", code, stderr, tt.want)
			}
			if tt.name == "timestamp rollback" && !bytes.Equal(tufRead(t, filepath.Join(c.metadataDir, "timestamp.json")), trusted) {
				t.Error("the rolled-back timestamp replaced the trusted one")
			}
			// download refreshes first, so it fails the same way.
			if code, _, stderr := c.download(t, tufArtifact); code != 1 {
				t.Fatalf("download: exit %d, stderr %q, want 1", code, stderr)
			}
			if _, err := os.Stat(filepath.Join(c.targetDir, tuf.TargetFileName(tufArtifact))); err == nil {
				t.Error("a target was downloaded through rejected metadata")
			}
		})
	}
}

func TestTUFTime(t *testing.T) {
	c := newTUFCLI(t, verifytest.TUFOptions{Expiry: 24 * time.Hour})
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	code, stderr := c.refresh(t, "--time", future)
	if code != 1 || !strings.Contains(stderr, "expired") {
		t.Fatalf("refresh 48h ahead: exit %d: %s", code, stderr)
	}
	if code, stderr := c.refresh(t, "--time", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); code != 0 {
		t.Fatalf("refresh an hour ahead: exit %d: %s", code, stderr)
	}
	// Trusted metadata ages too: a day later, with nothing new on the
	// server, it has expired.
	code, stderr = c.refresh(t, "--time", future)
	if code != 1 || !strings.Contains(stderr, "expired") {
		t.Fatalf("refresh 48h ahead with a warm cache: exit %d: %s", code, stderr)
	}
	if code, stderr := c.refresh(t, "--time", "tomorrow"); code != 1 || !strings.Contains(stderr, "--time") {
		t.Fatalf("bad --time: exit %d: %s", code, stderr)
	}
}

func TestTUFUsage(t *testing.T) {
	dir := t.TempDir()
	notRoot := filepath.Join(dir, "x.json")
	tufMust(t, os.WriteFile(notRoot, []byte(`{"signed":{"_type":"targets"}}`), 0o600))
	md := filepath.Join(dir, "md")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"--metadata-dir", md}, "want a command"},
		{"unknown command", []string{"--metadata-dir", md, "fetch"}, "unknown command"},
		{"no metadata dir", []string{"refresh"}, "--metadata-dir is required"},
		{"init without root", []string{"--metadata-dir", md, "init"}, "exactly one"},
		{"init with another role", []string{"--metadata-dir", md, "init", notRoot}, "TUF root metadata"},
		{"init with a missing file", []string{"--metadata-dir", md, "init", filepath.Join(dir, "none.json")}, "invalid configuration"},
		{"refresh without URL", []string{"--metadata-dir", md, "refresh"}, "--metadata-url"},
		{"refresh before init", []string{"--metadata-dir", md, "--metadata-url", "http://127.0.0.1:1/metadata", "refresh"}, "init"},
		{"download without target dir", []string{"--metadata-dir", md, "--metadata-url", "http://127.0.0.1:1/metadata",
			"--target-base-url", "http://127.0.0.1:1/targets", "--target-name", "x", "download"}, "--target-dir"},
		{"unknown flag", []string{"--metadata-dir", md, "--colour", "refresh"}, "colour"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := tufRun(t, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 mentioning %q", code, stderr, tt.want)
			}
		})
	}
	if code, _, _ := tufRun(t, "--help"); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	// Registered with the CLI.
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"tuf", "--metadata-dir", md, "init", notRoot}, &out, &errOut); code != 1 {
		t.Errorf("preflight tuf through run: exit %d: %s", code, errOut.String())
	}
}

// Role names are used in URLs and as file names: whatever a repository
// calls its roles, the requests are percent-encoded and the files stay in
// the metadata directory.
func TestTUFUnusualRoleNames(t *testing.T) {
	g := newGoTUFRepo(t)
	roles := []string{"?", "#", "/delegatedrole", "../delegatedrole", "..", "a:b"}
	for _, r := range roles {
		g.delegate(r, []string{"*"}, false)
	}
	g.publish()
	base := g.serve()
	dir := t.TempDir()
	md, td := filepath.Join(dir, "metadata"), filepath.Join(dir, "targets")
	rootFile := filepath.Join(dir, "root.json")
	tufMust(t, os.WriteFile(rootFile, g.root(), 0o600))
	if code, _, stderr := tufRun(t, "--metadata-dir", md, "init", rootFile); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	code, _, stderr := tufRun(t, "--metadata-dir", md, "--metadata-url", base+"/metadata", "--target-base-url", base+"/targets",
		"--target-dir", td, "--target-name", "nonexistent", "download")
	if code != 1 || !strings.Contains(stderr, "not found") {
		t.Fatalf("download: exit %d: %s", code, stderr)
	}
	log := g.requestLog()
	for _, want := range []string{"/metadata/1.%3F.json", "/metadata/1.%23.json", "/metadata/1.%2Fdelegatedrole.json", "/metadata/1...%2Fdelegatedrole.json"} {
		if !slices.Contains(log, want) {
			t.Errorf("no request for %s in %q", want, log)
		}
	}
	want := []string{"root.json", "snapshot.json", "targets.json", "timestamp.json"}
	for _, r := range roles {
		want = append(want, tuf.RoleFileName(r))
	}
	slices.Sort(want)
	if got := tufFiles(t, md); !slices.Equal(got, want) {
		t.Fatalf("metadata dir holds %q, want %q", got, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Fatalf("files escaped the metadata dir: %v", entries)
	}
}

// A delegated role named like a top-level role would overwrite trusted
// metadata in the unversioned layout: it is refused.
func TestTUFTopLevelRoleNameRefused(t *testing.T) {
	g := newGoTUFRepo(t)
	g.delegate("snapshot", []string{"*"}, false)
	g.publish()
	base := g.serve()
	dir := t.TempDir()
	md := filepath.Join(dir, "metadata")
	rootFile := filepath.Join(dir, "root.json")
	tufMust(t, os.WriteFile(rootFile, g.root(), 0o600))
	if code, _, stderr := tufRun(t, "--metadata-dir", md, "init", rootFile); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	code, _, stderr := tufRun(t, "--metadata-dir", md, "--metadata-url", base+"/metadata", "--target-base-url", base+"/targets",
		"--target-dir", filepath.Join(dir, "t"), "--target-name", "x", "download")
	if code != 1 || !strings.Contains(stderr, `a delegation to "snapshot"`) {
		t.Fatalf("download: exit %d: %s", code, stderr)
	}
	if !bytes.Contains(tufRead(t, filepath.Join(md, "snapshot.json")), []byte(`"_type": "snapshot"`)) {
		t.Fatal("snapshot.json no longer holds the snapshot")
	}
}

// Target names become one file name in --target-dir, whatever they hold.
func TestTUFUnusualTargetNames(t *testing.T) {
	g := newGoTUFRepo(t)
	names := map[string][]byte{
		"../escape.txt":    []byte("one"),
		"..":               []byte("two"),
		"a/../../b":        []byte("three"),
		"dir/.hidden":      []byte("four"),
		"sp ace/é?#%2F.js": []byte("five"),
	}
	for n, data := range names {
		g.addTarget("targets", n, data)
	}
	g.publish()
	base := g.serve()
	dir := t.TempDir()
	md, td := filepath.Join(dir, "metadata"), filepath.Join(dir, "out", "targets")
	rootFile := filepath.Join(dir, "root.json")
	tufMust(t, os.WriteFile(rootFile, g.root(), 0o600))
	if code, _, stderr := tufRun(t, "--metadata-dir", md, "init", rootFile); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	args := []string{"--metadata-dir", md, "--metadata-url", base + "/metadata", "--target-base-url", base + "/targets", "--target-dir", td}
	var want []string
	for n := range names {
		args = append(args, "--target-name", n)
		want = append(want, tuf.TargetFileName(n))
	}
	slices.Sort(want)
	if code, _, stderr := tufRun(t, append(args, "download")...); code != 0 {
		t.Fatalf("download: exit %d: %s", code, stderr)
	}
	if got := tufFiles(t, td); !slices.Equal(got, want) {
		t.Fatalf("target dir holds %q, want %q", got, want)
	}
	for n, data := range names {
		if got := tufRead(t, filepath.Join(td, tuf.TargetFileName(n))); !bytes.Equal(got, data) {
			t.Errorf("%q holds %q, want %q", n, got, data)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "out")); len(entries) != 1 {
		t.Fatalf("files escaped the target dir: %v", entries)
	}
}

// A standard TUF 1.0 repository made with go-tuf's own API, on a plain
// static file server, reads through the tuf package and through the CLI.
func TestTUFStandardRepository(t *testing.T) {
	g := newGoTUFRepo(t)
	g.delegate("acme", []string{"io.github.acme/*/*", "io.github.acme/*/*/*"}, true)
	g.addTarget("targets", "catalogue.json", []byte(`{"servers":["io.github.acme/weather"]}`))
	g.addTarget("acme", tufDescriptor, []byte(`{"name":"io.github.acme/weather","version":"1.0.0"}`))
	g.addTarget("acme", tufArtifact, []byte("binary"))
	g.publish()
	root := t.TempDir()
	g.writeDir(root)
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)

	ctx := context.Background()
	client, err := tuf.New(tuf.Config{MetadataURL: srv.URL + "/metadata", TargetsURL: srv.URL + "/targets", Root: g.root(), CacheDir: t.TempDir()})
	tufMust(t, err)
	target, err := client.Target(ctx, tufDescriptor)
	tufMust(t, err)
	if target.SignedBy != "acme" || len(target.Hashes) != 2 {
		t.Fatalf("descriptor signed by %q with hashes %v", target.SignedBy, target.Hashes)
	}
	data, err := client.ReadTarget(ctx, target)
	tufMust(t, err)
	if !bytes.Contains(data, []byte("io.github.acme/weather")) {
		t.Fatalf("descriptor %q", data)
	}

	// Later versions of the repository are followed.
	g.addTarget("acme", "io.github.acme/weather/1.1.0/server", []byte("binary 1.1"))
	g.publish()
	g.writeDir(root)
	dir := t.TempDir()
	md, td := filepath.Join(dir, "metadata"), filepath.Join(dir, "targets")
	rootFile := filepath.Join(dir, "root.json")
	tufMust(t, os.WriteFile(rootFile, g.root(), 0o600))
	if code, _, stderr := tufRun(t, "--metadata-dir", md, "init", rootFile); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	code, _, stderr := tufRun(t, "--metadata-url", srv.URL+"/metadata", "--metadata-dir", md, "--target-base-url", srv.URL+"/targets",
		"--target-dir", td, "--target-name", "catalogue.json", "--target-name", "io.github.acme/weather/1.1.0/server", "download")
	if code != 0 {
		t.Fatalf("download: exit %d: %s", code, stderr)
	}
	if got := tufRead(t, filepath.Join(td, tuf.TargetFileName("io.github.acme/weather/1.1.0/server"))); string(got) != "binary 1.1" {
		t.Fatalf("artifact %q", got)
	}
}
