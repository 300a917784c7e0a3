// Package canonical computes the digests that pin what a model sees of an MCP
// server: the canonical form of each tool, prompt and resource definition and
// of the server instructions.
//
// # Canonical form
//
// A definition is reduced to the fields a model sees (see Fields), every other
// member (for example _meta or icons) is dropped, and the result is serialised
// with the JSON Canonicalization Scheme of RFC 8785: object members sorted by
// their UTF-16 code units, no insignificant white space, numbers in their
// shortest ECMAScript form, strings with minimal escaping. The digest is
// "sha256:" followed by the lower-case hex SHA-256 of those bytes. A member
// present with the value null is treated as absent, so a server that starts
// sending "title": null has not changed its surface.
//
// Instructions are a plain string; their canonical form is that of the
// object {"instructions": STRING}, so the same rules apply to escapes.
package canonical

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"

	"github.com/mcp-preflight/preflight"
)

// Kind names the sort of definition being digested.
type Kind string

// The kinds of definition that make up a server's surface.
const (
	Tool         Kind = "tool"
	Prompt       Kind = "prompt"
	Resource     Kind = "resource"
	Instructions Kind = "instructions"
)

// MaxDefinitionBytes bounds one definition. Larger input is refused with
// preflight.ErrMalformed before it is parsed.
const MaxDefinitionBytes = 1 << 20

// Fields lists, per kind, the members that are part of the canonical form.
var Fields = map[Kind][]string{
	Tool:     {"name", "title", "description", "inputSchema", "outputSchema", "annotations"},
	Prompt:   {"name", "title", "description", "arguments"},
	Resource: {"uri", "uriTemplate", "name", "title", "description", "mimeType", "annotations"},
}

// Form returns the canonical bytes of one definition of the given kind.
// For Instructions, raw is a JSON string.
func Form(kind Kind, raw json.RawMessage) ([]byte, error) {
	if len(raw) > MaxDefinitionBytes {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: string(kind) + " definition",
			Expected: fmt.Sprintf("at most %d bytes", MaxDefinitionBytes), Found: fmt.Sprintf("%d bytes", len(raw))}
	}
	var reduced any
	if kind == Instructions {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, malformed(kind, err)
		}
		reduced = map[string]string{"instructions": s}
	} else {
		fields, ok := Fields[kind]
		if !ok {
			return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "canonical form", Expected: "tool, prompt, resource or instructions", Found: string(kind)}
		}
		// encoding/json bounds nesting depth, so hostile input cannot
		// exhaust the stack in the canonicaliser below.
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, malformed(kind, err)
		}
		if members == nil {
			return nil, malformed(kind, fmt.Errorf("definition is null"))
		}
		kept := make(map[string]json.RawMessage, len(fields))
		for _, f := range fields {
			if v, ok := members[f]; ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				kept[f] = v
			}
		}
		reduced = kept
	}
	b, err := json.Marshal(reduced)
	if err != nil {
		return nil, malformed(kind, err)
	}
	out, err := jsoncanonicalizer.Transform(b)
	if err != nil {
		return nil, malformed(kind, err)
	}
	return out, nil
}

// Digest returns "sha256:<hex>" of the canonical form of one definition.
func Digest(kind Kind, raw json.RawMessage) (string, error) {
	form, err := Form(kind, raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(form)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// InstructionsDigest returns the digest of server instructions given as a Go string.
func InstructionsDigest(s string) string {
	b, _ := json.Marshal(s) // a Go string always marshals
	d, err := Digest(Instructions, b)
	if err != nil {
		panic("canonical: a marshalled string failed to canonicalise: " + err.Error())
	}
	return d
}

func malformed(kind Kind, err error) error {
	return &preflight.Error{Class: preflight.ErrMalformed, Subject: string(kind) + " definition", Err: err,
		Hint: "the server sent a definition that is not a JSON object of the MCP schema"}
}
