package npm

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mcp-preflight/preflight"
)

func TestRangeContains(t *testing.T) {
	tests := []struct {
		rng string
		in  []string
		out []string
	}{
		{"1.2.3", []string{"1.2.3"}, []string{"1.2.4", "1.2.3-beta"}},
		{">= 2.1.2 < 3.0.0", []string{"2.1.2", "2.9.0"}, []string{"2.1.1", "3.0.0"}}, // safer-buffer's range: space after operators
		{"^ 2.1.0", []string{"2.1.0", "2.5.0"}, []string{"3.0.0", "2.0.9"}},
		{"~ 2.1.0", []string{"2.1.0", "2.1.9"}, []string{"2.2.0"}},
		{"=v1.2.3", []string{"1.2.3"}, []string{"1.2.2"}},
		{"^1.2.3", []string{"1.2.3", "1.9.0"}, []string{"1.2.2", "2.0.0", "2.0.0-0", "1.3.0-beta"}},
		{"^0.2.3", []string{"0.2.3", "0.2.9"}, []string{"0.3.0", "0.2.2"}},
		{"^0.0.3", []string{"0.0.3"}, []string{"0.0.4"}},
		{"^1.2.3-beta.2", []string{"1.2.3-beta.2", "1.2.3-beta.10", "1.2.3", "1.5.0"}, []string{"1.2.3-beta.1", "1.2.4-beta.3", "2.0.0"}},
		{"^1.x", []string{"1.0.0", "1.9.9"}, []string{"2.0.0", "0.9.0"}},
		{"^0.x", []string{"0.0.1", "0.9.0"}, []string{"1.0.0"}},
		{"~1.2.3", []string{"1.2.3", "1.2.9"}, []string{"1.3.0", "1.2.2"}},
		{"~1.2", []string{"1.2.0", "1.2.9"}, []string{"1.3.0"}},
		{"~1", []string{"1.0.0", "1.9.0"}, []string{"2.0.0"}},
		{"1.x", []string{"1.0.0", "1.99.0"}, []string{"2.0.0", "0.1.0"}},
		{"1.2.x", []string{"1.2.0", "1.2.7"}, []string{"1.3.0"}},
		{"1.x.3", []string{"1.0.0", "1.9.0"}, []string{"2.0.0"}}, // node-semver ignores what follows a wildcard
		{"1", []string{"1.0.0", "1.4.2"}, []string{"2.0.0"}},
		{"*", []string{"0.0.0", "9.9.9"}, []string{"1.0.0-rc.1"}},
		{"", []string{"0.1.0"}, []string{"1.0.0-rc.1"}},
		{">=1.2.3 <2.0.0", []string{"1.2.3", "1.99.99"}, []string{"2.0.0", "1.2.2"}},
		{">1.2.3", []string{"1.2.4"}, []string{"1.2.3"}},
		{">1.2", []string{"1.3.0"}, []string{"1.2.9"}},
		{"<=1.2", []string{"1.2.9", "0.1.0"}, []string{"1.3.0"}},
		{"<1.2.3", []string{"1.2.2"}, []string{"1.2.3", "1.2.3-beta"}},
		{"1.2.3 - 2.3.4", []string{"1.2.3", "2.3.4"}, []string{"2.3.5", "1.2.2"}},
		{"1.2 - 2.3", []string{"1.2.0", "2.3.9"}, []string{"2.4.0"}},
		{"^1.0.0 || ^3.0.0", []string{"1.5.0", "3.1.0"}, []string{"2.0.0", "4.0.0"}},
	}
	for _, tt := range tests {
		r, err := parseRange(tt.rng)
		if err != nil {
			t.Errorf("parseRange(%q): %v", tt.rng, err)
			continue
		}
		for _, v := range tt.in {
			if sv, ok := parseSemver(v); !ok || !r.contains(sv) {
				t.Errorf("%q should contain %s", tt.rng, v)
			}
		}
		for _, v := range tt.out {
			if sv, ok := parseSemver(v); !ok || r.contains(sv) {
				t.Errorf("%q should not contain %s", tt.rng, v)
			}
		}
	}
}

func TestRangeRefusals(t *testing.T) {
	for _, s := range []string{"^1.2.3.4", "01.2.3", ">>1", "=>1.0.0", "~>1.0", "1.2.3-", "^a"} {
		if _, err := parseRange(s); err == nil {
			t.Errorf("parseRange(%q) succeeded", s)
		}
	}
}

func TestSemverOrder(t *testing.T) {
	order := []string{"1.0.0-0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"}
	for i := 1; i < len(order); i++ {
		a, _ := parseSemver(order[i-1])
		b, ok := parseSemver(order[i])
		if !ok || a.compare(b) >= 0 || b.compare(a) <= 0 {
			t.Errorf("%s should sort before %s", order[i-1], order[i])
		}
	}
	for _, bad := range []string{"1.0", "1.0.0.0", "v1.0.0", "1.0.0-01", "1.0.0+", "1.0.0-a..b", "-1.0.0"} {
		if _, ok := parseSemver(bad); ok {
			t.Errorf("parseSemver(%q) accepted", bad)
		}
	}
}

func TestPick(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]json.RawMessage{}
	for _, v := range []string{"1.0.0", "1.4.0", "1.5.0-beta.1", "2.0.0", "3.0.0-rc.1"} {
		versions[v] = json.RawMessage(`{"name":"p","version":"` + v + `","dist":{"integrity":"sha512-` + zeroSRI + `"}}`)
	}
	p := &packument{Name: "p", DistTags: map[string]string{"latest": "2.0.0", "next": "3.0.0-rc.1"}, Versions: versions}
	for spec, want := range map[string]string{
		"": "2.0.0", "latest": "2.0.0", "next": "3.0.0-rc.1", "1.0.0": "1.0.0",
		"^1.0.0": "1.4.0", "*": "2.0.0", ">=1.0.0": "2.0.0", "^1.5.0-beta.0": "1.5.0-beta.1",
	} {
		v, err := c.pick(p, spec)
		if err != nil || v.Version != want {
			t.Errorf("pick(%q) = %v, %v; want %s", spec, v, err, want)
		}
	}
	if _, err := c.pick(p, "^4"); !errors.Is(err, preflight.ErrNotFound) {
		t.Errorf("pick(^4) = %v, want ErrNotFound", err)
	}
	if _, err := c.pick(p, "git+https://x"); !errors.Is(err, preflight.ErrMalformed) {
		t.Errorf("pick(git URL) = %v, want ErrMalformed", err)
	}
	p.Versions["0.9.0"] = json.RawMessage(`{"name":"p","version":"0.9.0","dist":{"shasum":"abc"}}`)
	if _, err := c.pick(p, "0.9.0"); !errors.Is(err, preflight.ErrMalformed) {
		t.Errorf("a version without sha512 integrity: %v, want ErrMalformed", err)
	}
}

// zeroSRI is the base64 of 64 zero bytes.
const zeroSRI = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
