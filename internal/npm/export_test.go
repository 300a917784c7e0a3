package npm

import "testing"

// TraversalTarball is a tarball whose second entry climbs out of the
// package, for the external tests.
func TraversalTarball(t testing.TB) []byte {
	t.Helper()
	return buildTar(t,
		testEntry{name: "package/package.json", body: `{"name":"evil-mcp","version":"1.0.0","bin":"x.js"}`},
		testEntry{name: "package/x.js", body: "x"},
		testEntry{name: "package/../../../escaped", body: "pwned"})
}
