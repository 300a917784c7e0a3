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

type entry = verifytest.ArchiveEntry

// build returns the entries as an archive of the format.
func build(t *testing.T, f archive.Format, entries []entry) []byte {
	t.Helper()
	switch f {
	case archive.FormatTar:
		return verifytest.TarArchive(entries, false)
	case archive.FormatTarGz:
		return verifytest.TarArchive(entries, true)
	case archive.FormatZip:
		return verifytest.ZipArchive(entries)
	}
	t.Fatalf("no builder for %v", f)
	return nil
}

func unpack(t *testing.T, data []byte, f archive.Format, lim archive.Limits) (string, error) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out")
	err := archive.Unpack(context.Background(), bytes.NewReader(data), int64(len(data)), f, dst, lim)
	return dst, err
}

// assertClean fails unless dst does not exist and its parent holds nothing
// else (no temporary directory left behind).
func assertClean(t *testing.T, dst string) {
	t.Helper()
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("destination exists after a failed unpack: %v", err)
	}
	left, err := os.ReadDir(filepath.Dir(dst))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("unpack left %v behind", left)
	}
}

var formats = []archive.Format{archive.FormatTar, archive.FormatTarGz, archive.FormatZip}

func TestUnpackTree(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			data := build(t, f, []entry{
				{Name: "./", Type: tar.TypeDir},
				{Name: "bin/", Type: tar.TypeDir},
				{Name: "bin/server", Data: []byte("#!/bin/sh\n"), Mode: 0o755},
				{Name: "./README.md", Data: []byte("readme"), Mode: 0o666},
				{Name: "lib/deep/x.js", Data: []byte("x"), Mode: 0o644},
				{Name: "empty", Data: nil, Mode: 0o600},
			})
			dst, err := unpack(t, data, f, archive.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]fs.FileMode{
				"bin":           fs.ModeDir | 0o700,
				"bin/server":    0o500,
				"README.md":     0o400,
				"lib":           fs.ModeDir | 0o700,
				"lib/deep":      fs.ModeDir | 0o700,
				"lib/deep/x.js": 0o400,
				"empty":         0o400,
			}
			got := map[string]fs.FileMode{}
			err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
				if err != nil || p == dst {
					return err
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dst, p)
				got[filepath.ToSlash(rel)] = info.Mode()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("tree = %v, want %v", got, want)
			}
			for name, mode := range want {
				if got[name] != mode {
					t.Errorf("%s: mode %v, want %v", name, got[name], mode)
				}
			}
			b, err := os.ReadFile(filepath.Join(dst, "bin", "server"))
			if err != nil || string(b) != "#!/bin/sh\n" {
				t.Fatalf("bin/server = %q, %v", b, err)
			}
			// Nothing but the destination is left in its parent.
			left, _ := os.ReadDir(filepath.Dir(dst))
			if len(left) != 1 {
				t.Fatalf("parent holds %v", left)
			}
		})
	}
}

func TestUnpackRefusesUnsafeArchives(t *testing.T) {
	big := bytes.Repeat([]byte{0}, 3<<20)
	cases := []struct {
		name    string
		entries []entry
		lim     archive.Limits
		tarOnly bool
	}{
		{name: "dotdot", entries: []entry{{Name: "../evil", Data: []byte("x")}}},
		{name: "dotdot inside", entries: []entry{{Name: "a/../../evil", Data: []byte("x")}}},
		{name: "absolute", entries: []entry{{Name: "/etc/evil", Data: []byte("x")}}},
		{name: "backslash", entries: []entry{{Name: `..\evil`, Data: []byte("x")}}},
		{name: "windows volume", entries: []entry{{Name: "C:/evil", Data: []byte("x")}}},
		{name: "root as file", entries: []entry{{Name: ".", Data: []byte("x")}}, tarOnly: true},
		{name: "symlink out", entries: []entry{{Name: "link", Type: tar.TypeSymlink, Linkname: "/etc/passwd"}}},
		{name: "symlink in, not allowed", entries: []entry{{Name: "a", Data: []byte("x")}, {Name: "link", Type: tar.TypeSymlink, Linkname: "a"}}},
		{name: "symlink then write through", lim: archive.Limits{AllowSymlinks: true},
			entries: []entry{{Name: "d/", Type: tar.TypeDir}, {Name: "link", Type: tar.TypeSymlink, Linkname: "d"}, {Name: "link/x", Data: []byte("x")}}},
		{name: "symlink absolute, allowed", lim: archive.Limits{AllowSymlinks: true},
			entries: []entry{{Name: "link", Type: tar.TypeSymlink, Linkname: "/etc/passwd"}}},
		{name: "symlink climbing, allowed", lim: archive.Limits{AllowSymlinks: true},
			entries: []entry{{Name: "a/link", Type: tar.TypeSymlink, Linkname: "../../etc"}}},
		{name: "symlink dotdot after element", lim: archive.Limits{AllowSymlinks: true},
			entries: []entry{{Name: "self", Type: tar.TypeSymlink, Linkname: "."}, {Name: "x", Type: tar.TypeSymlink, Linkname: "self/../etc"}}},
		{name: "symlink through symlink", lim: archive.Limits{AllowSymlinks: true},
			entries: []entry{{Name: "d/", Type: tar.TypeDir}, {Name: "l1", Type: tar.TypeSymlink, Linkname: "d"}, {Name: "l2", Type: tar.TypeSymlink, Linkname: "l1/f"}}},
		{name: "hardlink", entries: []entry{{Name: "a", Data: []byte("x")}, {Name: "b", Type: tar.TypeLink, Linkname: "a"}}, tarOnly: true},
		{name: "hardlink out", entries: []entry{{Name: "b", Type: tar.TypeLink, Linkname: "/etc/shadow"}}, tarOnly: true},
		{name: "fifo", entries: []entry{{Name: "p", Type: tar.TypeFifo}}},
		{name: "char device", entries: []entry{{Name: "null", Type: tar.TypeChar}}},
		{name: "block device", entries: []entry{{Name: "sda", Type: tar.TypeBlock}}},
		{name: "duplicate", entries: []entry{{Name: "a", Data: []byte("1")}, {Name: "a", Data: []byte("2")}}},
		{name: "duplicate by dot prefix", entries: []entry{{Name: "a", Data: []byte("1")}, {Name: "./a", Data: []byte("2")}}},
		{name: "duplicate by case", entries: []entry{{Name: "Server", Data: []byte("1")}, {Name: "server", Data: []byte("2")}}},
		{name: "file under file", entries: []entry{{Name: "a", Data: []byte("1")}, {Name: "a/b", Data: []byte("2")}}},
		{name: "dir over file", entries: []entry{{Name: "a", Data: []byte("1")}, {Name: "a/", Type: tar.TypeDir}}},
		{name: "file over dir", entries: []entry{{Name: "a/b", Data: []byte("1")}, {Name: "a", Data: []byte("2")}}},
		{name: "duplicate dir", entries: []entry{{Name: "a/", Type: tar.TypeDir}, {Name: "a/", Type: tar.TypeDir}}},
		{name: "too many entries", lim: archive.Limits{MaxEntries: 2},
			entries: []entry{{Name: "a", Data: nil}, {Name: "b", Data: nil}, {Name: "c", Data: nil}}},
		{name: "file too large", lim: archive.Limits{MaxFileBytes: 10}, entries: []entry{{Name: "a", Data: []byte("0123456789A")}}},
		{name: "total too large", lim: archive.Limits{MaxTotalBytes: 15},
			entries: []entry{{Name: "a", Data: []byte("0123456789")}, {Name: "b", Data: []byte("0123456789")}}},
		{name: "deep name", entries: []entry{{Name: strings.Repeat("d/", 200) + "f", Data: []byte("x")}}},
		// 3 MiB of zeros compress about a thousand times: over the ratio
		// once the floor is passed, for the compressed formats.
		{name: "bomb ratio", lim: archive.Limits{MaxRatio: 10}, entries: []entry{{Name: "zeros", Data: big}}},
	}
	for _, c := range cases {
		for _, f := range formats {
			if c.tarOnly && f == archive.FormatZip {
				continue
			}
			if c.name == "bomb ratio" && f == archive.FormatTar {
				continue
			}
			t.Run(c.name+"/"+f.String(), func(t *testing.T) {
				data := build(t, f, c.entries)
				dst, err := unpack(t, data, f, c.lim)
				if !errors.Is(err, preflight.ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				var pe *preflight.Error
				if !errors.As(err, &pe) || pe.Expected == "" {
					t.Fatalf("err %v carries no expectation", err)
				}
				assertClean(t, dst)
			})
		}
	}
}

func TestUnpackAllowsInTreeSymlinks(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			data := build(t, f, []entry{
				{Name: "lib/libx.so.1", Data: []byte("elf")},
				{Name: "lib/libx.so", Type: tar.TypeSymlink, Linkname: "libx.so.1"},
				{Name: "bin/libx", Type: tar.TypeSymlink, Linkname: "../lib/libx.so.1"},
			})
			dst, err := unpack(t, data, f, archive.Limits{AllowSymlinks: true})
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dst, "bin", "libx"))
			if err != nil || string(b) != "elf" {
				t.Fatalf("through link: %q, %v", b, err)
			}
		})
	}
}

func TestUnpackCorrupt(t *testing.T) {
	good := verifytest.TarGz(map[string][]byte{"a": bytes.Repeat([]byte("abc"), 1000)})
	zipGood := verifytest.Zip(map[string][]byte{"a": bytes.Repeat([]byte("abc"), 1000)})
	cases := []struct {
		name string
		f    archive.Format
		data []byte
	}{
		{"not gzip", archive.FormatTarGz, []byte("plain text")},
		{"truncated gzip", archive.FormatTarGz, good[:len(good)/2]},
		{"not zip", archive.FormatZip, []byte("PK but not really")},
		{"truncated zip", archive.FormatZip, zipGood[:len(zipGood)-30]},
		{"garbage tar", archive.FormatTar, bytes.Repeat([]byte{0xff}, 1024)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst, err := unpack(t, c.data, c.f, archive.Limits{})
			if !errors.Is(err, preflight.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			assertClean(t, dst)
		})
	}
}

func TestUnpackZipLyingSize(t *testing.T) {
	// A zip whose central directory understates an entry's size: the bytes
	// actually inflated are what count.
	data := verifytest.Zip(map[string][]byte{"a": bytes.Repeat([]byte("z"), 4096)})
	i := bytes.LastIndex(data, []byte("PK\x01\x02"))
	if i < 0 {
		t.Fatal("no central directory")
	}
	// Uncompressed size is at offset 24 of the central directory header.
	copy(data[i+24:i+28], []byte{16, 0, 0, 0})
	dst, err := unpack(t, data, archive.FormatZip, archive.Limits{MaxFileBytes: 100})
	if !errors.Is(err, preflight.ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	assertClean(t, dst)
}

func TestUnpackDestinationExists(t *testing.T) {
	data := verifytest.TarGz(map[string][]byte{"a": []byte("x")})
	dst := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	err := archive.Unpack(context.Background(), bytes.NewReader(data), int64(len(data)), archive.FormatTarGz, dst, archive.Limits{})
	if !errors.Is(err, preflight.ErrStore) || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want ErrStore and fs.ErrExist", err)
	}
}

func TestUnpackCanceled(t *testing.T) {
	data := verifytest.TarGz(map[string][]byte{"a": []byte("x")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst := filepath.Join(t.TempDir(), "out")
	err := archive.Unpack(ctx, bytes.NewReader(data), int64(len(data)), archive.FormatTarGz, dst, archive.Limits{})
	if !errors.Is(err, preflight.ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrTimeout wrapping context.Canceled", err)
	}
	assertClean(t, dst)
}

func TestUnpackConfig(t *testing.T) {
	data := verifytest.TarGz(map[string][]byte{"a": []byte("x")})
	for name, run := range map[string]func(dst string) error{
		"negative limit": func(dst string) error {
			return archive.Unpack(context.Background(), bytes.NewReader(data), int64(len(data)), archive.FormatTarGz, dst, archive.Limits{MaxFileBytes: -1})
		},
		"unknown format": func(dst string) error {
			return archive.Unpack(context.Background(), bytes.NewReader(data), int64(len(data)), archive.FormatUnknown, dst, archive.Limits{})
		},
	} {
		t.Run(name, func(t *testing.T) {
			if err := run(filepath.Join(t.TempDir(), "out")); !errors.Is(err, preflight.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for name, want := range map[string]archive.Format{
		"weather_1.0_linux_amd64.tar.gz": archive.FormatTarGz,
		"x.TGZ":                          archive.FormatTarGz,
		"x.tar":                          archive.FormatTar,
		"x.zip":                          archive.FormatZip,
		"weather.mcpb":                   archive.FormatZip,
		"https://h/d/x.dxt":              archive.FormatZip,
	} {
		if got, err := archive.Detect(name); err != nil || got != want {
			t.Errorf("Detect(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	for _, name := range []string{"weather-linux-amd64", "x.tar.bz2", "x.gz", ""} {
		if _, err := archive.Detect(name); !errors.Is(err, preflight.ErrConfig) {
			t.Errorf("Detect(%q) err = %v, want ErrConfig", name, err)
		}
	}
}
