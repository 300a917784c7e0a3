package policy

import _ "embed"

//go:embed schema.json
var schema []byte

// Schema returns the JSON Schema (draft 2020-12) of the policy format. The
// schema describes structure and simple value rules; Parse applies the
// cross-field rules as well (a repository a source names must exist, a
// pattern must compile, and so on). The returned slice is a copy.
func Schema() []byte { return append([]byte(nil), schema...) }
