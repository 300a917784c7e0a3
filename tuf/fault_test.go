package tuf_test

// Transport faults between the client and a TUF repository: a server that
// dies mid-download, stalls mid-body, or sends another number of bytes than
// its Content-Length declares. The faults are injected by a proxy in front
// of the test kit's repository that writes raw HTTP on a hijacked
// connection, so the client sees exactly what a broken server or mirror
// sends. Each case asserts the error class, that the verified cache is
// unchanged (no half-written metadata, no temporary files) and that the
// client recovers once the server behaves.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// faultKind is what the proxy does to a matching answer.
type faultKind int

const (
	faultNone faultKind = iota
	// faultCut declares the full Content-Length, sends n bytes of the body
	// and closes the connection (a server that dies mid-download).
	faultCut
	// faultStall declares the full length, sends n bytes and then sends
	// nothing more until the client hangs up (a slow-retrieval attack
	// after the headers).
	faultStall
	// faultUnderdeclare declares n bytes fewer than it sends.
	faultUnderdeclare
	// faultTrailing declares the right length and sends n bytes of junk
	// after the body on the same connection.
	faultTrailing
)

// faultProxy forwards to a repository and applies one fault to the paths
// that end with suffix.
type faultProxy struct {
	upstream string
	client   *http.Client
	srv      *httptest.Server
	closed   chan struct{}

	mu     sync.Mutex
	suffix string
	kind   faultKind
	n      int
	hits   int
}

func newFaultProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	p := &faultProxy{upstream: upstream, client: &http.Client{}, closed: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		close(p.closed)
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

func (p *faultProxy) set(suffix string, kind faultKind, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.suffix, p.kind, p.n, p.hits = suffix, kind, n, 0
}

// faultHits is how many answers the current fault has spoiled.
func (p *faultProxy) faultHits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	resp, err := p.client.Get(p.upstream + r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.mu.Lock()
	kind, n := p.kind, p.n
	if kind == faultNone || resp.StatusCode != http.StatusOK || !strings.HasSuffix(r.URL.Path, p.suffix) {
		kind = faultNone
	} else {
		p.hits++
	}
	p.mu.Unlock()

	switch kind {
	case faultNone:
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	case faultStall:
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:min(n, len(body))])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
	default:
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		declared, sent := len(body), body
		switch kind {
		case faultCut:
			sent = body[:min(n, len(body))]
		case faultUnderdeclare:
			declared = max(len(body)-n, 0)
		case faultTrailing:
			sent = append(bytes.Clone(body), bytes.Repeat([]byte("}junk"), n/5+1)[:n]...)
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", declared)
		buf.Write(sent)
		buf.Flush()
	}
}

// cacheTree reads every file under dir, to compare before and after a
// fault.
func cacheTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		files[strings.TrimPrefix(p, dir)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// assertCacheConsistent fails unless the cache after a fault holds the
// same files as before, each either unchanged or replaced by a complete
// JSON document (TUF persists a role as soon as it verifies, so a refresh
// that fails at snapshot keeps the new timestamp), and the role whose
// download was spoiled, faulted, is unchanged.
func assertCacheConsistent(t *testing.T, before, after map[string]string, faulted string) {
	t.Helper()
	for name, data := range after {
		old, ok := before[name]
		switch {
		case !ok:
			t.Errorf("the fault left %s in the cache", name)
		case old != data && filepath.Base(name) == faulted:
			t.Errorf("the spoiled download changed cached %s", name)
		case old != data && !json.Valid([]byte(data)):
			t.Errorf("cached %s is not a complete document after the fault", name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			t.Errorf("the fault removed cached %s", name)
		}
	}
}

func TestTransportFaults(t *testing.T) {
	binary := bytes.Repeat([]byte("\x7fELF server bytes "), 4096) // 72 KiB, several reads
	small := []byte(`{"name":"io.example/weather","version":"1.0.0"}`)
	cases := []struct {
		name   string
		suffix string // URL path suffix the fault applies to
		kind   faultKind
		n      int
		op     string // "refresh" or "lookup" (after a new publication), "read" or "download"
		class  *preflight.Class
	}{
		{"timestamp cut mid-body", "/timestamp.json", faultCut, 40, "refresh", preflight.ErrUnavailable},
		{"timestamp cut before the body", "/timestamp.json", faultCut, 0, "refresh", preflight.ErrUnavailable},
		{"snapshot cut mid-body", ".snapshot.json", faultCut, 100, "refresh", preflight.ErrUnavailable},
		{"targets stalls after some bytes", ".targets.json", faultStall, 64, "refresh", preflight.ErrTimeout},
		{"snapshot declares less than it sends", ".snapshot.json", faultUnderdeclare, 10, "refresh", preflight.ErrMetadata},
		{"delegated role declares less than it sends", ".acme.json", faultUnderdeclare, 1, "lookup", preflight.ErrMetadata},
		{"delegated role cut mid-body", ".acme.json", faultCut, 50, "lookup", preflight.ErrUnavailable},
		{"small target cut mid-body", ".top.json", faultCut, 10, "read", preflight.ErrUnavailable},
		{"small target declares less than it sends", ".top.json", faultUnderdeclare, 5, "read", preflight.ErrTampered},
		{"small target stalls", ".top.json", faultStall, 10, "read", preflight.ErrTimeout},
		{"large target cut mid-body", ".server", faultCut, 40000, "download", preflight.ErrUnavailable},
		{"large target stalls after some bytes", ".server", faultStall, 40000, "download", preflight.ErrTimeout},
		{"large target declares less than it sends", ".server", faultUnderdeclare, 1, "download", preflight.ErrTampered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, verifytest.TUFOptions{})
			must(t, f.repo.AddTarget("top.json", small, nil))
			must(t, f.repo.Delegate("acme", []string{"acme/*"}, 1, 1, false))
			must(t, f.repo.AddDelegatedTarget("acme", "acme/server", binary))
			must(t, f.repo.Publish())
			proxy := newFaultProxy(t, f.base)
			cfg := f.config(t)
			cfg.MetadataURL = proxy.srv.URL + "/metadata"
			cfg.TargetsURL = proxy.srv.URL + "/targets"
			cfg.Fetcher = &tuf.HTTPFetcher{Timeout: 300 * time.Millisecond, Retries: -1}
			c := newClient(t, cfg)
			ctx := context.Background()
			top, err := c.Target(ctx, "top.json")
			must(t, err)
			server, err := c.Target(ctx, "acme/server")
			must(t, err)
			st := newStore(t)

			var retry func() error
			switch tc.op {
			case "refresh", "lookup":
				// A new publication: every role but root changes, so the
				// refresh downloads timestamp, snapshot, targets and acme.
				must(t, f.repo.AddDelegatedTarget("acme", "acme/next", []byte("next")))
				must(t, f.repo.AddTarget("new.json", []byte(`{"new":true}`), nil))
				must(t, f.repo.Publish())
				retry = func() error {
					if err := c.Refresh(ctx); err != nil {
						return err
					}
					_, err := c.Target(ctx, "acme/next")
					return err
				}
			case "read":
				retry = func() error {
					data, err := c.ReadTarget(ctx, top)
					if err == nil && !bytes.Equal(data, small) {
						t.Fatalf("ReadTarget returned %q", data)
					}
					return err
				}
			case "download":
				retry = func() error {
					_, err := c.DownloadTarget(ctx, server, st)
					return err
				}
			}
			before := cacheTree(t, cfg.CacheDir)
			proxy.set(tc.suffix, tc.kind, tc.n)

			start := time.Now()
			var err2 error
			switch tc.op {
			case "refresh":
				err2 = c.Refresh(ctx)
			case "lookup":
				must(t, c.Refresh(ctx)) // delegated roles are fetched when a lookup needs them
				before = cacheTree(t, cfg.CacheDir)
				var tg *tuf.Target
				tg, err2 = c.Target(ctx, "acme/next")
				if tg != nil {
					t.Errorf("Target returned %+v with its error", tg)
				}
			case "read":
				var data []byte
				data, err2 = c.ReadTarget(ctx, top)
				if data != nil {
					t.Errorf("ReadTarget returned %d bytes with its error", len(data))
				}
			case "download":
				var p string
				p, err2 = c.DownloadTarget(ctx, server, st)
				if p != "" {
					t.Errorf("DownloadTarget returned %q with its error", p)
				}
			}
			t.Log(err2)
			if proxy.faultHits() == 0 {
				t.Fatalf("the fault on %q was never applied", tc.suffix)
			}
			assertClass(t, err2, tc.class)
			if tc.kind == faultStall && time.Since(start) > 5*time.Second {
				t.Errorf("a stalled server held the client for %v", time.Since(start))
			}
			faulted := strings.TrimLeft(strings.TrimPrefix(tc.suffix, "/"), "0123456789.")
			assertCacheConsistent(t, before, cacheTree(t, cfg.CacheDir), faulted)
			assertEmpty(t, filepath.Join(st.s.Dir(), "sha256"))
			assertEmpty(t, filepath.Join(st.s.Dir(), "tmp"))
			if tc.op != "lookup" {
				// The last verified state still answers lookups.
				if _, err := c.Target(ctx, "acme/server"); err != nil {
					t.Fatalf("lookup after the fault: %v", err)
				}
			}

			proxy.set("", faultNone, 0)
			if err := retry(); err != nil {
				t.Fatalf("after the server recovered: %v", err)
			}
		})
	}
}

// A server that sends junk after a body of the declared length cannot
// extend the body: the client reads exactly Content-Length bytes, the
// metadata verifies, and the junk never reaches the cache.
func TestTrailingBytesAfterDeclaredLength(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	must(t, f.repo.AddTarget("top.json", []byte(`{"v":1}`), nil))
	must(t, f.repo.Publish())
	proxy := newFaultProxy(t, f.base)
	cfg := f.config(t)
	cfg.MetadataURL = proxy.srv.URL + "/metadata"
	cfg.TargetsURL = proxy.srv.URL + "/targets"
	c := newClient(t, cfg)
	ctx := context.Background()
	proxy.set(".json", faultTrailing, 4096)
	must(t, c.Refresh(ctx))
	tg, err := c.Target(ctx, "top.json")
	must(t, err)
	data, err := c.ReadTarget(ctx, tg)
	must(t, err)
	if string(data) != `{"v":1}` {
		t.Fatalf("ReadTarget returned %q", data)
	}
	if proxy.faultHits() == 0 {
		t.Fatal("the fault was never applied")
	}
	for name, data := range cacheTree(t, cfg.CacheDir) {
		if strings.Contains(data, "junk") {
			t.Errorf("cached %s holds the trailing junk", name)
		}
	}
}
