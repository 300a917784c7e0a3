package verifytest_test

import (
	"bytes"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// A release signed in a GitHub Actions workflow, verified the way a host
// verifies it: bundle and trusted root read from JSON.
func ExampleSigstore() {
	s, err := verifytest.NewSigstore()
	if err != nil {
		panic(err)
	}
	artifact := []byte("server bytes")
	id := verifytest.GitHubActions("acme/weather-mcp", ".github/workflows/release.yml", "refs/tags/v1.0.0", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b")
	bundleJSON, err := s.SignBlob(id, artifact, verifytest.SignOptions{})
	if err != nil {
		panic(err)
	}
	rootJSON, err := s.TrustedRootJSON()
	if err != nil {
		panic(err)
	}

	tr, err := root.NewTrustedRootFromJSON(rootJSON)
	if err != nil {
		panic(err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		panic(err)
	}
	v, err := verify.NewVerifier(tr, verify.WithSignedCertificateTimestamps(1), verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		panic(err)
	}
	certID, err := verify.NewShortCertificateIdentity(id.Issuer, "", id.Subject, "")
	if err != nil {
		panic(err)
	}
	res, err := v.Verify(&b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(artifact)), verify.WithCertificateIdentity(certID)))
	if err != nil {
		panic(err)
	}
	cert := res.Signature.Certificate
	fmt.Println(cert.SubjectAlternativeName)
	fmt.Println(cert.SourceRepositoryURI, cert.SourceRepositoryRef, cert.RunnerEnvironment)
	// Output:
	// https://github.com/acme/weather-mcp/.github/workflows/release.yml@refs/tags/v1.0.0
	// https://github.com/acme/weather-mcp refs/tags/v1.0.0 github-hosted
}
