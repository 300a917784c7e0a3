package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// runLock runs preflight lock in this process with the given answer on
// standard input (interactive when answer is not empty).
func runLock(t *testing.T, answer string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := lockServers(ctx, args, strings.NewReader(answer), answer != "", &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func readLock(t *testing.T, path string) *policy.Lock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := policy.ParseLock(data)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func writeLock(t *testing.T, path string, l *policy.Lock) {
	t.Helper()
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// otherDigest is a well-formed digest no definition has.
const otherDigest = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestLockThenCheck locks a server, checks it clean, then shows that check
// finds surface drift only live and artifact drift always, and that lock
// shows the drift and asks before accepting it.
func TestLockThenCheck(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t, verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather", Pin: "lockfile"})
	store := t.TempDir()
	lockPath := filepath.Join(filepath.Dir(pol), "preflight.lock")
	common := []string{"--policy", pol, "--store", store}

	// Without --yes and without a terminal: shown, not written.
	code, stdout, stderr := runLock(t, "", common...)
	if code != exitRefused || !strings.Contains(stdout, "NEW  weather") || !strings.Contains(stderr, "re-run with --yes") {
		t.Fatalf("lock without --yes: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(lockPath); err == nil {
		t.Fatal("the lockfile was written without --yes")
	}

	code, stdout, stderr = runLock(t, "", append(common, "--yes")...)
	if code != exitOK || !strings.Contains(stderr, "wrote "+lockPath) {
		t.Fatalf("lock --yes: exit %d\n%s%s", code, stdout, stderr)
	}
	fi, err := os.Stat(lockPath)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("lockfile: %v %v", fi, err)
	}
	entry := readLock(t, lockPath).Servers["weather"]
	if entry == nil || entry.Source != "tuf" || entry.Version != "1.0.0" || len(entry.Digests["sha256"]) != 64 ||
		entry.Signer == nil || entry.SourceCommit == "" || entry.Instructions == "" || len(entry.Tools) != 3 || entry.Tools["get_forecast"] == "" {
		t.Fatalf("lock entry %+v", entry)
	}

	// Locking again changes nothing and writes nothing.
	before, _ := os.ReadFile(lockPath)
	code, stdout, stderr = runLock(t, "", append(common, "--yes")...)
	if code != exitOK || !strings.Contains(stdout, "UNCHANGED  weather") || !strings.Contains(stderr, "is up to date") {
		t.Fatalf("second lock: exit %d\n%s%s", code, stdout, stderr)
	}
	after, _ := os.ReadFile(lockPath)
	if !bytes.Equal(before, after) {
		t.Fatal("an up-to-date lockfile was rewritten")
	}
	assertNoTempFiles(t, filepath.Dir(lockPath))

	// A clean check is live by default (the entry records tools).
	out := runCheckJSON(t, exitOK, common...)
	if r := out.Servers[0]; r.Verdict != "allowed" || !r.Live || len(r.Drift) != 0 || r.Report == nil || r.Report.Surface == nil {
		t.Fatalf("clean check: %+v", r)
	}

	// A tool that changed since locking: drift, found only live.
	l := readLock(t, lockPath)
	l.Servers["weather"].Tools["get_forecast"] = otherDigest
	writeLock(t, lockPath, l)
	code, stdout, stderr = runCLI(t, append([]string{"check"}, common...)...)
	if code != exitRefused || !strings.Contains(stdout, "DRIFT  weather") || !strings.Contains(stdout, "tool.changed get_forecast: locked "+otherDigest) {
		t.Fatalf("check with a changed tool: exit %d\n%s%s", code, stdout, stderr)
	}
	out = runCheckJSON(t, exitRefused, common...)
	if r := out.Servers[0]; r.Verdict != "drift" || len(r.Drift) != 1 || r.Drift[0].Kind != "tool.changed" || r.Drift[0].Subject != "get_forecast" {
		t.Fatalf("drift: %+v", r)
	}
	out = runCheckJSON(t, exitOK, append(common, "--live=false")...)
	if r := out.Servers[0]; r.Verdict != "allowed" || r.Live {
		t.Fatalf("check --live=false: %+v", r)
	}

	// lock shows the drift; the user declines, then accepts.
	code, stdout, stderr = runLock(t, "n\n", common...)
	if code != exitRefused || !strings.Contains(stdout, "CHANGED  weather") || !strings.Contains(stdout, "tool.changed get_forecast") ||
		!strings.Contains(stderr, "Write "+lockPath+"? [y/N]") {
		t.Fatalf("declined lock: exit %d\n%s%s", code, stdout, stderr)
	}
	if readLock(t, lockPath).Servers["weather"].Tools["get_forecast"] != otherDigest {
		t.Fatal("a declined lock was written")
	}
	if code, stdout, stderr = runLock(t, "y\n", common...); code != exitOK {
		t.Fatalf("accepted lock: exit %d\n%s%s", code, stdout, stderr)
	}
	if readLock(t, lockPath).Servers["weather"].Tools["get_forecast"] == otherDigest {
		t.Fatal("an accepted lock was not written")
	}

	// Other bytes than the locked ones: refused even without starting it.
	l = readLock(t, lockPath)
	l.Servers["weather"].Digests["sha256"] = strings.TrimPrefix(otherDigest, "sha256:")
	writeLock(t, lockPath, l)
	out = runCheckJSON(t, exitRefused, append(common, "--live=false")...)
	if r := out.Servers[0]; r.Verdict != "refused" || r.ErrorKind != "security" || len(r.Drift) == 0 || r.Drift[0].Kind != policy.DriftDigest {
		t.Fatalf("artifact drift: %+v", r)
	}
	// lock verifies without the old entry, so the new release can be accepted.
	if code, stdout, stderr = runLock(t, "", append(common, "--yes", "--format", "json")...); code != exitOK {
		t.Fatalf("lock after a new release: exit %d\n%s%s", code, stdout, stderr)
	}
	var res lockResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || !res.Written || res.MediaType != lockResultMediaType ||
		len(res.Changes) != 1 || res.Changes[0].Status != "changed" || res.Changes[0].Drift[0].Kind != policy.DriftDigest {
		t.Fatalf("lock --format json: %v\n%s", err, stdout)
	}
}

func runCheckJSON(t *testing.T, wantCode int, args ...string) checkOutput {
	t.Helper()
	code, stdout, stderr := runCLI(t, append([]string{"check", "--format", "json"}, args...)...)
	var out checkOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("check --format json: %v\n%s%s", err, stdout, stderr)
	}
	if code != wantCode || out.ExitCode != code || out.MediaType != checkMediaType || len(out.Servers) == 0 {
		t.Fatalf("check: exit %d (JSON says %d), want %d\n%s%s", code, out.ExitCode, wantCode, stdout, stderr)
	}
	return out
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestLockRefusedServer: a server that fails verification is not recorded,
// and nothing is written, not even the servers that passed.
func TestLockRefusedServer(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t,
		verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather"},
		verifytest.PolicyServer{Name: "calendar", Server: "io.github.acme/calendar"},
	)
	code, stdout, stderr := runLock(t, "", "--policy", pol, "--store", t.TempDir(), "--yes")
	if code != exitRefused || !strings.Contains(stdout, "REFUSED  calendar") || !strings.Contains(stderr, "lockfile not written") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(pol), "preflight.lock")); err == nil {
		t.Fatal("a lockfile was written although a server was refused")
	}
}

// TestLockDropsRemovedServers: locking every server drops entries of servers
// the policy no longer has; locking one keeps the others.
func TestLockDropsRemovedServers(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t, verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather"})
	lockPath := filepath.Join(t.TempDir(), "custom.lock")
	writeLock(t, lockPath, &policy.Lock{Version: 1, Servers: map[string]*policy.LockEntry{"retired": {Version: "0.9.0"}}})
	common := []string{"--policy", pol, "--store", t.TempDir(), "--lock", lockPath, "--yes"}
	code, stdout, stderr := runLock(t, "", append(common, "--server", "weather")...)
	if code != exitOK || readLock(t, lockPath).Servers["retired"] == nil {
		t.Fatalf("lock --server weather: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runLock(t, "", common...)
	if code != exitOK || !strings.Contains(stdout, "REMOVED  retired") || readLock(t, lockPath).Servers["retired"] != nil {
		t.Fatalf("lock: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr = runLock(t, "", append(common, "--server", "nope")...); code != exitUsage {
		t.Fatalf("lock --server nope: exit %d\n%s", code, stderr)
	}
}

func TestCheckExitCodes(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t,
		verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather"},
		verifytest.PolicyServer{Name: "calendar", Server: "io.github.acme/calendar"},
	)
	store := t.TempDir()
	out := runCheckJSON(t, exitOK, "--policy", pol, "--store", store, "--server", "weather")
	if r := out.Servers[0]; r.Verdict != "allowed" || r.Live || r.Report.Decision.Allow != true || r.Report.Surface != nil {
		t.Fatalf("weather: %+v", r)
	}
	out = runCheckJSON(t, exitOK, "--policy", pol, "--store", store, "--server", "weather", "--live")
	if r := out.Servers[0]; !r.Live || r.Report.Surface == nil || len(r.Report.Surface.Tools.Exposed) != 3 {
		t.Fatalf("weather --live: %+v", r)
	}
	out = runCheckJSON(t, exitRefused, "--policy", pol, "--store", store)
	if len(out.Servers) != 2 || out.Servers[0].Server != "calendar" || out.Servers[0].Verdict != "refused" || out.Servers[0].Report == nil ||
		!strings.Contains(out.Servers[0].Error, "signer identity not allowed") || out.Servers[1].Verdict != "allowed" {
		t.Fatalf("both: %+v", out.Servers)
	}
	code, stdout, stderr := runCLI(t, "check", "--policy", pol, "--store", store, "--server", "calendar")
	if code != exitRefused || !strings.HasPrefix(stdout, "REFUSED  calendar") || !strings.Contains(stderr, "preflight: REFUSED: ") {
		t.Fatalf("text: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, args := range [][]string{
		{"check"},
		{"check", "--policy", pol, "--format", "xml"},
		{"check", "--policy", pol, "stray"},
		{"check", "--policy", pol, "--live=maybe"},
		{"check", "--policy", pol, "--lock", filepath.Join(t.TempDir(), "missing.lock")},
	} {
		if code, _, stderr := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr)
		}
	}
	out = runCheckJSON(t, exitUsage, "--policy", pol, "--store", store, "--server", "nope")
	if r := out.Servers[0]; r.Verdict != "error" || r.ErrorKind != "operational" {
		t.Fatalf("unknown server: %+v", r)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := writeFileAtomic(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Fatalf("new file mode %v", fi.Mode())
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "two" {
		t.Fatalf("content %q", data)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("an existing file's mode changed to %v", fi.Mode())
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	assertNoTempFiles(t, dir)
}
