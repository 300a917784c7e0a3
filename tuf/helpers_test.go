package tuf_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/store"
	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// fixture is a served test repository.
type fixture struct {
	repo *verifytest.TUFRepository
	base string
	root []byte // root.json as first published, to pin
}

func newFixture(t testing.TB, opts verifytest.TUFOptions) *fixture {
	t.Helper()
	repo, err := verifytest.NewTUFRepository(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Close)
	base, err := repo.Serve()
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{repo: repo, base: base, root: repo.RootJSON()}
}

// config returns a client configuration for the fixture with a fresh cache.
func (f *fixture) config(t testing.TB) tuf.Config {
	t.Helper()
	return tuf.Config{
		MetadataURL: f.base + "/metadata",
		TargetsURL:  f.base + "/targets",
		Root:        f.root,
		CacheDir:    t.TempDir(),
		Fetcher:     &tuf.HTTPFetcher{Timeout: 5 * time.Second, Retries: -1},
	}
}

func newClient(t testing.TB, cfg tuf.Config) *tuf.Client {
	t.Helper()
	c, err := tuf.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// assertClass fails unless err is a *preflight.Error of class, matching
// exactly one umbrella.
func assertClass(t testing.TB, err error, class *preflight.Class) *preflight.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", class)
	}
	var pe *preflight.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %q (%T) is not a *preflight.Error", err, err)
	}
	if pe.Class != class || !errors.Is(err, class) {
		t.Fatalf("error %q has class %q, want %q", err, pe.Class, class)
	}
	sec, op := errors.Is(err, preflight.ErrSecurity), errors.Is(err, preflight.ErrOperational)
	if sec == op {
		t.Fatalf("error %q matches ErrSecurity=%v and ErrOperational=%v, want exactly one", err, sec, op)
	}
	return pe
}

// targetStore adapts internal/store to tuf.TargetStore.
type targetStore struct{ s *store.Store }

func newStore(t testing.TB) targetStore {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return targetStore{s}
}

func (a targetStore) Lookup(sha256Hex string) (string, bool) {
	e, ok := a.s.Lookup(sha256Hex)
	return e.Path, ok
}

func (a targetStore) Put(ctx context.Context, r io.Reader, limit, size int64, want map[string]string) (string, error) {
	e, err := a.s.Put(ctx, r, store.PutOptions{Limit: limit, Size: size, Want: want})
	return e.Path, err
}

// assertEmpty fails if dir holds any file (at any depth).
func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("%s was stored", p)
		}
		return nil
	})
}
