package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-preflight/preflight"
)

func addSeeds(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzParse checks that Parse never panics, that it returns a policy or a
// *ParseError matching ErrConfig but never both, and that Lint agrees.
func FuzzParse(f *testing.F) {
	addSeeds(f, "testdata/valid/*.yaml")
	addSeeds(f, "testdata/invalid/*")
	f.Add([]byte("{version: 1, servers: {a: {source: {file: {path: x}}, signers: [{public_key: x}]}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		p, err := Parse("f.yaml", data)
		probs := Lint("f.yaml", data)
		switch {
		case err == nil && (p == nil || probs != nil):
			t.Fatalf("success with policy %v and problems %v", p, probs)
		case err != nil:
			var pe *ParseError
			if p != nil || !errors.As(err, &pe) || len(pe.Problems) == 0 || !errors.Is(err, preflight.ErrConfig) {
				t.Fatalf("failure %v with policy %v", err, p)
			}
			if len(probs) != len(pe.Problems) {
				t.Fatalf("Lint found %d problems, Parse %d", len(probs), len(pe.Problems))
			}
		default:
			for name, s := range p.Servers {
				if s.Name != name || len(s.Signers) == 0 || s.Source.Kind() == "" || s.Tools.Pin == "" {
					t.Fatalf("server %q incomplete: %+v", name, s)
				}
			}
		}
	})
}

// FuzzParseLock checks that a lockfile that parses marshals to bytes that
// parse to the same lock, and that failures are ErrMalformed.
func FuzzParseLock(f *testing.F) {
	addSeeds(f, "testdata/*.golden")
	f.Add([]byte(`{"version":1,"servers":{}}`))
	f.Add([]byte(`{"version":1,"servers":{"a":{"tools":{},"prompts":null}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLock(data)
		if err != nil {
			if !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		l2, err := ParseLock(out)
		if err != nil {
			t.Fatalf("marshalled lock does not parse: %v\n%s", err, out)
		}
		out2, _ := l2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("Marshal not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzParseDescriptor checks that ParseDescriptor never panics, fails only
// with ErrMalformed, and that a parsed trust section holds only valid rules.
func FuzzParseDescriptor(f *testing.F) {
	f.Add([]byte(descriptorJSON))
	f.Add([]byte(`{"name":"x","version":"1","_meta":{"dev.mcp-preflight/trust":{"artifacts":[{"platform":"any","target":"a"}]}}}`))
	f.Add([]byte(`{"name":"x","version":"1","_meta":{"dev.mcp-preflight/trust":{"signers":[{"public_key":"x"}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDescriptor(data)
		if err != nil {
			if !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if d.Trust == nil {
			return
		}
		for _, s := range d.Trust.Signers {
			if is := signerIssues(s); len(is) > 0 {
				t.Fatalf("invalid signer accepted: %v", is)
			}
		}
		for _, a := range d.Trust.Artifacts {
			if err := checkTargetPath(a.Target); err != nil {
				t.Fatalf("unsafe target accepted: %v", err)
			}
			if got, err := d.Artifact(a.Platform); err != nil || got.Platform != a.Platform {
				t.Fatalf("Artifact(%q) = %v, %v", a.Platform, got, err)
			}
		}
	})
}
