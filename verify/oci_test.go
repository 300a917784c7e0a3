package verify_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// newOCIFixture pushes an image to a loopback registry, attaches SLSA
// provenance for its digest signed by signer, and returns a verifier whose
// container runtime is a stand-in docker that records its arguments and
// then runs the test binary as the server.
func newOCIFixture(t *testing.T, signer *verifytest.Identity, pin bool) (v *verify.Verifier, record string, reg *verifytest.OCIRegistry, digest string) {
	return newOCIFixtureFrom(t, signer, pin, false)
}

// newOCIFixtureFrom is newOCIFixture; with viaServerJSON the policy names
// the image through an MCP registry server.json instead of an oci source.
func newOCIFixtureFrom(t *testing.T, signer *verifytest.Identity, pin, viaServerJSON bool) (v *verify.Verifier, record string, reg *verifytest.OCIRegistry, digest string) {
	t.Helper()
	dir := t.TempDir()
	sc, err := verifytest.NewScenario(filepath.Join(dir, "scenario"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	reg, err = verifytest.NewOCIRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	digest, err = reg.PushImage("acme/weather", "1.0.0", map[string][]byte{"server": []byte("weather server")})
	if err != nil {
		t.Fatal(err)
	}
	id := sc.Identity
	if signer != nil {
		id = *signer
	}
	stmt, err := verifytest.SLSAProvenanceV1(reg.Host()+"/acme/weather", map[string]string{"sha256": strings.TrimPrefix(digest, "sha256:")}, verifytest.ProvenanceFor(id))
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := sc.Sigstore.Attest(id, stmt, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AttachBundle("acme/weather", digest, bundle); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	record = filepath.Join(dir, "docker-args")
	words := []string{"'" + exe + "'"}
	for _, a := range verifytest.ServerArgs(weatherCfg) {
		words = append(words, "'"+a+"'")
	}
	docker := filepath.Join(dir, "bin", "docker")
	os.MkdirAll(filepath.Dir(docker), 0o700)
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s'\nexec %s\n", record, strings.Join(words, " "))
	if err := os.WriteFile(docker, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	digestLine := ""
	if pin {
		digestLine = "        digest: " + digest + "\n"
	}
	source := fmt.Sprintf("      oci:\n        image: %s/acme/weather:1.0.0\n%s", reg.Host(), digestLine)
	if viaServerJSON {
		serverJSON := fmt.Sprintf(`{"name":"io.github.acme/weather","version":"1.0.0","description":"Weather",
		  "packages":[{"registryType":"oci","identifier":"%s/acme/weather","version":"1.0.0","transport":{"type":"stdio"}}]}`, reg.Host())
		if err := os.WriteFile(filepath.Join(sc.Dir, "server.json"), []byte(serverJSON), 0o600); err != nil {
			t.Fatal(err)
		}
		source = "      server_json:\n        path: server.json\n        package: oci\n"
	}
	pol := fmt.Sprintf(`version: 1
trust:
  sigstore:
    trusted_root: trusted_root.json
servers:
  weather:
    source:
%s    env: [WEATHER_TOKEN]
    signers:
      - issuer: %s
        subject: %s
    provenance:
      predicate_types: [https://slsa.dev/provenance/v1]
      repository: %s
    tools:
      pin: none
      allow: ["get_*"]
`, source, sc.Identity.Issuer, sc.Identity.Subject, verifytest.ScenarioPublisher)
	p, err := policy.Parse("oci.yaml", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	v, err = verify.New(verify.Config{Policy: p, PolicyDir: sc.Dir, StoreDir: filepath.Join(dir, "store"),
		ContainerRuntime: docker, Environ: []string{"WEATHER_TOKEN=t0k3n", "SECRET=nope", "PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	return v, record, reg, digest
}

func TestOCIImageRunsByDigest(t *testing.T) {
	for _, viaServerJSON := range []bool{false, true} {
		t.Run(fmt.Sprintf("server.json=%v", viaServerJSON), func(t *testing.T) { testOCIRunsByDigest(t, viaServerJSON) })
	}
}

func testOCIRunsByDigest(t *testing.T, viaServerJSON bool) {
	v, record, reg, digest := newOCIFixtureFrom(t, nil, true, viaServerJSON)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := launch(ctx, v, "weather")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := callTool(ctx, s, "get_forecast"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSpace(string(data)), "\n")
	want := []string{"run", "--rm", "-i", "--pull=missing", "-e", "WEATHER_TOKEN", reg.Host() + "/acme/weather@" + digest}
	if len(args) < len(want) || strings.Join(args[:len(want)], " ") != strings.Join(want, " ") {
		t.Fatalf("docker ran with %q, want prefix %q", args, want)
	}
	for _, a := range args {
		if strings.Contains(a, ":1.0.0") || strings.Contains(a, "t0k3n") || strings.Contains(a, "SECRET") {
			t.Fatalf("docker argument %q names the tag or leaks a value", a)
		}
	}
}

func TestOCIRefusals(t *testing.T) {
	t.Run("tag moved to another image", func(t *testing.T) {
		v, _, reg, _ := newOCIFixture(t, nil, true)
		other, err := reg.PushImage("acme/weather", "evil", map[string][]byte{"server": []byte("evil")})
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Retag("acme/weather", "1.0.0", other); err != nil {
			t.Fatal(err)
		}
		_, err = v.Check(context.Background(), "weather")
		if !errors.Is(err, preflight.ErrTampered) {
			t.Fatalf("got %v, want ErrTampered", err)
		}
	})
	t.Run("wrong signer", func(t *testing.T) {
		mallory := verifytest.GitHubActions("mallory/weather", ".github/workflows/release.yml", "refs/tags/v1.0.0", strings.Repeat("e5", 20))
		v, _, _, _ := newOCIFixture(t, &mallory, false)
		_, err := v.Check(context.Background(), "weather")
		if !errors.Is(err, preflight.ErrIdentity) {
			t.Fatalf("got %v, want ErrIdentity", err)
		}
	})
}
