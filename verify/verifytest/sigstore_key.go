package verifytest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
)

// KeySigner signs with a plain key (no certificate), like the npm registry's publish key.
// It holds an ECDSA P-256 key, so its signatures use SHA-256.
// Safe for concurrent use.
type KeySigner struct {
	key   *ecdsa.PrivateKey
	keyID string
	pem   []byte
}

// NewKeySigner creates a key signer with a fresh key.
func NewKeySigner() (*KeySigner, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("verifytest: key signer: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("verifytest: key signer: %w", err)
	}
	sum := sha256.Sum256(der)
	return &KeySigner{
		key: key,
		// The npm registry's key ID format.
		keyID: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]),
		pem:   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	}, nil
}

// PublicKeyPEM is the public key as a PEM "PUBLIC KEY" block (DER SubjectPublicKeyInfo).
func (k *KeySigner) PublicKeyPEM() []byte { return bytes.Clone(k.pem) }

// PublicKey is the public key.
func (k *KeySigner) PublicKey() crypto.PublicKey { return k.key.Public() }

// KeyID is the hint placed in the bundle ("SHA256:" and the unpadded
// base64 SHA-256 of the DER public key, as the npm registry names its keys).
func (k *KeySigner) KeyID() string { return k.keyID }

// TrustedMaterial is trusted material that knows only this key, under its
// KeyID and without a validity limit. Combine it with the Sigstore's in a
// root.TrustedMaterialCollection to verify key-signed bundles.
func (k *KeySigner) TrustedMaterial() (root.TrustedMaterial, error) {
	v, err := signature.LoadECDSAVerifier(&k.key.PublicKey, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("verifytest: key verifier: %w", err)
	}
	return root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{
		// Zero times: an open validity window.
		k.keyID: root.NewExpiringKey(v, time.Time{}, time.Time{}),
	}), nil
}

// AttestWithKey is Attest with a plain key instead of a Fulcio certificate:
// the bundle names the key by its hint, and the transparency-log entry comes
// from the virtual Rekor of s, so the bundle verifies with s's trusted
// material plus the key. Certificate options (CertificateLifetime) do not apply.
func (s *Sigstore) AttestWithKey(k *KeySigner, statement []byte, opts SignOptions) ([]byte, error) {
	p, err := s.ssKeyPlan(k, opts, true)
	if err != nil {
		return nil, err
	}
	return s.ssSign(ssSigner{key: k.key, hint: k.keyID}, ssEnvelope(statement), p)
}

// SignBlobWithKey is SignBlob with a plain key; see AttestWithKey.
func (s *Sigstore) SignBlobWithKey(k *KeySigner, artifact []byte, opts SignOptions) ([]byte, error) {
	p, err := s.ssKeyPlan(k, opts, false)
	if err != nil {
		return nil, err
	}
	return s.ssSign(ssSigner{key: k.key, hint: k.keyID}, ssBlob(artifact), p)
}

func (s *Sigstore) ssKeyPlan(k *KeySigner, opts SignOptions, dsseContent bool) (ssPlan, error) {
	if k == nil {
		return ssPlan{}, ssConfigError("KeySigner", "a key signer", "nil")
	}
	p, err := s.ssPlan(opts, dsseContent)
	if err != nil {
		return p, err
	}
	if p.hash != crypto.SHA256 {
		return p, ssConfigError("SignOptions.DigestAlgorithm", "SHA256 for a P-256 key signer", p.hash.String())
	}
	return p, nil
}
