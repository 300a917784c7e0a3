package mcpb_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/mcpb"
)

func TestParseManifest(t *testing.T) {
	m, err := mcpb.ParseManifest([]byte(nodeManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.ManifestVersion != "0.3" || m.Name != "weather" || m.Server.Type != "node" || m.Server.EntryPoint != "server/index.js" ||
		m.Server.MCPConfig.Command != "node" || len(m.Platforms) != 3 || !m.UserConfig["api_key"].Sensitive {
		t.Fatalf("manifest = %+v", m)
	}
	// The deprecated dxt_version is accepted.
	if _, err := mcpb.ParseManifest([]byte(strings.Replace(nodeManifest, `"manifest_version"`, `"dxt_version"`, 1))); err != nil {
		t.Fatal(err)
	}
	// uv servers may leave mcp_config out; launching them needs one.
	uv, err := mcpb.ParseManifest([]byte(`{"manifest_version":"0.4","name":"u","version":"1","description":"d","author":{"name":"a"},"server":{"type":"uv","entry_point":"main.py"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uv.LaunchSpec("/b", "linux", nil); !errors.Is(err, preflight.ErrConfig) {
		t.Fatalf("uv launch err = %v, want ErrConfig", err)
	}
}

func TestParseManifestRefusals(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(nodeManifest, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(nodeManifest, old, new, 1)
	}
	for name, doc := range map[string]string{
		"not json":               "manifest",
		"array":                  "[]",
		"unknown member":         replace(`"name": "weather",`, `"name": "weather", "run_as_root": true,`),
		"unknown server member":  replace(`"type": "node",`, `"type": "node", "shell": true,`),
		"unknown config member":  replace(`"command": "node",`, `"command": "node", "cwd": "/",`),
		"unknown version":        replace(`"0.3"`, `"9.9"`),
		"no version":             replace(`"manifest_version": "0.3",`, ``),
		"conflicting versions":   replace(`"manifest_version": "0.3",`, `"manifest_version": "0.3", "dxt_version": "0.1",`),
		"no name":                replace(`"name": "weather",`, ``),
		"server type":            replace(`"type": "node"`, `"type": "docker"`),
		"entry point traversal":  replace(`"entry_point": "server/index.js"`, `"entry_point": "../index.js"`),
		"entry point absolute":   replace(`"entry_point": "server/index.js"`, `"entry_point": "/etc/passwd"`),
		"no mcp_config":          `{"manifest_version":"0.3","name":"w","version":"1","description":"d","author":{"name":"a"},"server":{"type":"node","entry_point":"i.js"}}`,
		"empty command":          replace(`"command": "node",`, `"command": "",`),
		"override platform":      replace(`"win32": {"command": "node.exe"}`, `"windows": {"command": "node.exe"}`),
		"override empty command": replace(`"win32": {"command": "node.exe"}`, `"win32": {"command": ""}`),
		"args not strings":       replace(`"args": [`, `"args": [1, `),
		"env with =":             replace(`"LITERAL"`, `"A=B"`),
		"NUL in arg":             replace(`"--units=`, `"\u0000--units=`),
		"platform name":          replace(`["darwin", "linux", "win32"]`, `["linux", "freebsd"]`),
		"user_config type":       replace(`{"type": "string", "title": "Units"`, `{"type": "object", "title": "Units"`),
		"trailing data":          nodeManifest + "{}",
		"too large":              replace(`"name": "weather",`, `"name": "weather", "long_description": "`+strings.Repeat("x", mcpb.MaxManifestBytes)+`",`),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mcpb.ParseManifest([]byte(doc))
			if !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestLaunchSpecSubstitution(t *testing.T) {
	m, err := mcpb.ParseManifest([]byte(strings.Replace(nodeManifest, `"--units=${user_config.units}"`,
		`"--home=${HOME}", "${user_config.api_key}${__dirname}", "${unclosed"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	// A value is not substituted again, and an unclosed placeholder is text.
	l, err := m.LaunchSpec("/b", "linux", map[string]string{"HOME": "/home/u", "user_config.api_key": "${__dirname}"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l.Args, " "); got != "/b/server/index.js --home=/home/u ${__dirname}/b ${unclosed" {
		t.Fatalf("args = %q", got)
	}
	// Without HOME: no environment is read, the placeholder is unresolved.
	_, err = m.LaunchSpec("/b", "linux", map[string]string{"user_config.api_key": "k"})
	if !errors.Is(err, preflight.ErrConfig) || !strings.Contains(err.Error(), "${HOME}") {
		t.Fatalf("err = %v, want ErrConfig naming ${HOME}", err)
	}
	if _, err := m.LaunchSpec("/b", "windows", nil); !errors.Is(err, preflight.ErrConfig) {
		t.Fatalf("GOOS platform name: err = %v, want ErrConfig", err)
	}
}
