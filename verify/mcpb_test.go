package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// newMCPBFixture serves a binary MCP bundle (the test binary serving
// weatherCfg) signed by the scenario's identity, and writes a server.json
// that names it with its fileSha256 and a policy with a server_json source.
func newMCPBFixture(t *testing.T, pin string) (*verify.Verifier, *verifytest.ReleaseHost) {
	t.Helper()
	dir := t.TempDir()
	sc, err := verifytest.NewScenario(filepath.Join(dir, "scenario"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	host, err := verifytest.NewReleaseHost()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(host.Close)
	args, err := json.Marshal(verifytest.ServerArgs(weatherCfg))
	if err != nil {
		t.Fatal(err)
	}
	manifest := `{"manifest_version":"0.3","name":"weather","version":"1.0.0","description":"Weather","author":{"name":"acme"},
	  "server":{"type":"binary","entry_point":"bin/weather","mcp_config":{"command":"${__dirname}/bin/weather","args":` + string(args) + `}}}`
	bundleFile := mcpbFile(t, manifest)
	sig, err := sc.Sigstore.SignBlob(sc.Identity, bundleFile, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host.Add("/weather.mcpb", bundleFile)
	host.Add("/weather.mcpb.sigstore.json", sig)
	sum := sha256.Sum256(bundleFile)
	if pin == "" {
		pin = hex.EncodeToString(sum[:])
	}
	serverJSON := fmt.Sprintf(`{"name":"io.github.acme/weather","version":"1.0.0","description":"Weather",
	  "packages":[{"registryType":"npm","identifier":"@acme/weather","version":"1.0.0","transport":{"type":"stdio"}},
	              {"registryType":"mcpb","identifier":"%s/weather.mcpb","fileSha256":"%s","transport":{"type":"stdio"}}]}`, host.URL(), pin)
	if err := os.WriteFile(filepath.Join(sc.Dir, "server.json"), []byte(serverJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := fmt.Sprintf(`version: 1
trust:
  sigstore:
    trusted_root: trusted_root.json
servers:
  weather:
    source:
      server_json:
        path: server.json
        package: mcpb
    signers:
      - issuer: %s
        subject: %s
    tools:
      pin: none
      allow: ["get_forecast"]
`, sc.Identity.Issuer, sc.Identity.Subject)
	path := filepath.Join(sc.Dir, "mcpb.yaml")
	p, err := policy.Parse(path, []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Policy: p, PolicyDir: sc.Dir, StoreDir: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	return v, host
}

var (
	mcpbOnce  sync.Once
	mcpbBytes []byte
)

// mcpbFile zips the test binary with manifest once per test process: the
// binary is large and deflate is slow under the race detector.
func mcpbFile(t *testing.T, manifest string) []byte {
	exe := testExecutable(t)
	mcpbOnce.Do(func() {
		mcpbBytes = verifytest.Zip(map[string][]byte{"manifest.json": []byte(manifest), "bin/weather": exe})
	})
	return mcpbBytes
}

func TestMCPBFromServerJSON(t *testing.T) {
	v, _ := newMCPBFixture(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := launch(ctx, v, "weather")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Report.Facts.Artifact.Source != "mcpb" || len(s.Report.Facts.Signatures) != 1 {
		t.Fatalf("facts %+v", s.Report.Facts)
	}
	if got := s.Report.Surface.Tools.Exposed; len(got) != 1 || got[0] != "get_forecast" {
		t.Fatalf("exposed %v", got)
	}
	if _, err := callTool(ctx, s, "get_forecast"); err != nil {
		t.Fatal(err)
	}
}

func TestMCPBRefusals(t *testing.T) {
	t.Run("tampered bundle", func(t *testing.T) {
		v, host := newMCPBFixture(t, "")
		host.Tamper("/weather.mcpb", verifytest.Zip(map[string][]byte{"manifest.json": []byte("{}")}))
		_, err := v.Check(context.Background(), "weather")
		if !errors.Is(err, preflight.ErrTampered) {
			t.Fatalf("got %v, want ErrTampered", err)
		}
	})
	t.Run("pin differs from the signed bytes", func(t *testing.T) {
		v, _ := newMCPBFixture(t, "00000000000000000000000000000000000000000000000000000000000000aa")
		_, err := v.Check(context.Background(), "weather")
		if !errors.Is(err, preflight.ErrTampered) {
			t.Fatalf("got %v, want ErrTampered", err)
		}
	})
}
