package release_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/release"
)

// FuzzParseBundles feeds arbitrary bundle documents (a release host's
// .sigstore.json, a gh JSON Lines file, a GitHub API answer) to
// ParseBundles: it either returns bundles, each a JSON object with a
// mediaType, within the limits, or an ErrMalformed, and never panics.
func FuzzParseBundles(f *testing.F) {
	one := `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{},"messageSignature":{}}`
	for _, seed := range []string{
		one,
		one + "\n" + one + "\n",
		`{"bundle":` + one + `}`,
		`{"attestations":[{"bundle":` + one + `},{"bundle":` + one + `}]}`,
		`{"attestations":[]}`,
		`{"bundle":{"bundle":{}}}`,
		`[` + one + `]`,
		`{"mediaType":7}`,
		`{"mediaType":"x"} trailing`,
		"",
		"\n\n",
		`{"attestations":[{"bundle":null}]}`,
		strings.Repeat(`{"bundle":`, 40) + one + strings.Repeat(`}`, 40),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bundles, err := release.ParseBundles("fuzz.sigstore.json", data)
		if err != nil {
			if bundles != nil {
				t.Fatalf("bundles returned with the error %v", err)
			}
			var pe *preflight.Error
			if !errors.As(err, &pe) || pe.Class != preflight.ErrMalformed {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(bundles) == 0 || len(bundles) > release.MaxBundles {
			t.Fatalf("%d bundles without an error", len(bundles))
		}
		for _, b := range bundles {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(b.JSON, &obj); err != nil {
				t.Fatalf("bundle %s is not a JSON object: %v", b.Name, err)
			}
			if _, ok := obj["mediaType"]; !ok {
				t.Fatalf("bundle %s has no mediaType: %s", b.Name, b.JSON)
			}
		}
	})
}
