package npm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
)

const sri = "sha512-" + zeroSRI

func lockfile(packages string) []byte {
	return []byte(`{"name":"root","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{` + packages + `}}`)
}

func TestClosureFromShrinkwrap(t *testing.T) {
	data := lockfile(`
		"": {"name":"root","version":"1.0.0","dependencies":{"a":"^1.0.0"}},
		"node_modules/a": {"version":"1.0.0","resolved":"https://registry.npmjs.org/a/-/a-1.0.0.tgz","integrity":"` + sri + ` sha1-abc"},
		"node_modules/a/node_modules/@s/b": {"version":"2.0.0","integrity":"` + sri + `"},
		"node_modules/alias": {"name":"real","version":"3.0.0","integrity":"` + sri + `"},
		"node_modules/devonly": {"version":"1.0.0","dev":true},
		"node_modules/a/node_modules/bundled": {"version":"1.0.0","inBundle":true}`)
	cl, err := ClosureFromShrinkwrap(data)
	if err != nil {
		t.Fatalf("ClosureFromShrinkwrap: %v", err)
	}
	var got []string
	for _, p := range cl.Packages {
		got = append(got, p.Path+"="+p.Name+"@"+p.Version)
		if p.Integrity != sri {
			t.Errorf("%s integrity %q", p.Path, p.Integrity)
		}
	}
	want := "node_modules/a=a@1.0.0 node_modules/a/node_modules/@s/b=@s/b@2.0.0 node_modules/alias=real@3.0.0"
	if strings.Join(got, " ") != want {
		t.Errorf("closure = %v\nwant %s", got, want)
	}
}

func TestClosureFromShrinkwrapRefusals(t *testing.T) {
	tests := map[string][]byte{
		"missing integrity": lockfile(`"node_modules/a": {"version":"1.0.0"}`),
		"sha1 integrity":    lockfile(`"node_modules/a": {"version":"1.0.0","integrity":"sha1-abc"}`),
		"bad version":       lockfile(`"node_modules/a": {"version":"latest","integrity":"` + sri + `"}`),
		"link":              lockfile(`"node_modules/a": {"link":true,"resolved":"packages/a"}`),
		"workspace path":    lockfile(`"packages/a": {"version":"1.0.0","integrity":"` + sri + `"}`),
		"traversal":         lockfile(`"node_modules/../../x": {"version":"1.0.0","integrity":"` + sri + `"}`),
		"orphan":            lockfile(`"node_modules/a/node_modules/b": {"version":"1.0.0","integrity":"` + sri + `"}`),
		"case collision":    lockfile(`"node_modules/a": {"version":"1.0.0","integrity":"` + sri + `"}, "node_modules/A": {"version":"1.0.0","integrity":"` + sri + `"}`),
		"duplicate key":     lockfile(`"node_modules/a": {"version":"1.0.0","integrity":"` + sri + `"}, "node_modules/a": {"version":"6.6.6","integrity":"` + sri + `"}`),
		"git resolved":      lockfile(`"node_modules/a": {"version":"1.0.0","resolved":"git+ssh://git@github.com/a/a.git","integrity":"` + sri + `"}`),
		"lockfile v1":       []byte(`{"lockfileVersion":1,"dependencies":{}}`),
		"not JSON":          []byte(`{`),
		"entry not object":  lockfile(`"node_modules/a": 7`),
		"bad alias name":    lockfile(`"node_modules/a": {"name":"../x","version":"1.0.0","integrity":"` + sri + `"}`),
		"too large":         append(lockfile(``), make([]byte, maxShrinkwrapBytes)...),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			cl, err := ClosureFromShrinkwrap(data)
			if !errors.Is(err, preflight.ErrMalformed) || cl != nil {
				t.Fatalf("got %v, %v; want ErrMalformed", cl, err)
			}
		})
	}
}

func FuzzClosureFromShrinkwrap(f *testing.F) {
	f.Add(lockfile(`"": {"name":"r"}, "node_modules/a": {"version":"1.0.0","integrity":"` + sri + `"}`))
	f.Add(lockfile(`"node_modules/a": {"version":"1.0.0","integrity":"` + sri + `"}, "node_modules/a/node_modules/b": {"version":"1.0.0","integrity":"` + sri + `","dev":true}`))
	f.Add([]byte(`{"lockfileVersion":2,"packages":{"node_modules/@s/x":{"name":"y","version":"0.0.1-a","integrity":"` + sri + `"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cl, err := ClosureFromShrinkwrap(data)
		if err != nil {
			if cl != nil || !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("got %v with error %v", cl, err)
			}
			return
		}
		for _, p := range cl.Packages {
			if _, err := splitTreePath(p.Path); err != nil {
				t.Fatalf("accepted path %q: %v", p.Path, err)
			}
			if _, err := integrityHex(p.Integrity); err != nil || !validName(p.Name) {
				t.Fatalf("accepted %+v", p)
			}
		}
		// The closure is a value a lockfile records: it round-trips.
		b, err := json.Marshal(cl)
		if err != nil {
			t.Fatal(err)
		}
		var back Closure
		if err := json.Unmarshal(b, &back); err != nil || len(back.Packages) != len(cl.Packages) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
