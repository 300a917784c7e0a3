package release

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/mcp-preflight/preflight"
)

// ParseBundles splits a bundle document into bundles: one Sigstore bundle,
// a {"bundle": ...} object, GitHub's {"attestations": [{"bundle": ...}]}
// answer, or a sequence of any of these (JSON Lines, as gh attestation
// download writes). Every bundle must carry a mediaType; the bundles'
// contents are left to the verifier. Failures are ErrMalformed.
func ParseBundles(name string, data []byte) ([]Bundle, error) {
	malformed := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "bundle " + name, Expected: expected, Found: found, Err: err,
			Hint: "pass a Sigstore bundle, a JSON Lines file of bundles, or GitHub's attestation answer"}
	}
	if len(data) > MaxBundleBytes {
		return nil, malformed(fmt.Sprintf("at most %d bytes", MaxBundleBytes), fmt.Sprintf("%d bytes", len(data)), nil)
	}
	var raws []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, malformed("JSON", "invalid JSON", err)
		}
		found, err := bundlesIn(v)
		if err != nil {
			return nil, malformed("a bundle, {\"bundle\": ...} or {\"attestations\": [...]}", err.Error(), nil)
		}
		raws = append(raws, found...)
		if len(raws) > MaxBundles {
			return nil, malformed(fmt.Sprintf("at most %d bundles", MaxBundles), "more", nil)
		}
	}
	if len(raws) == 0 {
		return nil, malformed("at least one bundle", "an empty document", nil)
	}
	out := make([]Bundle, len(raws))
	for i, r := range raws {
		n := name
		if len(raws) > 1 {
			n = fmt.Sprintf("%s#%d", name, i+1)
		}
		out[i] = Bundle{Name: n, JSON: bytes.Clone(r)}
	}
	return out, nil
}

// bundlesIn returns the bundles one JSON value holds.
func bundlesIn(v json.RawMessage) ([]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
		return nil, errors.New("a value that is not an object")
	}
	if _, ok := obj["mediaType"]; ok {
		return []json.RawMessage{v}, nil
	}
	if b, ok := obj["bundle"]; ok {
		inner, err := bundlesIn(b)
		if err != nil || len(inner) != 1 || !isBundle(inner[0]) {
			return nil, errors.New("a \"bundle\" member that is not a bundle")
		}
		return inner, nil
	}
	if a, ok := obj["attestations"]; ok {
		var list []json.RawMessage
		if err := json.Unmarshal(a, &list); err != nil {
			return nil, errors.New("an \"attestations\" member that is not a list")
		}
		var out []json.RawMessage
		for _, item := range list {
			inner, err := bundlesIn(item)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
		}
		return out, nil
	}
	return nil, errors.New("an object without mediaType, bundle or attestations")
}

func isBundle(v json.RawMessage) bool {
	var head struct {
		MediaType string `json:"mediaType"`
	}
	return json.Unmarshal(v, &head) == nil && head.MediaType != ""
}

// claimedDigests returns the artifact digests a bundle signs, before any
// verification: the message signature's digest, or the digests of the
// in-toto statement subject named like the asset (or of its only
// subject). The verifier then checks the signature over exactly these.
func claimedDigests(b Bundle, assetName string) (map[string]string, error) {
	malformed := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "bundle " + b.Name, Expected: expected, Found: found, Err: err}
	}
	var head struct {
		MessageSignature *struct {
			MessageDigest struct {
				Algorithm string `json:"algorithm"`
				Digest    []byte `json:"digest"`
			} `json:"messageDigest"`
		} `json:"messageSignature"`
		DSSEEnvelope *struct {
			Payload     []byte `json:"payload"`
			PayloadType string `json:"payloadType"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(b.JSON, &head); err != nil {
		return nil, malformed("Sigstore bundle JSON", "invalid JSON", err)
	}
	algs := map[string]string{"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}
	sizes := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64}
	switch {
	case head.MessageSignature != nil:
		md := head.MessageSignature.MessageDigest
		alg, ok := algs[md.Algorithm]
		if !ok || len(md.Digest) != sizes[alg] {
			return nil, malformed("a SHA-2 message digest", fmt.Sprintf("%q of %d bytes", md.Algorithm, len(md.Digest)), nil)
		}
		return map[string]string{alg: hex.EncodeToString(md.Digest)}, nil
	case head.DSSEEnvelope != nil:
		var st struct {
			Subject []struct {
				Name   string            `json:"name"`
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
		}
		if err := json.Unmarshal(head.DSSEEnvelope.Payload, &st); err != nil {
			return nil, malformed("an in-toto statement", "invalid JSON", err)
		}
		pick := -1
		for i, s := range st.Subject {
			if path.Base(s.Name) == assetName {
				pick = i
				break
			}
		}
		if pick < 0 && len(st.Subject) == 1 {
			pick = 0
		}
		if pick < 0 {
			names := make([]string, 0, len(st.Subject))
			for _, s := range st.Subject {
				names = append(names, s.Name)
			}
			if len(names) > 5 {
				names = append(names[:5], fmt.Sprintf("and %d more", len(names)-5))
			}
			return nil, &preflight.Error{Class: preflight.ErrTampered, Subject: "bundle " + b.Name, Expected: "a statement subject named " + assetName,
				Found: orNone(strings.Join(names, ", ")), Hint: "the attestation is about other artifacts; pin the digest or fetch the attestation made for this file"}
		}
		out := map[string]string{}
		for alg, d := range st.Subject[pick].Digest {
			if n, ok := sizes[alg]; ok && validHex(strings.ToLower(d), n) {
				out[alg] = strings.ToLower(d)
			}
		}
		if len(out) == 0 {
			return nil, malformed("a sha256, sha384 or sha512 subject digest", "none", nil)
		}
		return out, nil
	}
	return nil, malformed("a message signature or DSSE envelope", "neither", nil)
}
