package oci

import (
	"errors"
	"strings"
	"testing"

	preflight "github.com/mcp-preflight/preflight"
)

const fuzzSubject = "sha256:c00010ffc00010ffc00010ffc00010ffc00010ffc00010ffc00010ffc00010ff"

// fuzzLimits are small, so the fuzzer reaches them.
var fuzzLimits = Limits{MaxManifestBytes: 4096, MaxReferrers: 4, MaxBundles: 2, MaxBundleBytes: 1000}

// FuzzSelectBundleReferrers: any referrers list either fails with
// ErrMalformed or yields at most MaxBundles bundle descriptors, each
// named by sha256 and within the manifest limit.
func FuzzSelectBundleReferrers(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + fuzzSubject + `","size":779,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha512:00","size":1,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"},{"digest":"` + fuzzSubject + `","size":-1}]}`))
	f.Add([]byte(`{"manifests":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		descs, err := selectBundleReferrers(raw, fuzzLimits)
		if err != nil {
			if !errors.Is(err, preflight.ErrMalformed) || descs != nil {
				t.Fatalf("error %v (class), descriptors %v", err, descs)
			}
			return
		}
		if len(descs) > fuzzLimits.MaxBundles {
			t.Fatalf("%d descriptors", len(descs))
		}
		for _, d := range descs {
			if d.ArtifactType != BundleArtifactType || !ociDigestPath.MatchString(d.Digest.String()) || d.Size < 0 || d.Size > fuzzLimits.MaxManifestBytes {
				t.Fatalf("descriptor %+v accepted", d)
			}
		}
	})
}

// FuzzBundleLayers: any referrer manifest either fails (ErrMalformed, or
// a referrer about another subject) or yields 1..MaxBundles bundle layers
// within the bundle limit, and only for the expected subject.
func FuzzBundleLayers(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":"` + fuzzSubject + `","size":900}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + fuzzSubject + `","size":10}}`))
	f.Add([]byte(`{"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.3","digest":"sha256:00","size":1}],"subject":{"digest":"` + fuzzSubject + `"}}`))
	f.Add([]byte(`{"subject":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		layers, err := bundleLayers(raw, fuzzSubject, fuzzLimits)
		if err != nil {
			var other *otherSubjectError
			if !errors.Is(err, preflight.ErrMalformed) && !errors.As(err, &other) || layers != nil {
				t.Fatalf("error %v (class), layers %v", err, layers)
			}
			return
		}
		if len(layers) == 0 || len(layers) > fuzzLimits.MaxBundles {
			t.Fatalf("%d layers", len(layers))
		}
		if !strings.Contains(string(raw), strings.TrimPrefix(fuzzSubject, "sha256:")) {
			t.Fatal("accepted without naming the subject")
		}
		for _, l := range layers {
			if !ociDigestPath.MatchString(l.Digest.String()) || l.Size < 0 || l.Size > fuzzLimits.MaxBundleBytes {
				t.Fatalf("layer %+v accepted", l)
			}
		}
	})
}

// FuzzParseReference: an accepted reference names an explicit registry
// and a tag or sha256 digest, cannot be taken for a flag, and its pinned
// form parses back to itself.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"ghcr.io/o/r:v1", "127.0.0.1:5000/a/b@" + fuzzSubject, "alpine", "docker.io/library/alpine:3.20",
		"-v", "ghcr.io/o/r@sha512:00", "ghcr.io/o/r:v1@" + fuzzSubject, "GHCR.io/O/R:v1", "ghcr.io/o/r: v1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, preflight.ErrConfig) {
				t.Fatalf("error %v, not ErrConfig", err)
			}
			return
		}
		if strings.HasPrefix(s, "-") || strings.ContainsAny(s, " \t\r\n") {
			t.Fatalf("accepted %q", s)
		}
		img := Image{Repository: ref.Context().Name(), Digest: fuzzSubject}
		back, err := ParseReference(img.Pinned())
		if err != nil || back.Name() != img.Pinned() {
			t.Fatalf("pinned form %q of %q does not parse back: %v", img.Pinned(), s, err)
		}
	})
}
