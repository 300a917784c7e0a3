package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-preflight/preflight/internal/npm"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// The real server package the fixtures hold: scripts/npm-fixtures fetches
// it (and its dependency closure) with npm in CI's install step, so that
// this test itself runs on loopback only.
const (
	everythingPackage   = "@modelcontextprotocol/server-everything"
	everythingVersion   = "2026.8.31"
	everythingIntegrity = "sha512-5U3OZh8Xq0Li4nA26l6uNvV9/1suMDuWSn+NjLZIhzinhMY6N3A4DCrxVecBGPf2PsNFKTEv5krxGPRwzxc7jQ=="
)

// The tools the policy allows and denies, as the package lists them (its
// dist/tools). Tools in neither list are withheld as well.
var (
	everythingAllowed = []string{"echo", "get-annotated-message", "get-sum"}
	everythingDenied  = []string{"get-env", "gzip-file-as-resource", "trigger-long-running-operation", "toggle-simulated-logging"}
)

// everythingFixtures is what scripts/npm-fixtures left in a directory.
type everythingFixtures struct {
	dir     string
	closure *npm.Closure // from package-lock.json
}

// loadEverythingFixtures skips the test unless the fixtures and node are
// there; fixtures that are marked complete but broken fail it.
func loadEverythingFixtures(t *testing.T) *everythingFixtures {
	t.Helper()
	dir := os.Getenv("PREFLIGHT_NPM_FIXTURES")
	if dir == "" {
		t.Skip("PREFLIGHT_NPM_FIXTURES is not set: run scripts/npm-fixtures DIR (it needs npm and the network) and set PREFLIGHT_NPM_FIXTURES=DIR")
	}
	marker, err := os.ReadFile(filepath.Join(dir, "COMPLETE"))
	if want := everythingPackage + "@" + everythingVersion + " " + everythingIntegrity; err != nil || string(marker) != want {
		t.Skipf("%s holds no complete fixtures for %s@%s: run scripts/npm-fixtures %s", dir, everythingPackage, everythingVersion, dir)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed; npm servers run with node")
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := npm.ClosureFromShrinkwrap(lock)
	if err != nil {
		t.Fatalf("the fixture lock: %v", err)
	}
	if len(cl.Packages) == 0 {
		t.Fatal("the fixture lock pins no dependencies")
	}
	return &everythingFixtures{dir: dir, closure: cl}
}

// tarballPath is where scripts/npm-fixtures put name@version: npm pack's
// file name.
func (f *everythingFixtures) tarballPath(name, version string) string {
	base := strings.ReplaceAll(strings.TrimPrefix(name, "@"), "/", "-")
	return filepath.Join(f.dir, "tarballs", base+"-"+version+".tgz")
}

// npmManifest is the part of a package.json the fake registry's packument
// repeats.
type npmManifest struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Bin          json.RawMessage   `json:"bin"`
	Dependencies map[string]string `json:"dependencies"`
}

// readNPMManifest reads package.json from a real npm tarball. npm packs
// it under package/, but some publishers' tarballs use another top-level
// directory, so any single one is accepted.
func readNPMManifest(tarball []byte) (*npmManifest, error) {
	gz, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no package.json")
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		if dir, file := path.Split(name); file != "package.json" || strings.Count(dir, "/") != 1 {
			continue
		}
		var m npmManifest
		if err := json.NewDecoder(io.LimitReader(tr, 4<<20)).Decode(&m); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		return &m, nil
	}
}

// publish serves the tarball at file as is on reg, with a packument built
// from its own package.json, and returns the tarball and the integrity the
// registry publishes for it.
func publishNPMTarball(t *testing.T, reg *verifytest.NPMRegistry, file string) (*npmManifest, []byte, string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := readNPMManifest(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	bin := map[string]string{}
	var one string
	switch {
	case len(m.Bin) == 0 || string(m.Bin) == "null":
	case json.Unmarshal(m.Bin, &one) == nil:
		bin[path.Base(m.Name)] = one
	case json.Unmarshal(m.Bin, &bin) == nil:
	default:
		t.Fatalf("%s: bin %s is neither a path nor a map", file, m.Bin)
	}
	_, integrity, err := reg.Publish(verifytest.NPMPackage{Name: m.Name, Version: m.Version, Tarball: data, Bin: bin, Dependencies: m.Dependencies})
	if err != nil {
		t.Fatal(err)
	}
	return m, data, integrity
}

// serveEverything publishes the server package and its whole closure, as
// the fixtures hold them, on a new loopback registry.
func (f *everythingFixtures) serveEverything(t *testing.T) (*verifytest.NPMRegistry, []byte) {
	t.Helper()
	reg, err := verifytest.NewNPMRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	seen := map[string]bool{}
	for _, p := range f.closure.Packages {
		if seen[p.Name+"@"+p.Version] {
			continue
		}
		seen[p.Name+"@"+p.Version] = true
		m, _, integrity := publishNPMTarball(t, reg, f.tarballPath(p.Name, p.Version))
		if m.Name != p.Name || m.Version != p.Version || integrity != p.Integrity {
			t.Fatalf("fixture tarball of %s@%s is %s@%s with %s, the lock pins %s: run scripts/npm-fixtures again",
				p.Name, p.Version, m.Name, m.Version, integrity, p.Integrity)
		}
	}
	m, root, integrity := publishNPMTarball(t, reg, f.tarballPath(everythingPackage, everythingVersion))
	if m.Name != everythingPackage || m.Version != everythingVersion || integrity != everythingIntegrity {
		t.Fatalf("fixture tarball of the server is %s@%s with %s, want %s@%s with %s", m.Name, m.Version, integrity, everythingPackage, everythingVersion, everythingIntegrity)
	}
	return reg, root
}

// writeEverythingPolicy writes the policy (the server pinned by integrity
// and run unsigned, as nobody signs it) and a lockfile whose entry pins
// the fixture lock's closure, served by reg, and returns both paths.
func (f *everythingFixtures) writeEverythingPolicy(t *testing.T, reg *verifytest.NPMRegistry, root []byte) (string, string) {
	t.Helper()
	dir := t.TempDir()
	quoted := func(names []string) string {
		q := make([]string, len(names))
		for i, n := range names {
			q[i] = fmt.Sprintf("%q", n)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	pol := fmt.Sprintf(`version: 1
servers:
  everything:
    source:
      npm:
        package: %q
        version: %q
        registry: %s
        integrity: %s
    allow_unsigned: true
    tools:
      pin: none
      allow: %s
      deny: %s
`, everythingPackage, everythingVersion, reg.URL(), everythingIntegrity, quoted(everythingAllowed), quoted(everythingDenied))
	polPath := filepath.Join(dir, "preflight.yaml")
	writeFile(t, polPath, pol, 0o600)

	s256, s512 := sha256.Sum256(root), sha512.Sum512(root)
	entry := &policy.LockEntry{Version: everythingVersion, Source: "npm",
		Digests: map[string]string{"sha256": hex.EncodeToString(s256[:]), "sha512": hex.EncodeToString(s512[:])}}
	for _, p := range f.closure.Packages {
		// Where preflight lock, resolving against this registry, would
		// record each tarball.
		resolved := reg.URL() + "/" + p.Name + "/-/" + path.Base(p.Name) + "-" + p.Version + ".tgz"
		entry.Dependencies = append(entry.Dependencies, policy.Dependency{Path: p.Path, Name: p.Name, Version: p.Version, Resolved: resolved, Integrity: p.Integrity})
	}
	lockPath := filepath.Join(dir, "preflight.lock")
	writeLock(t, lockPath, &policy.Lock{Version: policy.LockVersion, Servers: map[string]*policy.LockEntry{"everything": entry}})
	return polPath, lockPath
}

// TestRunRealNPMServer runs the real @modelcontextprotocol/server-everything
// package behind the built preflight CLI, driven by the official go-sdk
// client: installed from a loopback registry serving the very tarballs npm
// fetched, pinned by integrity (it carries no signature), its closure
// pinned by the lockfile. Every allowed tool is listed and callable, every
// denied one is neither; a registry serving other bytes gets no server
// started.
func TestRunRealNPMServer(t *testing.T) {
	fx := loadEverythingFixtures(t)
	bin := sharedFixture(t).cli(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// start runs preflight run under the go-sdk client. It returns the
	// session (nil when the connection failed), the command, its standard
	// error and the connection error.
	start := func(t *testing.T, pol, lock, store string, selector ...string) (*mcp.ClientSession, *exec.Cmd, *syncBuffer, error) {
		t.Helper()
		if len(selector) == 0 {
			selector = []string{"--server", "everything"}
		}
		cmd := exec.Command(bin, append([]string{"run", "--policy", pol, "--lock", lock, "--store", store, "--offline"}, selector...)...)
		stderr := &syncBuffer{}
		cmd.Stderr = stderr
		client := mcp.NewClient(&mcp.Implementation{Name: "everything-test", Version: "1"}, nil)
		cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		return cs, cmd, stderr, err
	}

	t.Run("allowed tools only", func(t *testing.T) {
		reg, root := fx.serveEverything(t)
		pol, lock := fx.writeEverythingPolicy(t, reg, root)
		cs, cmd, stderr, err := start(t, pol, lock, t.TempDir())
		if err != nil {
			t.Fatalf("connect: %v\nstderr:\n%s", err, stderr.String())
		}
		defer cs.Close()

		// The install used the lockfile's closure: the registry was asked
		// for the server's packument only, and for every tarball once.
		// (A package installed at several paths is fetched once.)
		tarballs := map[string]bool{}
		for _, p := range fx.closure.Packages {
			tarballs[p.Integrity] = true
		}
		if got := reg.Requests(); got.Packuments != 1 || got.Tarballs != 1+len(tarballs) {
			t.Errorf("registry requests %+v, want 1 packument and %d tarballs (the closure from the lockfile, nothing else)", got, 1+len(tarballs))
		}

		var listed []string
		params := &mcp.ListToolsParams{}
		for {
			res, err := cs.ListTools(ctx, params)
			if err != nil {
				t.Fatalf("tools/list: %v\nstderr:\n%s", err, stderr.String())
			}
			for _, tool := range res.Tools {
				listed = append(listed, tool.Name)
			}
			if res.NextCursor == "" {
				break
			}
			params = &mcp.ListToolsParams{Cursor: res.NextCursor}
		}
		slices.Sort(listed)
		if !slices.Equal(listed, everythingAllowed) {
			t.Fatalf("listed %q, want exactly the allowed %q", listed, everythingAllowed)
		}

		for _, call := range []struct {
			name string
			args map[string]any
			want string
		}{
			{"echo", map[string]any{"message": "hello through preflight"}, "Echo: hello through preflight"},
			{"get-sum", map[string]any{"a": 2, "b": 40}, "The sum of 2 and 40 is 42."},
			{"get-annotated-message", map[string]any{"messageType": "success", "includeImage": false}, ""},
		} {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: call.name, Arguments: call.args})
			switch {
			case err != nil:
				t.Errorf("allowed %s: %v", call.name, err)
			case res.IsError || len(res.Content) == 0:
				t.Errorf("allowed %s answered an error or nothing: %+v", call.name, res)
			case call.want != "" && toolResultText(res) != call.want:
				t.Errorf("allowed %s answered %q, want %q", call.name, toolResultText(res), call.want)
			}
		}
		for _, name := range append(everythingDenied, "get-tiny-image") { // the last one is in neither list
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
			if err == nil {
				t.Errorf("%s was called: %+v", name, res)
			} else if !strings.Contains(err.Error(), name) {
				t.Errorf("the refusal of %s does not name it: %v", name, err)
			}
		}

		cs.Close()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitOK {
			t.Fatalf("preflight run: %v, want exit 0\nstderr:\n%s", cmd.ProcessState, stderr.String())
		}
		// The report names what the server offered and the gate withheld:
		// the denied tools really exist in the package.
		out := stderr.String()
		for _, want := range append([]string{"ALLOWED  everything", "signature.unsigned"}, everythingDenied...) {
			if !strings.Contains(out, want) {
				t.Errorf("stderr does not contain %q:\n%s", want, out)
			}
		}
	})

	// The line an MCP client configuration has: preflight recognises the
	// package npx would fetch and runs the verified one from the store
	// instead of running npx.
	t.Run("as an npx command line", func(t *testing.T) {
		reg, root := fx.serveEverything(t)
		pol, lock := fx.writeEverythingPolicy(t, reg, root)
		cs, _, stderr, err := start(t, pol, lock, t.TempDir(), "--", "npx", "-y", everythingPackage+"@"+everythingVersion, "stdio")
		if err != nil {
			t.Fatalf("connect: %v\nstderr:\n%s", err, stderr.String())
		}
		defer cs.Close()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "via npx"}})
		if err != nil || toolResultText(res) != "Echo: via npx" {
			t.Fatalf("echo: %+v, %v\nstderr:\n%s", res, err, stderr.String())
		}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: everythingDenied[0], Arguments: map[string]any{}}); err == nil {
			t.Fatalf("the denied %s was callable", everythingDenied[0])
		}
	})

	// Another tarball under the server's name, with the integrity the
	// policy pins (the bytes differ) or with its own (the registry
	// republished): either way nothing is started and the host gets no
	// session.
	other := fx.closure.Packages[0]
	otherTarball, err := os.ReadFile(fx.tarballPath(other.Name, other.Version))
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(everythingIntegrity, "sha512-"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, reg *verifytest.NPMRegistry)
		want   string // the expectation the refusal names
	}{
		{"other bytes at the tarball URL", func(t *testing.T, reg *verifytest.NPMRegistry) {
			reg.TamperTarball(everythingPackage, everythingVersion, otherTarball)
		}, "expected sha512:" + hex.EncodeToString(pinned)},
		{"republished with another integrity", func(t *testing.T, reg *verifytest.NPMRegistry) {
			if _, _, err := reg.Publish(verifytest.NPMPackage{Name: everythingPackage, Version: everythingVersion, Tarball: otherTarball,
				Bin: map[string]string{"mcp-server-everything": "dist/index.js"}}); err != nil {
				t.Fatal(err)
			}
		}, everythingIntegrity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, root := fx.serveEverything(t)
			pol, lock := fx.writeEverythingPolicy(t, reg, root)
			tc.tamper(t, reg)
			cs, cmd, stderr, err := start(t, pol, lock, t.TempDir())
			if err == nil {
				cs.Close()
				t.Fatalf("the client connected to a tampered server\nstderr:\n%s", stderr.String())
			}
			if cmd.ProcessState == nil {
				cmd.Wait() //nolint:errcheck // the exit code is checked below
			}
			if code := cmd.ProcessState.ExitCode(); code != exitRefused {
				t.Fatalf("preflight run exit %d, want %d\nstderr:\n%s", code, exitRefused, stderr.String())
			}
			out := stderr.String()
			for _, want := range []string{"REFUSED", tc.want} {
				if !strings.Contains(out, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, out)
				}
			}
			if got := reg.Requests().Tarballs; got > 1 {
				t.Errorf("%d tarballs fetched: the dependencies were fetched for a refused server", got)
			}
		})
	}
}
