package npm

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/store"
)

// limits bound what one tarball may expand to.
type limits struct {
	maxBytes int64 // total bytes of file content
	maxFiles int   // entries of any type
}

func (c *Client) limits() limits {
	return limits{maxBytes: c.cfg.MaxUnpackedBytes, maxFiles: c.cfg.MaxFiles}
}

// maxPathLen bounds one entry's path; Linux's PATH_MAX.
const maxPathLen = 4096

// tarEntry is one checked archive entry.
type tarEntry struct {
	regular, dir, symlink bool
	linkname              string // symlink target, relative and inside the package
	executable            bool
	size                  int64
}

// errArchive marks an archive that breaks a rule; walkTarball's other
// errors come from fn.
type errArchive struct{ msg string }

func (e *errArchive) Error() string { return e.msg }

func archiveErr(format string, args ...any) error {
	return &errArchive{fmt.Sprintf(format, args...)}
}

// walkTarball reads a gzipped npm tarball and calls fn for each file,
// directory and symbolic link, with its path below the package root: the
// first path element (package/ in tarballs npm makes, any name in older
// ones) is removed, and entries outside that element are skipped. It refuses
// archives that could write outside the package or exhaust the disk:
// absolute paths, ".." elements, backslashes and NUL bytes, symbolic links
// whose target is absolute or leaves the package, entries below a symbolic
// link, hard links, device files and FIFOs, more than lim.maxFiles entries
// or lim.maxBytes bytes of content, and a path twice. The whole input is
// read, so a caller hashing it sees every byte.
func walkTarball(r io.Reader, lim limits, fn func(rel string, e tarEntry, content io.Reader) error) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return archiveErr("not a gzip stream: %v", err)
	}
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	var total int64
	files := 0
	seen := map[string]bool{}
	links := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return archiveErr("reading the tar stream: %v", err)
		}
		if files++; files > lim.maxFiles {
			return archiveErr("more than %d entries", lim.maxFiles)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name := hdr.Name
		if len(name) > maxPathLen || strings.ContainsAny(name, "\\\x00") {
			return archiveErr("entry name %q is not a portable path", truncate(name))
		}
		if strings.HasPrefix(name, "/") {
			return archiveErr("entry %q has an absolute path", truncate(name))
		}
		for _, el := range strings.Split(name, "/") {
			if el == ".." {
				return archiveErr("entry %q leaves the package", truncate(name))
			}
		}
		if hdr.Size < 0 {
			return archiveErr("entry %q has a negative size", truncate(name))
		}
		//lint:ignore SA1019 old tarballs still mark regular files with '\x00'
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA || hdr.Typeflag == tar.TypeGNUSparse {
			if total += hdr.Size; total > lim.maxBytes || total < 0 {
				return archiveErr("more than %d bytes of content", lim.maxBytes)
			}
		}
		rel := strings.TrimPrefix(name, "./")
		_, rel, ok := strings.Cut(rel, "/")
		if !ok || strings.Trim(rel, "/") == "" {
			continue // the package directory itself, or a stray entry beside it
		}
		rel, ok = cleanRel(rel)
		if !ok {
			return archiveErr("entry %q is not a path inside the package", truncate(name))
		}
		if seen[rel] {
			return archiveErr("entry %q appears twice", truncate(name))
		}
		seen[rel] = true
		for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
			if links[dir] {
				return archiveErr("entry %q lies below the symbolic link %q", truncate(name), dir)
			}
		}
		var e tarEntry
		switch hdr.Typeflag {
		//lint:ignore SA1019 old tarballs still mark regular files with '\x00'
		case tar.TypeReg, tar.TypeRegA:
			e = tarEntry{regular: true, size: hdr.Size, executable: hdr.Mode&0o111 != 0}
		case tar.TypeDir:
			e = tarEntry{dir: true}
		case tar.TypeSymlink:
			t := hdr.Linkname
			if t == "" || len(t) > maxPathLen || strings.ContainsAny(t, "\\\x00") || path.IsAbs(t) {
				return archiveErr("symbolic link %q points to %q, outside the package", truncate(name), truncate(t))
			}
			if _, ok := cleanRel(path.Join(path.Dir(rel), t)); !ok {
				return archiveErr("symbolic link %q points to %q, outside the package", truncate(name), truncate(t))
			}
			links[rel] = true
			e = tarEntry{symlink: true, linkname: t}
		case tar.TypeLink:
			return archiveErr("entry %q is a hard link; npm never packs those", truncate(name))
		default:
			return archiveErr("entry %q has type %q (device, FIFO or unknown)", truncate(name), string(hdr.Typeflag))
		}
		if err := fn(rel, e, tr); err != nil {
			return err
		}
	}
	// Read what follows the archive so that the caller hashes it all.
	if _, err := io.Copy(io.Discard, io.LimitReader(gz, 1<<20)); err != nil {
		return archiveErr("reading the gzip stream: %v", err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// tarErr classifies a walkTarball error: a broken rule is ErrMalformed,
// an error from the callback keeps its class.
func tarErr(subject string, err error) error {
	var pe *preflight.Error
	if errors.As(err, &pe) {
		return err
	}
	var ae *errArchive
	if errors.As(err, &ae) {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a safe npm tarball", Found: ae.msg,
			Hint: "the tarball could write outside its directory or exhaust the disk; it was not installed"}
	}
	return &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
}

func openEntry(e store.Entry) (*os.File, error) {
	f, err := os.Open(e.Path)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrStore, Subject: "store entry " + e.Path, Err: err,
			Hint: "the store entry disappeared; fetch the package again"}
	}
	return f, nil
}

// extract writes one package's entries below root: files read-only (0400,
// or 0500 when executable in the archive), directories 0700.
func extract(r io.Reader, root *os.Root, lim limits) error {
	return walkTarball(r, lim, func(rel string, e tarEntry, content io.Reader) error {
		if d := path.Dir(rel); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return fsErr("creating", d, err)
			}
		}
		switch {
		case e.dir:
			if err := root.MkdirAll(rel, 0o700); err != nil {
				return fsErr("creating", rel, err)
			}
		case e.symlink:
			if err := root.Symlink(e.linkname, rel); err != nil {
				return fsErr("creating link", rel, err)
			}
		case e.regular:
			mode := fs.FileMode(0o400)
			if e.executable {
				mode = 0o500
			}
			f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return fsErr("creating", rel, err)
			}
			n, err := io.Copy(f, content)
			cerr := f.Close()
			if err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					return fsErr("writing", rel, err)
				}
				return archiveErr("reading %q: %v", rel, err)
			}
			if cerr != nil {
				return fsErr("writing", rel, cerr)
			}
			if n != e.size {
				return archiveErr("entry %q is %d bytes, the header says %d", rel, n, e.size)
			}
		}
		return nil
	})
}

// fsErr tells a refusal caused by the archive (an entry where another
// already is, a path through a file or out of the root) from a failing
// disk.
func fsErr(op, rel string, err error) error {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO, fs.ErrPermission} {
		if errors.Is(err, e) {
			return &preflight.Error{Class: preflight.ErrStore, Subject: op + " " + rel, Err: err,
				Hint: "check that the install directory is writable and has free space"}
		}
	}
	return archiveErr("%s %q: %v", op, rel, err)
}
