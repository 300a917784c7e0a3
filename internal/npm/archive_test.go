package npm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
)

// testEntry is one tar entry to build an archive from.
type testEntry struct {
	name     string
	typ      byte
	body     string
	linkname string
	size     int64 // header size when body is not the content (bombs)
	mode     int64
}

func buildTar(t testing.TB, entries ...testEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		size := int64(len(e.body))
		if typ != tar.TypeReg {
			size = 0
		}
		if e.size > 0 {
			size = e.size
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: typ, Linkname: e.linkname, Size: size, Mode: mode}); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			body := []byte(e.body)
			if e.size > 0 {
				body = make([]byte, e.size)
			}
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var pkgJSON = testEntry{name: "package/package.json", body: `{"name":"x","version":"1.0.0"}`}

func extractTo(t testing.TB, tgz []byte, lim limits) (string, error) {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "pkg")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = extract(bytes.NewReader(tgz), r, lim)
	if err != nil {
		err = tarErr("test", err)
	}
	return dir, err
}

var testLimits = limits{maxBytes: 1 << 20, maxFiles: 100}

func TestExtractRefusesUnsafeArchives(t *testing.T) {
	tests := []struct {
		name    string
		entries []testEntry
		lim     limits
	}{
		{"path traversal", []testEntry{pkgJSON, {name: "package/../../escaped", body: "x"}}, testLimits},
		{"traversal in the first element", []testEntry{{name: "../escaped", body: "x"}}, testLimits},
		{"absolute path", []testEntry{{name: "/tmp/escaped", body: "x"}}, testLimits},
		{"symlink escape", []testEntry{{name: "package/link", typ: tar.TypeSymlink, linkname: "../../escaped"}}, testLimits},
		{"absolute symlink", []testEntry{{name: "package/link", typ: tar.TypeSymlink, linkname: "/etc/passwd"}}, testLimits},
		{"write through an in-tree symlink", []testEntry{{name: "package/lib", typ: tar.TypeDir}, {name: "package/link", typ: tar.TypeSymlink, linkname: "lib"}, {name: "package/link/x", body: "x"}}, testLimits},
		{"hardlink", []testEntry{pkgJSON, {name: "package/hard", typ: tar.TypeLink, linkname: "package/package.json"}}, testLimits},
		{"hardlink escape", []testEntry{{name: "package/hard", typ: tar.TypeLink, linkname: "/etc/passwd"}}, testLimits},
		{"device file", []testEntry{{name: "package/dev", typ: tar.TypeChar}}, testLimits},
		{"fifo", []testEntry{{name: "package/fifo", typ: tar.TypeFifo}}, testLimits},
		{"huge file", []testEntry{{name: "package/big", size: 2 << 20}}, testLimits},
		{"too many files", manyFiles(101), testLimits},
		{"duplicate entry", []testEntry{pkgJSON, pkgJSON}, testLimits},
		{"file then directory", []testEntry{{name: "package/a", body: "x"}, {name: "package/a/b", body: "y"}}, testLimits},
		{"backslash", []testEntry{{name: "package/..\\..\\escaped", body: "x"}}, testLimits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := extractTo(t, buildTar(t, tt.entries...), tt.lim)
			t.Log(err)
			if !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("extract = %v, want ErrMalformed", err)
			}
			var pe *preflight.Error
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not a *preflight.Error", err)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "escaped")); err == nil {
				t.Error("the archive wrote outside its directory")
			}
		})
	}
	if _, err := extractTo(t, []byte("not gzip"), testLimits); !errors.Is(err, preflight.ErrMalformed) {
		t.Errorf("non-gzip input: %v", err)
	}
}

func manyFiles(n int) []testEntry {
	var es []testEntry
	for i := range n {
		es = append(es, testEntry{name: "package/f" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "/" + string(rune('a'+i/26)), body: "x"})
	}
	return es
}

func TestExtractLaysOutThePackage(t *testing.T) {
	tgz := buildTar(t,
		testEntry{name: "package/package.json", body: `{"name":"x","version":"1.0.0"}`},
		testEntry{name: "package/bin/cli.js", body: "#!/usr/bin/env node\n", mode: 0o755},
		testEntry{name: "package/lib/", typ: tar.TypeDir},
		testEntry{name: "package/lib/a.js", body: "a"},
		testEntry{name: "package/alias.js", typ: tar.TypeSymlink, linkname: "lib/a.js"},
		testEntry{name: "stray-top-level-file", body: "ignored"},
	)
	dir, err := extractTo(t, tgz, testLimits)
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	check := func(name string, mode fs.FileMode) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), mode)
		}
	}
	check("package.json", 0o400)
	check("bin/cli.js", 0o500)
	check("lib", fs.ModeDir|0o700)
	if b, err := os.ReadFile(filepath.Join(dir, "alias.js")); err != nil || string(b) != "a" {
		t.Errorf("alias.js = %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "ignored")); err == nil {
		t.Error("a file beside the package directory was extracted")
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(buildTar(f, pkgJSON, testEntry{name: "package/index.js", body: "x"}))
	f.Add(buildTar(f, testEntry{name: "package/link", typ: tar.TypeSymlink, linkname: "../x"}))
	f.Add(buildTar(f, testEntry{name: "package/a/", typ: tar.TypeDir}, testEntry{name: "package/a/l", typ: tar.TypeSymlink, linkname: ".."}))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dir := filepath.Join(base, "pkg")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		r, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		err = extract(bytes.NewReader(data), r, limits{maxBytes: 1 << 16, maxFiles: 64})
		if err != nil {
			if err := tarErr("fuzz", err); !errors.Is(err, preflight.ErrMalformed) && !errors.Is(err, preflight.ErrStore) {
				t.Fatalf("error of no expected class: %v", err)
			}
		}
		// Whatever happened, nothing may exist beside the package.
		es, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 {
			t.Fatalf("extraction created %d entries beside the package", len(es)-1)
		}
		var total int64
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					total += fi.Size()
				}
			}
			return nil
		})
		if total > 1<<16 {
			t.Fatalf("extracted %d bytes past the limit", total)
		}
	})
}
