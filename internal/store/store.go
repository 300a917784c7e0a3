// Package store is Preflight's content-addressed store of verified artifacts.
//
// # Layout
//
// Entries live at DIR/sha256/<hex>, named by the SHA-256 of their bytes.
// Directories are 0700 and entries are read-only (0500 for executables,
// 0400 otherwise). An entry is written to a temporary file in DIR/tmp while
// being hashed, synced, made read-only and renamed into place, so a reader
// either finds a complete entry or none: a process killed mid-write leaves
// only a temporary file, which the next Open removes once it is stale.
// Several processes may fill the same entry at once; the renames are atomic
// and the bytes identical, so the last rename wins harmlessly.
//
// # Trust
//
// The store is a cache, not an anchor: its entries were checked when they
// were written, but anything that runs an entry hashes it again from the
// open file it executes (see Open), so a modified entry is caught at use.
package store

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcp-preflight/preflight"
)

// Store is a content-addressed directory. It is safe for concurrent use by
// goroutines and by processes sharing the directory.
type Store struct {
	dir      string
	progress func(Progress)
}

// Progress reports bytes written by one Put as they arrive: a download in
// flight, as seen by the store.
type Progress struct {
	// ID tells concurrent puts apart; it is unique within the process.
	ID uint64
	// Done is the number of bytes written so far; Total the expected size,
	// or 0 when unknown. Final is set on the last report of a put.
	Done, Total int64
	Final       bool
}

// WithProgress returns a Store on the same directory that calls fn as the
// bytes of every Put arrive (at most every 256 KiB, and once at the end).
// fn must be safe for concurrent use and must not block.
func (s *Store) WithProgress(fn func(Progress)) *Store {
	c := *s
	c.progress = fn
	return &c
}

// staleTemp is how old a temporary file must be before Open removes it; a
// younger one may belong to a concurrent writer.
const staleTemp = time.Hour

// Open opens (creating if needed) the store rooted at dir.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "store", Expected: "a directory path", Found: "empty path"}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, storeErr("store "+dir, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, "sha256"), filepath.Join(abs, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, storeErr("store "+abs, err)
		}
	}
	s := &Store{dir: abs}
	s.removeStaleTemps()
	return s, nil
}

// Dir returns the store's root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) removeStaleTemps() {
	entries, err := os.ReadDir(filepath.Join(s.dir, "tmp"))
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && time.Since(info.ModTime()) > staleTemp {
			os.Remove(filepath.Join(s.dir, "tmp", e.Name()))
		}
	}
}

// Entry is one complete store entry.
type Entry struct {
	Path   string // absolute path of the read-only file
	SHA256 string // lower-case hex
	Size   int64
}

// Lookup returns the entry with the given SHA-256 (lower-case hex), if the
// store has it. It does not hash the file: see Open.
func (s *Store) Lookup(sha256Hex string) (Entry, bool) {
	if !validHex(sha256Hex, sha256.Size) {
		return Entry{}, false
	}
	p := filepath.Join(s.dir, "sha256", sha256Hex)
	info, err := os.Lstat(p)
	if err != nil || !info.Mode().IsRegular() {
		return Entry{}, false
	}
	return Entry{Path: p, SHA256: sha256Hex, Size: info.Size()}, true
}

// Digests maps an algorithm ("sha256", "sha384", "sha512") to the expected
// lower-case hex digest.
type Digests map[string]string

// PutOptions qualify one Put.
type PutOptions struct {
	// Limit is the most bytes accepted; 0 means no entry may be written.
	Limit int64
	// Size, when positive, is the exact length expected.
	Size int64
	// Want are the digests the bytes must have. With none, the bytes are
	// stored under their own SHA-256, which the caller then verifies.
	Want Digests
	// Executable makes the entry 0500 instead of 0400.
	Executable bool
}

// Put copies r into the store, hashing it on the way, and adds it only when
// every digest in opts.Want matches and the size is within bounds. The entry
// is named by the SHA-256 of the bytes actually written. Nothing is
// left in the store when Put fails. An entry already present is verified by
// its name alone and r is not read.
func (s *Store) Put(ctx context.Context, r io.Reader, opts PutOptions) (Entry, error) {
	hashes := make(map[string]hash.Hash, len(opts.Want)+1)
	for alg, want := range opts.Want {
		h, size := newHash(alg)
		if h == nil {
			return Entry{}, &preflight.Error{Class: preflight.ErrConfig, Subject: "store put", Expected: "sha256, sha384 or sha512", Found: alg}
		}
		if !validHex(strings.ToLower(want), size) {
			return Entry{}, &preflight.Error{Class: preflight.ErrMalformed, Subject: "store put", Expected: fmt.Sprintf("%s digest of %d hex characters", alg, 2*size), Found: fmt.Sprintf("%q", want)}
		}
		hashes[alg] = h
	}
	if want, ok := opts.Want["sha256"]; ok {
		if e, ok := s.Lookup(strings.ToLower(want)); ok && (opts.Size <= 0 || e.Size == opts.Size) {
			return e, nil
		}
	}
	if _, ok := hashes["sha256"]; !ok {
		hashes["sha256"] = sha256.New()
	}

	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return Entry{}, storeErr("store "+s.dir, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	file := &fileWriter{f: tmp}
	writers := []io.Writer{file}
	for _, h := range hashes {
		writers = append(writers, h)
	}
	limit := opts.Limit
	var src io.Reader = io.LimitReader(ctxReader{ctx, r}, limit+1)
	if s.progress != nil {
		pr := &progressReader{r: src, fn: s.progress, p: Progress{ID: putIDs.Add(1), Total: max(opts.Size, 0)}}
		defer pr.finish()
		src = pr
	}
	n, err := io.Copy(io.MultiWriter(writers...), src)
	if err != nil {
		if file.err != nil {
			// A full disk or a file size limit: the store failed, not the source.
			return Entry{}, storeErr("store "+s.dir, file.err)
		}
		if ctx.Err() != nil {
			return Entry{}, &preflight.Error{Class: preflight.ErrTimeout, Subject: "store put", Err: ctx.Err()}
		}
		return Entry{}, &preflight.Error{Class: preflight.ErrUnavailable, Subject: "store put", Err: err, Hint: "the download was interrupted; retry"}
	}
	if n > limit {
		return Entry{}, &preflight.Error{Class: preflight.ErrMalformed, Subject: "artifact", Expected: fmt.Sprintf("at most %d bytes", limit), Found: "more", Hint: "the source sent more than it declared or than the limit allows"}
	}
	if opts.Size > 0 && n != opts.Size {
		return Entry{}, &preflight.Error{Class: preflight.ErrTampered, Subject: "artifact", Expected: fmt.Sprintf("%d bytes", opts.Size), Found: fmt.Sprintf("%d bytes", n), Hint: "the source sent other bytes than the signed metadata describes"}
	}
	for alg, want := range opts.Want {
		got := hex.EncodeToString(hashes[alg].Sum(nil))
		if got != strings.ToLower(want) {
			return Entry{}, &preflight.Error{Class: preflight.ErrTampered, Subject: "artifact", Expected: alg + ":" + strings.ToLower(want), Found: alg + ":" + got, Hint: "the bytes differ from the pinned or signed digest; do not run them"}
		}
	}
	sum := hex.EncodeToString(hashes["sha256"].Sum(nil))
	mode := fs.FileMode(0o400)
	if opts.Executable {
		mode = 0o500
	}
	if err := tmp.Chmod(mode); err != nil {
		return Entry{}, storeErr("store "+s.dir, err)
	}
	if err := tmp.Sync(); err != nil {
		return Entry{}, storeErr("store "+s.dir, err)
	}
	if err := tmp.Close(); err != nil {
		return Entry{}, storeErr("store "+s.dir, err)
	}
	final := filepath.Join(s.dir, "sha256", sum)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return Entry{}, storeErr("store "+s.dir, err)
	}
	committed = true
	syncDir(filepath.Join(s.dir, "sha256"))
	return Entry{Path: final, SHA256: sum, Size: n}, nil
}

// Open opens the entry for use and hashes it from the open file, so the
// caller holds a descriptor whose content was just checked. On Linux the
// verified descriptor can then be executed directly (see the verify
// package), closing the window between check and use.
func (s *Store) Open(sha256Hex string) (*os.File, error) {
	e, ok := s.Lookup(sha256Hex)
	if !ok {
		return nil, &preflight.Error{Class: preflight.ErrNotFound, Subject: "store entry sha256:" + sha256Hex}
	}
	f, err := os.Open(e.Path)
	if err != nil {
		return nil, storeErr(e.Path, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, storeErr(e.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha256Hex {
		f.Close()
		return nil, &preflight.Error{Class: preflight.ErrTampered, Subject: "store entry " + e.Path, Expected: "sha256:" + sha256Hex, Found: "sha256:" + got,
			Hint: "the store was modified after verification; remove the entry and verify again"}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, storeErr(e.Path, err)
	}
	return f, nil
}

func newHash(alg string) (hash.Hash, int) {
	switch alg {
	case "sha256":
		return sha256.New(), sha256.Size
	case "sha384":
		return sha512.New384(), sha512.Size384
	case "sha512":
		return sha512.New(), sha512.Size
	}
	return nil, 0
}

func validHex(s string, size int) bool {
	if len(s) != 2*size {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func storeErr(subject string, err error) error {
	hint := "check that the store directory is writable and has free space"
	if errors.Is(err, fs.ErrPermission) {
		hint = "the store directory is not writable by this user"
	}
	return &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err, Hint: hint}
}

// fileWriter remembers a failed write, so that Put can tell a store that
// cannot take the bytes from a source that cannot deliver them: io.Copy
// returns either failure alike.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

var putIDs atomic.Uint64

// progressReader reports the bytes read through it.
type progressReader struct {
	r        io.Reader
	fn       func(Progress)
	p        Progress
	reported int64
}

const progressStep = 256 << 10

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.Done += int64(n)
	if pr.p.Done-pr.reported >= progressStep {
		pr.reported = pr.p.Done
		pr.fn(pr.p)
	}
	return n, err
}

func (pr *progressReader) finish() {
	pr.p.Final = true
	pr.fn(pr.p)
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
