package tuf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mcp-preflight/preflight"
)

// Fetcher is the package's one I/O seam: a bounded, cancellable read of a
// URL. Tests swap in loopback servers or fakes; production uses
// HTTPFetcher.
//
// Contract:
//   - Fetch returns the complete body, or an error and no bytes.
//   - It never returns more than maxBytes bytes: a longer body is an error
//     matching preflight.ErrMalformed (an endless-data answer). maxBytes is
//     always positive.
//   - A resource the remote reports as absent (HTTP 404) is an error
//     matching preflight.ErrNotFound; the client relies on it to tell "no
//     newer root" from a failure. Any other failure to reach the remote or
//     get a success answer matches preflight.ErrUnavailable.
//   - When ctx ends, or a deadline of the fetcher's own runs out, it
//     returns promptly with an error matching preflight.ErrTimeout that
//     also wraps ctx.Err() or context.DeadlineExceeded.
//   - Fetch may be called by several goroutines at once.
//
// The bytes are untrusted: the client verifies them against signed
// metadata, so a Fetcher needs no transport security for integrity.
type Fetcher interface {
	Fetch(ctx context.Context, url string, maxBytes int64) ([]byte, error)
}

// StreamFetcher is a Fetcher that can also hand over a body as a stream, so
// that large targets go to a TargetStore without being held in memory.
// Open follows Fetch's contract, except that a body longer than maxBytes
// and a failure while reading are reported by the reader's Read. The
// caller must Close the reader; closing it early releases the connection.
type StreamFetcher interface {
	Fetcher
	Open(ctx context.Context, url string, maxBytes int64) (io.ReadCloser, error)
}

// HTTPFetcher fetches over HTTP and HTTPS. Its zero value is ready to use
// with safe defaults. It is safe for concurrent use; do not change its
// fields after first use.
//
// Plain HTTP is accepted because TUF metadata and targets are verified by
// signatures and hashes, not by the transport; use HTTPS where the
// repository offers it, for confidentiality and to make freeze attacks by
// the network harder.
type HTTPFetcher struct {
	// Client makes the requests. Nil means a client of the fetcher's own
	// that follows at most 5 redirects and never from HTTPS to HTTP;
	// http.DefaultClient is never used or changed.
	Client *http.Client
	// Timeout bounds each request, reading the body included. Zero means
	// 30 seconds.
	Timeout time.Duration
	// Retries is how many times a failed request is tried again after a
	// network error or a 5xx, 408 or 429 answer, with a backoff of 200ms
	// doubling up to 2s. Zero means 2; a negative value means none.
	// Timeouts, 4xx answers and oversized bodies are never retried.
	Retries int
}

const (
	defaultFetchTimeout = 30 * time.Second
	defaultRetries      = 2
	maxRedirects        = 5
	userAgent           = "preflight-tuf"
)

var ownClient = &http.Client{CheckRedirect: checkRedirect}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "https" && (req.URL.Scheme != "http" || via[0].URL.Scheme == "https") {
		return fmt.Errorf("refusing redirect from %s to %s", via[0].URL.Scheme, req.URL.Scheme)
	}
	return nil
}

// Fetch implements Fetcher.
func (f *HTTPFetcher) Fetch(ctx context.Context, rawURL string, maxBytes int64) ([]byte, error) {
	body, err := f.Open(ctx, rawURL, maxBytes)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	return data, nil
}

// Open implements StreamFetcher.
func (f *HTTPFetcher) Open(ctx context.Context, rawURL string, maxBytes int64) (io.ReadCloser, error) {
	if maxBytes <= 0 {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: rawURL, Expected: "a positive size limit", Found: strconv.FormatInt(maxBytes, 10)}
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: rawURL, Expected: "an http or https URL", Found: fmt.Sprintf("%q", rawURL), Err: err}
	}
	retries := f.Retries
	if retries == 0 {
		retries = defaultRetries
	}
	retries = max(retries, 0)
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		body, retry, err := f.open(ctx, rawURL, maxBytes)
		if err == nil {
			return body, nil
		}
		if !retry || attempt >= retries {
			return nil, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, timeoutErr(rawURL, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// open makes one attempt and says whether a failure may be retried.
func (f *HTTPFetcher) open(ctx context.Context, rawURL string, maxBytes int64) (io.ReadCloser, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, timeoutErr(rawURL, err)
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = defaultFetchTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, rawURL, nil)
	if err != nil {
		cancel()
		return nil, false, &preflight.Error{Class: preflight.ErrConfig, Subject: rawURL, Err: err}
	}
	req.Header.Set("User-Agent", userAgent)
	client := f.Client
	if client == nil {
		client = ownClient
	}
	resp, err := client.Do(req)
	if err != nil {
		cerr := rctx.Err()
		cancel()
		if cerr != nil {
			return nil, false, timeoutErr(rawURL, cerr)
		}
		return nil, true, &preflight.Error{Class: preflight.ErrUnavailable, Subject: rawURL, Err: err, Hint: "check the network and the repository URL"}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		class, retry := preflight.ErrUnavailable, resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
		if resp.StatusCode == http.StatusNotFound {
			class = preflight.ErrNotFound
		}
		return nil, retry, &preflight.Error{Class: class, Subject: rawURL, Expected: "HTTP 200", Found: resp.Status}
	}
	if resp.ContentLength > maxBytes {
		resp.Body.Close()
		cancel()
		return nil, false, tooLarge(rawURL, maxBytes, fmt.Sprintf("Content-Length %d", resp.ContentLength))
	}
	return &boundedBody{url: rawURL, body: resp.Body, ctxErr: rctx.Err, cancel: cancel, left: maxBytes, limit: maxBytes}, false, nil
}

// boundedBody reads at most limit bytes and reports a longer body, a
// timeout or a broken connection as classified errors.
type boundedBody struct {
	url    string
	body   io.ReadCloser
	ctxErr func() error // the request context's Err, to classify read errors
	cancel context.CancelFunc
	left   int64
	limit  int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Anything more than the limit is an endless-data answer.
		var one [1]byte
		n, err := io.ReadFull(b.body, one[:])
		if n > 0 {
			return 0, tooLarge(b.url, b.limit, "more")
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, io.EOF
		}
		return 0, b.readErr(err)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		err = b.readErr(err)
	}
	return n, err
}

func (b *boundedBody) readErr(err error) error {
	if cerr := b.ctxErr(); cerr != nil {
		return timeoutErr(b.url, cerr)
	}
	return &preflight.Error{Class: preflight.ErrUnavailable, Subject: b.url, Err: err, Hint: "the connection broke while reading; retry"}
}

func (b *boundedBody) Close() error {
	err := b.body.Close()
	b.cancel()
	return err
}

func tooLarge(subject string, limit int64, found string) error {
	return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: fmt.Sprintf("at most %d bytes", limit), Found: found + " bytes"}
}

func timeoutErr(subject string, cause error) error {
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	hint := "the remote is too slow or unreachable (a slow-retrieval attack looks the same); retry later or raise the timeout"
	if errors.Is(cause, context.Canceled) {
		hint = "the operation was canceled"
	}
	return &preflight.Error{Class: preflight.ErrTimeout, Subject: subject, Err: cause, Hint: hint}
}
