package policy

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// schemaDefs names the $defs entry of each Go struct of the format.
var schemaDefs = map[reflect.Type]string{
	reflect.TypeFor[Trust]():            "trust",
	reflect.TypeFor[SigstoreTrust]():    "sigstore",
	reflect.TypeFor[Repository]():       "repository",
	reflect.TypeFor[Defaults]():         "defaults",
	reflect.TypeFor[Server]():           "server",
	reflect.TypeFor[Source]():           "source",
	reflect.TypeFor[TUFSource]():        "tufSource",
	reflect.TypeFor[FileSource]():       "fileSource",
	reflect.TypeFor[NPMSource]():        "npmSource",
	reflect.TypeFor[OCISource]():        "ociSource",
	reflect.TypeFor[URLSource]():        "urlSource",
	reflect.TypeFor[ServerJSONSource](): "serverJSONSource",
	reflect.TypeFor[Signer]():           "signer",
	reflect.TypeFor[Provenance]():       "provenance",
	reflect.TypeFor[SurfaceRules]():     "surfaceRules",
}

type schemaNode map[string]any

func loadSchema(t *testing.T) schemaNode {
	t.Helper()
	var s schemaNode
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSchemaMatchesGoTypes walks the Go types of the format and checks that
// every yaml field is a property of the matching schema object, with the
// matching JSON type, and that the schema has no property Go lacks.
func TestSchemaMatchesGoTypes(t *testing.T) {
	root := loadSchema(t)
	defs := root["$defs"].(map[string]any)
	resolve := func(n map[string]any) map[string]any {
		for i := 0; i < 8; i++ {
			ref, ok := n["$ref"].(string)
			if !ok {
				return n
			}
			n = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
		t.Fatal("reference loop")
		return nil
	}
	seen := map[reflect.Type]bool{}
	var checkStruct func(rt reflect.Type, obj map[string]any, where string)
	var checkType func(ft reflect.Type, prop map[string]any, where string)
	checkType = func(ft reflect.Type, prop map[string]any, where string) {
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			ref, _ := prop["$ref"].(string)
			if want := "#/$defs/" + schemaDefs[ft]; ref != want {
				t.Errorf("%s: $ref %q, want %q", where, ref, want)
				return
			}
			checkStruct(ft, resolve(prop), where)
			return
		}
		p := resolve(prop)
		want := map[reflect.Kind]string{reflect.String: "string", reflect.Int: "integer", reflect.Bool: "boolean", reflect.Slice: "array", reflect.Map: "object"}[ft.Kind()]
		if got, _ := p["type"].(string); got != want {
			t.Errorf("%s: schema type %q, Go type %s", where, got, ft)
			return
		}
		switch ft.Kind() {
		case reflect.Slice:
			checkType(ft.Elem(), p["items"].(map[string]any), where+"[]")
		case reflect.Map:
			ap, ok := p["additionalProperties"].(map[string]any)
			if !ok {
				t.Errorf("%s: map without additionalProperties schema", where)
				return
			}
			checkType(ft.Elem(), ap, where+"{}")
		}
	}
	checkStruct = func(rt reflect.Type, obj map[string]any, where string) {
		if seen[rt] {
			return
		}
		seen[rt] = true
		if obj["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false", where)
		}
		props, _ := obj["properties"].(map[string]any)
		fields := structFields(rt)
		var goNames, schemaNames []string
		for name := range fields {
			goNames = append(goNames, name)
		}
		for name := range props {
			schemaNames = append(schemaNames, name)
		}
		sort.Strings(goNames)
		sort.Strings(schemaNames)
		if !reflect.DeepEqual(goNames, schemaNames) {
			t.Errorf("%s: Go fields %q, schema properties %q", where, goNames, schemaNames)
		}
		for name, idx := range fields {
			if p, ok := props[name].(map[string]any); ok {
				checkType(rt.Field(idx).Type, p, where+"."+name)
			}
		}
	}
	checkStruct(reflect.TypeFor[Policy](), root, "policy")
	for rt, name := range schemaDefs {
		if !seen[rt] {
			t.Errorf("%s ($defs/%s) is not reachable from Policy", rt, name)
		}
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("policy.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func yamlToJSONValue(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAgreesWithParse validates example files against the schema:
// the valid ones pass both, and each invalid one fails both.
func TestSchemaAgreesWithParse(t *testing.T) {
	s := compileSchema(t)
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	for _, f := range files {
		if err := s.Validate(yamlToJSONValue(t, readFile(t, f))); err != nil {
			t.Errorf("%s: schema refuses a valid policy: %v", f, err)
		}
	}
	base := "version: 1\nservers:\n  w:\n    source: {file: {path: ./w}}\n    signers: [{issuer: https://accounts.google.com, subject: a@example.com}]\n"
	invalid := map[string]string{
		"unknown field":            base + "    colour: blue\n",
		"version 2":                strings.Replace(base, "version: 1", "version: 2", 1),
		"unknown mode":             base + "mode: strict\n",
		"two sources":              strings.Replace(base, "{file: {path: ./w}}", "{file: {path: ./w}, oci: {image: a}}", 1),
		"no source":                strings.Replace(base, "{file: {path: ./w}}", "{}", 1),
		"empty signer":             strings.Replace(base, "[{issuer: https://accounts.google.com, subject: a@example.com}]", "[{}]", 1),
		"issuer without subject":   strings.Replace(base, ", subject: a@example.com", "", 1),
		"unanchored pattern":       strings.Replace(base, "subject: a@example.com", "subject_pattern: 'a.*'", 1),
		"wrong type":               base + "    args: --verbose\n",
		"pin none without allow":   base + "    tools: {pin: none}\n",
		"http url":                 strings.Replace(base, "{file: {path: ./w}}", "{url: {url: \"http://example.com/w\"}}", 1),
		"bad digest":               strings.Replace(base, "{path: ./w}", "{path: ./w, digest: \"sha256:00\"}", 1),
		"no servers":               "version: 1\nservers: {}\n",
		"provenance unconstrained": base + "    provenance: {required: true}\n",
	}
	for name, doc := range invalid {
		t.Run(name, func(t *testing.T) {
			if err := s.Validate(yamlToJSONValue(t, []byte(doc))); err == nil {
				t.Error("schema accepts it")
			}
			if _, err := Parse("p.yaml", []byte(doc)); err == nil {
				t.Error("Parse accepts it")
			}
		})
	}
}
