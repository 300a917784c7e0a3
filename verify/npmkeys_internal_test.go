package verify

import (
	"context"
	"testing"

	"github.com/mcp-preflight/preflight/policy"
)

// TestNPMRegistrySigner: a policy signer naming the npm registry is
// expanded into the registry's keys (here the embedded copy of Sigstore's
// TUF target), which verify the real publish attestation of sigstore@1.3.0.
func TestNPMRegistrySigner(t *testing.T) {
	server := &policy.Server{Name: "sigstore-js", Source: policy.Source{NPM: &policy.NPMSource{Package: "sigstore", Version: "1.3.0"}},
		Signers: []policy.Signer{{Issuer: evNPMIssuer, Subject: evNPMSubject}, {NPMRegistry: true}}}
	p := &policy.Policy{Version: 1, Servers: map[string]*policy.Server{"sigstore-js": server}}
	v, err := New(Config{Policy: p, StoreDir: t.TempDir(), TrustedMaterial: evExampleRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	eff, err := v.expandSigners(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, sg := range eff.Signers {
		if sg.NPMRegistry {
			t.Fatal("an npm_registry rule survived the expansion")
		}
		if sg.PublicKey != "" {
			keys++
		}
	}
	if keys == 0 || len(server.Signers) != 2 || !server.Signers[1].NPMRegistry {
		t.Fatalf("expanded into %d keys; the policy's own server changed: %+v", keys, server.Signers)
	}
	material, _, err := v.trustedMaterial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check := evNPMCheck(t)
	check.Material = material
	check.Signers = eff.Signers
	check.Bundles = check.Bundles[1:] // the publish attestation alone
	check.PredicateTypes = []string{PredicateNPMPublishV01}
	facts, err := VerifyEvidence(check)
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != 1 || facts[0].KeyID == "" {
		t.Fatalf("facts %+v", facts)
	}
}
