package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
)

const descriptorJSON = `{
  "$schema": "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json",
  "name": "io.github.acme/weather",
  "description": "Weather forecasts",
  "version": "1.4.0",
  "repository": {"url": "https://github.com/acme/weather", "source": "github"},
  "packages": [{"registryType": "mcpb", "identifier": "https://example.com/w.mcpb", "transport": {"type": "stdio"}}],
  "_meta": {
    "io.modelcontextprotocol.registry/publisher-provided": {"anything": true},
    "dev.mcp-preflight/trust": {
      "artifacts": [
        {"platform": "linux/amd64", "target": "acme/weather/1.4.0/weather-linux-amd64", "bundles": ["acme/weather/1.4.0/weather-linux-amd64.sigstore.json"], "args": ["serve"]},
        {"platform": "any", "target": "acme/weather/1.4.0/weather.js"}
      ],
      "signers": [{"issuer": "https://token.actions.githubusercontent.com", "subject": "https://github.com/acme/weather/.github/workflows/release.yml@refs/tags/v1.4.0"}],
      "provenance": {"builders": ["https://github.com/actions/runner/github-hosted"], "repository": "acme/weather"},
      "tools": {"get_weather": "sha256:` + "0000000000000000000000000000000000000000000000000000000000000000" + `"}
    }
  }
}`

func TestParseDescriptor(t *testing.T) {
	d, err := ParseDescriptor([]byte(descriptorJSON))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "io.github.acme/weather" || d.Version != "1.4.0" || len(d.Packages) != 1 || d.Trust == nil {
		t.Fatalf("%+v", d)
	}
	if !d.Trust.Provenance.Required {
		t.Error("provenance in a descriptor is required unless it says otherwise")
	}
	if len(d.Trust.Signers) != 1 || d.Trust.Tools["get_weather"] == "" {
		t.Errorf("expectations %+v", d.Trust.Expectations)
	}
	a, err := d.Artifact("linux/amd64")
	if err != nil || a.Target != "acme/weather/1.4.0/weather-linux-amd64" || a.Args[0] != "serve" {
		t.Errorf("exact platform: %+v %v", a, err)
	}
	a, err = d.Artifact("darwin/arm64")
	if err != nil || a.Platform != "any" {
		t.Errorf("fallback to any: %+v %v", a, err)
	}
	d.Trust.Artifacts = d.Trust.Artifacts[:1]
	_, err = d.Artifact("darwin/arm64")
	var pe *preflight.Error
	if !errors.Is(err, preflight.ErrNotFound) || !errors.As(err, &pe) || !strings.Contains(pe.Hint, "linux/amd64") {
		t.Errorf("missing platform: %v", err)
	}
	plain, err := ParseDescriptor([]byte(`{"name":"x","version":"1","future":{"field":1}}`))
	if err != nil || plain.Trust != nil {
		t.Errorf("descriptor without trust section: %+v %v", plain, err)
	}
	if _, err := plain.Artifact("linux/amd64"); !errors.Is(err, preflight.ErrNotFound) {
		t.Errorf("no trust section: %v", err)
	}
}

func TestParseDescriptorRejects(t *testing.T) {
	trust := func(old, new string) string { return strings.Replace(descriptorJSON, old, new, 1) }
	cases := map[string]string{
		"unknown trust field":      trust(`"artifacts": [`, `"extra": 1, "artifacts": [`),
		"unknown artifact field":   trust(`"platform": "any",`, `"platform": "any", "sha": "x",`),
		"unknown provenance field": trust(`"repository": "acme/weather"}`, `"repository": "acme/weather", "builder": "x"}`),
		"unanchored signer":        trust(`"subject": "https://github.com/acme/weather/.github/workflows/release.yml@refs/tags/v1.4.0"`, `"subject_pattern": "acme"`),
		"empty signer":             trust(`"signers": [{`, `"signers": [{}, {`),
		"bad pin":                  trust(`"sha256:0000`, `"md5:0000`),
		"escaping target":          trust(`"target": "acme/weather/1.4.0/weather.js"`, `"target": "../../etc/passwd"`),
		"absolute target":          trust(`"target": "acme/weather/1.4.0/weather.js"`, `"target": "/etc/passwd"`),
		"bad platform":             trust(`"platform": "any"`, `"platform": "Linux"`),
		"duplicate platform":       trust(`"platform": "any"`, `"platform": "linux/amd64"`),
		"duplicate key":            trust(`"name": "io.github.acme/weather",`, `"name": "io.github.acme/weather", "name": "evil",`),
		"no name":                  `{"version":"1"}`,
		"no version":               `{"name":"x"}`,
		"trust not an object":      `{"name":"x","version":"1","_meta":{"dev.mcp-preflight/trust":[]}}`,
		"not json":                 `name: x`,
		"trailing":                 `{"name":"x","version":"1"} {}`,
		"too big":                  `{"name":"x","version":"1","description":"` + strings.Repeat("a", MaxDescriptorBytes) + `"}`,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDescriptor([]byte(data))
			if !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
		})
	}
}
