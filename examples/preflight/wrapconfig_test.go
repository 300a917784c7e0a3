package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// claudeDesktopConfig is a claude_desktop_config.json with a stdio server
// run from a file, a remote server, an unsupported launcher, an npm server
// with its keys in an unusual order, and fields Preflight does not know.
func claudeDesktopConfig(exe string, args []string) string {
	a, _ := json.Marshal(args)
	e, _ := json.Marshal(exe)
	return `{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "weather": {
      "command": ` + string(e) + `,
      "args": ` + string(a) + `,
      "env": {
        "API_KEY": "secret <&>"
      }
    },
    "remote": {
      "url": "https://mcp.example.com/sse",
      "headers": {
        "Authorization": "Bearer x"
      }
    },
    "fetch": {
      "command": "uvx",
      "args": [
        "mcp-server-fetch"
      ]
    },
    "git": {
      "env": {},
      "command": "npx",
      "disabled": false
    }
  },
  "zUnknown": {
    "keep": [
      1,
      2.50,
      "\u00e9"
    ]
  }
}
`
}

// memberKeys returns the keys of a JSON object in document order.
func memberKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	o, err := decodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range o {
		keys = append(keys, m.key)
	}
	return keys
}

type mcpEntry struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	URL     string            `json:"url"`
}

func TestWrapConfigClaudeDesktop(t *testing.T) {
	f := sharedFixture(t)
	bin := f.cli(t)
	pol := f.filePolicy(t, "weather", cliWeather, "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "claude_desktop_config.json")
	original := claudeDesktopConfig(f.exe, verifytest.ServerArgs(cliWeather))
	writeFile(t, cfg, original, 0o600)

	code, stdout, stderr := runCLI(t, "wrap-config", cfg, "--policy", pol, "--preflight", bin)
	if code != exitOK || stdout != "" {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{`wrapped  weather  (policy server "weather")`, "wrapped  fetch  WARNING", "through uvx cannot be verified",
		"wrapped  git  WARNING", "skipped  remote  (remote server)", "backup " + cfg + ".bak-"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(cfg); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", fi.Mode())
	}
	backups, _ := filepath.Glob(cfg + ".bak-*")
	if len(backups) != 1 {
		t.Fatalf("backups %v", backups)
	}
	if b, _ := os.ReadFile(backups[0]); string(b) != original {
		t.Fatal("the backup is not the original")
	}
	var doc struct {
		MCPServers map[string]mcpEntry `json:"mcpServers"`
		ZUnknown   json.RawMessage     `json:"zUnknown"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	w := doc.MCPServers["weather"]
	wantArgs := append([]string{"run", "--policy", pol, "--", f.exe}, verifytest.ServerArgs(cliWeather)...)
	if w.Command != bin || !slices.Equal(w.Args, wantArgs) || w.Env["API_KEY"] != "secret <&>" {
		t.Fatalf("weather entry %+v", w)
	}
	if g := doc.MCPServers["git"]; g.Command != bin || !slices.Equal(g.Args, []string{"run", "--policy", pol, "--", "npx"}) {
		t.Fatalf("git entry %+v", g)
	}
	if r := doc.MCPServers["remote"]; r.Command != "" || r.URL != "https://mcp.example.com/sse" {
		t.Fatalf("remote entry %+v", r)
	}
	if !strings.Contains(string(data), `"secret <&>"`) || !strings.Contains(string(data), `2.50`) || !strings.Contains(string(data), `"\u00e9"`) {
		t.Fatalf("values were re-encoded:\n%s", data)
	}
	if got := memberKeys(t, data); !slices.Equal(got, []string{"globalShortcut", "mcpServers", "zUnknown"}) {
		t.Errorf("top-level keys %v", got)
	}
	var servers map[string]json.RawMessage
	json.Unmarshal(data, &struct {
		S *map[string]json.RawMessage `json:"mcpServers"`
	}{&servers})
	if got := memberKeys(t, servers["git"]); !slices.Equal(got, []string{"env", "command", "args", "disabled"}) {
		t.Errorf("git keys %v", got)
	}

	// Twice: nothing changes, no second backup.
	code, _, stderr = runCLI(t, "wrap-config", "--policy", pol, "--preflight", bin, cfg)
	again, _ := os.ReadFile(cfg)
	backups, _ = filepath.Glob(cfg + ".bak-*")
	if code != exitOK || string(again) != string(data) || len(backups) != 1 || !strings.Contains(stderr, "nothing to wrap") {
		t.Fatalf("second run: exit %d, %d backups\n%s", code, len(backups), stderr)
	}

	// The rewritten entry starts the server through preflight run.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.Command(w.Command, w.Args...)
	cache := t.TempDir()
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache, "HOME="+cache, "API_KEY="+w.Env["API_KEY"])
	runStderr := &syncBuffer{}
	cmd.Stderr = runStderr
	client := mcp.NewClient(&mcp.Implementation{Name: "claude-desktop-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("initialize through the rewritten entry: %v\n%s", err, runStderr.String())
	}
	defer cs.Close()
	if init := cs.InitializeResult(); init == nil || init.ServerInfo.Name != "weather" {
		t.Fatalf("initialize result %+v", init)
	}
	list, err := cs.ListTools(ctx, nil)
	if err != nil || len(list.Tools) == 0 {
		t.Fatalf("list: %v %+v", err, list)
	}
	cs.Close()
	if !strings.Contains(runStderr.String(), `is server "weather" of the policy`) {
		t.Fatalf("preflight run stderr:\n%s", runStderr.String())
	}
}

const vscodeConfig = `{
    "inputs": [
        {
            "type": "promptString",
            "id": "api-key",
            "password": true
        }
    ],
    "servers": {
        "weather": {
            "type": "stdio",
            "command": "node",
            "args": ["build/index.js"],
            "env": {"API_KEY": "${input:api-key}"}
        },
        "github": {
            "type": "http",
            "url": "https://api.githubcopilot.com/mcp/"
        },
        "wrapped": {
            "type": "stdio",
            "command": "/opt/bin/preflight",
            "args": ["run", "--policy", "/p.yaml", "--", "x"]
        }
    }
}`

func TestWrapConfigDryRunVSCode(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mcp.json")
	writeFile(t, cfg, vscodeConfig, 0o644)
	pol := filepath.Join(dir, "preflight.yaml")
	code, stdout, stderr := runCLI(t, "wrap-config", "--dry-run", "--policy", pol, "--preflight", "/usr/local/bin/preflight", cfg)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	want := `--- ` + cfg + `
+++ ` + cfg + ` (wrapped)
@@ -9,9 +9,18 @@
     "servers": {
         "weather": {
             "type": "stdio",
-            "command": "node",
-            "args": ["build/index.js"],
-            "env": {"API_KEY": "${input:api-key}"}
+            "command": "/usr/local/bin/preflight",
+            "args": [
+                "run",
+                "--policy",
+                "` + pol + `",
+                "--",
+                "node",
+                "build/index.js"
+            ],
+            "env": {
+                "API_KEY": "${input:api-key}"
+            }
         },
         "github": {
             "type": "http",
@@ -20,7 +29,13 @@
         "wrapped": {
             "type": "stdio",
             "command": "/opt/bin/preflight",
-            "args": ["run", "--policy", "/p.yaml", "--", "x"]
+            "args": [
+                "run",
+                "--policy",
+                "/p.yaml",
+                "--",
+                "x"
+            ]
         }
     }
 }
`
	if stdout != want {
		t.Errorf("diff:\n%s\nwant:\n%s", stdout, want)
	}
	for _, want := range []string{"skipped  github  (remote server)", "skipped  wrapped  (already wrapped)", "dry run", "the policy cannot be read yet"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	if data, _ := os.ReadFile(cfg); string(data) != vscodeConfig {
		t.Fatal("a dry run changed the file")
	}
	if backups, _ := filepath.Glob(cfg + ".bak-*"); len(backups) != 0 {
		t.Fatalf("a dry run wrote a backup: %v", backups)
	}

	code, stdout, _ = runCLI(t, "wrap-config", "--dry-run", "--format", "json", "--policy", pol, "--preflight", "/usr/local/bin/preflight", cfg)
	var res wrapResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != exitOK {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	if res.Written || len(res.Wrapped) != 1 || res.Wrapped[0].Name != "weather" || !slices.Equal(res.Wrapped[0].Command, []string{"node", "build/index.js"}) ||
		len(res.Skipped) != 2 || res.Diff == "" || res.Policy != pol {
		t.Fatalf("json result %+v", res)
	}
}

func TestWrapConfigRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"comments.json":  "{\n  // servers\n  \"mcpServers\": {}\n}\n",
		"trailing.json":  `{"mcpServers": {"a": {"command": "x",}}}`,
		"none.json":      `{"other": {}}`,
		"array.json":     `[]`,
		"duplicate.json": `{"mcpServers": {}, "mcpServers": {}}`,
		"servers.json":   `{"mcpServers": []}`,
		"trailer.json":   `{"mcpServers": {}} {}`,
	} {
		cfg := filepath.Join(dir, name)
		writeFile(t, cfg, content, 0o600)
		code, _, stderr := runCLI(t, "wrap-config", "--policy", "p.yaml", "--preflight", "/bin/preflight", cfg)
		if code != exitUsage || !strings.Contains(stderr, cfg) {
			t.Errorf("%s: exit %d, want 2\n%s", name, code, stderr)
		}
		if data, _ := os.ReadFile(cfg); string(data) != content {
			t.Errorf("%s: changed", name)
		}
	}
	if code, _, _ := runCLI(t, "wrap-config", "--policy", "p.yaml", filepath.Join(dir, "missing.json")); code != exitUsage {
		t.Errorf("missing file: exit %d", code)
	}
}

func TestWrapConfigKeepsIndentation(t *testing.T) {
	in := "{\n\t\"mcpServers\": {\n\t\t\"a\": {\"command\": \"srv\"}\n\t}\n}"
	out, res, err := wrapConfig([]byte(in), "/bin/preflight", "/p.yaml")
	if err != nil || len(res.Wrapped) != 1 {
		t.Fatal(err, res)
	}
	want := "{\n\t\"mcpServers\": {\n\t\t\"a\": {\n\t\t\t\"command\": \"/bin/preflight\",\n\t\t\t\"args\": [\n\t\t\t\t\"run\",\n\t\t\t\t\"--policy\",\n\t\t\t\t\"/p.yaml\",\n\t\t\t\t\"--\",\n\t\t\t\t\"srv\"\n\t\t\t]\n\t\t}\n\t}\n}\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

func TestUnifiedDiff(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"a\nb\nc\n", "a\nb\nc\n", "--- x\n+++ y\n"},
		{"a\n", "b\n", "--- x\n+++ y\n@@ -1,1 +1,1 @@\n-a\n+b\n"},
		{"", "a\n", "--- x\n+++ y\n@@ -0,0 +1,1 @@\n+a\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "1\nX\n3\n4\n5\n6\n7\n8\n9\n10\nY\n12\n",
			"--- x\n+++ y\n@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n 4\n 5\n@@ -8,5 +8,5 @@\n 8\n 9\n 10\n-11\n+Y\n 12\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n", "1\nX\n3\n4\n5\n6\n7\nY\n",
			"--- x\n+++ y\n@@ -1,8 +1,8 @@\n 1\n-2\n+X\n 3\n 4\n 5\n 6\n 7\n-8\n+Y\n"},
	} {
		if got := unifiedDiff("x", "y", tc.a, tc.b); got != tc.want {
			t.Errorf("diff %q → %q:\n%s\nwant:\n%s", tc.a, tc.b, got, tc.want)
		}
	}
}
