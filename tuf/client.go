package tuf

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/safefile"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Config configures New. Its zero value is not usable: MetadataURL,
// TargetsURL, Root and CacheDir are required, so that no field left empty
// means "trust anything" or "guess where".
type Config struct {
	// MetadataURL is the base URL of the repository's metadata: the client
	// fetches MetadataURL/timestamp.json, MetadataURL/N.root.json and so on.
	MetadataURL string
	// TargetsURL is the base URL of the repository's targets. It is
	// required, not derived from MetadataURL, because repositories lay
	// them out differently (the test kit serves BASE/metadata and
	// BASE/targets).
	TargetsURL string
	// Root is the pinned trusted root.json. Trust is never bootstrapped
	// from the cache: a cached root is used only when it chains from this
	// one by verified rotations.
	Root []byte
	// CacheDir holds verified metadata, laid out as Layout says, and small
	// targets (CacheDir/targets), created 0700 if missing. Everything read
	// back from it is verified again.
	CacheDir string
	// Layout is how CacheDir holds verified metadata. The zero value is
	// LayoutVersioned.
	Layout Layout
	// Fetcher makes every network read. Nil means a zero HTTPFetcher.
	Fetcher Fetcher
	// Now is the clock used for expiry. Nil means time.Now.
	Now func() time.Time
	// Logger receives debug records of the workflow. Nil discards them.
	Logger *slog.Logger
	// MaxDelegations bounds how many targets roles one lookup visits.
	// Zero means 32.
	MaxDelegations int
	// Offline makes the client use only CacheDir: no request is made.
	// Cached metadata is verified from the pinned root and accepted until
	// the earliest expiry among root, timestamp, snapshot and the targets
	// roles used; past it, lookups fail with preflight.ErrMetadata. The
	// client never falls back to offline on its own.
	Offline bool
}

const defaultMaxDelegations = 32

// Layout is how a Client keeps verified metadata in Config.CacheDir.
type Layout int

const (
	// LayoutVersioned keeps metadata in CacheDir/metadata: every verified
	// root version as N.root.json, and timestamp.json, snapshot.json,
	// targets.json and ROLE.json for delegated roles. A refresh starts from
	// Config.Root and uses a cached root only when it chains from it by
	// verified rotations, so the cache never becomes a trust anchor.
	LayoutVersioned Layout = iota
	// LayoutUnversioned keeps metadata directly in CacheDir under
	// unversioned names: root.json, timestamp.json, snapshot.json,
	// targets.json and ROLE.json, each written as soon as the workflow has
	// verified it, so the directory always holds exactly what the client
	// trusts. It is the layout of the TUF conformance suite's client
	// protocol and of go-tuf's and python-tuf's updaters. root.json is
	// written (Config.Root, then every verified rotation) but never read
	// by the client: a caller that treats the directory as its trust store
	// passes root.json back as Config.Root on the next run.
	LayoutUnversioned
)

// Client reads one TUF repository of MCP server metadata. It is safe for
// concurrent use; concurrent refreshes share one.
type Client struct {
	cfg        Config // copied, defaults applied; Root is a private copy
	metaURL    string // ends with "/"
	targetsURL string // ends with "/"
	fetcher    Fetcher
	log        *slog.Logger
	metaDir    string
	targetsDir string

	mu      sync.Mutex
	current *session // the last successful refresh, nil before
	flight  *flight  // the refresh in progress, nil when none

	onJoin func() // test hook: called when a caller joins a refresh in progress
}

// session is the verified state of one refresh: go-tuf's trusted metadata
// set, into which delegated roles are loaded on demand.
type session struct {
	mu      sync.Mutex // guards trusted
	trusted *trustedmetadata.TrustedMetadata
	offline bool
}

// flight is one refresh that concurrent callers wait for.
type flight struct {
	done      chan struct{}
	s         *session
	err       error
	abandoned bool // the caller running it gave up (its context ended)
}

// New validates cfg and returns a client. It makes no request; the first
// Refresh or Target does.
func New(cfg Config) (*Client, error) {
	cfgErr := func(field, expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "tuf.Config." + field, Expected: expected, Found: found, Err: err}
	}
	metaURL, err := baseURL(cfg.MetadataURL)
	if err != nil {
		return nil, cfgErr("MetadataURL", "an absolute http or https URL", fmt.Sprintf("%q", cfg.MetadataURL), err)
	}
	targetsURL, err := baseURL(cfg.TargetsURL)
	if err != nil {
		return nil, cfgErr("TargetsURL", "an absolute http or https URL", fmt.Sprintf("%q", cfg.TargetsURL), err)
	}
	if len(cfg.Root) == 0 {
		return nil, cfgErr("Root", "the pinned root.json of the repository", "nothing", nil)
	}
	cfg.Root = append([]byte(nil), cfg.Root...)
	if _, err := trustedmetadata.New(cfg.Root); err != nil {
		return nil, cfgErr("Root", "a root.json signed by its own threshold of keys", "a document that does not verify", err)
	}
	if cfg.CacheDir == "" {
		return nil, cfgErr("CacheDir", "a directory for verified metadata", "nothing", nil)
	}
	if cfg.Layout != LayoutVersioned && cfg.Layout != LayoutUnversioned {
		return nil, cfgErr("Layout", "LayoutVersioned or LayoutUnversioned", fmt.Sprint(int(cfg.Layout)), nil)
	}
	if cfg.MaxDelegations < 0 {
		return nil, cfgErr("MaxDelegations", "zero (default 32) or a positive bound", fmt.Sprint(cfg.MaxDelegations), nil)
	}
	if cfg.MaxDelegations == 0 {
		cfg.MaxDelegations = defaultMaxDelegations
	}
	if cfg.Fetcher == nil {
		cfg.Fetcher = &HTTPFetcher{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:        cfg,
		metaURL:    metaURL,
		targetsURL: targetsURL,
		fetcher:    cfg.Fetcher,
		log:        cfg.Logger,
		metaDir:    filepath.Join(cfg.CacheDir, "metadata"),
		targetsDir: filepath.Join(cfg.CacheDir, "targets"),
	}
	if cfg.Layout == LayoutUnversioned {
		c.metaDir = cfg.CacheDir
	}
	for _, d := range []string{c.metaDir, c.targetsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, &preflight.Error{Class: preflight.ErrStore, Subject: "TUF cache " + cfg.CacheDir, Err: err, Hint: "check that CacheDir is writable"}
		}
	}
	return c, nil
}

func baseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("not an http or https base URL")
	}
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
}

// Refresh runs the TUF client workflow: it follows root rotations from the
// pinned root, then loads timestamp, snapshot and top-level targets,
// downloading only what changed. Concurrent callers share one refresh; a
// caller whose context ends stops waiting, and the refresh goes on for the
// others only if it was not the one running it. On failure the previous
// state stays in use for lookups until it expires.
func (c *Client) Refresh(ctx context.Context) error {
	_, err := c.refresh(ctx)
	return err
}

func (c *Client) refresh(ctx context.Context) (*session, error) {
	for {
		c.mu.Lock()
		if f := c.flight; f != nil {
			c.mu.Unlock()
			if c.onJoin != nil {
				c.onJoin()
			}
			select {
			case <-f.done:
				if f.abandoned && ctx.Err() == nil {
					continue // the caller running it gave up; run it ourselves
				}
				return f.s, f.err
			case <-ctx.Done():
				return nil, timeoutErr("TUF refresh "+c.cfg.MetadataURL, ctx.Err())
			}
		}
		f := &flight{done: make(chan struct{})}
		c.flight = f
		c.mu.Unlock()

		f.s, f.err = c.load(ctx)
		f.abandoned = f.err != nil && ctx.Err() != nil
		c.mu.Lock()
		c.flight = nil
		if f.err == nil {
			if c.current != nil {
				f.s.adopt(c.current)
			}
			c.current = f.s
		}
		c.mu.Unlock()
		close(f.done)
		if f.err != nil {
			c.log.Debug("TUF refresh failed", "repository", c.cfg.MetadataURL, "error", f.err)
		}
		return f.s, f.err
	}
}

// session returns a state that is valid now, refreshing when there is
// none yet or the last one has expired.
func (c *Client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	s := c.current
	c.mu.Unlock()
	if s != nil && !s.expired(c.cfg.Now()) {
		return s, nil
	}
	return c.refresh(ctx)
}

// adopt takes over the delegated roles prev has verified when nothing
// changed since: the same snapshot version means the same targets.json and
// the same delegated role versions, so their signatures were checked against
// the same keys. Without it every refresh would parse and verify each
// publisher's role again on its next lookup, which is most of the cost of
// checking many servers with one client. Expiry is still checked on use.
func (s *session) adopt(prev *session) {
	if prev == s {
		return
	}
	prev.mu.Lock()
	defer prev.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	old, cur := prev.trusted, s.trusted
	if old.Snapshot == nil || cur.Snapshot == nil || old.Snapshot.Signed.Version != cur.Snapshot.Signed.Version ||
		old.Root.Signed.Version != cur.Root.Signed.Version {
		return
	}
	for role, md := range old.Targets {
		if _, ok := cur.Targets[role]; !ok {
			cur.Targets[role] = md
		}
	}
}

func (s *session) expired(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	tm := s.trusted
	top := tm.Targets["targets"]
	return tm.Root.Signed.IsExpired(now) || tm.Timestamp.Signed.IsExpired(now) ||
		tm.Snapshot.Signed.IsExpired(now) || top == nil || top.Signed.IsExpired(now)
}

// readCache reads a cached metadata file, bounded by limit.
func (c *Client) readCache(name string, limit int64) ([]byte, error) {
	return safefile.ReadLimited(filepath.Join(c.metaDir, name), limit)
}

// writeCache stores verified bytes atomically: a reader sees the old file
// or the new one, never a part.
func writeCache(dir, name string, data []byte) error {
	if err := safefile.WriteAtomic(filepath.Join(dir, name), data, 0o600); err != nil {
		return cacheErr(dir, err)
	}
	return nil
}

func cacheErr(dir string, err error) error {
	return &preflight.Error{Class: preflight.ErrStore, Subject: "TUF cache " + dir, Err: err, Hint: "check that CacheDir is writable and has free space"}
}
