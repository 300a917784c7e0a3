package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/archive"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// fuzzLimits keep each fuzz iteration small.
var fuzzLimits = archive.Limits{MaxTotalBytes: 1 << 20, MaxFileBytes: 256 << 10, MaxEntries: 64, MaxRatio: 50}

// fuzzSeeds are archives built to reach every branch: a normal tree, and
// each unsafe shape Unpack refuses.
func fuzzSeeds() [][]entry {
	return [][]entry{
		{{Name: "bin/", Type: tar.TypeDir}, {Name: "bin/server", Data: []byte("\x7fELF")}, {Name: "README", Data: []byte("hi"), Mode: 0o644}},
		{{Name: "../escape", Data: []byte("x")}},
		{{Name: "/abs", Data: []byte("x")}},
		{{Name: "a/../../b", Data: []byte("x")}},
		{{Name: "link", Type: tar.TypeSymlink, Linkname: "../../etc/passwd"}},
		{{Name: "d/", Type: tar.TypeDir}, {Name: "link", Type: tar.TypeSymlink, Linkname: "d"}, {Name: "link/f", Data: []byte("x")}},
		{{Name: "lib/a.so.1", Data: []byte("a")}, {Name: "lib/a.so", Type: tar.TypeSymlink, Linkname: "a.so.1"}},
		{{Name: "hard", Type: tar.TypeLink, Linkname: "/etc/shadow"}},
		{{Name: "fifo", Type: tar.TypeFifo}},
		{{Name: "a", Data: []byte("1")}, {Name: "A", Data: []byte("2")}},
		{{Name: "zeros", Data: make([]byte, 300<<10)}},
	}
}

// checkOutcome is the property every input must satisfy: either a failure
// of class ErrMalformed with nothing left behind, or a tree inside dst
// made only of 0700 directories and 0400/0500 files (and in-tree links
// when allowed) within the limits.
func checkOutcome(t *testing.T, dst string, err error, allowLinks bool) {
	t.Helper()
	parent := filepath.Dir(dst)
	left, rerr := os.ReadDir(parent)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		if !errors.Is(err, preflight.ErrMalformed) {
			t.Fatalf("err = %v, want ErrMalformed", err)
		}
		if len(left) != 0 {
			t.Fatalf("failed unpack left %v", left)
		}
		return
	}
	if len(left) != 1 || left[0].Name() != "out" {
		t.Fatalf("unpack wrote %v beside its destination", left)
	}
	var total int64
	err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dst {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch m := info.Mode(); {
		case m.IsDir():
			if m.Perm() != 0o700 {
				t.Fatalf("%s: dir mode %v", p, m)
			}
		case m.IsRegular():
			if m.Perm() != 0o400 && m.Perm() != 0o500 {
				t.Fatalf("%s: file mode %v", p, m)
			}
			total += info.Size()
		case m&fs.ModeSymlink != 0 && allowLinks:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			resolved := filepath.Join(filepath.Dir(p), target)
			if rel, err := filepath.Rel(dst, resolved); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Fatalf("%s: link to %s leaves the tree", p, target)
			}
		default:
			t.Fatalf("%s: unexpected mode %v", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total > fuzzLimits.MaxTotalBytes {
		t.Fatalf("wrote %d bytes, over the limit", total)
	}
}

func FuzzUnpackTar(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(verifytest.TarArchive(s, false), false, false)
		f.Add(verifytest.TarArchive(s, true), true, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, gz, allowLinks bool) {
		format := archive.FormatTar
		if gz {
			format = archive.FormatTarGz
		}
		lim := fuzzLimits
		lim.AllowSymlinks = allowLinks
		dst := filepath.Join(t.TempDir(), "out")
		err := archive.Unpack(context.Background(), bytes.NewReader(data), int64(len(data)), format, dst, lim)
		checkOutcome(t, dst, err, allowLinks)
	})
}

func FuzzUnpackZip(f *testing.F) {
	for _, s := range fuzzSeeds() {
		hasHardLink := false
		for _, e := range s {
			hasHardLink = hasHardLink || e.Type == tar.TypeLink
		}
		if hasHardLink {
			continue // zip has no hard links
		}
		f.Add(verifytest.ZipArchive(s), false)
		f.Add(verifytest.ZipArchive(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, allowLinks bool) {
		lim := fuzzLimits
		lim.AllowSymlinks = allowLinks
		dst := filepath.Join(t.TempDir(), "out")
		err := archive.Unpack(context.Background(), bytes.NewReader(data), int64(len(data)), archive.FormatZip, dst, lim)
		checkOutcome(t, dst, err, allowLinks)
	})
}
