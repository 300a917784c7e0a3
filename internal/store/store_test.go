package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
)

func sum256(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func tempCount(t *testing.T, s *Store) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestPutAndLookup(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("#!/bin/sh\necho hi\n")
	s512 := sha512.Sum512(data)
	e, err := s.Put(context.Background(), bytes.NewReader(data), PutOptions{
		Limit: 1 << 20, Size: int64(len(data)), Executable: true,
		Want: Digests{"sha256": sum256(data), "sha512": hex.EncodeToString(s512[:])},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.SHA256 != sum256(data) || e.Size != int64(len(data)) {
		t.Fatalf("entry %+v", e)
	}
	info, err := os.Stat(e.Path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o500 {
		t.Fatalf("entry mode %v, want 0500", info.Mode().Perm())
	}
	dirInfo, _ := os.Stat(filepath.Dir(e.Path))
	if dirInfo.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, want 0700", dirInfo.Mode().Perm())
	}
	got, ok := s.Lookup(e.SHA256)
	if !ok || got != e {
		t.Fatalf("lookup %+v %v", got, ok)
	}
	// A second put of present bytes does not read the source.
	if _, err := s.Put(context.Background(), failingReader{}, PutOptions{Limit: 1 << 20, Want: Digests{"sha256": e.SHA256}}); err != nil {
		t.Fatalf("second put read the source: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestPutRefuses(t *testing.T) {
	data := []byte("payload")
	cases := map[string]struct {
		r    io.Reader
		opts PutOptions
		want error
	}{
		"digest mismatch":    {bytes.NewReader(data), PutOptions{Limit: 100, Want: Digests{"sha256": sum256([]byte("other"))}}, preflight.ErrTampered},
		"over limit":         {bytes.NewReader(data), PutOptions{Limit: 3}, preflight.ErrMalformed},
		"endless source":     {endless{}, PutOptions{Limit: 1 << 16}, preflight.ErrMalformed},
		"short (truncated)":  {bytes.NewReader(data), PutOptions{Limit: 100, Size: 100}, preflight.ErrTampered},
		"unknown algorithm":  {bytes.NewReader(data), PutOptions{Limit: 100, Want: Digests{"md5": "00"}}, preflight.ErrConfig},
		"malformed digest":   {bytes.NewReader(data), PutOptions{Limit: 100, Want: Digests{"sha256": "zz"}}, preflight.ErrMalformed},
		"interrupted source": {io.MultiReader(bytes.NewReader(data), errReader{}), PutOptions{Limit: 100}, preflight.ErrUnavailable},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Put(context.Background(), c.r, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want class %v", err, c.want)
			}
			if n := tempCount(t, s); n != 0 {
				t.Fatalf("%d temporary files left behind", n)
			}
			entries, _ := os.ReadDir(filepath.Join(s.Dir(), "sha256"))
			if len(entries) != 0 {
				t.Fatalf("a refused put left %d entries", len(entries))
			}
		})
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestPutCancelled(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Put(ctx, strings.NewReader("x"), PutOptions{Limit: 10})
	if !errors.Is(err, preflight.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
}

func TestOpenDetectsModifiedEntry(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Put(context.Background(), strings.NewReader("good bytes"), PutOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Open(e.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chmod(e.Path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.Path, []byte("evil bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(e.SHA256); !errors.Is(err, preflight.ErrTampered) {
		t.Fatalf("got %v, want ErrTampered", err)
	}
	if _, err := s.Open(sum256([]byte("absent"))); !errors.Is(err, preflight.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func TestConcurrentPutsOfOneEntry(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("abc"), 1<<16)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir) // separate handles, as separate processes would have
			if err != nil {
				errs <- err
				return
			}
			_, err = s.Put(context.Background(), bytes.NewReader(data), PutOptions{Limit: int64(len(data))})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, _ := Open(dir)
	f, err := s.Open(sum256(data))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if n := tempCount(t, s); n != 0 {
		t.Fatalf("%d temporary files left", n)
	}
}

func TestOpenRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "tmp", "put-stale")
	fresh := filepath.Join(dir, "tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	os.Chtimes(stale, old, old)
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("a stale temporary file (a writer killed mid-put) was not removed")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("a fresh temporary file (a concurrent writer) was removed")
	}
	_ = s
}

func TestOpenRefusesUnwritableStore(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permission bits; use a path under a regular file instead.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		if _, err := Open(filepath.Join(f, "store")); !errors.Is(err, preflight.ErrStore) {
			t.Fatalf("got %v, want ErrStore", err)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if _, err := Open(filepath.Join(dir, "store")); !errors.Is(err, preflight.ErrStore) {
		t.Fatalf("got %v, want ErrStore", err)
	}
}

func TestPutReportsProgress(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []Progress
	s = s.WithProgress(func(p Progress) {
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	})
	data := bytes.Repeat([]byte("x"), 3*progressStep+10)
	if _, err := s.Put(context.Background(), bytes.NewReader(data), PutOptions{Limit: int64(len(data)), Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if len(reports) < 4 {
		t.Fatalf("%d reports for %d bytes", len(reports), len(data))
	}
	last := reports[len(reports)-1]
	if !last.Final || last.Done != int64(len(data)) || last.Total != int64(len(data)) {
		t.Fatalf("last report %+v", last)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Done < reports[i-1].Done || reports[i].ID != reports[0].ID {
			t.Fatalf("reports out of order: %+v", reports)
		}
	}
}
