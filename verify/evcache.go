package verify

import (
	"crypto/sha256"
	"encoding/json"
	"sort"
	"sync"

	"github.com/mcp-preflight/preflight/policy"
)

// verdictCache remembers successful evidence verifications within one
// Verifier. Verification is a pure function of the trusted material (fixed
// for the Verifier's life), the bundle bytes, the artifact digests and the
// expectations: certificate and timestamp validity are judged at signing
// time, not now. So a second launch of the same artifact need not repeat the
// signature checks; only successes are kept, and the key covers every
// input, so a changed bundle, digest, signer rule or predicate requirement
// is verified afresh. The cache is bounded and safe for concurrent use.
type verdictCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte][]policy.SignatureFacts
}

const maxCachedVerdicts = 256

func verdictKey(c EvidenceCheck) ([sha256.Size]byte, bool) {
	algs := make([]string, 0, len(c.Artifact))
	for a := range c.Artifact {
		algs = append(algs, a)
	}
	sort.Strings(algs)
	digests := make([][2]string, len(algs))
	for i, a := range algs {
		digests[i] = [2]string{a, c.Artifact[a]}
	}
	bundles := make([][sha256.Size]byte, len(c.Bundles))
	for i, b := range c.Bundles {
		bundles[i] = sha256.Sum256(b.JSON)
	}
	key, err := json.Marshal(struct {
		Digests        [][2]string
		Bundles        [][sha256.Size]byte
		Signers        []policy.Signer
		PredicateTypes []string
	}{digests, bundles, c.Signers, c.PredicateTypes})
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(key), true
}

// verify returns the cached facts for c or verifies it.
func (vc *verdictCache) verify(c EvidenceCheck) ([]policy.SignatureFacts, error) {
	key, ok := verdictKey(c)
	if ok {
		vc.mu.Lock()
		facts, hit := vc.entries[key]
		vc.mu.Unlock()
		if hit {
			return append([]policy.SignatureFacts(nil), facts...), nil
		}
	}
	facts, err := VerifyEvidence(c)
	if err != nil || !ok {
		return facts, err
	}
	vc.mu.Lock()
	if vc.entries == nil || len(vc.entries) >= maxCachedVerdicts {
		vc.entries = make(map[[sha256.Size]byte][]policy.SignatureFacts)
	}
	vc.entries[key] = append([]policy.SignatureFacts(nil), facts...)
	vc.mu.Unlock()
	return facts, nil
}
