package tuf_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestResolveReadAndDownload(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	descriptor := []byte(`{"name":"io.example/weather"}`)
	binary := bytes.Repeat([]byte("mcp-server-binary "), 1000)
	custom := json.RawMessage(`{"kind":"descriptor"}`)
	must(t, f.repo.AddTarget("weather/server.json", descriptor, custom))
	must(t, f.repo.Delegate("acme", []string{"acme/*"}, 1, 1, false))
	must(t, f.repo.AddDelegatedTarget("acme", "acme/server-linux-amd64", binary))
	must(t, f.repo.Publish())

	ctx := context.Background()
	c := newClient(t, f.config(t))
	tg, err := c.Target(ctx, "weather/server.json")
	must(t, err)
	if tg.SignedBy != "targets" || tg.Length != int64(len(descriptor)) || tg.Hashes["sha256"] != sha256Hex(descriptor) ||
		string(tg.Custom) != string(custom) || tg.TargetsVersion != 2 || tg.Expires.Before(time.Now()) {
		t.Fatalf("unexpected target %+v", tg)
	}
	data, err := c.ReadTarget(ctx, tg)
	must(t, err)
	if !bytes.Equal(data, descriptor) {
		t.Fatalf("ReadTarget = %q", data)
	}
	// A second read is served from the cache.
	f.repo.ResetRequests()
	data, err = c.ReadTarget(ctx, tg)
	must(t, err)
	if !bytes.Equal(data, descriptor) || len(f.repo.RequestLog()) != 0 {
		t.Fatalf("second ReadTarget = %q after requests %q", data, f.repo.RequestLog())
	}

	bin, err := c.Target(ctx, "acme/server-linux-amd64")
	must(t, err)
	if bin.SignedBy != "acme" || bin.TargetsVersion != 1 {
		t.Fatalf("unexpected delegated target %+v", bin)
	}
	st := newStore(t)
	p, err := c.DownloadTarget(ctx, bin, st)
	must(t, err)
	got, err := os.ReadFile(p)
	must(t, err)
	if !bytes.Equal(got, binary) {
		t.Fatal("stored bytes differ")
	}
	f.repo.ResetRequests()
	p2, err := c.DownloadTarget(ctx, bin, st)
	must(t, err)
	if p2 != p || len(f.repo.RequestLog()) != 0 {
		t.Fatalf("second download: path %q, requests %q", p2, f.repo.RequestLog())
	}

	_, err = c.Target(ctx, "weather/missing.json")
	assertClass(t, err, preflight.ErrNotFound)

	// A Fetcher that cannot stream still downloads into the store.
	cfg := f.config(t)
	cfg.Fetcher = fetchOnly{cfg.Fetcher}
	c = newClient(t, cfg)
	bin, err = c.Target(ctx, "acme/server-linux-amd64")
	must(t, err)
	p, err = c.DownloadTarget(ctx, bin, newStore(t))
	must(t, err)
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, binary) {
		t.Fatalf("download through a plain Fetcher: %v", err)
	}
}

// fetchOnly hides HTTPFetcher's Open.
type fetchOnly struct{ tuf.Fetcher }

// A mirror that keeps serving the last metadata after it expired is a
// freeze attack: the client refuses it, saying since when.
func TestFreezeByReplay(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{Expiry: time.Hour})
	ctx := context.Background()
	cfg := f.config(t)
	var now atomic.Pointer[time.Time]
	n := time.Now()
	now.Store(&n)
	cfg.Now = func() time.Time { return *now.Load() }
	c := newClient(t, cfg)
	must(t, c.Refresh(ctx))
	later := n.Add(2 * time.Hour)
	now.Store(&later)
	err := c.Refresh(ctx)
	pe := assertClass(t, err, preflight.ErrMetadata)
	want := tsExpiry(t, cfg.CacheDir).UTC().Format(time.RFC3339)
	// Every role expires at the same time here; the root is checked first.
	if pe.Subject != "root.json" || !strings.Contains(pe.Found, want) || !strings.Contains(pe.Hint, "do not move the clock") {
		t.Fatalf("error %q does not say root.json expired at %s", err, want)
	}
}

func TestNoConsistentSnapshot(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{NoConsistentSnapshot: true})
	must(t, f.repo.AddTarget("a/b.json", []byte("{}"), nil))
	must(t, f.repo.Publish())
	c := newClient(t, f.config(t))
	tg, err := c.Target(context.Background(), "a/b.json")
	must(t, err)
	if _, err := c.ReadTarget(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	for _, p := range f.repo.RequestLog() {
		if strings.Contains(p, "/1.") || strings.Contains(p, "/2.snapshot") || strings.Contains(p, sha256Hex([]byte("{}"))) {
			t.Errorf("fetched %s from a repository without consistent snapshots", p)
		}
	}
}

// The TUF specification makes every refresh probe for the next root
// version before anything else; with nothing new, that probe (a 404) and
// timestamp.json are the only requests, in a running client and in a new
// one sharing the cache.
func TestWarmRefreshCostsTimestampOnly(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	must(t, f.repo.Delegate("acme", []string{"acme/*"}, 1, 1, false))
	must(t, f.repo.AddDelegatedTarget("acme", "acme/x.json", []byte("{}")))
	must(t, f.repo.Publish())
	ctx := context.Background()
	cfg := f.config(t)
	c := newClient(t, cfg)
	if _, err := c.Target(ctx, "acme/x.json"); err != nil {
		t.Fatal(err)
	}
	want := []string{"/metadata/2.root.json", "/metadata/timestamp.json"}
	for _, c := range []*tuf.Client{c, newClient(t, cfg)} {
		f.repo.ResetRequests()
		must(t, c.Refresh(ctx))
		if _, err := c.Target(ctx, "acme/x.json"); err != nil {
			t.Fatal(err)
		}
		if got := f.repo.RequestLog(); !slices.Equal(got, want) {
			t.Fatalf("warm refresh and lookup made requests %q, want %q", got, want)
		}
	}

	// Something new: only the changed files are fetched.
	must(t, f.repo.AddTarget("new.json", []byte("{}"), nil))
	must(t, f.repo.Publish())
	f.repo.ResetRequests()
	must(t, c.Refresh(ctx))
	if _, err := c.Target(ctx, "acme/x.json"); err != nil {
		t.Fatal(err)
	}
	want = []string{"/metadata/2.root.json", "/metadata/timestamp.json", "/metadata/3.snapshot.json", "/metadata/3.targets.json"}
	if got := f.repo.RequestLog(); !slices.Equal(got, want) {
		t.Fatalf("refresh after a new target made requests %q, want %q", got, want)
	}
}

// gateFetcher holds timestamp.json requests until released.
type gateFetcher struct {
	tuf.Fetcher
	release    chan struct{}
	timestamps atomic.Int32
}

func (g *gateFetcher) Fetch(ctx context.Context, url string, maxBytes int64) ([]byte, error) {
	if strings.HasSuffix(url, "/timestamp.json") {
		g.timestamps.Add(1)
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	}
	return g.Fetcher.Fetch(ctx, url, maxBytes)
}

func TestConcurrentRefreshesShareOne(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	cfg := f.config(t)
	g := &gateFetcher{Fetcher: cfg.Fetcher, release: make(chan struct{})}
	cfg.Fetcher = g
	c := newClient(t, cfg)
	const callers = 8
	var joined sync.WaitGroup
	joined.Add(callers - 1)
	tuf.SetJoinHook(c, joined.Done)
	errs := make(chan error, callers)
	for range callers {
		go func() { errs <- c.Refresh(context.Background()) }()
	}
	joined.Wait() // every caller but the one running the refresh is waiting for it
	close(g.release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := g.timestamps.Load(); n != 1 {
		t.Fatalf("%d callers fetched timestamp.json %d times, want once", callers, n)
	}
}

// A caller that stops waiting does not cancel the refresh for the others,
// unless it was the one running it, in which case another takes over.
func TestRefreshCallerGivesUp(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	cfg := f.config(t)
	g := &gateFetcher{Fetcher: cfg.Fetcher, release: make(chan struct{})}
	cfg.Fetcher = g
	c := newClient(t, cfg)
	joined := make(chan struct{}, 1)
	tuf.SetJoinHook(c, func() { joined <- struct{}{} })

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { leader <- c.Refresh(leaderCtx) }()
	for g.timestamps.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	other := make(chan error, 1)
	go func() { other <- c.Refresh(context.Background()) }()
	<-joined
	cancelLeader()
	err := <-leader
	assertClass(t, err, preflight.ErrTimeout)
	close(g.release)
	if err := <-other; err != nil {
		t.Fatalf("the waiting caller failed with %v after the leader gave up", err)
	}
}

func TestRootRotation(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	must(t, f.repo.AddTarget("x.json", []byte("{}"), nil))
	must(t, f.repo.Publish())
	ctx := context.Background()
	cfg := f.config(t)
	c := newClient(t, cfg)
	must(t, c.Refresh(ctx))

	must(t, f.repo.RotateRoot(2, true))
	must(t, f.repo.RotateRoot(1, true))
	f.repo.ResetRequests()
	must(t, c.Refresh(ctx))
	want := []string{"/metadata/2.root.json", "/metadata/3.root.json", "/metadata/4.root.json", "/metadata/timestamp.json"}
	if got := f.repo.RequestLog(); !slices.Equal(got, want) {
		t.Fatalf("rotation made requests %q, want %q", got, want)
	}
	if _, err := c.Target(ctx, "x.json"); err != nil {
		t.Fatal(err)
	}
	// A new client pinned to the old root follows the cached rotations.
	f.repo.ResetRequests()
	c2 := newClient(t, cfg)
	must(t, c2.Refresh(ctx))
	want = []string{"/metadata/4.root.json", "/metadata/timestamp.json"}
	if got := f.repo.RequestLog(); !slices.Equal(got, want) {
		t.Fatalf("a new client with the cache made requests %q, want %q", got, want)
	}
	// And so does an offline one.
	off := cfg
	off.Offline = true
	off.Fetcher = failFetcher{t}
	if _, err := newClient(t, off).Target(ctx, "x.json"); err != nil {
		t.Fatal(err)
	}
}

func TestRootRotationWithoutOldKeysRefused(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	ctx := context.Background()
	cfg := f.config(t)
	c := newClient(t, cfg)
	must(t, c.Refresh(ctx))
	must(t, f.repo.RotateRoot(1, false))
	err := c.Refresh(ctx)
	pe := assertClass(t, err, preflight.ErrMetadata)
	if !strings.Contains(pe.Subject, "root.json version 2") {
		t.Errorf("subject %q does not name the refused root", pe.Subject)
	}
	// The refused root was not cached: an offline client still trusts version 1.
	if _, err := os.Stat(filepath.Join(cfg.CacheDir, "metadata", "2.root.json")); err == nil {
		t.Error("the refused root was cached")
	}
}

// failFetcher fails the test on any request: offline clients make none.
type failFetcher struct{ t testing.TB }

func (f failFetcher) Fetch(_ context.Context, url string, _ int64) ([]byte, error) {
	f.t.Errorf("offline client fetched %s", url)
	return nil, &preflight.Error{Class: preflight.ErrUnavailable, Subject: url}
}

func TestOffline(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{Expiry: 24 * time.Hour})
	descriptor := []byte(`{"name":"acme"}`)
	must(t, f.repo.Delegate("acme", []string{"acme/*"}, 1, 1, true))
	must(t, f.repo.AddDelegatedTarget("acme", "acme/server.json", descriptor))
	must(t, f.repo.Publish())
	ctx := context.Background()
	cfg := f.config(t)
	online := newClient(t, cfg)
	tg, err := online.Target(ctx, "acme/server.json")
	must(t, err)
	_, err = online.ReadTarget(ctx, tg)
	must(t, err)

	off := cfg
	off.Offline = true
	off.Fetcher = failFetcher{t}
	c := newClient(t, off)
	tg, err = c.Target(ctx, "acme/server.json")
	must(t, err)
	data, err := c.ReadTarget(ctx, tg)
	must(t, err)
	if !bytes.Equal(data, descriptor) {
		t.Fatalf("offline ReadTarget = %q", data)
	}
	_, err = c.DownloadTarget(ctx, tg, newStore(t))
	assertClass(t, err, preflight.ErrUnavailable)

	// Past expiry the cache is refused, with the time it went stale.
	later := time.Now().Add(48 * time.Hour)
	off.Now = func() time.Time { return later }
	_, err = newClient(t, off).Target(ctx, "acme/server.json")
	pe := assertClass(t, err, preflight.ErrMetadata)
	ts := tsExpiry(t, cfg.CacheDir)
	if !strings.Contains(err.Error(), ts.UTC().Format(time.RFC3339)) || !strings.Contains(pe.Hint, "refresh online") {
		t.Fatalf("error %q does not say since when (%s) and what to do", err, ts.UTC().Format(time.RFC3339))
	}

	// A running offline client notices expiry too.
	var now atomic.Pointer[time.Time]
	n := time.Now()
	now.Store(&n)
	off.Now = func() time.Time { return *now.Load() }
	c = newClient(t, off)
	_, err = c.Target(ctx, "acme/server.json")
	must(t, err)
	now.Store(&later)
	_, err = c.Target(ctx, "acme/server.json")
	assertClass(t, err, preflight.ErrMetadata)

	// Without a cache there is nothing to trust.
	empty := off
	empty.CacheDir = t.TempDir()
	empty.Now = nil
	_, err = newClient(t, empty).Target(ctx, "acme/server.json")
	assertClass(t, err, preflight.ErrUnavailable)
}

func tsExpiry(t *testing.T, cacheDir string) time.Time {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cacheDir, "metadata", "timestamp.json"))
	must(t, err)
	var ts struct {
		Signed struct{ Expires time.Time } `json:"signed"`
	}
	must(t, json.Unmarshal(data, &ts))
	return ts.Signed.Expires
}

// The cache never anchors trust: a cache filled from another repository is
// refused against the pinned root.
func TestOfflineCacheFromOtherRootRefused(t *testing.T) {
	a := newFixture(t, verifytest.TUFOptions{})
	b := newFixture(t, verifytest.TUFOptions{})
	cfg := a.config(t)
	must(t, newClient(t, cfg).Refresh(context.Background()))
	cfg.Root = b.root
	cfg.Offline = true
	cfg.Fetcher = failFetcher{t}
	err := newClient(t, cfg).Refresh(context.Background())
	assertClass(t, err, preflight.ErrMetadata)
}

func TestConfigValidation(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	for name, mod := range map[string]func(*tuf.Config){
		"no metadata URL":   func(c *tuf.Config) { c.MetadataURL = "" },
		"file URL":          func(c *tuf.Config) { c.MetadataURL = "file:///tmp/repo" },
		"no targets URL":    func(c *tuf.Config) { c.TargetsURL = "" },
		"no root":           func(c *tuf.Config) { c.Root = nil },
		"root not verified": func(c *tuf.Config) { c.Root = bytes.Replace(c.Root, []byte(`"version":1`), []byte(`"version":7`), 1) },
		"no cache":          func(c *tuf.Config) { c.CacheDir = "" },
		"negative bound":    func(c *tuf.Config) { c.MaxDelegations = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := f.config(t)
			mod(&cfg)
			_, err := tuf.New(cfg)
			assertClass(t, err, preflight.ErrConfig)
		})
	}
	// The caller's root is copied.
	cfg := f.config(t)
	cfg.Root = slices.Clone(f.root)
	c := newClient(t, cfg)
	clear(cfg.Root)
	must(t, c.Refresh(context.Background()))
}

func TestMaxDelegations(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	for _, r := range []string{"a", "b", "c"} {
		must(t, f.repo.Delegate(r, []string{"p/*"}, 1, 1, false))
	}
	must(t, f.repo.AddDelegatedTarget("c", "p/x", []byte("x")))
	must(t, f.repo.Publish())
	cfg := f.config(t)
	cfg.MaxDelegations = 2
	_, err := newClient(t, cfg).Target(context.Background(), "p/x")
	pe := assertClass(t, err, preflight.ErrNotFound)
	if !strings.Contains(pe.Hint, "MaxDelegations") {
		t.Errorf("hint %q does not name the bound", pe.Hint)
	}
	cfg.MaxDelegations = 3
	if _, err := newClient(t, cfg).Target(context.Background(), "p/x"); err != nil {
		t.Fatal(err)
	}
}

func TestTerminatingDelegation(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	must(t, f.repo.Delegate("first", []string{"shared/*"}, 1, 1, true))
	must(t, f.repo.Delegate("second", []string{"shared/*"}, 1, 1, false))
	must(t, f.repo.AddDelegatedTarget("second", "shared/x", []byte("x")))
	must(t, f.repo.Publish())
	_, err := newClient(t, f.config(t)).Target(context.Background(), "shared/x")
	assertClass(t, err, preflight.ErrNotFound)

	g := newFixture(t, verifytest.TUFOptions{})
	must(t, g.repo.Delegate("first", []string{"shared/*"}, 1, 1, false))
	must(t, g.repo.Delegate("second", []string{"shared/*"}, 1, 1, false))
	must(t, g.repo.AddDelegatedTarget("second", "shared/x", []byte("x")))
	must(t, g.repo.Publish())
	tg, err := newClient(t, g.config(t)).Target(context.Background(), "shared/x")
	must(t, err)
	if tg.SignedBy != "second" {
		t.Fatalf("found in %q", tg.SignedBy)
	}
}

// TestRefreshKeepsVerifiedRoles: a refresh with nothing new keeps the
// delegated roles already verified, and one with a new snapshot drops them.
func TestRefreshKeepsVerifiedRoles(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	must(t, f.repo.Delegate("acme", []string{"acme/*"}, 1, 1, false))
	must(t, f.repo.AddDelegatedTarget("acme", "acme/x.json", []byte("{}")))
	must(t, f.repo.Publish())
	ctx := context.Background()
	c := newClient(t, f.config(t))
	if _, err := c.Target(ctx, "acme/x.json"); err != nil {
		t.Fatal(err)
	}
	must(t, c.Refresh(ctx))
	if got := tuf.LoadedRoles(c); !slices.Equal(got, []string{"acme"}) {
		t.Fatalf("after a refresh with nothing new the verified roles are %q, want [acme]", got)
	}
	must(t, f.repo.AddDelegatedTarget("acme", "acme/y.json", []byte("{}")))
	must(t, f.repo.Publish())
	must(t, c.Refresh(ctx))
	if got := tuf.LoadedRoles(c); len(got) != 0 {
		t.Fatalf("after a new snapshot the roles %q were kept", got)
	}
	if _, err := c.Target(ctx, "acme/y.json"); err != nil {
		t.Fatalf("the new target is not found: %v", err)
	}
}
