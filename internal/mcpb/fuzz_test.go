package mcpb_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/mcpb"
)

func FuzzManifest(f *testing.F) {
	for _, seed := range []string{
		nodeManifest,
		`{"manifest_version":"0.4","name":"u","version":"1","description":"d","author":{"name":"a"},"server":{"type":"uv","entry_point":"main.py"}}`,
		`{"dxt_version":"0.1","name":"b","version":"1","description":"d","author":{"name":"a"},"server":{"type":"binary","entry_point":"bin/b","mcp_config":{"command":"${__dirname}${/}bin${/}b","args":["${user_config.x}"],"platform_overrides":{"win32":{"command":"${__dirname}\\bin\\b.exe"}}}},"user_config":{"x":{"type":"number","title":"x","description":"x","default":3}}}`,
		`{"manifest_version":"0.3","name":"w","version":"1","server":{"type":"node","entry_point":"../x","mcp_config":{"command":"node"}}}`,
		`{"manifest_version":"0.3","name":"w","version":"1","server":{"type":"node","entry_point":"x","mcp_config":{"command":"${","args":["${a}${b"]}}}`,
		`{"a":` + strings.Repeat("[", 100) + `}`,
		``,
	} {
		f.Add([]byte(seed), "linux")
	}
	f.Fuzz(func(t *testing.T, data []byte, platform string) {
		m, err := mcpb.ParseManifest(data)
		if err != nil {
			if !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("parse err = %v, want ErrMalformed", err)
			}
			return
		}
		if m.Name == "" || m.Version == "" || !filepath.IsLocal(m.Server.EntryPoint) || strings.Contains(m.Server.EntryPoint, "\\") {
			t.Fatalf("accepted manifest with %+v", m)
		}
		l, err := m.LaunchSpec("/bundle", platform, map[string]string{"user_config.x": "${__dirname}"})
		if err != nil {
			var pe *preflight.Error
			if !errors.As(err, &pe) || !(errors.Is(err, preflight.ErrConfig) || errors.Is(err, preflight.ErrMalformed) || errors.Is(err, preflight.ErrNotFound)) {
				t.Fatalf("launch err = %v, want ErrConfig, ErrMalformed or ErrNotFound", err)
			}
			return
		}
		if l.Command == "" || l.Dir != "/bundle" {
			t.Fatalf("launch = %+v", l)
		}
	})
}
