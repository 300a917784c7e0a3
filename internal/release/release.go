package release

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/archive"
	"github.com/mcp-preflight/preflight/internal/store"
	"github.com/mcp-preflight/preflight/policy"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout  = 2 * time.Minute
	DefaultMaxBytes = 512 << 20
	// MaxBundleBytes bounds a bundle document (a JSON Lines file may hold
	// several bundles); it equals verify.MaxBundleSize.
	MaxBundleBytes = 16 << 20
	// MaxBundles bounds the bundles one document may hold.
	MaxBundles   = 64
	maxRedirects = 5
	userAgent    = "preflight-release"
)

// GitHubReleaseHosts returns the hosts github.com redirects release asset
// downloads to, for Config.AllowRedirectHosts.
func GitHubReleaseHosts() []string {
	return []string{"objects.githubusercontent.com", "release-assets.githubusercontent.com"}
}

// Asset is one file of a release, for one platform.
type Asset struct {
	// URL is where the file is downloaded from: https, or http for a
	// loopback host.
	URL string
	// SHA256, when set, pins the file's bytes (lower- or upper-case hex).
	SHA256 string
	// BundleURL is the Sigstore bundle for the file. Empty means URL +
	// ".sigstore.json" when Config.Verify is set, and no bundle otherwise.
	BundleURL string
	// Binary, when set, makes the file an archive and names the executable
	// in it: a slash-separated path inside the archive, or a bare file
	// name that must match exactly one file anywhere in it.
	Binary string
	// Format is the archive format; zero means detected from the URL's
	// file name (see archive.Detect). Used only with Binary.
	Format archive.Format
}

// Release maps platforms, "GOOS/GOARCH" such as "linux/amd64", to assets.
type Release map[string]Asset

// For returns the asset for platform, or an ErrNotFound failure naming the
// platforms the release has.
func (r Release) For(platform string) (Asset, error) {
	if a, ok := r[platform]; ok {
		return a, nil
	}
	have := make([]string, 0, len(r))
	for p := range r {
		have = append(have, p)
	}
	slices.Sort(have)
	return Asset{}, &preflight.Error{Class: preflight.ErrNotFound, Subject: "release", Expected: "an asset for " + platform,
		Found: orNone(strings.Join(have, ", ")), Hint: "the publisher does not ship a build for this platform"}
}

// Bundle is one Sigstore bundle as fetched: a name for messages (its URL,
// with "#N" for the Nth bundle of a document) and its JSON. It converts to
// verify.Bundle.
type Bundle struct {
	Name string
	JSON []byte
}

// VerifyFunc checks bundles against an artifact's digests (algorithm to
// hex) and returns one SignatureFacts per bundle, or an error of a
// preflight class and no facts. verify.VerifyEvidence bound to trusted
// material and signers is one; the verify package passes such a closure
// (this package cannot import verify, which imports it).
type VerifyFunc func(artifact map[string]string, bundles []Bundle) ([]policy.SignatureFacts, error)

// Config configures a Fetcher. Store is required; the zero value of every
// other field is safe.
type Config struct {
	// Store receives the downloads, and unpacked archives under
	// Store.Dir()/unpacked.
	Store *store.Store
	// Client makes the requests. Nil means a client of the Fetcher's own.
	// A given client is copied and the copy's CheckRedirect replaced by
	// the Fetcher's redirect rules; the caller's value is not changed.
	Client *http.Client
	// Timeout bounds each request, its body included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxBytes bounds a downloaded file, and an executable taken from an
	// archive. Zero means DefaultMaxBytes.
	MaxBytes int64
	// AllowRedirectHosts lists the hosts ("host" or "host:port") a
	// download may be redirected to besides its own.
	AllowRedirectHosts []string
	// Limits bound archive unpacking (see archive.Limits).
	Limits archive.Limits
	// Verify, when set, makes a Sigstore bundle required for every asset
	// and checks it before the asset is downloaded.
	Verify VerifyFunc
}

// Fetcher fetches release assets into the store. It is safe for
// concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
}

// New validates cfg and returns a Fetcher. cfg is copied.
func New(cfg Config) (*Fetcher, error) {
	if cfg.Store == nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "release fetcher", Expected: "a store", Found: "none"}
	}
	if cfg.Timeout < 0 || cfg.MaxBytes < 0 {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "release fetcher", Expected: "a non-negative timeout and size limit (zero for the defaults)",
			Found: fmt.Sprintf("timeout %v, max bytes %d", cfg.Timeout, cfg.MaxBytes)}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	cfg.AllowRedirectHosts = slices.Clone(cfg.AllowRedirectHosts)
	for _, h := range cfg.AllowRedirectHosts {
		if h == "" || strings.ContainsAny(h, "/*") {
			return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "release fetcher", Expected: "redirect hosts as host or host:port, without wildcards",
				Found: fmt.Sprintf("%q", h)}
		}
	}
	client := &http.Client{}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	}
	f := &Fetcher{cfg: cfg, client: client}
	client.CheckRedirect = f.checkRedirect
	return f, nil
}

// Result is a fetched asset. Nothing is returned alongside an error.
type Result struct {
	// Entry is the executable's store entry: the downloaded file itself,
	// or the file taken from the archive. For Download, the downloaded
	// file.
	Entry store.Entry
	// File is the downloaded file's store entry (the archive, for
	// archives; otherwise equal to Entry).
	File store.Entry
	// Dir is the unpacked archive, for archives.
	Dir string
	// Artifact describes the downloaded file: its name (the URL's last
	// element), Source "url", size and digests.
	Artifact policy.ArtifactFacts
	// Bundles is the evidence as fetched.
	Bundles []Bundle
	// Signatures are the verified bundles' facts, when Config.Verify is
	// set.
	Signatures []policy.SignatureFacts
	// Downloaded is false when the file was already in the store and was
	// not requested from the host.
	Downloaded bool
}

// Fetch fetches the asset's evidence, checks it, downloads the asset into
// the store as an executable, and for archives unpacks it and adds the
// executable named by Binary to the store.
//
// Failures match: ErrConfig (an invalid asset or nothing to check it
// against), ErrSignature (bundle required but absent, or not verifying),
// ErrIdentity and ErrProvenance (from Verify), ErrTampered (bytes other
// than the pinned or signed ones), ErrMalformed (an oversized download, a
// bad bundle document, an unsafe archive), ErrNotFound (HTTP 404, no
// executable of that name in the archive), ErrUnavailable (other HTTP
// failures, a refused redirect, a broken connection), ErrTimeout and
// ErrStore.
func (f *Fetcher) Fetch(ctx context.Context, a Asset) (*Result, error) {
	return f.fetch(ctx, a, true)
}

// Download is Fetch for files that are not run themselves (an MCP bundle):
// the entry is stored read-only (0400) and Binary must be empty.
func (f *Fetcher) Download(ctx context.Context, a Asset) (*Result, error) {
	if a.Binary != "" {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "asset " + a.URL, Expected: "no binary name for a plain download", Found: a.Binary}
	}
	return f.fetch(ctx, a, false)
}

func (f *Fetcher) fetch(ctx context.Context, a Asset, executable bool) (*Result, error) {
	u, err := checkURL(a.URL)
	if err != nil {
		return nil, err
	}
	name := path.Base(u.Path)
	subject := "asset " + a.URL
	pin := strings.ToLower(a.SHA256)
	if pin != "" && !validHex(pin, 32) {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: subject, Expected: "a SHA-256 of 64 hex characters", Found: fmt.Sprintf("%q", a.SHA256)}
	}
	if pin == "" && f.cfg.Verify == nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: subject, Expected: "a pinned SHA-256 or a signer to verify a bundle against", Found: "neither",
			Hint: "pin the digest or configure signers; unchecked bytes are never fetched"}
	}
	format := a.Format
	if a.Binary != "" {
		if err := checkBinaryName(a.Binary); err != nil {
			return nil, err
		}
		if format == archive.FormatUnknown {
			if format, err = archive.Detect(name); err != nil {
				return nil, err
			}
		}
	}

	// Evidence first: it decides which bytes are acceptable.
	res := &Result{}
	want := store.Digests{}
	if pin != "" {
		want["sha256"] = pin
	}
	bundleURL := a.BundleURL
	if bundleURL == "" && f.cfg.Verify != nil {
		bundleURL = a.URL + ".sigstore.json"
	}
	if bundleURL != "" {
		if res.Bundles, err = f.fetchBundles(ctx, bundleURL, f.cfg.Verify != nil); err != nil {
			return nil, err
		}
	}
	if f.cfg.Verify != nil {
		if pin == "" {
			if want, err = claimedDigests(res.Bundles[0], name); err != nil {
				return nil, err
			}
		}
		if res.Signatures, err = f.cfg.Verify(map[string]string(want), res.Bundles); err != nil {
			return nil, err
		}
	}

	storeAsExecutable := executable && a.Binary == ""
	file, downloaded, err := f.download(ctx, a.URL, want, storeAsExecutable)
	if err != nil {
		return nil, err
	}
	res.File, res.Entry, res.Downloaded = file, file, downloaded
	digests := map[string]string{"sha256": file.SHA256}
	for alg, d := range want {
		digests[alg] = d
	}
	res.Artifact = policy.ArtifactFacts{Name: name, Source: "url", Size: file.Size, Digests: digests}
	if a.Binary == "" {
		return res, nil
	}
	if res.Dir, err = f.Unpack(ctx, file, format); err != nil {
		return nil, err
	}
	if res.Entry, err = f.addExecutable(ctx, res.Dir, a.Binary); err != nil {
		return nil, err
	}
	return res, nil
}

// download streams url into the store unless an entry with the expected
// SHA-256 is already there.
func (f *Fetcher) download(ctx context.Context, rawURL string, want store.Digests, executable bool) (store.Entry, bool, error) {
	if d, ok := want["sha256"]; ok {
		if e, ok := f.cfg.Store.Lookup(d); ok {
			return e, false, nil
		}
	}
	rctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	resp, err := f.get(rctx, rawURL, f.cfg.MaxBytes)
	if err != nil {
		return store.Entry{}, false, err
	}
	defer resp.Body.Close()
	// The request's context goes to Put, so a body that stalls past the
	// timeout is reported as ErrTimeout rather than as a broken read.
	e, err := f.cfg.Store.Put(rctx, resp.Body, store.PutOptions{Limit: f.cfg.MaxBytes, Want: want, Executable: executable})
	if err != nil {
		// Name the asset rather than the store's generic subject.
		if pe, ok := err.(*preflight.Error); ok {
			named := *pe
			named.Subject = "asset " + rawURL
			return store.Entry{}, false, &named
		}
		return store.Entry{}, false, err
	}
	return e, true, nil
}

// get sends a GET and returns a 200 answer whose declared length is within
// limit. The caller closes the body.
func (f *Fetcher) get(ctx context.Context, rawURL string, limit int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: rawURL, Err: err}
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := f.client.Do(req)
	if err != nil {
		var pe *preflight.Error
		if errors.As(err, &pe) {
			return nil, pe
		}
		if ctx.Err() != nil {
			return nil, timeoutErr(rawURL, ctx.Err())
		}
		return nil, &preflight.Error{Class: preflight.ErrUnavailable, Subject: rawURL, Err: err, Hint: "check the network and the URL"}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		class := preflight.ErrUnavailable
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			class = preflight.ErrNotFound
		}
		return nil, &preflight.Error{Class: class, Subject: rawURL, Expected: "HTTP 200", Found: resp.Status}
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: rawURL, Expected: fmt.Sprintf("at most %d bytes", limit),
			Found: fmt.Sprintf("Content-Length %d", resp.ContentLength), Hint: "raise the size limit only if the publisher really ships a file this large"}
	}
	return resp, nil
}

// fetchBundles fetches and parses a bundle document. A missing document is
// ErrSignature when required and ErrNotFound otherwise.
func (f *Fetcher) fetchBundles(ctx context.Context, rawURL string, required bool) ([]Bundle, error) {
	if _, err := checkURL(rawURL); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	resp, err := f.get(rctx, rawURL, MaxBundleBytes)
	if err != nil {
		if required && errors.Is(err, preflight.ErrNotFound) {
			var pe *preflight.Error
			errors.As(err, &pe)
			return nil, &preflight.Error{Class: preflight.ErrSignature, Subject: "bundle " + rawURL, Expected: "a Sigstore bundle", Found: "none (" + pe.Found + ")",
				Hint: "the policy requires a signature; ask the publisher to attach the .sigstore.json bundle, or name its URL"}
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBundleBytes+1))
	if err != nil {
		if rctx.Err() != nil {
			return nil, timeoutErr(rawURL, rctx.Err())
		}
		return nil, &preflight.Error{Class: preflight.ErrUnavailable, Subject: rawURL, Err: err, Hint: "the connection broke while reading; retry"}
	}
	if len(data) > MaxBundleBytes {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: rawURL, Expected: fmt.Sprintf("at most %d bytes", MaxBundleBytes), Found: "more"}
	}
	return ParseBundles(rawURL, data)
}

// Unpack unpacks an archive entry of the store into
// Store.Dir()/unpacked/<its sha256> with the configured limits, unless that
// directory exists already, and returns the directory. The archive is
// re-hashed as it is opened. Failures are those of archive.Unpack and
// store.Open.
func (f *Fetcher) Unpack(ctx context.Context, file store.Entry, format archive.Format) (string, error) {
	base := filepath.Join(f.cfg.Store.Dir(), "unpacked")
	dir := filepath.Join(base, file.SHA256)
	if info, err := os.Lstat(dir); err == nil && info.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: "unpack " + base, Err: err}
	}
	// Open re-hashes the archive, so a store entry changed on disk is not
	// unpacked.
	fh, err := f.cfg.Store.Open(file.SHA256)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	err = archive.Unpack(ctx, fh, file.Size, format, dir, f.cfg.Limits)
	if err != nil && !(errors.Is(err, preflight.ErrStore) && errors.Is(err, fs.ErrExist)) {
		return "", err
	}
	return dir, nil
}

// addExecutable finds the binary in dir and adds it to the store.
func (f *Fetcher) addExecutable(ctx context.Context, dir, binary string) (store.Entry, error) {
	rel, err := locate(dir, binary)
	if err != nil {
		return store.Entry{}, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return store.Entry{}, &preflight.Error{Class: preflight.ErrStore, Subject: dir, Err: err}
	}
	defer root.Close()
	fh, err := root.Open(rel)
	if err != nil {
		return store.Entry{}, &preflight.Error{Class: preflight.ErrStore, Subject: filepath.Join(dir, rel), Err: err}
	}
	defer fh.Close()
	return f.cfg.Store.Put(ctx, fh, store.PutOptions{Limit: f.cfg.MaxBytes, Executable: true})
}

// locate returns the path, relative to dir, of the regular file binary
// names: an exact path when it has a slash, else the one file of that name.
func locate(dir, binary string) (string, error) {
	subject := "archive " + filepath.Base(dir)
	if strings.Contains(binary, "/") {
		rel := filepath.FromSlash(path.Clean(binary))
		info, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil || !info.Mode().IsRegular() {
			return "", &preflight.Error{Class: preflight.ErrNotFound, Subject: subject, Expected: "a regular file " + binary, Found: "none",
				Hint: "check the binary name against the archive's contents"}
		}
		return rel, nil
	}
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() == binary {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: dir, Err: err}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", &preflight.Error{Class: preflight.ErrNotFound, Subject: subject, Expected: "a file named " + binary, Found: "none",
			Hint: "check the binary name against the archive's contents"}
	}
	return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "one file named " + binary,
		Found: strings.Join(found, ", "), Hint: "name the executable by its path inside the archive"}
}

func checkBinaryName(b string) error {
	if strings.HasPrefix(b, "/") || strings.ContainsAny(b, "\\\x00") || !filepath.IsLocal(filepath.FromSlash(b)) || strings.HasSuffix(b, "/") {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "asset binary", Expected: "a relative path inside the archive", Found: fmt.Sprintf("%q", b)}
	}
	return nil
}

// checkRedirect enforces the redirect rules in the package comment.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	from := via[0].URL
	refuse := func(expected, found, hint string) error {
		return &preflight.Error{Class: preflight.ErrUnavailable, Subject: from.String(), Expected: expected, Found: found, Hint: hint}
	}
	if len(via) > maxRedirects {
		return refuse(fmt.Sprintf("at most %d redirects", maxRedirects), "more", "")
	}
	to := req.URL
	if to.Scheme != "https" && !(to.Scheme == "http" && isLoopback(to.Hostname())) || from.Scheme == "https" && to.Scheme != "https" {
		return refuse("a redirect to https", "a redirect to "+to.Scheme+"://"+to.Host, "")
	}
	if to.Host == from.Host || slices.Contains(f.cfg.AllowRedirectHosts, to.Host) || slices.Contains(f.cfg.AllowRedirectHosts, to.Hostname()) {
		return nil
	}
	return refuse("a redirect to "+from.Host+allowedHosts(f.cfg.AllowRedirectHosts), "a redirect to "+to.Host,
		"add the host to the allowed redirect hosts if you trust it")
}

func allowedHosts(h []string) string {
	if len(h) == 0 {
		return ""
	}
	return " or " + strings.Join(h, ", ")
}

// checkURL accepts https URLs, and http URLs of loopback hosts.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	shown := "an unparsable URL"
	if err == nil {
		shown = fmt.Sprintf("%q", u.Redacted()) // never echo a password
	}
	bad := func(found string) error {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "URL " + shown, Expected: "an https URL (http only for loopback hosts) without credentials",
			Found: found, Err: err}
	}
	switch {
	case err != nil:
		return nil, bad("an unparsable URL")
	case u.Host == "":
		return nil, bad("no host")
	case u.User != nil:
		return nil, bad("credentials in the URL")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, bad("scheme " + fmt.Sprintf("%q", u.Scheme))
	}
	if path.Base(u.Path) == "/" || path.Base(u.Path) == "." {
		return nil, bad("no file name in the path")
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validHex(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n
}

func timeoutErr(subject string, cause error) error {
	hint := "the host is too slow or unreachable (a slow-retrieval attack looks the same); retry later or raise the timeout"
	if errors.Is(cause, context.Canceled) {
		hint = "the operation was canceled"
	}
	return &preflight.Error{Class: preflight.ErrTimeout, Subject: subject, Err: cause, Hint: hint}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
