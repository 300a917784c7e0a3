package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

// ociTransport carries every registry request of a Client. It upgrades
// plain http to https for hosts that are not loopback, bounds response
// bodies, checks answers to requests by digest, and applies a per-request
// timeout. It never changes the base transport.
type ociTransport struct {
	base        http.RoundTripper
	timeout     time.Duration // per request, 0 for none
	maxManifest int64
	maxBlob     int64
}

// ociDigestPath matches the last element of a manifest or blob path that
// names content by digest.
var ociDigestPath = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (t *ociTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !ociLoopback(req.URL.Hostname()) {
		req = req.Clone(req.Context())
		req.URL.Scheme = "https"
	}
	what, limit := "manifest", t.maxManifest
	if strings.Contains(req.URL.Path, "/blobs/") {
		what, limit = "blob", t.maxBlob
	}
	cancel := context.CancelFunc(func() {})
	if t.timeout > 0 {
		var ctx context.Context
		ctx, cancel = context.WithTimeout(req.Context(), t.timeout)
		req = req.WithContext(ctx)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.ContentLength > limit && req.Method != http.MethodHead {
		resp.Body.Close()
		cancel()
		return nil, &ociLimitError{what: what, url: ociRedact(req), limit: limit, found: resp.ContentLength}
	}
	body := &ociBody{rc: resp.Body, cancel: cancel, left: limit, limit: limit, what: what, url: ociRedact(req)}
	if last := path.Base(req.URL.Path); req.Method == http.MethodGet && resp.StatusCode == http.StatusOK &&
		(strings.Contains(req.URL.Path, "/manifests/") || strings.Contains(req.URL.Path, "/blobs/")) && ociDigestPath.MatchString(last) {
		body.want = strings.TrimPrefix(last, "sha256:")
		body.h = sha256.New()
	}
	resp.Body = body
	return resp, nil
}

// ociBody bounds a response body and, for answers by digest, checks the
// bytes against the digest at the end.
type ociBody struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	left   int64
	limit  int64
	what   string
	url    string
	want   string // hex; empty when not checked
	h      hash.Hash
	err    error
}

func (b *ociBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		b.err = &ociLimitError{what: b.what, url: b.url, limit: b.limit, found: -1}
		return 0, b.err
	}
	b.left -= int64(n)
	if b.h != nil {
		b.h.Write(p[:n])
	}
	if err == io.EOF && b.h != nil {
		if got := hex.EncodeToString(b.h.Sum(nil)); got != b.want {
			b.err = &ociDigestError{url: b.url, want: "sha256:" + b.want, got: "sha256:" + got}
			return n, b.err
		}
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *ociBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}

// ociLimitError: an answer larger than its limit.
type ociLimitError struct {
	what, url string
	limit     int64
	found     int64 // -1 when the size is unknown (no Content-Length)
}

func (e *ociLimitError) Error() string {
	found := "more"
	if e.found >= 0 {
		found = fmt.Sprint(e.found)
	}
	return fmt.Sprintf("%s from %s: %s bytes, limit %d", e.what, e.url, found, e.limit)
}

// ociDigestError: an answer to a request by digest that is other bytes.
type ociDigestError struct {
	url, want, got string
}

func (e *ociDigestError) Error() string {
	return fmt.Sprintf("%s: content digest %s, requested %s", e.url, e.got, e.want)
}

// ociLoopback reports whether host (without port) is a loopback host.
func ociLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ociRedact is the request URL without query or user information, for
// messages (token requests carry scopes and may carry credentials).
func ociRedact(req *http.Request) string {
	u := *req.URL
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
