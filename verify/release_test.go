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

// newReleaseFixture serves the test binary as a release asset with a
// signature bundle by signer beside it, and returns a verifier whose policy
// has a url source for it (args make the binary serve weatherCfg).
func newReleaseFixture(t *testing.T, signer *verifytest.Identity, archive bool) (*verify.Verifier, *verifytest.ReleaseHost) {
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
	exe := testExecutable(t)
	id := sc.Identity
	if signer != nil {
		id = *signer
	}
	asset, binary := "/v1.0.0/weather-linux", ""
	data := exe
	if archive {
		asset, binary = "/v1.0.0/weather.tar.gz", "bin/weather"
		data = verifytest.TarGz(map[string][]byte{"bin/weather": exe, "README": []byte("weather")})
	}
	bundle, err := sc.Sigstore.SignBlob(id, data, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host.Add(asset, data)
	host.Add(asset+".sigstore.json", bundle)
	args := verifytest.ServerArgs(weatherCfg)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	pol := fmt.Sprintf(`version: 1
trust:
  sigstore:
    trusted_root: trusted_root.json
servers:
  weather:
    source:
      url:
        url: %s%s
        binary: %q
    args: [%s]
    signers:
      - issuer: %s
        subject: %s
        repository: %s
    tools:
      pin: none
      allow: ["get_*"]
`, host.URL(), asset, binary, strings.Join(quoted, ", "), sc.Identity.Issuer, sc.Identity.Subject, verifytest.ScenarioPublisher)
	pol = strings.Replace(pol, "        binary: \"\"\n", "", 1)
	path := filepath.Join(sc.Dir, "release.yaml")
	if err := os.WriteFile(path, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
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

func TestReleaseBinaryLaunch(t *testing.T) {
	for _, archive := range []bool{false, true} {
		t.Run(fmt.Sprintf("archive=%v", archive), func(t *testing.T) {
			v, _ := newReleaseFixture(t, nil, archive)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := launch(ctx, v, "weather")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Report.Facts.Artifact.Source != "url" || len(s.Report.Facts.Signatures) != 1 {
				t.Fatalf("facts %+v", s.Report.Facts)
			}
			if _, err := callTool(ctx, s, "get_forecast"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReleaseBinaryRefusals(t *testing.T) {
	t.Run("tampered", func(t *testing.T) {
		v, host := newReleaseFixture(t, nil, false)
		host.Tamper("/v1.0.0/weather-linux", []byte("#!/bin/sh\necho pwned\n"))
		_, err := v.Check(context.Background(), "weather")
		if !errors.Is(err, preflight.ErrTampered) {
			t.Fatalf("got %v, want ErrTampered", err)
		}
		if _, ok := verify.ReportOf(err); !ok {
			t.Fatal("the refusal carries no report")
		}
	})
	t.Run("wrong signer", func(t *testing.T) {
		mallory := verifytest.GitHubActions("mallory/weather", ".github/workflows/release.yml", "refs/tags/v1.0.0", strings.Repeat("d4", 20))
		v, _ := newReleaseFixture(t, &mallory, false)
		_, err := v.Check(context.Background(), "weather")
		if !errors.Is(err, preflight.ErrIdentity) {
			t.Fatalf("got %v, want ErrIdentity", err)
		}
	})
}
