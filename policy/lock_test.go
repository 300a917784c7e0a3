package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/canonical"
)

func testLock(t *testing.T) *Lock {
	t.Helper()
	f := goodFacts()
	f.Signatures = append(f.Signatures, SignatureFacts{Kind: "message-signature", KeyID: mustKeyID(testKeyPEM)})
	tool := json.RawMessage(`{"name":"get_weather","description":"Weather <now> & later","inputSchema":{"type":"object"}}`)
	parts, err := SurfaceParts(KindTool, tool)
	if err != nil {
		t.Fatal(err)
	}
	d, err := canonical.Digest(canonical.Tool, tool)
	if err != nil {
		t.Fatal(err)
	}
	f.Surface = &SurfaceFacts{Instructions: canonical.InstructionsDigest("be nice"), Tools: map[string]string{"get_weather": d},
		ToolParts: map[string]PartDigests{"get_weather": parts}, Resources: map[string]string{"file:///docs/a.md": dg("a")}}
	return &Lock{Version: 1, Servers: map[string]*LockEntry{"weather": EntryFromFacts(f)}}
}

func TestLockGoldenAndRoundTrip(t *testing.T) {
	l := testLock(t)
	out, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/preflight.lock.golden"
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := readFile(t, golden); !bytes.Equal(out, want) {
		t.Fatalf("lockfile differs from %s (run go test -update):\n%s", golden, out)
	}
	if !bytes.HasSuffix(out, []byte("}\n")) || !bytes.Contains(out, []byte("\n  \"servers\"")) || bytes.Contains(out, []byte(`\u003c`)) {
		t.Errorf("not two-space indented with a trailing newline and no HTML escapes:\n%s", out)
	}
	back, err := ParseLock(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, l) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back.Servers["weather"], l.Servers["weather"])
	}
	again, _ := back.Marshal()
	if !bytes.Equal(again, out) {
		t.Error("Marshal is not stable")
	}
	e := back.Servers["weather"]
	if e.Signer == nil || e.Signer.RunInvocationURI != "" || e.SourceCommit != "c0ffee" || e.SignerKeyID == "" {
		t.Errorf("entry %+v", e)
	}
}

func TestParseLockRejects(t *testing.T) {
	good := `{"version":1,"servers":{"w":{"version":"1.0.0","digests":{"sha256":"` + artifactSHA + `"}}}}`
	if _, err := ParseLock([]byte(good)); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"unknown field":     strings.Replace(good, `"version":"1.0.0"`, `"version":"1.0.0","extra":1`, 1),
		"duplicate key":     strings.Replace(good, `"version":"1.0.0"`, `"version":"1.0.0","version":"2.0.0"`, 1),
		"version 2":         strings.Replace(good, `{"version":1`, `{"version":2`, 1),
		"no servers":        `{"version":1}`,
		"bad digest":        strings.Replace(good, artifactSHA, "xyz", 1),
		"bad tool digest":   strings.Replace(good, `"version":"1.0.0"`, `"tools":{"a":"md5:00"}`, 1),
		"bad name":          strings.Replace(good, `"w"`, `"w w"`, 1),
		"null entry":        `{"version":1,"servers":{"w":null}}`,
		"trailing data":     good + `{}`,
		"not json":          `version: 1`,
		"empty":             ``,
		"too deep":          strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1),
		"too big":           good + strings.Repeat(" ", MaxLockBytes),
		"wrong type":        `{"version":"1","servers":{}}`,
		"unknown top-level": `{"version":1,"servers":{},"generated":"now"}`,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseLock([]byte(data))
			var pe *preflight.Error
			if !errors.Is(err, preflight.ErrMalformed) || !errors.As(err, &pe) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDrift(t *testing.T) {
	base := func() *LockEntry {
		return &LockEntry{Version: "1.0.0", Source: "npm", Digests: map[string]string{"sha512": "aa"},
			Signer: goodCert(), SignerKeyID: "k1", SourceCommit: "c1", Instructions: dg("i"),
			Tools:     map[string]string{"a": dg("a"), "b": dg("b"), "c": dg("c")},
			ToolParts: map[string]PartDigests{"a": {"description": dg("ad"), "inputSchema": dg("as")}, "b": {"description": dg("bd"), "title": dg("bt")}},
			Prompts:   map[string]string{"p": dg("p")},
		}
	}
	cur := base()
	cur.Version, cur.Source = "1.0.1", "oci"
	cur.Digests = map[string]string{"sha512": "bb"}
	cur.Signer = &CertificateFacts{Issuer: ghIssuer, Subject: "other"}
	cur.SignerKeyID, cur.SourceCommit, cur.Instructions = "k2", "c2", dg("j")
	cur.Tools = map[string]string{"a": dg("a2"), "b": dg("b2"), "c": dg("c2"), "d": dg("d")}
	cur.ToolParts = map[string]PartDigests{"a": {"description": dg("ad2"), "inputSchema": dg("as2")}, "b": {"description": dg("bd"), "title": dg("bt2")}}
	cur.Prompts = map[string]string{}
	var kinds []string
	for _, it := range Drift(base(), cur) {
		kinds = append(kinds, string(it.Kind)+" "+it.Subject)
	}
	want := []string{"artifact.digest artifact", "version artifact", "source artifact", "signer signer", "signer signer key",
		"source.commit source", "instructions.changed instructions", "tool.description a", "tool.schema a", "tool.changed b",
		"tool.changed c", "tool.added d", "prompt.removed p"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("drift\n got %q\nwant %q", kinds, want)
	}
	if d := Drift(base(), base()); d != nil {
		t.Errorf("no drift expected: %v", d)
	}
	// A current entry without an observed surface compares no surface.
	noSurface := base()
	noSurface.Tools, noSurface.Prompts, noSurface.Instructions = nil, nil, ""
	if d := Drift(base(), noSurface); d != nil {
		t.Errorf("unobserved surface drifted: %v", d)
	}
	if Drift(nil, base()) != nil {
		t.Error("nil entry")
	}
}

func TestSurfaceParts(t *testing.T) {
	a, err := SurfaceParts(KindTool, json.RawMessage(`{"name":"x","description":"d","inputSchema":{"type":"object"},"_meta":{"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := SurfaceParts(KindTool, json.RawMessage(`{"name":"x","description":"changed","inputSchema":{"type":"object"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 3 || a["name"] != b["name"] || a["inputSchema"] != b["inputSchema"] || a["description"] == b["description"] {
		t.Errorf("parts %v %v", a, b)
	}
	if _, err := SurfaceParts("widget", json.RawMessage(`{}`)); !errors.Is(err, preflight.ErrConfig) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := SurfaceParts(KindTool, json.RawMessage(`[`)); !errors.Is(err, preflight.ErrMalformed) {
		t.Errorf("malformed: %v", err)
	}
}
