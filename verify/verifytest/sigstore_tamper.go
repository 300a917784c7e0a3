package verifytest

import (
	"bytes"
	"errors"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"

	preflight "github.com/mcp-preflight/preflight"
)

// The tamper helpers model an attacker who rewrites a bundle in transit. They
// parse bundle JSON leniently (no Sigstore validation, so they also work on
// bundles that are already invalid), change one thing, and write it back.
// Input that is not bundle JSON is an error of class preflight.ErrMalformed.

// TamperSignature flips one bit of the bundle's signature: the message
// signature, or the first DSSE signature. Everything else stays as it was,
// so the transparency-log entry and timestamp no longer match either.
func TamperSignature(bundleJSON []byte) ([]byte, error) {
	return ssTamper(bundleJSON, func(b *protobundle.Bundle) error {
		var sig []byte
		switch c := b.GetContent().(type) {
		case *protobundle.Bundle_MessageSignature:
			sig = c.MessageSignature.GetSignature()
		case *protobundle.Bundle_DsseEnvelope:
			if sigs := c.DsseEnvelope.GetSignatures(); len(sigs) > 0 {
				sig = sigs[0].GetSig()
			}
		}
		if len(sig) == 0 {
			return errors.New("bundle has no signature")
		}
		sig[len(sig)-1] ^= 1
		return nil
	})
}

// TamperPayload replaces the payload of the bundle's DSSE envelope with
// payload and keeps the signature: a swapped statement (for example a
// provenance claiming another source repository) under a genuine signature.
func TamperPayload(bundleJSON, payload []byte) ([]byte, error) {
	return ssTamper(bundleJSON, func(b *protobundle.Bundle) error {
		env := b.GetDsseEnvelope()
		if env == nil {
			return errors.New("bundle has no DSSE envelope")
		}
		env.Payload = bytes.Clone(payload)
		return nil
	})
}

func ssTamper(bundleJSON []byte, change func(*protobundle.Bundle) error) ([]byte, error) {
	var b protobundle.Bundle
	if err := protojson.Unmarshal(bundleJSON, &b); err != nil {
		return nil, ssMalformed(err)
	}
	if err := change(&b); err != nil {
		return nil, ssMalformed(err)
	}
	out, err := protojson.Marshal(&b)
	if err != nil {
		return nil, ssMalformed(err)
	}
	return out, nil
}

func ssMalformed(err error) error {
	return &preflight.Error{Class: preflight.ErrMalformed, Subject: "verifytest: bundle", Err: err}
}
