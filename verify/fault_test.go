package verify_test

// Faults of the verified server and of the distribution path that
// launch_test.go does not cover. The misbehaving servers are small shell
// scripts published and signed like any artifact: the bytes that run are
// the verified script, which records its process id first so that the test
// can check the process is gone after a refused launch, and touches a
// marker so that the test can tell whether anything ran at all.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// scriptPrologue records the script's pid (the shell's, which the Launch
// started) in DIR/NAME.pid and reads the client's initialize request. ID
// is then the request's id, as JSON.
const scriptPrologue = `#!/bin/sh
echo $$ > "%[1]s/%[2]s.pid"
IFS= read -r line || exit 7
id=$(printf '%%s' "$line" | sed -n 's/.*"id":\([^,}]*\).*/\1/p')
`

const initializeAnswer = `printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"fault","version":"1.0.0"}}}\n' "$id"
`

// faultScripts are the servers: each gets past some of the handshake and
// then fails in its own way. quick marks the failures Launch must report
// well before HandshakeTimeout, because the server ended its side.
var faultScripts = map[string]struct {
	body  string
	class *preflight.Class
	quick bool
}{
	// Answers initialize, then exits before the gate's tools/list.
	"exit-after-initialize": {initializeAnswer + "exit 0\n", preflight.ErrLaunch, true},
	// Answers initialize, then closes its stdout but keeps running,
	// reading stdin until the launch gives up on it.
	"close-stdout": {initializeAnswer + "exec 1>&-\ncat > /dev/null\n", preflight.ErrLaunch, true},
	// Closes stdout before answering anything and keeps running, deaf to
	// stdin: only the signals after the grace period end it.
	"close-stdout-ignore-stdin": {"exec 1>&-\nexec sleep 60\n", preflight.ErrLaunch, false},
	// Answers initialize, then reads tools/list and never answers.
	"silent-after-initialize": {initializeAnswer + "cat > /dev/null\n", preflight.ErrTimeout, false},
	// Answers initialize with an id the client never sent, then waits.
	"wrong-id": {`printf '{"jsonrpc":"2.0","id":"not-yours","result":{}}\n'` + "\ncat > /dev/null\n", preflight.ErrTimeout, false},
	// Answers initialize, then writes a line that is not JSON-RPC and exits.
	"garbage-then-exit": {initializeAnswer + "printf 'Traceback (most recent call last):\\n'\nexit 1\n", preflight.ErrLaunch, true},
}

// handshakeTimeout bounds the script servers' handshakes; the quick
// failures must come well before it.
const handshakeTimeout = 2 * time.Second

type scriptFixture struct {
	*fixture
	v      *verify.Verifier
	pidDir string
}

func scriptArtifact(pidDir, name, body string) []byte {
	return []byte(fmt.Sprintf(scriptPrologue, pidDir, name) + body)
}

// publishScripts publishes one script server per entry of faultScripts
// and returns a verifier whose policy names each after its key.
func publishScripts(t *testing.T, fetcher tuf.Fetcher) *scriptFixture {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fault servers are shell scripts")
	}
	if _, err := exec.LookPath("sed"); err != nil {
		t.Skip("the fault servers need sed")
	}
	f := newFixture(t)
	pidDir := t.TempDir()
	var servers []verifytest.PolicyServer
	for name, s := range faultScripts {
		if _, err := f.sc.Publish(verifytest.Publication{Server: "io.github.acme/script-" + name, Artifact: scriptArtifact(pidDir, name, s.body)}); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, verifytest.PolicyServer{Name: name, Server: "io.github.acme/script-" + name})
	}
	p := f.sc.Policy
	path, err := p("scripts.yaml", servers...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Policy: pol, PolicyDir: f.sc.Dir, StoreDir: filepath.Join(f.dir, "store"),
		HandshakeTimeout: handshakeTimeout, Fetcher: fetcher})
	if err != nil {
		t.Fatal(err)
	}
	return &scriptFixture{fixture: f, v: v, pidDir: pidDir}
}

// assertGone fails unless the process named in the pid file ran and is
// gone (killed and reaped, not a zombie).
func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the server never started: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file %q: %v", data, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("server process %d outlived its refused launch", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHandshakeFaultsEndTheServer(t *testing.T) {
	sf := publishScripts(t, nil)
	// Warm the store and the trust root, so the launches below measure
	// only the handshake.
	if _, err := sf.v.Check(context.Background(), "exit-after-initialize"); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	t.Run("servers", func(t *testing.T) {
		for name, s := range faultScripts {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				sess, err := launch(context.Background(), sf.v, name)
				elapsed := time.Since(start)
				if sess != nil {
					sess.Close()
					t.Fatal("a session was returned with the error")
				}
				t.Log(err)
				if !errors.Is(err, s.class) || !errors.Is(err, preflight.ErrOperational) || errors.Is(err, preflight.ErrSecurity) {
					t.Fatalf("got %v, want %v", err, s.class)
				}
				if s.quick && elapsed > handshakeTimeout/2 {
					t.Errorf("a server that ended its side of the handshake held the launch for %v (the timeout is %v)", elapsed, handshakeTimeout)
				}
				assertGone(t, filepath.Join(sf.pidDir, name+".pid"))
			})
		}
	})
	settleGoroutines(t, base)
}

// artifactPath is where the scenario's consistent-snapshot repository
// serves a target.
func artifactPath(name string, data []byte) string {
	sum := sha256.Sum256(data)
	dir, base := path.Split(name)
	return "/targets/" + dir + hex.EncodeToString(sum[:]) + "." + base
}

// TestArtifactDownloadFaultsRunNothing breaks the download of a server's
// executable from the TUF repository: slow, endless, replaced. Nothing may
// run, the store must hold nothing, and the error says which class.
func TestArtifactDownloadFaultsRunNothing(t *testing.T) {
	for name, tc := range map[string]struct {
		fault func(r *verifytest.TUFRepository, target string, data []byte)
		class *preflight.Class
	}{
		"stalls": {func(r *verifytest.TUFRepository, target string, data []byte) {
			r.SetDelay(artifactPath(target, data), 10*time.Second)
		}, preflight.ErrTimeout},
		"endless": {func(r *verifytest.TUFRepository, target string, data []byte) {
			r.SetEndless(artifactPath(target, data))
		}, preflight.ErrTampered},
		"other bytes": {func(r *verifytest.TUFRepository, target string, data []byte) {
			r.TamperTarget(target, append([]byte("#!/bin/sh\ntouch ran\n#"), data[21:]...))
		}, preflight.ErrTampered},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			marker := filepath.Join(t.TempDir(), "ran")
			script := []byte("#!/bin/sh\ntouch " + marker + "\nexit 0\n")
			pub, err := f.sc.Publish(verifytest.Publication{Server: "io.github.acme/touch", Artifact: script})
			if err != nil {
				t.Fatal(err)
			}
			polPath, err := f.sc.Policy("touch.yaml", verifytest.PolicyServer{Name: "touch", Server: "io.github.acme/touch"})
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(polPath)
			if err != nil {
				t.Fatal(err)
			}
			pol, err := policy.Parse(polPath, data)
			if err != nil {
				t.Fatal(err)
			}
			store := filepath.Join(f.dir, "store")
			v, err := verify.New(verify.Config{Policy: pol, PolicyDir: f.sc.Dir, StoreDir: store, HandshakeTimeout: 2 * time.Second,
				Fetcher: &tuf.HTTPFetcher{Timeout: 300 * time.Millisecond, Retries: -1}})
			if err != nil {
				t.Fatal(err)
			}
			tc.fault(f.sc.Repo, pub.Artifact, script)
			sess, err := launch(context.Background(), v, "touch")
			if sess != nil {
				sess.Close()
			}
			t.Log(err)
			if !errors.Is(err, tc.class) {
				t.Fatalf("got %v, want %v", err, tc.class)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the server ran although its download failed")
			}
			if f.sc.Repo.Requests(artifactPath(pub.Artifact, script)) == 0 && name != "other bytes" {
				t.Fatal("the fault was never reached")
			}
			entries, err := os.ReadDir(filepath.Join(store, "sha256"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				b, _ := os.ReadFile(filepath.Join(store, "sha256", e.Name()))
				if strings.Contains(string(b), "touch") {
					t.Fatalf("the store holds the failed download as %s", e.Name())
				}
			}
			if tmp, _ := os.ReadDir(filepath.Join(store, "tmp")); len(tmp) != 0 {
				t.Fatalf("%d temporary files left in the store", len(tmp))
			}
		})
	}
}
