package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	preflight "github.com/mcp-preflight/preflight"
)

// Defaults for zero fields of Config and Limits.
const (
	DefaultTimeout = time.Minute
	// DefaultMaxManifestBytes is the size the OCI distribution spec asks
	// registries to accept for a manifest at least; real manifests are a
	// few kilobytes.
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxReferrers     = 256
	DefaultMaxBundles       = 16
	// DefaultMaxBundleBytes equals verify.MaxBundleSize.
	DefaultMaxBundleBytes = 16 << 20
)

// Limits bound what a registry can make a Client read. Zero fields take
// the defaults; negative ones are an ErrConfig failure.
type Limits struct {
	// MaxManifestBytes bounds an image manifest or index, a referrer
	// manifest and the referrers list.
	MaxManifestBytes int64
	// MaxReferrers bounds the descriptors of an image's referrers list,
	// of every artifact type.
	MaxReferrers int
	// MaxBundles bounds the Sigstore bundles of one image.
	MaxBundles int
	// MaxBundleBytes bounds one bundle, and any blob.
	MaxBundleBytes int64
}

// Config configures a Client. The zero value is safe and usable.
type Config struct {
	// HTTPClient supplies the transport (nil: a clone of
	// http.DefaultTransport's settings, never the global itself) and, when
	// its Timeout is set, a bound on each request including its body.
	// Its redirect policy and cookie jar are not used:
	// go-containerregistry makes its own clients around the transport.
	// The caller's client is not changed.
	HTTPClient *http.Client
	// Timeout bounds each Resolve and Bundles call. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Logger receives debug records of what was resolved and found. Nil
	// discards them.
	Logger *slog.Logger
	// Limits bound every answer of the registry.
	Limits Limits
}

// Client talks to OCI registries. It is safe for concurrent use.
type Client struct {
	cfg       Config
	transport http.RoundTripper
	log       *slog.Logger
}

// New validates cfg and returns a Client. cfg is copied.
func New(cfg Config) (*Client, error) {
	l := &cfg.Limits
	if cfg.Timeout < 0 || l.MaxManifestBytes < 0 || l.MaxReferrers < 0 || l.MaxBundles < 0 || l.MaxBundleBytes < 0 {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "oci client",
			Expected: "a non-negative timeout and limits (zero for the defaults)",
			Found:    fmt.Sprintf("timeout %v, limits %+v", cfg.Timeout, *l)}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.Limits = cfg.Limits.withDefaults()
	var base http.RoundTripper
	var perRequest time.Duration
	if cfg.HTTPClient != nil {
		base, perRequest = cfg.HTTPClient.Transport, cfg.HTTPClient.Timeout
	}
	if base == nil {
		base = ociDefaultTransport()
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		cfg: cfg,
		transport: &ociTransport{base: base, timeout: perRequest,
			maxManifest: l.MaxManifestBytes, maxBlob: l.MaxBundleBytes},
		log: logger,
	}, nil
}

// ociDefaultTransport is a transport of the Client's own, with the
// standard library's defaults and bounded connection setup.
func ociDefaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	return t
}

// Image is a resolved image: the reference and the digest of the manifest
// (or index) the registry served for it.
type Image struct {
	// Ref is the reference as given.
	Ref string
	// Repository is the registry and repository, e.g.
	// "ghcr.io/owner/server" (Docker Hub as "index.docker.io/...").
	Repository string
	// Tag is the tag the reference named, empty for a reference by digest.
	Tag string
	// Digest is "sha256:HEX", computed from the manifest bytes.
	Digest string
	// MediaType is the manifest's: an OCI or Docker image manifest, or an
	// OCI image index or Docker manifest list for multi-platform images.
	MediaType string
	// Size is the manifest's size in bytes.
	Size int64
}

// Pinned is the image's reference by digest, REPOSITORY@sha256:HEX: the
// only form in which Preflight hands an image to a container runtime.
func (i Image) Pinned() string { return i.Repository + "@" + i.Digest }

// Hex is the digest's hex part, the value of verify.EvidenceCheck's
// Artifact["sha256"].
func (i Image) Hex() string { return strings.TrimPrefix(i.Digest, "sha256:") }

// ociImageTypes are the manifest media types an image may have.
var ociImageTypes = map[types.MediaType]bool{
	types.OCIManifestSchema1:    true,
	types.DockerManifestSchema2: true,
	types.OCIImageIndex:         true,
	types.DockerManifestList:    true,
}

// Resolve fetches the manifest ref names and returns the image with the
// manifest's digest. ref is "REGISTRY/REPOSITORY:TAG" or
// "REGISTRY/REPOSITORY@sha256:HEX" with the registry always explicit
// (ParseReference). pinnedDigest, when not empty, is the "sha256:HEX" the
// policy or lockfile pins; the resolved digest must equal it.
//
// Failures match: ErrConfig (an invalid reference or pin, or a reference
// by digest that contradicts the pin), ErrTampered (a digest other than
// the pinned one, or a registry answering a request by digest with other
// bytes), ErrMalformed (a manifest over the limit, of an unknown media
// type, or unparsable), ErrNotFound (no such repository or tag),
// ErrUnavailable and ErrTimeout.
func (c *Client) Resolve(ctx context.Context, ref string, pinnedDigest string) (Image, error) {
	parsed, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	if pinnedDigest != "" {
		if !ociDigestPath.MatchString(pinnedDigest) {
			return Image{}, &preflight.Error{Class: preflight.ErrConfig, Subject: "image " + ref,
				Expected: "a pinned digest sha256:<64 lower-case hex>", Found: fmt.Sprintf("%q", pinnedDigest)}
		}
		if d, ok := parsed.(name.Digest); ok && d.DigestStr() != pinnedDigest {
			return Image{}, &preflight.Error{Class: preflight.ErrConfig, Subject: "image " + ref,
				Expected: "the reference's digest to equal the pinned " + pinnedDigest, Found: d.DigestStr(),
				Hint: "the policy names two different images; fix the reference or the pin"}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	desc, err := remote.Get(parsed, c.options(ctx)...)
	if err != nil {
		return Image{}, c.fail(ctx, "image "+ref, err)
	}
	sum := sha256.Sum256(desc.Manifest)
	img := Image{
		Ref:        ref,
		Repository: parsed.Context().Name(),
		Digest:     "sha256:" + hex.EncodeToString(sum[:]),
		MediaType:  string(desc.MediaType),
		Size:       int64(len(desc.Manifest)),
	}
	if t, ok := parsed.(name.Tag); ok {
		img.Tag = t.TagStr()
	}
	if err := ociCheckManifest(desc.MediaType, desc.Manifest); err != nil {
		return Image{}, &preflight.Error{Class: preflight.ErrMalformed, Subject: "image " + ref, Expected: "an image manifest or index",
			Found: err.Error(), Hint: "the reference must name a container image"}
	}
	if d, ok := parsed.(name.Digest); ok && d.DigestStr() != img.Digest {
		// The transport already refuses such an answer; this keeps the
		// promise should the manifest come from elsewhere.
		return Image{}, &preflight.Error{Class: preflight.ErrTampered, Subject: "image " + ref, Expected: d.DigestStr(), Found: img.Digest,
			Hint: "the registry served other bytes for this digest"}
	}
	if pinnedDigest != "" && img.Digest != pinnedDigest {
		return Image{}, &preflight.Error{Class: preflight.ErrTampered, Subject: "image " + ref,
			Expected: pinnedDigest + " (pinned)", Found: img.Digest + " (served for " + ref + ")",
			Hint: "the tag now names another image; if the publisher released it on purpose, review it and update the pin"}
	}
	c.log.DebugContext(ctx, "oci: resolved", "ref", ref, "digest", img.Digest, "mediaType", img.MediaType)
	return img, nil
}

// ociCheckManifest checks that raw is an image manifest or index of a
// media type Preflight accepts.
func ociCheckManifest(mt types.MediaType, raw []byte) error {
	if !ociImageTypes[mt] {
		return fmt.Errorf("media type %q", mt)
	}
	var err error
	if mt.IsIndex() {
		_, err = v1.ParseIndexManifest(bytes.NewReader(raw))
	} else {
		_, err = v1.ParseManifest(bytes.NewReader(raw))
	}
	if err != nil {
		return fmt.Errorf("a manifest of media type %s that does not parse: %w", mt, err)
	}
	return nil
}

// ParseReference parses an image reference strictly: the registry must
// be explicit ("docker.io/library/alpine:3", not "alpine"), and so must a
// tag or a digest, which must be sha256. Failures are ErrConfig.
func ParseReference(ref string) (name.Reference, error) {
	bad := func(found string, err error) error {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "image reference", Expected: "REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:HEX",
			Found: found, Err: err, Hint: "name the registry explicitly, e.g. ghcr.io/owner/server:1.0 or docker.io/owner/server:1.0"}
	}
	if strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, " \t\r\n") {
		return nil, bad(fmt.Sprintf("%q", ref), nil)
	}
	parsed, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, bad(fmt.Sprintf("%q", ref), err)
	}
	if d, ok := parsed.(name.Digest); ok && !ociDigestPath.MatchString(d.DigestStr()) {
		return nil, bad(fmt.Sprintf("digest %q", d.DigestStr()), nil)
	}
	return parsed, nil
}

// options are the go-containerregistry options of every request: the
// Client's transport, ctx, no retries, anonymous access.
func (c *Client) options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(c.transport),
		remote.WithUserAgent("preflight"),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithJobs(1),
	}
}

// fail turns an error from go-containerregistry or the transport into a
// preflight error of the right class.
func (c *Client) fail(ctx context.Context, subject string, err error) error {
	var pe *preflight.Error
	if errors.As(err, &pe) {
		return pe
	}
	var le *ociLimitError
	if errors.As(err, &le) {
		found := "more"
		if le.found >= 0 {
			found = fmt.Sprintf("%d bytes", le.found)
		}
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: fmt.Sprintf("a %s of at most %d bytes", le.what, le.limit),
			Found: found, Err: err, Hint: "raise the OCI limits only if the registry is trusted to send that much"}
	}
	var de *ociDigestError
	if errors.As(err, &de) {
		return &preflight.Error{Class: preflight.ErrTampered, Subject: subject, Expected: de.want, Found: de.got, Err: err,
			Hint: "the registry answered a request by digest with other bytes; do not use this registry"}
	}
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		cause := ctx.Err()
		if cause == nil {
			cause = err
		} else {
			cause = fmt.Errorf("%w (%w)", cause, err)
		}
		hint := "the registry is slow or unreachable (a slow-retrieval attack looks the same); retry later or raise the timeout"
		if errors.Is(cause, context.Canceled) {
			hint = "the operation was canceled"
		}
		return &preflight.Error{Class: preflight.ErrTimeout, Subject: subject, Err: cause, Hint: hint}
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return &preflight.Error{Class: preflight.ErrNotFound, Subject: subject, Expected: "HTTP 200", Found: "HTTP 404", Err: err,
				Hint: "check the registry, repository and tag"}
		case http.StatusUnauthorized, http.StatusForbidden:
			return &preflight.Error{Class: preflight.ErrUnavailable, Subject: subject, Expected: "anonymous access", Found: fmt.Sprintf("HTTP %d", te.StatusCode), Err: err,
				Hint: "the repository may not exist or may be private; Preflight reads public images only"}
		}
		return &preflight.Error{Class: preflight.ErrUnavailable, Subject: subject, Expected: "HTTP 200", Found: fmt.Sprintf("HTTP %d", te.StatusCode), Err: err,
			Hint: "the registry answered with an error; retry later"}
	}
	return &preflight.Error{Class: preflight.ErrUnavailable, Subject: subject, Err: err, Hint: "check the network and the registry name"}
}
