package oci

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// recordingTransport answers every request with body and records the
// URLs it was asked for.
type recordingTransport struct {
	body []byte
	urls []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.urls = append(r.urls, req.URL.String())
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(r.body)), ContentLength: -1, Request: req}, nil
}

func TestTransportPlainHTTPOnlyForLoopback(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000/v2/"},
		{"http://localhost:5000/v2/", "http://localhost:5000/v2/"},
		{"http://[::1]:5000/v2/", "http://[::1]:5000/v2/"},
		{"http://10.0.0.8:5000/v2/", "https://10.0.0.8:5000/v2/"},
		{"http://registry.local/v2/", "https://registry.local/v2/"},
		{"http://ghcr.io/v2/", "https://ghcr.io/v2/"},
		{"https://ghcr.io/v2/", "https://ghcr.io/v2/"},
	} {
		base := &recordingTransport{}
		tr := &ociTransport{base: base, maxManifest: 10, maxBlob: 10}
		req, err := http.NewRequest(http.MethodGet, tc.in, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if base.urls[0] != tc.want {
			t.Errorf("%s was sent as %s, want %s", tc.in, base.urls[0], tc.want)
		}
		if req.URL.String() != tc.in {
			t.Errorf("the caller's request was changed to %s", req.URL)
		}
	}
}

func TestTransportBoundsAndDigests(t *testing.T) {
	content := []byte(`{"schemaVersion":2}`)
	sum := sha256.Sum256(content)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	get := func(t *testing.T, body []byte, url string, limit int64) error {
		t.Helper()
		tr := &ociTransport{base: &recordingTransport{body: body}, maxManifest: limit, maxBlob: limit}
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	base := "http://127.0.0.1/v2/r/"
	if err := get(t, content, base+"manifests/"+digest, 100); err != nil {
		t.Errorf("matching manifest: %v", err)
	}
	if err := get(t, content, base+"blobs/"+digest, int64(len(content))); err != nil {
		t.Errorf("matching blob at the limit: %v", err)
	}
	var de *ociDigestError
	if err := get(t, append(content, ' '), base+"manifests/"+digest, 100); !errors.As(err, &de) {
		t.Errorf("other bytes by digest: %v", err)
	}
	if err := get(t, append(content, ' '), base+"manifests/latest", 100); err != nil {
		t.Errorf("by tag, nothing to check: %v", err)
	}
	var le *ociLimitError
	if err := get(t, content, base+"blobs/"+digest, int64(len(content))-1); !errors.As(err, &le) {
		t.Errorf("over the limit: %v", err)
	}
	if err := get(t, bytes.Repeat([]byte("x"), 1<<16), base+"referrers/"+digest, 1000); !errors.As(err, &le) || !strings.Contains(err.Error(), "limit 1000") {
		t.Errorf("referrers over the limit: %v", err)
	}
}
