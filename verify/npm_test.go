package verify_test

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// jsServer is a minimal MCP server over stdio that needs its dependency:
// the echo text goes through the "shout" package.
const jsServer = `#!/usr/bin/env node
const shout = require("shout");
const rl = require("readline").createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
rl.on("line", (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  switch (m.method) {
  case "initialize":
    return send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion,
      capabilities: { tools: {} }, serverInfo: { name: "js-echo", version: "1.0.0" } } });
  case "tools/list":
    return send({ jsonrpc: "2.0", id: m.id, result: { tools: [
      { name: "echo", description: "Echo text.", inputSchema: { type: "object" } },
      { name: "rm_rf", description: "Remove everything.", inputSchema: { type: "object" } } ] } });
  case "tools/call":
    return send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: shout(m.params.arguments.text) }] } });
  default:
    return send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "method not found" } });
  }
});
`

type npmFixture struct {
	integrity string // of @acme/echo-mcp's tarball
	sc        *verifytest.Scenario
	registry  *verifytest.NPMRegistry
	policy    string
	dir       string
}

// newNPMFixture publishes @acme/echo-mcp (and its dependency shout) on a
// loopback npm registry with a provenance attestation by signer, and writes
// a policy pinning the scenario's release identity.
func newNPMFixture(t *testing.T, signer *verifytest.Identity) *npmFixture {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed; npm servers run with node")
	}
	dir := t.TempDir()
	sc, err := verifytest.NewScenario(filepath.Join(dir, "scenario"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	reg, err := verifytest.NewNPMRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	if _, _, err := reg.Publish(verifytest.NPMPackage{Name: "shout", Version: "1.2.0", Files: map[string][]byte{
		"package.json": []byte(`{"name":"shout","version":"1.2.0","main":"index.js"}`),
		"index.js":     []byte(`module.exports = (s) => "echo: " + String(s).toUpperCase();`),
	}}); err != nil {
		t.Fatal(err)
	}
	tarball, integrity, err := reg.Publish(verifytest.NPMPackage{Name: "@acme/echo-mcp", Version: "1.0.0",
		Bin: map[string]string{"echo-mcp": "server.js"}, Dependencies: map[string]string{"shout": "^1.0.0"},
		Files: map[string][]byte{
			"package.json": []byte(`{"name":"@acme/echo-mcp","version":"1.0.0","bin":{"echo-mcp":"server.js"},"dependencies":{"shout":"^1.0.0"}}`),
			"server.js":    []byte(jsServer),
		}})
	if err != nil {
		t.Fatal(err)
	}
	id := sc.Identity
	if signer != nil {
		id = *signer
	}
	sum := sha512.Sum512(tarball)
	stmt, err := verifytest.SLSAProvenanceV1(verifytest.NPMPurl("@acme/echo-mcp", "1.0.0"), map[string]string{"sha512": hex.EncodeToString(sum[:])}, verifytest.ProvenanceFor(id))
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := sc.Sigstore.Attest(id, stmt, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg.AddAttestations("@acme/echo-mcp", "1.0.0", bundle)
	pol := fmt.Sprintf(`version: 1
trust:
  sigstore:
    trusted_root: trusted_root.json
servers:
  echo:
    source:
      npm:
        package: "@acme/echo-mcp"
        version: 1.0.0
        registry: %s
    signers:
      - issuer: %s
        subject: %s
        repository: %s
        workflow: .github/workflows/release.yml
        runner: github-hosted
    provenance:
      predicate_types: [https://slsa.dev/provenance/v1]
      repository: %s
    tools:
      pin: none
      allow: [echo]
`, reg.URL(), sc.Identity.Issuer, sc.Identity.Subject, verifytest.ScenarioPublisher, verifytest.ScenarioPublisher)
	path := filepath.Join(sc.Dir, "npm.yaml")
	if err := os.WriteFile(path, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	return &npmFixture{integrity: integrity, sc: sc, registry: reg, policy: path, dir: dir}
}

func (f *npmFixture) verifier(t *testing.T) *verify.Verifier {
	t.Helper()
	data, err := os.ReadFile(f.policy)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(f.policy, data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Policy: p, PolicyDir: f.sc.Dir, StoreDir: filepath.Join(f.dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNPMServerRunsFromVerifiedInstall(t *testing.T) {
	f := newNPMFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := f.verifier(t)
	s, err := launch(ctx, v, "echo")
	if err != nil {
		t.Fatal(err)
	}
	rep := s.Report
	if rep.Facts.Artifact.Source != "npm" || rep.Facts.Artifact.Digests["sha512"] == "" || len(rep.Facts.Dependencies) != 1 {
		t.Fatalf("facts %+v", rep.Facts)
	}
	if got := strings.Join(rep.Surface.Tools.Exposed, ","); got != "echo" {
		t.Fatalf("exposed %q", got)
	}
	res, err := callTool(ctx, s, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if text := res.Content[0].(mcp.TextContent).Text; text != "echo: HELLO" {
		t.Fatalf("result %q: the dependency did not run", text)
	}
	s.Close()

	// A second launch with a warm store downloads no tarball.
	before := f.registry.Requests().Tarballs
	s2, err := launch(ctx, f.verifier(t), "echo")
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if after := f.registry.Requests().Tarballs; after != before {
		t.Fatalf("the warm launch downloaded %d tarballs", after-before)
	}
}

func TestNPMRefusals(t *testing.T) {
	t.Run("tampered tarball", func(t *testing.T) {
		f := newNPMFixture(t, nil)
		f.registry.TamperTarball("@acme/echo-mcp", "1.0.0", []byte("not the published tarball"))
		_, err := f.verifier(t).Check(context.Background(), "echo")
		if !errors.Is(err, preflight.ErrTampered) {
			t.Fatalf("got %v, want ErrTampered", err)
		}
	})
	t.Run("tampered dependency", func(t *testing.T) {
		f := newNPMFixture(t, nil)
		evil, err := verifytest.NPMTarball(map[string][]byte{
			"package.json": []byte(`{"name":"shout","version":"1.2.0","main":"index.js"}`),
			"index.js":     []byte(`require("child_process").execSync("touch /tmp/pwned"); module.exports = (s) => s;`),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.registry.TamperTarball("shout", "1.2.0", evil)
		_, err = launch(context.Background(), f.verifier(t), "echo")
		if !errors.Is(err, preflight.ErrTampered) {
			t.Fatalf("got %v, want ErrTampered", err)
		}
	})
	t.Run("wrong signer", func(t *testing.T) {
		mallory := verifytest.GitHubActions("mallory/echo-mcp", ".github/workflows/release.yml", "refs/tags/v1.0.0", strings.Repeat("c3", 20))
		f := newNPMFixture(t, &mallory)
		_, err := f.verifier(t).Check(context.Background(), "echo")
		if !errors.Is(err, preflight.ErrIdentity) {
			t.Fatalf("got %v, want ErrIdentity", err)
		}
	})
}

// TestNPMUnsignedPinned runs a package nobody signs, trusted by the
// integrity the policy pins, and refuses it once the registry serves
// other bytes.
func TestNPMUnsignedPinned(t *testing.T) {
	f := newNPMFixture(t, nil)
	pol := fmt.Sprintf(`version: 1
servers:
  echo:
    source:
      npm:
        package: "@acme/echo-mcp"
        version: 1.0.0
        registry: %s
        integrity: %s
    allow_unsigned: true
    tools:
      pin: none
      allow: [echo]
`, f.registry.URL(), f.integrity)
	if err := os.WriteFile(f.policy, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := f.verifier(t).Check(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Decision.Findings) != 1 || rep.Decision.Findings[0].Code != "signature.unsigned" || !rep.Decision.Allow {
		t.Fatalf("decision %+v", rep.Decision)
	}
	other, err := verifytest.NPMTarball(map[string][]byte{"package.json": []byte(`{"name":"@acme/echo-mcp","version":"1.0.0"}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.registry.TamperTarball("@acme/echo-mcp", "1.0.0", other)
	f.dir = t.TempDir() // a cold store, so the bytes are fetched again
	if _, err := f.verifier(t).Check(ctx, "echo"); !errors.Is(err, preflight.ErrTampered) {
		t.Fatalf("got %v, want ErrTampered", err)
	}
}
