package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkVerifyBundleProcess measures `preflight verify-bundle` as a user
// runs it: a fresh process that loads a pinned trusted_root.json, reads and
// verifies the real npm provenance bundle of sigstore@1.3.0 for its sha512
// digest, and exits. The CLI is built once per benchmark run.
func BenchmarkVerifyBundleProcess(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "preflight")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("building the CLI: %v\n%s", err, out)
	}
	args := []string{"verify-bundle", "--bundle", vbExample(b, "bundle-provenance.json"),
		"--certificate-identity", vbNPMSubject, "--certificate-oidc-issuer", vbNPMIssuer,
		"--trusted-root", vbExample(b, "trusted-root-public-good.json"), vbNPMDigest}
	for b.Loop() {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}
