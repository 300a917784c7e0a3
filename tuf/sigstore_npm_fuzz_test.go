package tuf_test

import (
	"errors"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/tuf"
)

// FuzzNPMAttestationKeys feeds arbitrary keys.json documents to
// NPMAttestationKeys: a document is either trusted material or an
// ErrMalformed, never a panic.
func FuzzNPMAttestationKeys(f *testing.F) {
	f.Add(tuf.EmbeddedNPMKeys())
	for _, seed := range []string{
		`{"keys":[]}`,
		`{"keys":[{"keyId":"k","keyUsage":"npm:attestations","publicKey":{"rawBytes":"AAAA","keyDetails":"PKIX_ECDSA_P256_SHA_256","validFor":{"start":"2023-01-01T00:00:00Z"}}}]}`,
		`{"keys":[{"keyId":"k","keyUsage":"npm:attestations","publicKey":{"rawBytes":"!!","keyDetails":"x","validFor":{"start":"yesterday","end":"2020-01-01T00:00:00Z"}}}]}`,
		`{"keys":null}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tm, err := tuf.NPMAttestationKeys(data)
		if err != nil {
			var pe *preflight.Error
			if tm != nil || !errors.As(err, &pe) || pe.Class != preflight.ErrMalformed {
				t.Fatalf("got %v, %v; want no material and ErrMalformed", tm, err)
			}
		}
	})
}
