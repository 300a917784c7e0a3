package tuf_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/tuf"
)

func TestHTTPFetcher(t *testing.T) {
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { hits.Add(1); http.NotFound(w, r) })
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) { hits.Add(1); w.WriteHeader(http.StatusForbidden) })
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("finally"))
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { hits.Add(1); w.WriteHeader(http.StatusBadGateway) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 100)) })
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			w.Write(make([]byte, 10))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/redirect-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	fast := &tuf.HTTPFetcher{Timeout: 100 * time.Millisecond}
	for _, tc := range []struct {
		name     string
		fetcher  *tuf.HTTPFetcher
		ctx      context.Context
		url      string
		max      int64
		class    *preflight.Class
		want     string
		requests int32 // expected server hits, when counted
	}{
		{name: "ok", url: "/ok", max: 5, want: "hello"},
		{name: "404 is not found, not retried", url: "/missing", max: 5, class: preflight.ErrNotFound, requests: 1},
		{name: "403 is not retried", url: "/forbidden", max: 5, class: preflight.ErrUnavailable, requests: 1},
		{name: "5xx is retried", url: "/flaky", max: 10, want: "finally", requests: 3},
		{name: "retries are bounded", url: "/down", max: 10, class: preflight.ErrUnavailable, requests: 3},
		{name: "no retries", fetcher: &tuf.HTTPFetcher{Retries: -1}, url: "/down", max: 10, class: preflight.ErrUnavailable, requests: 1},
		{name: "Content-Length over the limit", url: "/big", max: 99, class: preflight.ErrMalformed},
		{name: "exact limit", url: "/big", max: 100, want: string(make([]byte, 100))},
		{name: "chunked body over the limit", url: "/chunked", max: 99, class: preflight.ErrMalformed},
		{name: "timeout is not retried", fetcher: fast, url: "/slow", max: 10, class: preflight.ErrTimeout, requests: 1},
		{name: "canceled context", ctx: canceled, url: "/ok", max: 10, class: preflight.ErrTimeout},
		{name: "redirect to file", url: "/redirect-file", max: 10, class: preflight.ErrUnavailable},
		{name: "file URL", url: "file:///etc/passwd", max: 10, class: preflight.ErrConfig},
		{name: "zero limit", url: "/ok", max: 0, class: preflight.ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			f := tc.fetcher
			if f == nil {
				f = &tuf.HTTPFetcher{}
			}
			c := tc.ctx
			if c == nil {
				c = ctx
			}
			u := tc.url
			if strings.HasPrefix(u, "/") {
				u = srv.URL + u
			}
			data, err := f.Fetch(c, u, tc.max)
			if tc.class == nil {
				must(t, err)
				if string(data) != tc.want {
					t.Fatalf("got %q, want %q", data, tc.want)
				}
			} else {
				assertClass(t, err, tc.class)
				if data != nil {
					t.Errorf("got %d bytes with the error", len(data))
				}
			}
			if tc.requests != 0 && hits.Load() != tc.requests {
				t.Errorf("server saw %d requests, want %d", hits.Load(), tc.requests)
			}
		})
	}
	dead := httptest.NewServer(mux)
	dead.Close()
	_, err := (&tuf.HTTPFetcher{Retries: 1}).Fetch(ctx, dead.URL+"/ok", 10)
	assertClass(t, err, preflight.ErrUnavailable)

	_, err = (&tuf.HTTPFetcher{}).Fetch(canceled, srv.URL+"/ok", 10)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %q does not wrap context.Canceled", err)
	}
}
