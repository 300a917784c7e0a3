package canonical

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
)

func TestFormKeepsOnlyModelVisibleFields(t *testing.T) {
	raw := `{"name":"echo","_meta":{"x":1},"icons":[],"description":"Echo \u00e9","inputSchema":{"type":"object","properties":{"b":{"type":"number","default":1.50},"a":{"type":"string"}}},"title":null}`
	got, err := Form(Tool, json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"description":"Echo é","inputSchema":{"properties":{"a":{"type":"string"},"b":{"default":1.5,"type":"number"}},"type":"object"},"name":"echo"}`
	if string(got) != want {
		t.Fatalf("canonical form:\n got %s\nwant %s", got, want)
	}
}

func TestDigestStableAcrossEncodings(t *testing.T) {
	a := `{"name":"x","description":"d","inputSchema":{"type":"object"}}`
	b := "{ \"inputSchema\" : {\"type\":\"object\"},\n\"description\":\"\\u0064\", \"name\":\"x\", \"_meta\": {\"ignored\": true}}"
	da, err := Digest(Tool, json.RawMessage(a))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Digest(Tool, json.RawMessage(b))
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Fatalf("equivalent definitions digest differently: %s vs %s", da, db)
	}
	dc, err := Digest(Tool, json.RawMessage(`{"name":"x","description":"d!","inputSchema":{"type":"object"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if dc == da {
		t.Fatal("a changed description did not change the digest")
	}
	if !strings.HasPrefix(da, "sha256:") || len(da) != len("sha256:")+64 {
		t.Fatalf("digest format: %q", da)
	}
}

func TestFormRejects(t *testing.T) {
	cases := map[string]struct {
		kind Kind
		raw  string
		want error
	}{
		"not json":      {Tool, `{"name":`, preflight.ErrMalformed},
		"array":         {Tool, `[1]`, preflight.ErrMalformed},
		"null":          {Tool, `null`, preflight.ErrMalformed},
		"deep":          {Tool, `{"inputSchema":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, preflight.ErrMalformed},
		"huge":          {Tool, `{"description":"` + strings.Repeat("a", MaxDefinitionBytes) + `"}`, preflight.ErrMalformed},
		"unknown kind":  {Kind("widget"), `{}`, preflight.ErrConfig},
		"instr non-str": {Instructions, `{}`, preflight.ErrMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Form(c.kind, json.RawMessage(c.raw))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want class %v", err, c.want)
			}
		})
	}
}

func TestInstructionsDigest(t *testing.T) {
	if InstructionsDigest("a") == InstructionsDigest("b") {
		t.Fatal("different instructions share a digest")
	}
	d, err := Digest(Instructions, json.RawMessage(`"a"`))
	if err != nil || d != InstructionsDigest("a") {
		t.Fatalf("string and raw forms differ: %v %v", d, err)
	}
}

func FuzzDigest(f *testing.F) {
	f.Add(`{"name":"echo","description":"x","inputSchema":{"type":"object"}}`)
	f.Add(`{"name":"a","annotations":{"readOnlyHint":true},"outputSchema":{}}`)
	f.Add(`{"uri":"file:///a","name":"a"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, k := range []Kind{Tool, Prompt, Resource, Instructions} {
			form, err := Form(k, json.RawMessage(raw))
			if err != nil {
				if !errors.Is(err, preflight.ErrMalformed) {
					t.Fatalf("unexpected class: %v", err)
				}
				continue
			}
			if k == Instructions {
				continue
			}
			// The canonical form of a definition is a fixed point.
			again, err := Form(k, form)
			if err != nil || string(again) != string(form) {
				t.Fatalf("canonical form is not stable: %s -> %s (%v)", form, again, err)
			}
		}
	})
}
