// Package releasetest holds what the tests of the release and mcpb
// packages share: one virtual Sigstore per test binary, a publisher and an
// intruder identity, and a release.VerifyFunc bound to one allowed signer,
// as package verify binds it to a policy entry.
package releasetest

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/mcp-preflight/preflight/internal/release"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

var (
	kitOnce sync.Once
	kit     *verifytest.Sigstore
	kitErr  error
)

// Sigstore returns one virtual Sigstore for the whole test binary: making
// one costs a few key generations.
func Sigstore(t testing.TB) *verifytest.Sigstore {
	t.Helper()
	kitOnce.Do(func() { kit, kitErr = verifytest.NewSigstore() })
	if kitErr != nil {
		t.Fatal(kitErr)
	}
	return kit
}

// Publisher signs the releases the tests accept; Intruder signs the ones
// they must refuse.
var (
	Publisher = verifytest.GitHubActions("acme/weather", ".github/workflows/release.yml", "refs/tags/v1.4.0", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b")
	Intruder  = verifytest.GitHubActions("evil/weather", ".github/workflows/release.yml", "refs/tags/v1.4.0", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b")
)

// VerifyAs binds verify.VerifyEvidence to the kit's trusted root and one
// allowed signer.
func VerifyAs(t testing.TB, id verifytest.Identity) release.VerifyFunc {
	t.Helper()
	tm, err := Sigstore(t).TrustedMaterial()
	if err != nil {
		t.Fatal(err)
	}
	signers := []policy.Signer{{Issuer: id.Issuer, Subject: id.Subject}}
	return func(artifact map[string]string, bundles []release.Bundle) ([]policy.SignatureFacts, error) {
		vb := make([]verify.Bundle, len(bundles))
		for i, b := range bundles {
			vb[i] = verify.Bundle(b)
		}
		return verify.VerifyEvidence(verify.EvidenceCheck{Material: tm, Artifact: artifact, Bundles: vb, Signers: signers})
	}
}

// SHA256 is the lower-case hex SHA-256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
