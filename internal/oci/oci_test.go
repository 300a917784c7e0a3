package oci_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/oci"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

const (
	testRepo     = "mcp/echo"
	testGHRepo   = "example/echo-server"
	testWorkflow = ".github/workflows/release.yml"
	testRef      = "refs/tags/v1.0.0"
	testCommit   = "0123456789abcdef0123456789abcdef01234567"
)

// env is one registry, one virtual Sigstore and one signed image.
type env struct {
	reg    *verifytest.OCIRegistry
	ss     *verifytest.Sigstore
	id     verifytest.Identity
	digest string // of the pushed image, tag v1
}

func newEnv(t *testing.T) *env {
	t.Helper()
	reg, err := verifytest.NewOCIRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	ss, err := verifytest.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	d, err := reg.PushImage(testRepo, "v1", map[string][]byte{"server": []byte("#!/bin/sh\necho hi\n")})
	if err != nil {
		t.Fatal(err)
	}
	return &env{reg: reg, ss: ss, id: verifytest.GitHubActions(testGHRepo, testWorkflow, testRef, testCommit), digest: d}
}

func (e *env) ref(tag string) string { return e.reg.Host() + "/" + testRepo + ":" + tag }

// attest attaches SLSA provenance for digest, signed by id.
func (e *env) attest(t *testing.T, digest string, id verifytest.Identity) {
	t.Helper()
	st, err := verifytest.SLSAProvenanceV1(e.reg.Host()+"/"+testRepo, map[string]string{"sha256": strings.TrimPrefix(digest, "sha256:")}, verifytest.ProvenanceFor(id))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.ss.Attest(id, st, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.AttachBundle(testRepo, digest, b); err != nil {
		t.Fatal(err)
	}
}

func (e *env) signer() policy.Signer {
	return policy.Signer{Issuer: e.id.Issuer, Subject: e.id.Subject, Repository: testGHRepo, Ref: testRef, Workflow: testWorkflow}
}

// check verifies bundles for img as a host would.
func (e *env) check(t *testing.T, img oci.Image, bundles []oci.Bundle, predicates ...string) ([]policy.SignatureFacts, error) {
	t.Helper()
	tm, err := e.ss.TrustedMaterial()
	if err != nil {
		t.Fatal(err)
	}
	c := verify.EvidenceCheck{Material: tm, Artifact: map[string]string{"sha256": img.Hex()},
		Signers: []policy.Signer{e.signer()}, PredicateTypes: predicates}
	for _, b := range bundles {
		c.Bundles = append(c.Bundles, verify.Bundle{Name: b.Name, JSON: b.JSON})
	}
	return verify.VerifyEvidence(c)
}

func newClient(t *testing.T, cfg oci.Config) *oci.Client {
	t.Helper()
	c, err := oci.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantClass(t *testing.T, err error, class *preflight.Class) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("error = %v, want class %q", err, class)
	}
	var pe *preflight.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *preflight.Error", err)
	}
}

func TestResolveAndVerify(t *testing.T) {
	e := newEnv(t)
	e.attest(t, e.digest, e.id)
	// A message signature over the manifest bytes signs the same digest.
	manifest, err := e.reg.Manifest(testRepo, "v1")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := e.ss.SignBlob(e.id, manifest, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.AttachBundle(testRepo, e.digest, sig); err != nil {
		t.Fatal(err)
	}
	// An unrelated referrer (an SBOM, say) is ignored.
	if _, err := e.reg.AttachArtifact(testRepo, e.digest, "application/spdx+json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`), nil); err != nil {
		t.Fatal(err)
	}

	c := newClient(t, oci.Config{})
	ctx := context.Background()
	img, err := c.Resolve(ctx, e.ref("v1"), "")
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != e.digest || img.Tag != "v1" || img.Repository != e.reg.Host()+"/"+testRepo || img.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("image = %+v, want digest %s", img, e.digest)
	}
	if img.Pinned() != e.reg.Host()+"/"+testRepo+"@"+e.digest {
		t.Errorf("Pinned() = %s", img.Pinned())
	}
	bundles, err := c.Bundles(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(bundles) != 2 {
		t.Fatalf("found %d bundles, want 2", len(bundles))
	}
	facts, err := e.check(t, img, bundles, verify.PredicateSLSAProvenanceV1)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{facts[0].Kind, facts[1].Kind}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"dsse", "message-signature"}) {
		t.Errorf("kinds = %v", kinds)
	}

	// Pinned by the same digest, and resolved by digest: the same image.
	for _, ref := range []string{e.ref("v1"), img.Pinned()} {
		got, err := c.Resolve(ctx, ref, e.digest)
		if err != nil {
			t.Fatalf("Resolve(%s, pinned): %v", ref, err)
		}
		if got.Digest != e.digest {
			t.Errorf("Resolve(%s) digest = %s", ref, got.Digest)
		}
	}
}

func TestReferrersTagFallback(t *testing.T) {
	e := newEnv(t)
	e.reg.SetReferrersAPI(false)
	e.attest(t, e.digest, e.id)
	c := newClient(t, oci.Config{})
	img, err := c.Resolve(context.Background(), e.ref("v1"), e.digest)
	if err != nil {
		t.Fatal(err)
	}
	bundles, err := c.Bundles(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.check(t, img, bundles, verify.PredicateSLSAProvenanceV1); err != nil {
		t.Fatal(err)
	}
}

func TestTagMovedToAnotherImage(t *testing.T) {
	e := newEnv(t)
	e.attest(t, e.digest, e.id)
	other, err := e.reg.PushImage(testRepo, "evil", map[string][]byte{"server": []byte("#!/bin/sh\nsteal\n")})
	if err != nil {
		t.Fatal(err)
	}
	// The attacker's image is even signed, by someone.
	e.attest(t, other, verifytest.GitHubActions("attacker/fork", testWorkflow, testRef, testCommit))
	if err := e.reg.Retag(testRepo, "v1", other); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, oci.Config{})
	_, err = c.Resolve(context.Background(), e.ref("v1"), e.digest)
	wantClass(t, err, preflight.ErrTampered)
	if !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), e.digest) {
		t.Errorf("error %q does not name both digests", err)
	}

	// Without a pin the tag resolves to the other image, whose evidence
	// names a signer the policy does not allow.
	img, err := c.Resolve(context.Background(), e.ref("v1"), "")
	if err != nil {
		t.Fatal(err)
	}
	bundles, err := c.Bundles(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.check(t, img, bundles)
	wantClass(t, err, preflight.ErrIdentity)
}

func TestEvidenceForAnotherImage(t *testing.T) {
	e := newEnv(t)
	other, err := e.reg.PushImage(testRepo, "v2", map[string][]byte{"server": []byte("other")})
	if err != nil {
		t.Fatal(err)
	}
	// Provenance about the other image, attached to this one.
	st, err := verifytest.SLSAProvenanceV1("x", map[string]string{"sha256": strings.TrimPrefix(other, "sha256:")}, verifytest.ProvenanceFor(e.id))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.ss.Attest(e.id, st, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.AttachBundle(testRepo, e.digest, b); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, oci.Config{})
	img, err := c.Resolve(context.Background(), e.ref("v1"), "")
	if err != nil {
		t.Fatal(err)
	}
	bundles, err := c.Bundles(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.check(t, img, bundles)
	wantClass(t, err, preflight.ErrTampered)
}

func TestNoEvidence(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, oci.Config{})
	img, err := c.Resolve(context.Background(), e.ref("v1"), "")
	if err != nil {
		t.Fatal(err)
	}
	bundles, err := c.Bundles(context.Background(), img)
	wantClass(t, err, preflight.ErrSignature)
	if bundles != nil || !strings.Contains(err.Error(), "no evidence") {
		t.Errorf("bundles %v, error %v", bundles, err)
	}

	// A referrer that is not a bundle is no evidence either.
	if _, err := e.reg.AttachArtifact(testRepo, e.digest, "application/spdx+json", "application/spdx+json", []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.Bundles(context.Background(), img)
	wantClass(t, err, preflight.ErrSignature)

	// A legacy cosign signature is named, and refused.
	if err := e.reg.AttachLegacyCosignSignature(testRepo, e.digest); err != nil {
		t.Fatal(err)
	}
	_, err = c.Bundles(context.Background(), img)
	wantClass(t, err, preflight.ErrSignature)
	if msg := err.Error(); !strings.Contains(msg, "legacy cosign signature format found") || !strings.Contains(msg, "re-sign with cosign v3 bundles") ||
		!strings.Contains(msg, strings.Replace(e.digest, ":", "-", 1)+".sig") {
		t.Errorf("error %q does not explain the legacy format", msg)
	}
}

func TestResolveFailures(t *testing.T) {
	e := newEnv(t)
	c := newClient(t, oci.Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		name, ref, pin string
		class          *preflight.Class
	}{
		{"no registry", "mcp/echo:v1", "", preflight.ErrConfig},
		{"no tag", e.reg.Host() + "/" + testRepo, "", preflight.ErrConfig},
		{"flag", "-v", "", preflight.ErrConfig},
		{"bad pin", e.ref("v1"), "sha256:abc", preflight.ErrConfig},
		{"digest contradicts pin", e.reg.Host() + "/" + testRepo + "@" + e.digest, "sha256:" + strings.Repeat("0", 64), preflight.ErrConfig},
		{"unknown tag", e.ref("nope"), "", preflight.ErrNotFound},
		{"unknown repository", e.reg.Host() + "/mcp/nope:v1", "", preflight.ErrNotFound},
		{"unknown digest", e.reg.Host() + "/" + testRepo + "@sha256:" + strings.Repeat("0", 64), "", preflight.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := c.Resolve(ctx, tc.ref, tc.pin)
			wantClass(t, err, tc.class)
			if img != (oci.Image{}) {
				t.Errorf("image %+v returned alongside an error", img)
			}
		})
	}
}

func TestRegistryFaults(t *testing.T) {
	e := newEnv(t)
	e.attest(t, e.digest, e.id)
	ctx := context.Background()
	resolved := func(t *testing.T) oci.Image {
		img, err := newClient(t, oci.Config{}).Resolve(ctx, e.ref("v1"), e.digest)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}(t)
	for _, tc := range []struct {
		name    string
		fault   verifytest.OCIFault
		cfg     oci.Config
		bundles bool // fault the Bundles step rather than Resolve
		class   *preflight.Class
	}{
		{name: "500 on manifest", fault: verifytest.OCIFault{Path: "/manifests/", Status: http.StatusInternalServerError}, class: preflight.ErrUnavailable},
		{name: "500 on ping", fault: verifytest.OCIFault{Status: http.StatusServiceUnavailable}, class: preflight.ErrUnavailable},
		{name: "500 on referrers", fault: verifytest.OCIFault{Path: "/referrers/", Status: http.StatusInternalServerError}, bundles: true, class: preflight.ErrUnavailable},
		{name: "500 on bundle blob", fault: verifytest.OCIFault{Path: "/blobs/", Status: http.StatusInternalServerError}, bundles: true, class: preflight.ErrUnavailable},
		{name: "slow manifest", fault: verifytest.OCIFault{Path: "/manifests/", Hang: true}, cfg: oci.Config{Timeout: 200 * time.Millisecond}, class: preflight.ErrTimeout},
		{name: "slow referrers", fault: verifytest.OCIFault{Path: "/referrers/", Hang: true}, cfg: oci.Config{Timeout: 200 * time.Millisecond}, bundles: true, class: preflight.ErrTimeout},
		{name: "slow request, client timeout", fault: verifytest.OCIFault{Path: "/manifests/", Hang: true}, cfg: oci.Config{HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}}, class: preflight.ErrTimeout},
		{name: "oversized manifest", cfg: oci.Config{Limits: oci.Limits{MaxManifestBytes: 64}}, class: preflight.ErrMalformed},
		{name: "oversized manifest, chunked", fault: verifytest.OCIFault{Path: "/manifests/", Chunked: true}, cfg: oci.Config{Limits: oci.Limits{MaxManifestBytes: 64}}, class: preflight.ErrMalformed},
		{name: "oversized bundle", cfg: oci.Config{Limits: oci.Limits{MaxBundleBytes: 256}}, bundles: true, class: preflight.ErrMalformed},
		{name: "oversized referrers list", fault: verifytest.OCIFault{Path: "/referrers/", Chunked: true}, cfg: oci.Config{Limits: oci.Limits{MaxManifestBytes: 128}}, bundles: true, class: preflight.ErrMalformed},
		{name: "oversized blob, descriptor lying", fault: verifytest.OCIFault{Path: "/blobs/sha256:", Body: make([]byte, 1<<20), Chunked: true}, cfg: oci.Config{Limits: oci.Limits{MaxBundleBytes: 64 << 10}}, bundles: true, class: preflight.ErrMalformed},
		{name: "manifest not JSON", fault: verifytest.OCIFault{Path: "/manifests/v1", Body: []byte("not json")}, class: preflight.ErrMalformed},
		{name: "other bytes by digest", fault: verifytest.OCIFault{Path: "/manifests/sha256:", Body: []byte(`{"schemaVersion":2}`)}, bundles: true, class: preflight.ErrTampered},
		{name: "other blob by digest", fault: verifytest.OCIFault{Path: "/blobs/sha256:", Body: []byte(`{"mediaType":"x"}`)}, bundles: true, class: preflight.ErrTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.cfg)
			e.reg.SetFault(tc.fault)
			defer e.reg.SetFault(verifytest.OCIFault{})
			start := time.Now()
			var err error
			if tc.bundles {
				var bundles []oci.Bundle
				bundles, err = c.Bundles(ctx, resolved)
				if bundles != nil {
					t.Errorf("bundles returned alongside an error")
				}
			} else {
				_, err = c.Resolve(ctx, e.ref("v1"), "")
			}
			wantClass(t, err, tc.class)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestTooManyReferrers(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		if _, err := e.reg.AttachArtifact(testRepo, e.digest, oci.BundleArtifactType, oci.BundleArtifactType, []byte("{}"),
			map[string]string{"n": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	img, err := newClient(t, oci.Config{}).Resolve(ctx, e.ref("v1"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, lim := range []oci.Limits{{MaxReferrers: 2}, {MaxBundles: 2}} {
		_, err := newClient(t, oci.Config{Limits: lim}).Bundles(ctx, img)
		wantClass(t, err, preflight.ErrMalformed)
	}
	// Within the limits the three are found (and would then fail
	// verification, being no bundles at all).
	bundles, err := newClient(t, oci.Config{Limits: oci.Limits{MaxReferrers: 3, MaxBundles: 3}}).Bundles(ctx, img)
	if err != nil || len(bundles) != 3 {
		t.Fatalf("Bundles = %d, %v", len(bundles), err)
	}
	_, err = e.check(t, img, bundles)
	wantClass(t, err, preflight.ErrMalformed)
}

func TestCanceled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newClient(t, oci.Config{}).Resolve(ctx, e.ref("v1"), "")
	wantClass(t, err, preflight.ErrTimeout)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestNewRejectsNegativeLimits(t *testing.T) {
	for _, cfg := range []oci.Config{{Timeout: -1}, {Limits: oci.Limits{MaxBundles: -1}}, {Limits: oci.Limits{MaxManifestBytes: -1}}} {
		_, err := oci.New(cfg)
		wantClass(t, err, preflight.ErrConfig)
	}
}

func TestHTTPClientUnchanged(t *testing.T) {
	e := newEnv(t)
	hc := &http.Client{Timeout: 5 * time.Second}
	before := *hc
	c := newClient(t, oci.Config{HTTPClient: hc})
	if _, err := c.Resolve(context.Background(), e.ref("v1"), ""); err != nil {
		t.Fatal(err)
	}
	if hc.Transport != before.Transport || hc.Timeout != before.Timeout || hc.CheckRedirect != nil || hc.Jar != nil {
		t.Error("the caller's http.Client was changed")
	}
}

// TestLaunchCommand runs the command with a stand-in docker that records
// its arguments and the environment it was given.
func TestLaunchCommand(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + record + "\nprintf 'FOO=%s\\n' \"$FOO\" >> " + record + "\n"
	docker := filepath.Join(dir, "docker")
	if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	img := oci.Image{Ref: "ghcr.io/example/echo:v1", Repository: "ghcr.io/example/echo", Tag: "v1", Digest: "sha256:" + strings.Repeat("ab", 32)}
	cmd, err := oci.LaunchCommand(docker, img, []string{"serve", "--stdio"}, []string{"FOO", "BAR_2"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = []string{"FOO=secret", "BAR_2=x", "PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stand-in docker: %v: %s", err, out)
	}
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{"run", "--rm", "-i", "--pull=missing", "-e", "FOO", "-e", "BAR_2",
		"ghcr.io/example/echo@sha256:" + strings.Repeat("ab", 32), "serve", "--stdio", "FOO=secret"}, "\n") + "\n"
	if string(got) != want {
		t.Errorf("docker was run with\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(string(got), ":v1") || strings.Contains(strings.Join(cmd.Args, " "), "secret") {
		t.Error("the image was named by tag, or a value reached the command line")
	}

	for _, tc := range []struct {
		name    string
		runtime string
		img     oci.Image
		env     []string
	}{
		{"not a runtime", filepath.Join(dir, "sh"), img, nil},
		{"no runtime", "", img, nil},
		{"value in env", docker, img, []string{"FOO=bar"}},
		{"flag in env", docker, img, []string{"--privileged"}},
		{"no digest", docker, oci.Image{Repository: "ghcr.io/example/echo", Tag: "v1"}, nil},
		{"flag as repository", docker, oci.Image{Repository: "--privileged", Digest: img.Digest}, nil},
		{"tag in repository", docker, oci.Image{Repository: "ghcr.io/example/echo:v1", Digest: img.Digest}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := oci.LaunchCommand(tc.runtime, tc.img, nil, tc.env)
			wantClass(t, err, preflight.ErrConfig)
			if cmd != nil {
				t.Error("command returned alongside an error")
			}
		})
	}
}

// TestReferrerAboutAnotherImage: a referrers list naming the bundle of
// another image (a hostile or broken registry) yields no evidence.
func TestReferrerAboutAnotherImage(t *testing.T) {
	e := newEnv(t)
	other, err := e.reg.PushImage(testRepo, "v2", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := verifytest.SLSAProvenanceV1("x", map[string]string{"sha256": strings.TrimPrefix(other, "sha256:")}, verifytest.ProvenanceFor(e.id))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.ss.Attest(e.id, st, verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	referrer, err := e.reg.AttachBundle(testRepo, other, b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.reg.Manifest(testRepo, referrer)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, oci.Config{})
	img, err := c.Resolve(context.Background(), e.ref("v1"), e.digest)
	if err != nil {
		t.Fatal(err)
	}
	e.reg.SetFault(verifytest.OCIFault{Path: "/referrers/", Body: fmt.Appendf(nil,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"artifactType":%q}]}`,
		referrer, len(raw), oci.BundleArtifactType)})
	bundles, err := c.Bundles(context.Background(), img)
	wantClass(t, err, preflight.ErrSignature)
	if bundles != nil || !strings.Contains(err.Error(), "no evidence") {
		t.Errorf("bundles %v, error %v", bundles, err)
	}
}
