package mcpb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/mcpb"
	"github.com/mcp-preflight/preflight/internal/release"
	"github.com/mcp-preflight/preflight/internal/release/releasetest"
	"github.com/mcp-preflight/preflight/internal/store"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

const nodeManifest = `{
  "manifest_version": "0.3",
  "name": "weather",
  "version": "1.4.0",
  "description": "Weather forecasts",
  "author": {"name": "Acme"},
  "server": {
    "type": "node",
    "entry_point": "server/index.js",
    "mcp_config": {
      "command": "node",
      "args": ["${__dirname}/server/index.js", "--units=${user_config.units}"],
      "env": {"WEATHER_API_KEY": "${user_config.api_key}", "LITERAL": "no ${ here"},
      "platform_overrides": {"win32": {"command": "node.exe"}}
    }
  },
  "tools": [{"name": "forecast", "description": "Get a forecast"}],
  "compatibility": {"platforms": ["darwin", "linux", "win32"], "runtimes": {"node": ">=18"}},
  "user_config": {
    "api_key": {"type": "string", "title": "API key", "description": "Your key", "sensitive": true, "required": true},
    "units": {"type": "string", "title": "Units", "description": "metric or imperial", "default": "metric"}
  }
}`

const bundlePath = "/acme/weather/releases/download/v1.4.0/weather.mcpb"

type env struct {
	host    *verifytest.ReleaseHost
	fetcher *release.Fetcher
	store   *store.Store
}

func newEnv(t *testing.T, verifyFn release.VerifyFunc) *env {
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
	f, err := release.New(release.Config{Store: s, Verify: verifyFn})
	if err != nil {
		t.Fatal(err)
	}
	return &env{host: h, fetcher: f, store: s}
}

// publish serves the bundle and a signature by id.
func (e *env) publish(t *testing.T, data []byte, id verifytest.Identity) {
	t.Helper()
	b, err := releasetest.Sigstore(t).SignBlob(id, data, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.host.Add(bundlePath, data)
	e.host.Add(bundlePath+".sigstore.json", b)
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
}

func TestFetchSignedNodeBundle(t *testing.T) {
	e := newEnv(t, releasetest.VerifyAs(t, releasetest.Publisher))
	data := verifytest.Zip(map[string][]byte{"manifest.json": []byte(nodeManifest), "server/index.js": []byte("console.log('hi')")})
	e.publish(t, data, releasetest.Publisher)
	opts := mcpb.Options{Platform: "linux", Vars: map[string]string{"user_config.api_key": "k-123"}}
	b, err := mcpb.Fetch(context.Background(), e.fetcher, mcpb.Source{URL: e.host.URL() + bundlePath}, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := mcpb.Launch{
		Command: "node",
		Args:    []string{b.Dir + "/server/index.js", "--units=metric"},
		Env:     map[string]string{"WEATHER_API_KEY": "k-123", "LITERAL": "no ${ here"},
		Dir:     b.Dir,
	}
	if b.Launch.Command != want.Command || !slices.Equal(b.Launch.Args, want.Args) || b.Launch.Dir != want.Dir ||
		len(b.Launch.Env) != 2 || b.Launch.Env["WEATHER_API_KEY"] != "k-123" || b.Launch.Env["LITERAL"] != "no ${ here" {
		t.Fatalf("launch = %+v, want %+v", b.Launch, want)
	}
	if !strings.HasPrefix(b.Dir, e.store.Dir()) || b.File.SHA256 != releasetest.SHA256(data) {
		t.Fatalf("bundle = %+v", b)
	}
	if a := b.Artifact; a.Source != "mcpb" || a.Version != "1.4.0" || a.Name != "weather.mcpb" || a.Digests["sha256"] != releasetest.SHA256(data) {
		t.Fatalf("artifact = %+v", a)
	}
	if len(b.Signatures) != 1 || b.Signatures[0].Certificate.Subject != releasetest.Publisher.Subject {
		t.Fatalf("signatures = %+v", b.Signatures)
	}
	info, err := os.Stat(b.File.Path)
	if err != nil || info.Mode().Perm() != 0o400 {
		t.Fatalf("the .mcpb file is stored with mode %v, %v; want 0400", info.Mode(), err)
	}

	// Windows gets its override; a second fetch comes from the store.
	opts.Platform = "win32"
	b2, err := mcpb.Fetch(context.Background(), e.fetcher, mcpb.Source{URL: e.host.URL() + bundlePath}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b2.Launch.Command != "node.exe" || b2.Downloaded || b2.Dir != b.Dir || e.host.Requests(bundlePath) != 1 {
		t.Fatalf("second fetch: %+v, %d downloads", b2, e.host.Requests(bundlePath))
	}
}

func TestFetchBinaryBundleFromServerJSON(t *testing.T) {
	e := newEnv(t, nil)
	manifest := `{"manifest_version":"0.2","name":"weather","version":"2.0.0","description":"d","author":{"name":"a"},
	  "server":{"type":"binary","entry_point":"bin/weather","mcp_config":{"command":"${__dirname}${/}bin${/}weather","args":["--stdio"]}}}`
	data := verifytest.ZipArchive([]verifytest.ArchiveEntry{
		{Name: "manifest.json", Data: []byte(manifest), Mode: 0o644},
		{Name: "bin/weather", Data: []byte("\x7fELF"), Mode: 0o644}, // no executable bit, as zips from Windows
	})
	e.host.Add(bundlePath, data)
	pkg := `{"registryType":"mcpb","identifier":"` + e.host.URL() + bundlePath + `","version":"2.0.0","fileSha256":"` + releasetest.SHA256(data) + `","transport":{"type":"stdio"}}`
	src, err := mcpb.SourceFromPackage([]byte(pkg))
	if err != nil {
		t.Fatal(err)
	}
	b, err := mcpb.Fetch(context.Background(), e.fetcher, src, mcpb.Options{Platform: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	wantCmd := filepath.Join(b.Dir, "bin", "weather")
	if b.Launch.Command != wantCmd || !slices.Equal(b.Launch.Args, []string{"--stdio"}) {
		t.Fatalf("launch = %+v", b.Launch)
	}
	info, err := os.Stat(wantCmd)
	if err != nil || info.Mode().Perm() != 0o500 {
		t.Fatalf("binary mode %v, %v; want 0500", info.Mode(), err)
	}
	if len(b.Signatures) != 0 {
		t.Fatalf("signatures without a verifier: %+v", b.Signatures)
	}
}

func TestFetchRefusals(t *testing.T) {
	good := verifytest.Zip(map[string][]byte{"manifest.json": []byte(nodeManifest), "server/index.js": []byte("x")})
	zipWith := func(manifest string, extra ...verifytest.ArchiveEntry) []byte {
		return verifytest.ZipArchive(append([]verifytest.ArchiveEntry{{Name: "manifest.json", Data: []byte(manifest)}}, extra...))
	}
	binManifest := func(command string) string {
		return `{"manifest_version":"0.3","name":"w","version":"1","description":"d","author":{"name":"a"},
		  "server":{"type":"binary","entry_point":"bin/w","mcp_config":{"command":"` + command + `"}}}`
	}
	cases := []struct {
		name   string
		data   []byte
		signer verifytest.Identity
		verify bool
		pin    string
		vars   map[string]string
		class  *preflight.Class
	}{
		{name: "wrong signer", data: good, signer: releasetest.Intruder, verify: true, class: preflight.ErrIdentity},
		{name: "tampered against fileSha256", data: good, pin: releasetest.SHA256([]byte("other")), class: preflight.ErrTampered},
		{name: "no manifest", data: verifytest.Zip(map[string][]byte{"server/index.js": []byte("x")}), class: preflight.ErrMalformed},
		{name: "invalid manifest", data: zipWith(`{"name":"w"}`), class: preflight.ErrMalformed},
		{name: "missing entry point", data: verifytest.Zip(map[string][]byte{"manifest.json": []byte(nodeManifest)}), class: preflight.ErrMalformed},
		{name: "binary command outside the bundle", data: zipWith(binManifest("/bin/sh"), verifytest.ArchiveEntry{Name: "bin/w", Data: []byte("x")}), class: preflight.ErrMalformed},
		{name: "binary command climbing out", data: zipWith(binManifest("${__dirname}/../../bin/sh"), verifytest.ArchiveEntry{Name: "bin/w", Data: []byte("x")}), class: preflight.ErrMalformed},
		{name: "traversal in zip", data: zipWith(nodeManifest, verifytest.ArchiveEntry{Name: "../server/index.js", Data: []byte("x")}), class: preflight.ErrMalformed},
		{name: "unresolved placeholder", data: good, vars: map[string]string{}, class: preflight.ErrConfig},
		{name: "platform not supported", data: zipWith(strings.Replace(nodeManifest, `"platforms": ["darwin", "linux", "win32"]`, `"platforms": ["darwin"]`, 1),
			verifytest.ArchiveEntry{Name: "server/index.js", Data: []byte("x")}), class: preflight.ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fn release.VerifyFunc
			if c.verify {
				fn = releasetest.VerifyAs(t, releasetest.Publisher)
			}
			e := newEnv(t, fn)
			if c.verify {
				e.publish(t, c.data, c.signer)
			} else {
				e.host.Add(bundlePath, c.data)
			}
			src := mcpb.Source{URL: e.host.URL() + bundlePath, FileSHA256: c.pin}
			if !c.verify && src.FileSHA256 == "" {
				src.FileSHA256 = releasetest.SHA256(c.data)
			}
			vars := c.vars
			if vars == nil {
				vars = map[string]string{"user_config.api_key": "k"}
			}
			b, err := mcpb.Fetch(context.Background(), e.fetcher, src, mcpb.Options{Platform: "linux", Vars: vars})
			if b != nil {
				t.Fatalf("bundle %+v alongside %v", b, err)
			}
			wantClass(t, err, c.class)
		})
	}
}

func TestSourceFromPackage(t *testing.T) {
	for name, pkg := range map[string]string{
		"npm package":   `{"registryType":"npm","identifier":"@acme/weather","version":"1.0.0"}`,
		"no identifier": `{"registryType":"mcpb"}`,
		"not json":      `registryType: mcpb`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mcpb.SourceFromPackage([]byte(pkg))
			wantClass(t, err, preflight.ErrMalformed)
		})
	}
}

func TestPlatform(t *testing.T) {
	for goos, want := range map[string]string{"windows": "win32", "linux": "linux", "darwin": "darwin"} {
		if got := mcpb.Platform(goos); got != want {
			t.Errorf("Platform(%q) = %q, want %q", goos, got, want)
		}
	}
}
