package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkVerifyBundleProcess measures `preflight verify-bundle` as a user
// runs it: a fresh process that loads a pinned trusted_root.json, reads and
// verifies the real npm provenance bundle of sigstore@1.3.0 for its sha512
// digest, and exits. The CLI is built once, with this test binary's tags.
func BenchmarkVerifyBundleProcess(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "preflight")
	build := exec.Command("go", "build", "-tags", vbBuildTags, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Skipf("the CLI does not build in this tree yet: %v\n%s", err, out)
	}
	args := []string{"verify-bundle", "--bundle", vbExample(b, "bundle-provenance.json"),
		"--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer,
		"--trusted-root", vbExample(b, "trusted-root-public-good.json"), vbNPMDigest}
	var stderr bytes.Buffer
	probe := exec.Command(bin, args...)
	probe.Stderr = &stderr
	if err := probe.Run(); err != nil {
		if strings.Contains(stderr.String(), "unknown command") {
			b.Skipf("verify-bundle is not registered in this build (tags %q)", vbBuildTags)
		}
		b.Fatalf("%v: %s", err, stderr.String())
	}
	for b.Loop() {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}
