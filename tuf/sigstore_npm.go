package tuf

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/mcp-preflight/preflight"
)

// NPMAttestationKeys turns the npm registry's keys.json (EmbeddedNPMKeys, or
// the registry.npmjs.org/keys.json target of Sigstore's TUF repository) into
// trusted material that knows the keys used for "npm:attestations" under
// their key IDs, each only within its validity window. Combine it with the
// Sigstore trusted root in a root.TrustedMaterialCollection: a bundle signed
// by a pinned key is then also refused when it was logged outside the key's
// window (npm's first key signs nothing made after 2025-01-29).
func NPMAttestationKeys(keysJSON []byte) (root.TrustedMaterial, error) {
	tm, _, err := sigNPMKeys(keysJSON)
	return tm, err
}

// NPMAttestationKeyPEMs returns the PEM public keys keys.json lists for
// "npm:attestations", so a policy signer can name "the npm registry" and be
// expanded into the keys it currently uses.
func NPMAttestationKeyPEMs(keysJSON []byte) ([]string, error) {
	_, pems, err := sigNPMKeys(keysJSON)
	return pems, err
}

func sigNPMKeys(keysJSON []byte) (root.TrustedMaterial, []string, error) {
	bad := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm keys.json", Expected: expected, Found: found, Err: err}
	}
	var doc struct {
		Keys []struct {
			KeyID     string `json:"keyId"`
			KeyUsage  string `json:"keyUsage"`
			PublicKey struct {
				RawBytes   []byte `json:"rawBytes"`
				KeyDetails string `json:"keyDetails"`
				ValidFor   struct {
					Start time.Time `json:"start"`
					End   time.Time `json:"end"`
				} `json:"validFor"`
			} `json:"publicKey"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(keysJSON, &doc); err != nil {
		return nil, nil, bad("npm's keys.json", "invalid JSON", err)
	}
	keys := map[string]*root.ExpiringKey{}
	var pems []string
	for _, k := range doc.Keys {
		if k.KeyUsage != "npm:attestations" {
			continue
		}
		if k.PublicKey.KeyDetails != "PKIX_ECDSA_P256_SHA_256" {
			return nil, nil, bad("keys of type PKIX_ECDSA_P256_SHA_256", k.PublicKey.KeyDetails, nil)
		}
		pemKey := cryptoutils.PEMEncode(cryptoutils.PublicKeyPEMType, k.PublicKey.RawBytes)
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
		if err != nil {
			return nil, nil, bad("a DER public key for "+k.KeyID, "an unreadable key", err)
		}
		v, err := signature.LoadDefaultVerifier(pub)
		if err != nil {
			return nil, nil, bad("an ECDSA P-256 key for "+k.KeyID, fmt.Sprintf("%T", pub), err)
		}
		keys[k.KeyID] = root.NewExpiringKey(v, k.PublicKey.ValidFor.Start, k.PublicKey.ValidFor.End)
		pems = append(pems, string(pemKey))
	}
	if len(keys) == 0 {
		return nil, nil, bad("at least one npm:attestations key", "none", nil)
	}
	return root.NewTrustedPublicKeyMaterialFromMapping(keys), pems, nil
}
