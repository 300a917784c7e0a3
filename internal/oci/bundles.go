package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	preflight "github.com/mcp-preflight/preflight"
)

// Media types and annotations of Sigstore evidence in registries.
const (
	// BundleArtifactType is the artifact type of a Sigstore bundle
	// attached to an image (cosign v3, actions/attest-build-provenance).
	BundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// ociBundleTypeAlt is the parameterised spelling of the same media
	// type, accepted for bundle layers.
	ociBundleTypeAlt = "application/vnd.dev.sigstore.bundle+json;version=0.3"
	// ociSimpleSigning is the layer media type of legacy cosign signatures.
	ociSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// ociDSSELayer is the layer media type of legacy cosign attestations.
	ociDSSELayer          = "application/vnd.dsse.envelope.v1+json"
	ociCosignSignatureAnn = "dev.cosignproject.cosign/signature"
	ociCosignBundleAnn    = "dev.sigstore.cosign/bundle"
)

// Bundle is one Sigstore bundle found for an image: a name for messages
// (REPOSITORY@DIGEST of the referrer manifest that carries it) and its
// JSON. It converts to verify.Bundle.
type Bundle struct {
	Name string
	JSON []byte
}

// Bundles finds the Sigstore bundles attached to img (see the package
// documentation) and returns them, in the order the registry lists them.
// It does not verify them: pass them to verify.VerifyEvidence with the
// artifact digest {"sha256": img.Hex()}.
//
// Failures match: ErrSignature (no bundle; the message says when a legacy
// cosign signature exists instead), ErrMalformed (a referrers list,
// manifest or bundle over its limit or unparsable, more referrers or
// bundles than the limits allow), ErrTampered (a registry answering a
// request by digest with other bytes), ErrConfig (an Image that Resolve
// did not make), ErrUnavailable and ErrTimeout.
func (c *Client) Bundles(ctx context.Context, img Image) ([]Bundle, error) {
	subject := "image " + img.Pinned()
	repo, err := name.NewRepository(img.Repository, name.StrictValidation)
	if err != nil || !ociDigestPath.MatchString(img.Digest) {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: subject, Expected: "an image from Resolve", Found: fmt.Sprintf("%+v", img), Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	opts := c.options(ctx)

	idx, err := remote.Referrers(repo.Digest(img.Digest), opts...)
	if err != nil {
		return nil, c.fail(ctx, subject+" referrers", err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return nil, c.fail(ctx, subject+" referrers", err)
	}
	descs, err := selectBundleReferrers(raw, c.cfg.Limits)
	if err != nil {
		return nil, ociWithSubject(err, subject+" referrers")
	}

	var out []Bundle
	for _, d := range descs {
		b, err := c.referrerBundles(ctx, repo, img, d, len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	if len(out) == 0 {
		return nil, c.noEvidence(ctx, repo, img)
	}
	c.log.DebugContext(ctx, "oci: bundles found", "image", img.Pinned(), "bundles", len(out))
	return out, nil
}

// referrerBundles fetches the referrer manifest d and the bundles it
// carries. have is how many bundles were found before, for the limit.
func (c *Client) referrerBundles(ctx context.Context, repo name.Repository, img Image, d v1.Descriptor, have int) ([]Bundle, error) {
	ref := repo.Digest(d.Digest.String())
	subject := "referrer " + ref.String()
	desc, err := remote.Get(ref, c.options(ctx)...)
	if err != nil {
		return nil, c.fail(ctx, subject, err)
	}
	layers, err := bundleLayers(desc.Manifest, img.Digest, c.cfg.Limits)
	if err != nil {
		var other *otherSubjectError
		if errors.As(err, &other) {
			// Listed for this image but about another: a broken or
			// hostile referrers list. Its evidence would not bind to
			// this digest anyway.
			c.log.WarnContext(ctx, "oci: referrer skipped", "referrer", ref.String(), "image", img.Pinned(), "subject", other.found)
			return nil, nil
		}
		return nil, ociWithSubject(err, subject)
	}
	if have+len(layers) > c.cfg.Limits.MaxBundles {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "image " + img.Pinned(),
			Expected: fmt.Sprintf("at most %d Sigstore bundles", c.cfg.Limits.MaxBundles), Found: "more",
			Hint: "raise the OCI bundle limit only if the publisher really attaches that many"}
	}
	var out []Bundle
	for _, l := range layers {
		data, err := c.blob(ctx, repo.Digest(l.Digest.String()), l.Size)
		if err != nil {
			return nil, c.fail(ctx, "bundle "+repo.Digest(l.Digest.String()).String(), err)
		}
		out = append(out, Bundle{Name: ref.String(), JSON: data})
	}
	return out, nil
}

// blob reads a blob of the expected size, bounded and checked by digest.
func (c *Client) blob(ctx context.Context, ref name.Digest, size int64) ([]byte, error) {
	layer, err := remote.Layer(ref, c.options(ctx)...)
	if err != nil {
		return nil, err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, c.cfg.Limits.MaxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > c.cfg.Limits.MaxBundleBytes {
		return nil, &ociLimitError{what: "blob", url: ref.String(), limit: c.cfg.Limits.MaxBundleBytes, found: -1}
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != ref.DigestStr() {
		return nil, &ociDigestError{url: ref.String(), want: ref.DigestStr(), got: got}
	}
	if int64(len(data)) != size {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "bundle " + ref.String(),
			Expected: fmt.Sprintf("%d bytes (the manifest's descriptor)", size), Found: fmt.Sprintf("%d bytes", len(data))}
	}
	return data, nil
}

// noEvidence is the failure for an image without bundles: it looks for
// the legacy cosign tags to say what was found instead.
func (c *Client) noEvidence(ctx context.Context, repo name.Repository, img Image) error {
	base := strings.Replace(img.Digest, ":", "-", 1)
	var legacy []string
	for _, suffix := range []string{".sig", ".att"} {
		tag := repo.Tag(base + suffix)
		desc, err := remote.Get(tag, c.options(ctx)...)
		if err != nil {
			var te *transport.Error
			if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
				continue
			}
			return c.fail(ctx, "legacy cosign tag "+tag.String(), err)
		}
		if n := ociLegacyLayers(desc.Manifest); n > 0 {
			legacy = append(legacy, fmt.Sprintf("%s (%d layers)", tag.TagStr(), n))
		}
	}
	if len(legacy) > 0 {
		return &preflight.Error{Class: preflight.ErrSignature, Subject: "image " + img.Pinned(),
			Expected: "a Sigstore bundle attached as an OCI referrer (" + BundleArtifactType + ")",
			Found:    "legacy cosign signature format found: " + strings.Join(legacy, ", "),
			Hint:     "re-sign with cosign v3 bundles (cosign sign, or cosign attest, with the default --new-bundle-format); Preflight does not verify legacy cosign signatures"}
	}
	return &preflight.Error{Class: preflight.ErrSignature, Subject: "image " + img.Pinned(),
		Expected: "a Sigstore bundle attached as an OCI referrer (" + BundleArtifactType + ")", Found: "no evidence",
		Hint: "the publisher must sign the image (cosign v3 sign or attest, or actions/attest-build-provenance with push-to-registry)"}
}

// ociLegacyLayers counts the layers of a legacy cosign signature or
// attestation manifest; 0 when raw is not one.
func ociLegacyLayers(raw []byte) int {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range m.Layers {
		_, sig := l.Annotations[ociCosignSignatureAnn]
		_, bundle := l.Annotations[ociCosignBundleAnn]
		if l.MediaType == ociSimpleSigning || l.MediaType == ociDSSELayer || sig || bundle {
			n++
		}
	}
	return n
}

// selectBundleReferrers parses a referrers list (an OCI image index, as
// untrusted input) and returns the descriptors of Sigstore bundle
// referrers, in order. More than limits.MaxReferrers descriptors of any
// type, or more bundle referrers than limits.MaxBundles, is ErrMalformed,
// as is a bundle descriptor that is not a sha256 manifest within
// limits.MaxManifestBytes. Zero limits take the defaults.
func selectBundleReferrers(raw []byte, limits Limits) ([]v1.Descriptor, error) {
	limits = limits.withDefaults()
	bad := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "referrers", Expected: expected, Found: found, Err: err}
	}
	if int64(len(raw)) > limits.MaxManifestBytes {
		return nil, bad(fmt.Sprintf("at most %d bytes", limits.MaxManifestBytes), fmt.Sprintf("%d bytes", len(raw)), nil)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, bad("an OCI image index", "invalid JSON", err)
	}
	if len(idx.Manifests) > limits.MaxReferrers {
		return nil, bad(fmt.Sprintf("at most %d referrers", limits.MaxReferrers), fmt.Sprint(len(idx.Manifests)), nil)
	}
	var out []v1.Descriptor
	for _, d := range idx.Manifests {
		if d.ArtifactType != BundleArtifactType {
			continue
		}
		if d.Digest.Algorithm != "sha256" || !ociDigestPath.MatchString(d.Digest.String()) {
			return nil, bad("bundle referrers named by sha256", fmt.Sprintf("%q", d.Digest.String()), nil)
		}
		if d.Size < 0 || d.Size > limits.MaxManifestBytes {
			return nil, bad(fmt.Sprintf("bundle referrer manifests of at most %d bytes", limits.MaxManifestBytes), fmt.Sprintf("%d bytes", d.Size), nil)
		}
		if len(out) == limits.MaxBundles {
			return nil, bad(fmt.Sprintf("at most %d Sigstore bundles", limits.MaxBundles), "more", nil)
		}
		out = append(out, d)
	}
	return out, nil
}

// bundleLayers parses a bundle referrer's manifest (untrusted) and returns
// its bundle layers. The manifest must name subjectDigest as its subject,
// else the failure is an *otherSubjectError (nothing for this image); a manifest
// that does not parse, has no bundle layer, or a layer that is not sha256
// within limits.MaxBundleBytes, is ErrMalformed.
func bundleLayers(raw []byte, subjectDigest string, limits Limits) ([]v1.Descriptor, error) {
	limits = limits.withDefaults()
	bad := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "bundle referrer", Expected: expected, Found: found, Err: err}
	}
	if int64(len(raw)) > limits.MaxManifestBytes {
		return nil, bad(fmt.Sprintf("at most %d bytes", limits.MaxManifestBytes), fmt.Sprintf("%d bytes", len(raw)), nil)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, bad("an OCI image manifest", "invalid JSON", err)
	}
	if m.Subject == nil || m.Subject.Digest.String() != subjectDigest {
		found := "no subject"
		if m.Subject != nil {
			found = m.Subject.Digest.String()
		}
		return nil, &otherSubjectError{want: subjectDigest, found: found}
	}
	var out []v1.Descriptor
	for _, l := range m.Layers {
		if l.MediaType != BundleArtifactType && l.MediaType != ociBundleTypeAlt {
			continue
		}
		if l.Digest.Algorithm != "sha256" || !ociDigestPath.MatchString(l.Digest.String()) {
			return nil, bad("bundle layers named by sha256", fmt.Sprintf("%q", l.Digest.String()), nil)
		}
		if l.Size < 0 || l.Size > limits.MaxBundleBytes {
			return nil, bad(fmt.Sprintf("bundles of at most %d bytes", limits.MaxBundleBytes), fmt.Sprintf("%d bytes", l.Size), nil)
		}
		if len(out) == limits.MaxBundles {
			return nil, bad(fmt.Sprintf("at most %d Sigstore bundles", limits.MaxBundles), "more", nil)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, bad("a layer of media type "+BundleArtifactType, fmt.Sprintf("%d other layers", len(m.Layers)), nil)
	}
	return out, nil
}

// otherSubjectError: a referrer about another image than the one whose
// referrers list named it. Bundles skips such referrers.
type otherSubjectError struct{ want, found string }

func (e *otherSubjectError) Error() string {
	return "referrer subject " + e.found + ", not " + e.want
}

// withDefaults fills zero limits with the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxManifestBytes <= 0 {
		l.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if l.MaxReferrers <= 0 {
		l.MaxReferrers = DefaultMaxReferrers
	}
	if l.MaxBundles <= 0 {
		l.MaxBundles = DefaultMaxBundles
	}
	if l.MaxBundleBytes <= 0 {
		l.MaxBundleBytes = DefaultMaxBundleBytes
	}
	return l
}

// ociWithSubject returns err with the subject replaced when it is a
// *preflight.Error, so messages name the image.
func ociWithSubject(err error, subject string) error {
	var pe *preflight.Error
	if errors.As(err, &pe) {
		cp := *pe
		cp.Subject = subject
		return &cp
	}
	return err
}
