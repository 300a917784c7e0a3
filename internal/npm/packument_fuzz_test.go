package npm

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mcp-preflight/preflight"
)

// FuzzParseVersion feeds arbitrary version manifests from a packument (the
// registry's untrusted JSON) to parseVersion: the result is either
// ErrMalformed or a version whose integrity is a SHA-512 and whose bin
// paths stay inside the package.
func FuzzParseVersion(f *testing.F) {
	integrity := "sha512-" + "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
	for _, seed := range []string{
		`{"name":"w","version":"1.0.0","dist":{"integrity":"` + integrity + `","tarball":"https://r/w/-/w-1.0.0.tgz"}}`,
		`{"name":"w","version":"1.0.0","bin":"bin/x.js","dependencies":{"a":"^1.0.0"},"dist":{"integrity":"sha1-abc ` + integrity + `"}}`,
		`{"name":"w","version":"1.0.0","bin":{"x":"../../etc/passwd"},"dist":{"integrity":"` + integrity + `"}}`,
		`{"name":"w","version":"1.0.0","bundleDependencies":true,"dependencies":{"a":"1"},"dist":{"integrity":"` + integrity + `"}}`,
		`{"name":"w","version":"1.0.0","peerDependencies":{"p":">=2"},"peerDependenciesMeta":{"p":{"optional":true}},"dist":{"integrity":"` + integrity + `"}}`,
		`{"name":"w","version":"1.0.0","dist":{"shasum":"da39a3ee5e6b4b0d3255bfef95601890afd80709"}}`,
		`{"name":"w","version":"01.0.0","dist":{"integrity":"` + integrity + `"}}`,
		`{"name":"w","version":"1.0.0","dist":{"integrity":"sha512-!!"},"dist":{}}`,
		`[]`,
	} {
		f.Add("w", "1.0.0", []byte(seed))
	}
	c := &Client{}
	f.Fuzz(func(t *testing.T, name, version string, raw []byte) {
		v, err := c.parseVersion(name, version, json.RawMessage(raw))
		if err != nil {
			var pe *preflight.Error
			if v != nil || !errors.As(err, &pe) || pe.Class != preflight.ErrMalformed {
				t.Fatalf("got %v, %v; want no version and ErrMalformed", v, err)
			}
			return
		}
		if v.Name != name || v.Version != version {
			t.Fatalf("parsed %s@%s from the manifest of %s@%s", v.Name, v.Version, name, version)
		}
		if _, err := v.SHA512(); err != nil {
			t.Fatalf("accepted version without a usable sha512 integrity %q: %v", v.Integrity, err)
		}
		for cmd, p := range v.Bin {
			if clean, ok := cleanRel(p); !ok || clean != p {
				t.Fatalf("bin %s = %q is not a clean relative path", cmd, p)
			}
		}
	})
}

// FuzzSemverRange checks the node-semver subset on arbitrary versions and
// ranges: parsing is total (no panic), a parsed version prints back to
// the same version.
func FuzzSemverRange(f *testing.F) {
	for _, seed := range [][2]string{
		{"1.2.3", "^1.0.0"}, {"1.2.3-beta.1", "~1.2.3-beta"}, {"0.0.1", "^0.0.1"},
		{"2.0.0", ">=1.0.0 <2.0.0 || 2.x"}, {"1.0.0", "1.0.0 - 2.0.0"}, {"1.0.0", "*"},
		{"18446744073709551615.0.0", ">18446744073709551614.x"}, {"1.0.0-0", "<1.0.0"},
		{"v1.0.0", "=v1.0.0"}, {"1.0.0+build", "1"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, version, rng string) {
		v, ok := parseSemver(version)
		if ok {
			w, ok2 := parseSemver(v.String())
			if !ok2 || w.compare(v) != 0 || v.compare(w) != 0 {
				t.Fatalf("%q printed as %q does not parse back to the same version", version, v.String())
			}
		}
		r, err := parseRange(rng)
		if err != nil || !ok {
			return
		}
		r.contains(v) // must not panic
	})
}
