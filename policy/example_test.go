package policy_test

import (
	"errors"
	"fmt"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
)

const examplePolicy = `
version: 1
servers:
  weather:
    source:
      url: {url: "https://example.com/weather"}
    signers:
      - issuer: https://token.actions.githubusercontent.com
        subject_pattern: '^https://github\.com/acme/weather/\.github/workflows/release\.yml@refs/tags/v[0-9.]+$'
    provenance:
      repository: acme/weather
      ref_patterns: ['^refs/tags/v[0-9.]+$']
`

func facts(subject, ref string) policy.Facts {
	return policy.Facts{
		Server:   "weather",
		Artifact: policy.ArtifactFacts{Name: "weather", Source: "url", Digests: map[string]string{"sha256": "00"}},
		Signatures: []policy.SignatureFacts{{
			Kind:        "dsse",
			Certificate: &policy.CertificateFacts{Issuer: "https://token.actions.githubusercontent.com", Subject: subject},
			Provenance:  &policy.ProvenanceFacts{SourceRepository: "https://github.com/acme/weather", SourceRef: ref},
		}},
	}
}

func Example() {
	p, err := policy.Parse("preflight.yaml", []byte(examplePolicy))
	if err != nil {
		fmt.Println(err)
		return
	}
	s, _ := p.Server("weather")

	good := facts("https://github.com/acme/weather/.github/workflows/release.yml@refs/tags/v1.4.0", "refs/tags/v1.4.0")
	fmt.Println("release:", policy.Evaluate(s, p.Mode, good, nil).Allow)

	branch := facts("https://github.com/acme/weather/.github/workflows/release.yml@refs/heads/main", "refs/heads/main")
	d := policy.Evaluate(s, p.Mode, branch, nil)
	for _, f := range d.Findings {
		fmt.Println(f.Code)
	}
	err = d.Err("weather")
	fmt.Println("identity error:", errors.Is(err, preflight.ErrIdentity), "security:", errors.Is(err, preflight.ErrSecurity))
	// Output:
	// release: true
	// signer.identity
	// provenance.ref
	// identity error: true security: true
}

func ExampleLint() {
	bad := `
version: 1
servers:
  weather:
    source: {file: {path: ./weather}}
    signers:
      - issuer: https://token.actions.githubusercontent.com
        subject_pattern: 'acme'
`
	for _, p := range policy.Lint("preflight.yaml", []byte(bad)) {
		fmt.Println(p)
	}
	// Output:
	// preflight.yaml:8:26: servers.weather.signers[0].subject_pattern: pattern "acme" is not anchored; write it as ^(?:...)$ so it matches whole values only
}

func ExampleEvaluateSurface() {
	p, _ := policy.Parse("preflight.yaml", []byte(examplePolicy))
	s, _ := p.Server("weather")
	pins := map[string]string{"get_weather": "sha256:aa"}
	v := policy.EvaluateSurface(s, p.Mode, policy.KindTool, []policy.SurfaceItem{
		{Name: "get_weather", Digest: "sha256:aa"},
		{Name: "get-weather", Digest: "sha256:bb"},
		{Name: "send_email", Digest: "sha256:cc"},
	}, pins)
	fmt.Println("exposed:", v.Exposed)
	for _, w := range v.Withheld {
		fmt.Println("withheld:", w.Name, w.Finding.Code)
	}
	// Output:
	// exposed: [get_weather]
	// withheld: get-weather tool.lookalike
	// withheld: send_email tool.added
}
