package npm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcp-preflight/preflight"
)

// DefaultRegistry is the public npm registry.
const DefaultRegistry = "https://registry.npmjs.org"

// Default limits.
const (
	DefaultMaxPackumentBytes = 32 << 20
	DefaultMaxTarballBytes   = 256 << 20
	// DefaultMaxUnpackedBytes bounds the bytes one tarball may expand to.
	DefaultMaxUnpackedBytes = 1 << 30
	// DefaultMaxFiles bounds the entries of one tarball.
	DefaultMaxFiles = 100_000
	// DefaultMaxPackages bounds the packages of a dependency closure.
	DefaultMaxPackages = 5_000
	// DefaultTimeout bounds one request, its body included.
	DefaultTimeout = 2 * time.Minute
)

// maxAttestationsBytes bounds the attestations document of one version:
// a provenance and a publish bundle are a few kilobytes each.
const maxAttestationsBytes = 8 << 20

// Config configures a Client. The zero value is usable: the public
// registry, an own HTTP client with timeouts and the default limits.
type Config struct {
	// Registry is the base URL of the registry, DefaultRegistry when
	// empty. It must be https, except on a loopback host (a local mirror
	// or a test registry), where http is accepted.
	Registry string
	// HTTPClient makes the requests; nil means an own client with dial,
	// TLS-handshake and response-header timeouts. The client is copied,
	// never changed; its redirect policy is wrapped with the host check
	// below.
	HTTPClient *http.Client
	// AllowedHosts are further hosts (host or host:port, as in a URL) that
	// tarball URLs and redirects may point to. By default only the
	// registry's own host is contacted; packages are pinned by integrity,
	// so another host could not change the bytes, but it would learn what
	// is installed and could make installs fail.
	AllowedHosts []string
	// MaxPackumentBytes bounds one packument (DefaultMaxPackumentBytes
	// when 0).
	MaxPackumentBytes int64
	// MaxTarballBytes bounds one tarball (DefaultMaxTarballBytes when 0).
	MaxTarballBytes int64
	// MaxUnpackedBytes bounds what one tarball may expand to
	// (DefaultMaxUnpackedBytes when 0).
	MaxUnpackedBytes int64
	// MaxFiles bounds the entries of one tarball (DefaultMaxFiles when 0).
	MaxFiles int
	// MaxPackages bounds a dependency closure (DefaultMaxPackages when 0).
	MaxPackages int
	// Timeout bounds each request, reading its body included
	// (DefaultTimeout when 0), so that a registry that stalls after its
	// headers cannot hold a caller without a deadline forever.
	Timeout time.Duration
	// Logger receives debug records of requests and decisions; nil
	// discards them.
	Logger *slog.Logger
}

// Client reads packages from one npm registry. It is safe for concurrent
// use; it holds no per-request state.
type Client struct {
	cfg      Config
	registry *url.URL
	hosts    []string // hosts that may be contacted, the registry's first
	http     *http.Client
	log      *slog.Logger
}

// New validates cfg and returns a client. Invalid settings are ErrConfig
// errors.
func New(cfg Config) (*Client, error) {
	cfg.AllowedHosts = slices.Clone(cfg.AllowedHosts)
	if cfg.Registry == "" {
		cfg.Registry = DefaultRegistry
	}
	bad := func(expected, found string) error {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "npm client", Expected: expected, Found: found}
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.Registry, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("a registry base URL such as "+DefaultRegistry, fmt.Sprintf("%q", cfg.Registry))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, bad("an https registry (http only on a loopback host)", fmt.Sprintf("%q", cfg.Registry))
	}
	for _, l := range []struct {
		name string
		v    *int64
		def  int64
	}{
		{"MaxPackumentBytes", &cfg.MaxPackumentBytes, DefaultMaxPackumentBytes},
		{"MaxTarballBytes", &cfg.MaxTarballBytes, DefaultMaxTarballBytes},
		{"MaxUnpackedBytes", &cfg.MaxUnpackedBytes, DefaultMaxUnpackedBytes},
	} {
		if *l.v < 0 {
			return nil, bad(l.name+" of 0 (default) or more", fmt.Sprint(*l.v))
		}
		if *l.v == 0 {
			*l.v = l.def
		}
	}
	if cfg.MaxFiles < 0 || cfg.MaxPackages < 0 {
		return nil, bad("MaxFiles and MaxPackages of 0 (default) or more", fmt.Sprint(cfg.MaxFiles, cfg.MaxPackages))
	}
	if cfg.Timeout < 0 {
		return nil, bad("a Timeout of 0 (default) or more", cfg.Timeout.String())
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxFiles == 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if cfg.MaxPackages == 0 {
		cfg.MaxPackages = DefaultMaxPackages
	}
	hosts := []string{strings.ToLower(u.Host)}
	for _, h := range cfg.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/?#@ ") {
			return nil, bad("AllowedHosts entries of the form host or host:port", fmt.Sprintf("%q", h))
		}
		hosts = append(hosts, strings.ToLower(h))
	}
	c := &Client{cfg: cfg, registry: u, hosts: hosts, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc = http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
			ForceAttemptHTTP2:     true,
		}}
	}
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errTooManyRedirects
		}
		if err := c.checkURL(req.URL); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	c.http = &hc
	return c, nil
}

var errTooManyRedirects = errors.New("more than 5 redirects")

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkURL refuses URLs on hosts the client may not contact, and plain http
// unless the registry itself is plain http on loopback.
func (c *Client) checkURL(u *url.URL) error {
	if !slices.Contains(c.hosts, strings.ToLower(u.Host)) {
		return &preflight.Error{Class: preflight.ErrUnavailable, Subject: "npm " + redact(u),
			Expected: "a URL on " + strings.Join(c.hosts, ", "), Found: "host " + u.Host,
			Hint: "the registry points elsewhere; add the host to Config.AllowedHosts if it is a mirror you trust to serve"}
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return &preflight.Error{Class: preflight.ErrUnavailable, Subject: "npm " + redact(u),
			Expected: "an https URL", Found: u.Scheme, Hint: "the registry must serve over https"}
	}
	return nil
}

// redact drops credentials and the query from a URL for messages.
func redact(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery = ""
	return v.String()
}

// bound returns ctx limited by Config.Timeout, for one request and the
// reading of its body: pass the result to get, readBounded and the store.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// get performs a GET and returns the response for a 200 answer. Other
// answers become ErrNotFound (404, 410) or ErrUnavailable; failures to
// connect ErrUnavailable, and deadlines ErrTimeout.
func (c *Client) get(ctx context.Context, u *url.URL, accept string) (*http.Response, error) {
	if err := c.checkURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "npm " + redact(u), Err: err}
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportErr(ctx, u, err)
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "npm request", slog.String("url", redact(u)), slog.Int("status", resp.StatusCode), slog.Duration("elapsed", time.Since(start)))
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	resp.Body.Close()
	class, hint := preflight.ErrUnavailable, "the registry answered with an error; retry later"
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
		class, hint = preflight.ErrNotFound, "check the package name and version"
	}
	return nil, &preflight.Error{Class: class, Subject: "npm " + redact(u), Expected: "HTTP 200", Found: resp.Status, Hint: hint}
}

func (c *Client) transportErr(ctx context.Context, u *url.URL, err error) error {
	var pe *preflight.Error
	if errors.As(err, &pe) {
		return pe // from the redirect check
	}
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		cause := ctx.Err()
		if cause == nil {
			cause = err
		}
		return &preflight.Error{Class: preflight.ErrTimeout, Subject: "npm " + redact(u), Err: cause, Hint: "the registry is slow or unreachable; retry or raise the deadline"}
	}
	return &preflight.Error{Class: preflight.ErrUnavailable, Subject: "npm " + redact(u), Err: err, Hint: "check the network and the registry URL"}
}

// readBounded reads all of body, failing with ErrMalformed past limit.
func (c *Client) readBounded(ctx context.Context, u *url.URL, body io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, c.transportErr(ctx, u, err)
	}
	if int64(len(b)) > limit {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm " + redact(u),
			Expected: fmt.Sprintf("%s of at most %d bytes", what, limit), Found: "more",
			Hint: "raise the limit in the npm configuration if the registry is trusted to send that much"}
	}
	return b, nil
}

// registryURL is the registry base joined with an escaped path.
func (c *Client) registryURL(rawPath string) *url.URL {
	u := *c.registry
	u.RawPath = strings.TrimSuffix(c.registry.EscapedPath(), "/") + rawPath
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		p = u.RawPath
	}
	u.Path = p
	return &u
}
