package npm_test

// Transport faults between the client and an npm registry that the fake
// registry's own switches (Truncate, SetDelay, Oversize) do not produce: a
// connection cut at an exact byte (inside the headers, inside the body), a
// body that stalls after the headers with no deadline from the caller, and
// a Content-Length shorter than the body. A proxy in front of the test
// registry writes raw HTTP on a hijacked connection. Each case asserts the
// class, that the store and its npm index hold nothing, and that the next
// fetch from a healthy registry works.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/npm"
)

type npmFault int

const (
	npmHealthy npmFault = iota
	npmCutHeaders
	npmCutBody
	npmStallBody
	npmUnderdeclare
)

// npmProxy forwards to upstream and spoils answers whose path contains
// match.
type npmProxy struct {
	upstream string
	srv      *httptest.Server
	closed   chan struct{}

	mu    sync.Mutex
	match string
	fault npmFault
	hits  int
}

func newNPMProxy(t *testing.T, upstream string) *npmProxy {
	t.Helper()
	p := &npmProxy{upstream: strings.TrimSuffix(upstream, "/"), closed: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		close(p.closed)
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

func (p *npmProxy) set(match string, f npmFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.match, p.fault, p.hits = match, f, 0
}

func (p *npmProxy) spoiled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits
}

func (p *npmProxy) serve(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Accept", r.Header.Get("Accept"))
	resp, err := http.DefaultTransport.RoundTrip(req)
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
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		// Tarball URLs in packuments point at the proxy, like a mirror's.
		body = bytes.ReplaceAll(body, []byte(p.upstream), []byte(p.srv.URL))
	}
	p.mu.Lock()
	fault := p.fault
	if fault == npmHealthy || resp.StatusCode != http.StatusOK || !strings.Contains(r.URL.Path, p.match) {
		fault = npmHealthy
	} else {
		p.hits++
	}
	p.mu.Unlock()

	if fault == npmHealthy || fault == npmStallBody {
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(resp.StatusCode)
		if fault == npmHealthy {
			w.Write(body)
			return
		}
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nConnection: close\r\nContent-Length: ", resp.Header.Get("Content-Type"))
	switch fault {
	case npmCutHeaders:
		buf.WriteString(head) // the connection dies inside the headers
	case npmCutBody:
		fmt.Fprintf(buf, "%s%d\r\n\r\n", head, len(body))
		buf.Write(body[:len(body)/3])
	case npmUnderdeclare:
		fmt.Fprintf(buf, "%s%d\r\n\r\n", head, len(body)-7)
		buf.Write(body)
	}
	buf.Flush()
}

// indexEntries counts the files of the client's sha512 index.
func indexEntries(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "npm", "sha512"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestRegistryFaults(t *testing.T) {
	tests := []struct {
		name  string
		match string // URL path part of the spoiled answers
		fault npmFault
		op    string // "resolve", "fetch" or "attestations"
		class *preflight.Class
	}{
		{"packument cut inside the headers", "/weather-mcp", npmCutHeaders, "resolve", preflight.ErrUnavailable},
		{"packument cut mid-body", "/weather-mcp", npmCutBody, "resolve", preflight.ErrUnavailable},
		{"packument declares less than it sends", "/weather-mcp", npmUnderdeclare, "resolve", preflight.ErrMalformed},
		{"packument stalls after the headers", "/weather-mcp", npmStallBody, "resolve", preflight.ErrTimeout},
		{"tarball cut inside the headers", ".tgz", npmCutHeaders, "fetch", preflight.ErrUnavailable},
		{"tarball cut mid-body", ".tgz", npmCutBody, "fetch", preflight.ErrUnavailable},
		{"tarball declares less than it sends", ".tgz", npmUnderdeclare, "fetch", preflight.ErrTampered},
		{"tarball stalls after the headers", ".tgz", npmStallBody, "fetch", preflight.ErrTimeout},
		{"attestations cut mid-body", "/attestations/", npmCutBody, "attestations", preflight.ErrUnavailable},
		{"attestations declare less than they send", "/attestations/", npmUnderdeclare, "attestations", preflight.ErrMalformed},
		{"attestations stall after the headers", "/attestations/", npmStallBody, "attestations", preflight.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, npm.Config{})
			tgz := e.publishServer(t, false)
			e.reg.AddAttestations(rootName, "1.0.0", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
			proxy := newNPMProxy(t, e.reg.URL())
			// The caller sets no deadline: the client's own Timeout must end
			// a stalled body.
			c, err := npm.New(npm.Config{Registry: proxy.srv.URL, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			v, err := c.Resolve(ctx, rootName, "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			op := func() error {
				switch tt.op {
				case "resolve":
					got, err := c.Resolve(ctx, rootName, "1.0.0")
					if err == nil && got.Integrity != v.Integrity {
						t.Fatalf("resolved %s, want %s", got.Integrity, v.Integrity)
					}
					return err
				case "fetch":
					entry, err := c.FetchTarball(ctx, v, e.st)
					if err == nil {
						data, rerr := os.ReadFile(entry.Path)
						if rerr != nil || !bytes.Equal(data, tgz) {
							t.Fatalf("stored tarball differs from the published one (%v)", rerr)
						}
					}
					return err
				default:
					atts, err := c.Attestations(ctx, rootName, "1.0.0")
					if err == nil && len(atts) != 1 {
						t.Fatalf("got %d attestations, want 1", len(atts))
					}
					return err
				}
			}
			proxy.set(tt.match, tt.fault)
			start := time.Now()
			err = op()
			t.Log(err)
			if proxy.spoiled() == 0 {
				t.Fatalf("no answer matching %q was spoiled", tt.match)
			}
			wantClass(t, err, tt.class)
			if time.Since(start) > 5*time.Second {
				t.Errorf("the fault held the client for %v", time.Since(start))
			}
			if n := storeEntries(t, e.st); n != 0 {
				t.Errorf("store holds %d files after a failed operation", n)
			}
			if n := indexEntries(t, e.st.Dir()); n != 0 {
				t.Errorf("the npm index holds %d entries after a failed operation", n)
			}
			proxy.set("", npmHealthy)
			if err := op(); err != nil {
				t.Fatalf("after the registry recovered: %v", err)
			}
		})
	}
}

func TestTimeoutConfig(t *testing.T) {
	_, err := npm.New(npm.Config{Registry: "http://127.0.0.1:1", Timeout: -time.Second})
	wantClass(t, err, preflight.ErrConfig)
}
