package policy

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseValidExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := Parse(f, readFile(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if p.Version != 1 || len(p.Servers) == 0 {
				t.Fatalf("parsed %+v", p)
			}
			if probs := Lint(f, readFile(t, f)); probs != nil {
				t.Errorf("Lint of a valid file: %v", probs)
			}
		})
	}
}

// TestParseErrorsGolden pins the exact problems, positions and wording for
// each invalid example. Run with -update to rewrite the golden files.
func TestParseErrorsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Parse(filepath.Base(f), readFile(t, f))
			var pe *ParseError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("Parse accepted an invalid file: %v", err)
			}
			if !errors.Is(err, preflight.ErrConfig) || !errors.Is(err, preflight.ErrOperational) {
				t.Errorf("%v does not match ErrConfig", err)
			}
			var b bytes.Buffer
			for _, p := range pe.Problems {
				b.WriteString(p.String())
				b.WriteString("\n")
			}
			golden := strings.TrimSuffix(f, filepath.Ext(f)) + ".golden"
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want := readFile(t, golden)
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("problems differ from %s (run go test -update):\n got:\n%s\nwant:\n%s", golden, b.Bytes(), want)
			}
		})
	}
	if n < 5 {
		t.Fatalf("only %d invalid examples", n)
	}
}

func TestParseReportsAllThreeWithPositions(t *testing.T) {
	probs := Lint("p.yaml", readFile(t, "testdata/invalid/three.yaml"))
	want := []struct {
		line, col int
		text      string
	}{
		{6, 5, `unknown field "colour"`},
		{9, 26, "is not anchored"},
		{10, 9, "empty signer"},
	}
	if len(probs) != len(want) {
		t.Fatalf("problems %v, want %d", probs, len(want))
	}
	for i, w := range want {
		p := probs[i]
		if p.File != "p.yaml" || p.Line != w.line || p.Column != w.col || !strings.Contains(p.Message, w.text) {
			t.Errorf("problem %d = %s, want p.yaml:%d:%d containing %q", i, p, w.line, w.col, w.text)
		}
	}
}

func TestParseRejects(t *testing.T) {
	base := "version: 1\nservers:\n  w:\n    source: {file: {path: ./w}}\n    signers: [{issuer: https://accounts.google.com, subject: a@example.com}]\n"
	cases := map[string]struct{ yaml, want string }{
		"unknown mode":                  {strings.Replace(base, "version: 1\n", "version: 1\nmode: strict\n", 1), `unknown mode "strict"`},
		"version 2":                     {strings.Replace(base, "version: 1", "version: 2", 1), "unsupported version 2"},
		"no version":                    {strings.Replace(base, "version: 1\n", "", 1), "version is required"},
		"no servers":                    {"version: 1\nservers: {}\n", "no servers"},
		"too big":                       {base + "#" + strings.Repeat("x", MaxPolicyBytes), "more than the limit"},
		"alias":                         {"version: 1\nx: &a 1\nservers: *a\n", "aliases are not supported"},
		"tool allowed and denied":       {base + "    tools: {allow: [a], deny: [a]}\n", `"a" is both allowed and denied`},
		"pin none without allow":        {base + "    tools: {pin: none}\n", "explicit allow list"},
		"http non-loopback":             {strings.Replace(base, "{file: {path: ./w}}", "{url: {url: \"http://example.com/w\"}}", 1), "loopback hosts only"},
		"http loopback is fine":         {strings.Replace(base, "{file: {path: ./w}}", "{url: {url: \"http://[::1]:8080/w\"}}", 1), ""},
		"provenance unconstrained":      {base + "    provenance: {required: true}\n", "neither builders nor repository"},
		"private sigstore without root": {strings.Replace(base, "version: 1\n", "version: 1\ntrust: {sigstore: {instance: private}}\n", 1), "needs trusted_root or tuf"},
		"repository without root":       {strings.Replace(base, "version: 1\n", "version: 1\ntrust: {repositories: {a: {url: \"https://x.example\"}}}\n", 1), "pin the repository's root"},
		"unsigned without a pin":        {"version: 1\nservers:\n  w:\n    source: {npm: {package: a, version: 1.0.0}}\n    allow_unsigned: true\n", "must be pinned by digest"},
		"unsigned with signers":         {strings.Replace(base, "{file: {path: ./w}}", "{file: {path: ./w, digest: \"sha256:"+strings.Repeat("ab", 32)+"\"}}", 1) + "    allow_unsigned: true\n", "signer rules could never apply"},
		"unsigned and pinned is fine":   {"version: 1\nservers:\n  w:\n    source: {npm: {package: a, version: 1.0.0, integrity: \"sha512-" + strings.Repeat("A", 86) + "==\"}}\n    allow_unsigned: true\n    tools: {pin: none, allow: [\"*\"]}\n", ""},
		"key and identity":              {strings.Replace(base, "subject: a@example.com", "subject: a@example.com, public_key: x", 1), "a key signer names only public_key"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			probs := Lint("p.yaml", []byte(tc.yaml))
			if tc.want == "" {
				if probs != nil {
					t.Fatalf("unexpected problems %v", probs)
				}
				return
			}
			for _, p := range probs {
				if strings.Contains(p.Message, tc.want) {
					return
				}
			}
			t.Fatalf("problems %v do not mention %q", probs, tc.want)
		})
	}
}

func TestParseFillsDefaults(t *testing.T) {
	p, err := Parse("oci.yaml", readFile(t, "testdata/valid/oci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != ModeEnforce || p.Trust.Sigstore.Instance != InstancePublicGood {
		t.Errorf("mode %q instance %q", p.Mode, p.Trust.Sigstore.Instance)
	}
	s, err := p.Server("github")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "github" {
		t.Errorf("name %q", s.Name)
	}
	// tools are written out, so the defaults do not apply; resources are
	// inherited as a whole; prompts get the built-in defaults.
	if s.Tools.Pin != PinLockfile || !reflect.DeepEqual(s.Tools.Deny, []string{"delete_*", "*_admin"}) {
		t.Errorf("tools %+v", s.Tools)
	}
	if s.Resources.Pin != PinNone || !reflect.DeepEqual(s.Resources.Allow, []string{"file:///docs/*"}) {
		t.Errorf("resources %+v", s.Resources)
	}
	if s.Prompts.Pin != PinLockfile || s.Prompts.OnChange != ChangeBlock {
		t.Errorf("prompts %+v", s.Prompts)
	}
	s.Resources.Allow[0] = "changed"
	if p.Defaults.Resources.Allow[0] != "file:///docs/*" {
		t.Error("an inherited section shares memory with the defaults")
	}

	p, err = Parse("tuf.yaml", readFile(t, "testdata/valid/tuf.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Trust.Repositories["acme"].TargetsURL; got != "https://mcp.acme.example/metadata/targets" {
		t.Errorf("targets url %q", got)
	}
	if w := p.Servers["io.github.acme/weather"]; w.Provenance.Required {
		t.Error("required: false was overridden")
	}
	n, err := Parse("npm.yaml", readFile(t, "testdata/valid/npm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !n.Servers["filesystem"].Provenance.Required {
		t.Error("provenance is required by default")
	}
}

func TestParseAcceptsJSON(t *testing.T) {
	doc := `{"version": 1, "mode": "audit", "servers": {"w": {"source": {"oci": {"image": "ghcr.io/a/b:1"}},
	  "signers": [{"issuer": "https://accounts.google.com", "subject": "a@example.com"}]}}}`
	p, err := Parse("p.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != ModeAudit || p.Servers["w"].Source.Kind() != "oci" {
		t.Errorf("%+v", p)
	}
}

func TestPolicyServerNotFound(t *testing.T) {
	p, err := Parse("url.yaml", readFile(t, "testdata/valid/url.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Server("wether")
	var pe *preflight.Error
	if !errors.Is(err, preflight.ErrNotFound) || !errors.As(err, &pe) || !strings.Contains(pe.Hint, "weather") {
		t.Fatalf("error %v", err)
	}
}

func TestCheckPattern(t *testing.T) {
	good := []string{`^a$`, `^refs/tags/v[0-9]+$`, `^(?:a|b)$`, `^$`}
	bad := []string{``, `a`, `^a`, `a$`, `^a$|^b$`, `^a|b$`, `^(a$`, `^(a{100}){100}$`, `^\$`, `^[a-z]{1000}[0-9]{1000}[A-Z]{1000}[a-z]{1000}[a-z]{1000}$`, "^" + strings.Repeat("a", MaxPatternLength) + "$"}
	for _, p := range good {
		if err := checkPattern(p); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
	for _, p := range bad {
		if err := checkPattern(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}
