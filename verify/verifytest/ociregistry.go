package verifytest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	preflight "github.com/mcp-preflight/preflight"
)

// Media types and annotations of Sigstore evidence in OCI registries.
const (
	// OCIBundleArtifactType is the artifact type (and layer media type)
	// of a Sigstore bundle attached to an image as cosign v3 and GitHub's
	// attest-build-provenance attach it.
	OCIBundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// OCISimpleSigningMediaType is the layer media type of a legacy
	// cosign signature (the "sha256-HEX.sig" tag scheme).
	OCISimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
)

// ociEmptyJSON is the OCI empty descriptor's content, used as the config
// of artifact manifests.
var ociEmptyJSON = []byte("{}")

// OCIRegistry is an OCI distribution registry served on loopback:
// go-containerregistry's in-process registry with the OCI 1.1 referrers
// API, plus helpers that push images, attach Sigstore bundles the way
// cosign v3 does, move tags, and make the registry misbehave.
//
// Its referrers answers report each referrer's artifactType as the OCI
// distribution spec says (the manifest's artifactType, else its config
// media type); go-containerregistry's registry reports the config media
// type only, which real registries do not.
//
// Safe for concurrent use. Close stops the server.
type OCIRegistry struct {
	srv    *httptest.Server
	inner  http.Handler
	closed chan struct{}
	once   sync.Once

	mu          sync.Mutex
	noReferrers bool
	fault       OCIFault
}

// OCIFault makes the registry misbehave for some requests. The zero value
// is no fault.
type OCIFault struct {
	// Path selects the requests: those whose URL path contains it, such
	// as "/manifests/", "/referrers/" or "/blobs/". Empty selects every
	// request, the API version check "/v2/" included.
	Path string
	// Status answers with this HTTP status and an OCI error body.
	Status int
	// Hang holds the request until the client gives up or the registry
	// closes: a registry too slow to answer.
	Hang bool
	// Body replaces the answer's body (the headers stay, Content-Length
	// adjusted): a registry serving other bytes.
	Body []byte
	// Chunked drops Content-Length, so the client learns the size only
	// by reading.
	Chunked bool
}

// NewOCIRegistry starts an empty registry on a loopback port.
func NewOCIRegistry() (*OCIRegistry, error) {
	quiet := log.New(io.Discard, "", 0)
	r := &OCIRegistry{
		inner:  registry.New(registry.Logger(quiet), registry.WithReferrersSupport(true)),
		closed: make(chan struct{}),
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.ociServe))
	return r, nil
}

// Host is the registry's host and port, 127.0.0.1:PORT: the registry part
// of an image reference. Clients speak plain http to it, as they do to
// every loopback registry.
func (r *OCIRegistry) Host() string { return r.srv.Listener.Addr().String() }

// Close stops the server, releasing requests held by a Hang fault.
func (r *OCIRegistry) Close() {
	r.once.Do(func() { close(r.closed) })
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// SetFault makes the registry misbehave as f says from now on; the zero
// OCIFault turns faults off. The helpers of OCIRegistry are subject to the
// fault too, so set it after pushing.
func (r *OCIRegistry) SetFault(f OCIFault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.Body = slices.Clone(f.Body)
	r.fault = f
}

// SetReferrersAPI turns the referrers API on (the default) or off. Off,
// the registry answers it with 404 as registries older than OCI 1.1 do,
// and AttachBundle keeps the referrers list under the fallback tag
// "sha256-HEX" instead, as cosign does. Set it before attaching.
func (r *OCIRegistry) SetReferrersAPI(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.noReferrers = !on
}

// PushImage pushes a small OCI image to repo, tagged tag: a random base
// layer (so that every push is a different image) and a layer holding
// files, by path. It returns the manifest digest, "sha256:HEX".
func (r *OCIRegistry) PushImage(repo, tag string, files map[string][]byte) (string, error) {
	ctx, cancel := ociContext()
	defer cancel()
	ref, err := name.NewTag(r.Host()+"/"+repo+":"+tag, name.StrictValidation)
	if err != nil {
		return "", ociConfigError("image reference", err)
	}
	layer, err := ociFilesLayer(files)
	if err != nil {
		return "", err
	}
	base, err := random.Image(64, 1)
	if err != nil {
		return "", fmt.Errorf("verifytest: random image: %w", err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return "", fmt.Errorf("verifytest: image: %w", err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	if err := remote.Write(ref, img, r.ociOptions(ctx)...); err != nil {
		return "", fmt.Errorf("verifytest: push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("verifytest: image digest: %w", err)
	}
	return d.String(), nil
}

// ociFilesLayer packs files into an uncompressed tar layer, in path order.
func ociFilesLayer(files map[string][]byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		hdr := &tar.Header{Name: p, Mode: 0o755, Size: int64(len(files[p])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("verifytest: layer: %w", err)
		}
		if _, err := tw.Write(files[p]); err != nil {
			return nil, fmt.Errorf("verifytest: layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("verifytest: layer: %w", err)
	}
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer), nil
}

// Manifest returns the raw manifest repo serves for ref, a tag or a
// digest: the bytes whose SHA-256 is the image digest, which is what a
// message signature over the image signs.
func (r *OCIRegistry) Manifest(repo, ref string) ([]byte, error) {
	ctx, cancel := ociContext()
	defer cancel()
	desc, err := r.ociGet(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	return slices.Clone(desc.Manifest), nil
}

// Retag points tag of repo at the manifest with digest: a tag moved to
// another image.
func (r *OCIRegistry) Retag(repo, tag, digest string) error {
	ctx, cancel := ociContext()
	defer cancel()
	desc, err := r.ociGet(ctx, repo, digest)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(r.Host()+"/"+repo+":"+tag, name.StrictValidation)
	if err != nil {
		return ociConfigError("tag", err)
	}
	if err := remote.Put(ref, desc, r.ociOptions(ctx)...); err != nil {
		return fmt.Errorf("verifytest: retag %s: %w", ref, err)
	}
	return nil
}

// AttachBundle attaches a Sigstore bundle to the image with digest as
// cosign v3 does (its BUNDLE_SPEC): the bundle JSON as a blob, and an OCI
// image manifest with artifactType and layer media type
// OCIBundleArtifactType, the empty config, and the image as subject. With
// the referrers API on, the registry lists it; off, the fallback tag
// "sha256-HEX" is updated. It returns the referrer manifest's digest.
func (r *OCIRegistry) AttachBundle(repo, digest string, bundleJSON []byte) (string, error) {
	content := "message-signature"
	var head struct {
		DSSE json.RawMessage `json:"dsseEnvelope"`
	}
	if json.Unmarshal(bundleJSON, &head) == nil && head.DSSE != nil {
		content = "dsse-envelope"
	}
	return r.AttachArtifact(repo, digest, OCIBundleArtifactType, OCIBundleArtifactType, bundleJSON,
		map[string]string{"dev.sigstore.bundle.content": content})
}

// AttachArtifact attaches any artifact to the image with digest: data as
// the single layer (media type layerType) of an OCI image manifest with
// artifactType, the empty config, annotations, and the image as subject.
// Attaching the same data twice with the same annotations is one
// referrer; vary the annotations to make many. It returns the referrer
// manifest's digest.
func (r *OCIRegistry) AttachArtifact(repo, digest, artifactType, layerType string, data []byte, annotations map[string]string) (string, error) {
	ctx, cancel := ociContext()
	defer cancel()
	subject, err := r.ociHead(ctx, repo, digest)
	if err != nil {
		return "", err
	}
	repository, err := name.NewRepository(r.Host()+"/"+repo, name.StrictValidation)
	if err != nil {
		return "", ociConfigError("repository", err)
	}
	blob := static.NewLayer(slices.Clone(data), types.MediaType(layerType))
	config := static.NewLayer(ociEmptyJSON, types.OCIEmptyJSON)
	for _, l := range []v1.Layer{blob, config} {
		if err := remote.WriteLayer(repository, l, r.ociOptions(ctx)...); err != nil {
			return "", fmt.Errorf("verifytest: upload blob to %s: %w", repository, err)
		}
	}
	sum := sha256.Sum256(data)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        ociDescriptor(types.OCIEmptyJSON, ociEmptyJSON),
		Layers:        []v1.Descriptor{ociDescriptor(types.MediaType(layerType), data)},
		Annotations:   maps.Clone(annotations),
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}
	m.Layers[0].Annotations = map[string]string{"org.opencontainers.image.title": "sha256-" + hex.EncodeToString(sum[:]) + ".sigstore.json"}
	return r.ociPutManifest(ctx, repository, m)
}

// AttachLegacyCosignSignature attaches a signature the way cosign before
// v3 did by default: an image tagged "sha256-HEX.sig" in repo whose layer
// is a simple-signing payload naming the image digest, with the base64
// signature in the dev.cosignproject.cosign/signature annotation. The
// signature is not a valid one: the helper exists to test discovery of
// the legacy format, which Preflight does not verify.
func (r *OCIRegistry) AttachLegacyCosignSignature(repo, digest string) error {
	ctx, cancel := ociContext()
	defer cancel()
	if _, err := r.ociHead(ctx, repo, digest); err != nil {
		return err
	}
	repository, err := name.NewRepository(r.Host()+"/"+repo, name.StrictValidation)
	if err != nil {
		return ociConfigError("repository", err)
	}
	payload, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": repository.Name()},
			"image":    map[string]string{"docker-manifest-digest": digest},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	if err != nil {
		return fmt.Errorf("verifytest: simple signing payload: %w", err)
	}
	layer := static.NewLayer(payload, OCISimpleSigningMediaType)
	config := []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)
	cfgLayer := static.NewLayer(config, types.OCIConfigJSON)
	for _, l := range []v1.Layer{layer, cfgLayer} {
		if err := remote.WriteLayer(repository, l, r.ociOptions(ctx)...); err != nil {
			return fmt.Errorf("verifytest: upload blob to %s: %w", repository, err)
		}
	}
	sig := base64.StdEncoding.EncodeToString([]byte("not a real signature"))
	desc := ociDescriptor(OCISimpleSigningMediaType, payload)
	desc.Annotations = map[string]string{"dev.cosignproject.cosign/signature": sig}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        ociDescriptor(types.OCIConfigJSON, config),
		Layers:        []v1.Descriptor{desc},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("verifytest: manifest: %w", err)
	}
	tag := repository.Tag(strings.Replace(digest, ":", "-", 1) + ".sig")
	if err := remote.Put(tag, ociRawManifest{raw: raw, mediaType: types.OCIManifestSchema1}, r.ociOptions(ctx)...); err != nil {
		return fmt.Errorf("verifytest: push %s: %w", tag, err)
	}
	return nil
}

func ociDescriptor(mt types.MediaType, data []byte) v1.Descriptor {
	sum := sha256.Sum256(data)
	return v1.Descriptor{MediaType: mt, Size: int64(len(data)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
}

func (r *OCIRegistry) ociPutManifest(ctx context.Context, repository name.Repository, m v1.Manifest) (string, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("verifytest: manifest: %w", err)
	}
	sum := sha256.Sum256(raw)
	d := "sha256:" + hex.EncodeToString(sum[:])
	ref := repository.Digest(d)
	if err := remote.Put(ref, ociRawManifest{raw: raw, mediaType: m.MediaType}, r.ociOptions(ctx)...); err != nil {
		return "", fmt.Errorf("verifytest: push %s: %w", ref, err)
	}
	return d, nil
}

// ociRawManifest is a manifest as bytes, for remote.Put.
type ociRawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (m ociRawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m ociRawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

func (r *OCIRegistry) ociGet(ctx context.Context, repo, ref string) (*remote.Descriptor, error) {
	parsed, err := ociParse(r.Host(), repo, ref)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(parsed, r.ociOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("verifytest: get %s: %w", parsed, err)
	}
	return desc, nil
}

func (r *OCIRegistry) ociHead(ctx context.Context, repo, ref string) (*v1.Descriptor, error) {
	parsed, err := ociParse(r.Host(), repo, ref)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Head(parsed, r.ociOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("verifytest: head %s: %w", parsed, err)
	}
	return desc, nil
}

// ociParse makes a reference of repo and a tag or "sha256:HEX".
func ociParse(host, repo, ref string) (name.Reference, error) {
	sep := ":"
	if strings.Contains(ref, ":") {
		sep = "@"
	}
	parsed, err := name.ParseReference(host+"/"+repo+sep+ref, name.StrictValidation)
	if err != nil {
		return nil, ociConfigError("image reference", err)
	}
	return parsed, nil
}

func ociConfigError(subject string, err error) error {
	return &preflight.Error{Class: preflight.ErrConfig, Subject: "verifytest: " + subject, Err: err}
}

// ociContext bounds one helper's requests.
func ociContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// ociOptions are the options of the helpers' own registry requests: the
// test server's transport, ctx, no retries.
func (r *OCIRegistry) ociOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithTransport(r.srv.Client().Transport),
		remote.WithContext(ctx),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}

func (r *OCIRegistry) ociServe(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	fault, noReferrers := r.fault, r.noReferrers
	r.mu.Unlock()

	if strings.HasPrefix(req.URL.Path, "/v2/") && strings.Contains(req.URL.Path, "/referrers/") && noReferrers {
		ociWriteError(w, http.StatusNotFound, "NAME_UNKNOWN", "referrers API not supported")
		return
	}
	if fault.Path != "" && !strings.Contains(req.URL.Path, fault.Path) {
		fault = OCIFault{}
	}
	if fault.Hang {
		select {
		case <-req.Context().Done():
		case <-r.closed:
		}
		return
	}
	if fault.Status != 0 {
		ociWriteError(w, fault.Status, "UNKNOWN", "fault injected by the test")
		return
	}

	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	if repo, _, ok := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v2/"), "/referrers/"); ok && rec.Code == http.StatusOK && req.Method == http.MethodGet {
		body = r.ociFixReferrers(repo, body)
	}
	if fault.Body != nil {
		body = fault.Body
	}
	h := w.Header()
	maps.Copy(h, rec.Header())
	switch {
	case req.Method == http.MethodHead:
		// The inner registry's Content-Length, if any, is the answer.
	case fault.Chunked:
		h.Del("Content-Length")
	default:
		h.Set("Content-Length", fmt.Sprint(len(body)))
	}
	w.WriteHeader(rec.Code)
	if req.Method != http.MethodHead {
		if fault.Chunked {
			// Two writes with a flush in between make the server send the
			// body chunked, without a length.
			half := len(body) / 2
			_, _ = w.Write(body[:half])
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			body = body[half:]
		}
		_, _ = w.Write(body)
	}
}

// ociFixReferrers sets each listed referrer's artifactType from its
// manifest, as the distribution spec requires.
func (r *OCIRegistry) ociFixReferrers(repo string, body []byte) []byte {
	var idx v1.IndexManifest
	if err := json.Unmarshal(body, &idx); err != nil {
		return body
	}
	for i, d := range idx.Manifests {
		rec := httptest.NewRecorder()
		r.inner.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/manifests/"+d.Digest.String(), nil))
		var m struct {
			ArtifactType string `json:"artifactType"`
		}
		if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &m) == nil && m.ArtifactType != "" {
			idx.Manifests[i].ArtifactType = m.ArtifactType
		}
	}
	out, err := json.Marshal(idx)
	if err != nil {
		return body
	}
	return out
}

func ociWriteError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
