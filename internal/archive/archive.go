package archive

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/mcp-preflight/preflight"
)

// Format is an archive format.
type Format int

// The formats Unpack reads.
const (
	FormatUnknown Format = iota
	FormatTar            // uncompressed POSIX, GNU or PAX tar
	FormatTarGz          // tar compressed with gzip (.tar.gz, .tgz)
	FormatZip            // zip with stored or deflated entries (.zip, .mcpb)
)

// String returns the format's usual file suffix without the dot.
func (f Format) String() string {
	switch f {
	case FormatTar:
		return "tar"
	case FormatTarGz:
		return "tar.gz"
	case FormatZip:
		return "zip"
	}
	return "unknown"
}

// Detect returns the format a file name's suffix names, ignoring case:
// .tar.gz and .tgz, .tar, and .zip, .mcpb and .dxt (MCP bundles are zip
// files). Any other name is an ErrConfig failure: the caller should name
// the format explicitly.
func Detect(name string) (Format, error) {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return FormatTarGz, nil
	case strings.HasSuffix(n, ".tar"):
		return FormatTar, nil
	case strings.HasSuffix(n, ".zip"), strings.HasSuffix(n, ".mcpb"), strings.HasSuffix(n, ".dxt"):
		return FormatZip, nil
	}
	return FormatUnknown, &preflight.Error{Class: preflight.ErrConfig, Subject: "archive " + name,
		Expected: "a name ending in .tar.gz, .tgz, .tar, .zip or .mcpb", Found: fmt.Sprintf("%q", path.Base(name)),
		Hint: "name the archive format explicitly"}
}

// Limits bound what one archive may make Unpack write. The zero value
// applies the defaults; a negative value is an ErrConfig failure.
type Limits struct {
	// MaxTotalBytes bounds the sum of the uncompressed sizes of all files.
	// Zero means DefaultMaxTotalBytes.
	MaxTotalBytes int64
	// MaxFileBytes bounds the uncompressed size of one file. Zero means
	// DefaultMaxFileBytes.
	MaxFileBytes int64
	// MaxEntries bounds the number of entries of any type. Zero means
	// DefaultMaxEntries.
	MaxEntries int
	// MaxRatio bounds the ratio of uncompressed file bytes to the size of
	// the archive, once more than RatioFloor bytes have been written (small
	// archives of text reach high ratios innocently). Zero means
	// DefaultMaxRatio.
	MaxRatio int64
	// AllowSymlinks lets relative symbolic links whose target stays inside
	// the tree through. Links to links and entries written through a link
	// are still refused. Hard links are always refused.
	AllowSymlinks bool
}

// Default limits, sized for release archives and MCP bundles: a large
// statically linked server is ~100 MiB, a bundle with node_modules a few
// thousand files.
const (
	DefaultMaxTotalBytes = 1 << 30
	DefaultMaxFileBytes  = 512 << 20
	DefaultMaxEntries    = 20000
	DefaultMaxRatio      = 100
	// RatioFloor is how many uncompressed bytes are always allowed,
	// whatever the ratio.
	RatioFloor = 1 << 20
)

// Bounds on entry names, well above anything real archives use.
const (
	maxNameBytes = 4096
	maxNameDepth = 128
	maxElemBytes = 255 // NAME_MAX on Linux and macOS
	maxLinkBytes = 4096
)

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxTotalBytes < 0 || l.MaxFileBytes < 0 || l.MaxEntries < 0 || l.MaxRatio < 0 {
		return l, &preflight.Error{Class: preflight.ErrConfig, Subject: "archive limits", Expected: "non-negative limits (zero for the defaults)",
			Found: fmt.Sprintf("%+v", l)}
	}
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if l.MaxFileBytes == 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l, nil
}

// Unpack reads the archive of the given format from r (size bytes) and
// writes its files under dst, which must not exist yet; its parent must.
// Unpack works in a temporary directory beside dst and renames it to dst
// only when the whole archive was written, so on any failure dst does not
// exist and nothing is left behind.
//
// Failures match preflight.ErrMalformed (an unsafe or corrupt archive, or
// one over a limit), preflight.ErrTimeout (ctx ended; the error also wraps
// ctx.Err()), preflight.ErrConfig (an unknown format, a negative limit) or
// preflight.ErrStore (the file system refused a write). When dst appeared
// while Unpack was working (a concurrent unpack of the same archive), the
// error is an ErrStore failure that also matches fs.ErrExist, and dst is
// the other writer's.
//
// Unpack is safe for concurrent use with distinct temporary directories;
// r must allow concurrent ReadAt calls for zip archives (an *os.File does).
func Unpack(ctx context.Context, r io.ReaderAt, size int64, format Format, dst string, lim Limits) error {
	lim, err := lim.withDefaults()
	if err != nil {
		return err
	}
	if size < 0 {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "archive", Expected: "a non-negative size", Found: fmt.Sprint(size)}
	}
	if format != FormatTar && format != FormatTarGz && format != FormatZip {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "archive", Expected: "format tar, tar.gz or zip", Found: format.String()}
	}
	dst, err = filepath.Abs(dst)
	if err != nil {
		return storeErr(dst, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return storeErr(dst, fs.ErrExist)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".unpack-*")
	if err != nil {
		return storeErr(dst, err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o700); err != nil {
		return storeErr(tmp, err)
	}
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return storeErr(tmp, err)
	}
	u := &unpacker{ctx: ctx, root: root, lim: lim, compressed: size, seen: map[string]kind{}, links: map[string]string{}}
	switch format {
	case FormatZip:
		err = u.zip(r, size)
	default:
		err = u.tar(io.NewSectionReader(r, 0, size), format == FormatTarGz)
	}
	if err == nil {
		err = u.checkLinks()
	}
	if cerr := root.Close(); err == nil && cerr != nil {
		err = storeErr(tmp, cerr)
	}
	if err != nil {
		return err
	}
	syncDir(tmp)
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Lstat(dst); serr == nil {
			return storeErr(dst, fmt.Errorf("%w: %w", fs.ErrExist, err))
		}
		return storeErr(dst, err)
	}
	done = true
	syncDir(filepath.Dir(dst))
	return nil
}

// kind is what an entry name stands for in the tree being written.
type kind int

const (
	kindImplicitDir kind = iota + 1 // created as a parent of another entry
	kindDir
	kindFile
	kindLink
)

type unpacker struct {
	ctx        context.Context
	root       *os.Root
	lim        Limits
	compressed int64
	total      int64             // uncompressed file bytes written
	entries    int               // entries seen
	seen       map[string]kind   // by case-folded clean name
	links      map[string]string // clean name of each link → clean target
}

func (u *unpacker) tar(r io.Reader, gz bool) error {
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return malformed("archive", "a gzip stream", "", err)
		}
		defer zr.Close()
		// Bound the decompressed stream, not only the file contents: tar
		// headers, padding and skipped entries cost work too.
		r = &streamBudget{r: zr, left: u.lim.MaxTotalBytes + int64(u.lim.MaxEntries)*4096 + 8<<20}
	}
	tr := tar.NewReader(ctxReader{u.ctx, r})
	for {
		if err := u.ctxErr(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return u.readErr("archive", "a tar stream", err)
		}
		if err := u.count(hdr.Name); err != nil {
			return err
		}
		switch hdr.Typeflag {
		//lint:ignore SA1019 old archives still mark regular files with '\x00'
		case tar.TypeReg, tar.TypeRegA:
			if strings.HasSuffix(hdr.Name, "/") {
				return malformed("archive entry "+quote(hdr.Name), "a file name without a trailing slash", "a regular file named like a directory", nil)
			}
			if err := u.file(hdr.Name, tr, hdr.Size, hdr.Mode&0o100 != 0); err != nil {
				return err
			}
		case tar.TypeDir:
			if err := u.dir(hdr.Name); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := u.symlink(hdr.Name, hdr.Linkname); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
			// Global PAX records (comments, mtimes) carry no file.
		case tar.TypeLink:
			return malformed("archive entry "+quote(hdr.Name), "a regular file or directory", "a hard link to "+quote(hdr.Linkname), nil)
		default:
			return malformed("archive entry "+quote(hdr.Name), "a regular file or directory", tarType(hdr.Typeflag), nil)
		}
	}
}

func tarType(t byte) string {
	switch t {
	case tar.TypeChar:
		return "a character device"
	case tar.TypeBlock:
		return "a block device"
	case tar.TypeFifo:
		return "a FIFO"
	case tar.TypeCont:
		return "a contiguous file"
	case tar.TypeGNUSparse:
		return "a sparse file"
	}
	return fmt.Sprintf("entry type %q", t)
}

func (u *unpacker) zip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return malformed("archive", "a zip archive", "", err)
	}
	if len(zr.File) > u.lim.MaxEntries {
		return malformed("archive", fmt.Sprintf("at most %d entries", u.lim.MaxEntries), fmt.Sprintf("%d entries", len(zr.File)), nil)
	}
	for _, f := range zr.File {
		if err := u.ctxErr(); err != nil {
			return err
		}
		if err := u.count(f.Name); err != nil {
			return err
		}
		subject := "archive entry " + quote(f.Name)
		if f.Flags&0x1 != 0 {
			return malformed(subject, "an unencrypted entry", "an encrypted entry", nil)
		}
		mode := f.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			if f.UncompressedSize64 > maxLinkBytes {
				return malformed(subject, fmt.Sprintf("a link target of at most %d bytes", maxLinkBytes), fmt.Sprintf("%d bytes", f.UncompressedSize64), nil)
			}
			target, err := u.readZipLink(f)
			if err != nil {
				return err
			}
			if err := u.symlink(f.Name, target); err != nil {
				return err
			}
		case mode.IsDir():
			if err := u.dir(f.Name); err != nil {
				return err
			}
		case mode.Type() == 0:
			if strings.HasSuffix(f.Name, "/") {
				return malformed(subject, "a file name without a trailing slash", "a regular file named like a directory", nil)
			}
			if f.UncompressedSize64 > math.MaxInt64 {
				return malformed(subject, "a representable size", fmt.Sprint(f.UncompressedSize64), nil)
			}
			rc, err := f.Open()
			if err != nil {
				return malformed(subject, "a stored or deflated entry", "", err)
			}
			err = u.file(f.Name, rc, int64(f.UncompressedSize64), mode&0o100 != 0)
			rc.Close()
			if err != nil {
				return err
			}
		default:
			return malformed(subject, "a regular file or directory", "file mode "+mode.String(), nil)
		}
	}
	return nil
}

func (u *unpacker) readZipLink(f *zip.File) (string, error) {
	subject := "archive entry " + quote(f.Name)
	if !u.lim.AllowSymlinks {
		return "", malformed(subject, "a regular file or directory", "a symbolic link", nil)
	}
	rc, err := f.Open()
	if err != nil {
		return "", malformed(subject, "a stored or deflated entry", "", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkBytes+1))
	if err != nil {
		return "", u.readErr(subject, "a readable link target", err)
	}
	if len(b) > maxLinkBytes {
		return "", malformed(subject, fmt.Sprintf("a link target of at most %d bytes", maxLinkBytes), "more", nil)
	}
	return string(b), nil
}

// count enforces MaxEntries.
func (u *unpacker) count(name string) error {
	u.entries++
	if u.entries > u.lim.MaxEntries {
		return malformed("archive entry "+quote(name), fmt.Sprintf("at most %d entries", u.lim.MaxEntries), "more", nil)
	}
	return nil
}

// cleanName turns an archive entry name into a clean slash-separated
// relative path, or "" for the archive's root ("./"). It refuses every
// name that could leave the tree or mean different things on different
// systems.
func cleanName(raw string) (string, error) {
	subject := "archive entry " + quote(raw)
	bad := func(found string) error {
		return malformed(subject, "a relative path inside the archive", found, nil)
	}
	switch {
	case raw == "":
		return "", bad("an empty name")
	case len(raw) > maxNameBytes:
		return "", malformed(subject, fmt.Sprintf("a name of at most %d bytes", maxNameBytes), fmt.Sprintf("%d bytes", len(raw)), nil)
	case strings.ContainsRune(raw, 0):
		return "", bad("a NUL byte")
	case strings.ContainsRune(raw, '\\'):
		return "", bad("a backslash")
	case strings.HasPrefix(raw, "/"):
		return "", bad("an absolute path")
	case len(raw) >= 2 && raw[1] == ':':
		return "", bad("a Windows volume name")
	}
	var elems []string
	for _, e := range strings.Split(raw, "/") {
		switch e {
		case "", ".":
			continue
		case "..":
			return "", bad("a \"..\" element")
		}
		if len(e) > maxElemBytes {
			return "", malformed(subject, fmt.Sprintf("path elements of at most %d bytes", maxElemBytes), fmt.Sprintf("%d bytes", len(e)), nil)
		}
		elems = append(elems, e)
	}
	if len(elems) > maxNameDepth {
		return "", malformed(subject, fmt.Sprintf("at most %d path elements", maxNameDepth), fmt.Sprintf("%d", len(elems)), nil)
	}
	name := strings.Join(elems, "/")
	if name != "" && !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", bad("a name this system treats as non-local")
	}
	return name, nil
}

// claim records name as k, after checking that it is new and that every
// parent is, or may become, a directory.
func (u *unpacker) claim(raw, name string, k kind) error {
	subject := "archive entry " + quote(raw)
	elems := strings.Split(name, "/")
	for i := 1; i < len(elems); i++ {
		parent := strings.ToLower(strings.Join(elems[:i], "/"))
		switch u.seen[parent] {
		case kindFile:
			return malformed(subject, "a parent directory", quote(strings.Join(elems[:i], "/"))+" is a file", nil)
		case kindLink:
			return malformed(subject, "a path without symbolic links", quote(strings.Join(elems[:i], "/"))+" is a symbolic link", nil)
		case 0:
			u.seen[parent] = kindImplicitDir
		}
	}
	key := strings.ToLower(name)
	switch prev := u.seen[key]; {
	case prev == 0:
	case prev == kindImplicitDir && k == kindDir:
	default:
		return malformed(subject, "each name once (compared without case)", "a duplicate entry", nil)
	}
	u.seen[key] = k
	return nil
}

func (u *unpacker) dir(raw string) error {
	name, err := cleanName(raw)
	if err != nil {
		return err
	}
	if name == "" {
		return nil
	}
	if err := u.claim(raw, name, kindDir); err != nil {
		return err
	}
	if err := u.root.MkdirAll(filepath.FromSlash(name), 0o700); err != nil {
		return storeErr(raw, err)
	}
	return nil
}

func (u *unpacker) file(raw string, r io.Reader, declared int64, executable bool) error {
	subject := "archive entry " + quote(raw)
	name, err := cleanName(raw)
	if err != nil {
		return err
	}
	if name == "" {
		return malformed(subject, "a file name", "the archive root", nil)
	}
	if err := u.claim(raw, name, kindFile); err != nil {
		return err
	}
	// The most this file may add, and the limit that sets it.
	budget, which := u.lim.MaxFileBytes, fmt.Sprintf("at most %d bytes per file", u.lim.MaxFileBytes)
	if left := u.lim.MaxTotalBytes - u.total; left < budget {
		budget, which = left, fmt.Sprintf("at most %d bytes in all files", u.lim.MaxTotalBytes)
	}
	ratioCap := RatioFloor + u.compressed*u.lim.MaxRatio
	if u.compressed > (math.MaxInt64-RatioFloor)/u.lim.MaxRatio {
		ratioCap = math.MaxInt64
	}
	if left := ratioCap - u.total; left < budget {
		budget, which = left, fmt.Sprintf("at most %d uncompressed bytes per compressed byte", u.lim.MaxRatio)
	}
	if declared < 0 || declared > budget {
		return malformed(subject, which, fmt.Sprintf("a file of %d bytes", declared), nil)
	}
	if dir := path.Dir(name); dir != "." {
		if err := u.root.MkdirAll(filepath.FromSlash(dir), 0o700); err != nil {
			return storeErr(raw, err)
		}
	}
	f, err := u.root.OpenFile(filepath.FromSlash(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return storeErr(raw, err)
	}
	n, err := io.Copy(f, io.LimitReader(ctxReader{u.ctx, r}, budget+1))
	u.total += n
	if err != nil {
		f.Close()
		return u.readErr(subject, "a complete entry", err)
	}
	if n > budget {
		f.Close()
		return malformed(subject, which, "more", nil)
	}
	if n != declared {
		f.Close()
		return malformed(subject, fmt.Sprintf("%d bytes, as the header declares", declared), fmt.Sprintf("%d bytes", n), nil)
	}
	mode := fs.FileMode(0o400)
	if executable {
		mode = 0o500
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return storeErr(raw, err)
	}
	if err := f.Close(); err != nil {
		return storeErr(raw, err)
	}
	return nil
}

func (u *unpacker) symlink(raw, target string) error {
	subject := "archive entry " + quote(raw)
	if !u.lim.AllowSymlinks {
		return malformed(subject, "a regular file or directory", "a symbolic link to "+quote(target), nil)
	}
	name, err := cleanName(raw)
	if err != nil {
		return err
	}
	if name == "" {
		return malformed(subject, "a link name", "the archive root", nil)
	}
	bad := func(found string) error {
		return malformed(subject, "a relative link target inside the archive", found, nil)
	}
	switch {
	case target == "":
		return bad("an empty target")
	case len(target) > maxLinkBytes:
		return bad(fmt.Sprintf("a target of %d bytes", len(target)))
	case strings.ContainsRune(target, 0), strings.ContainsRune(target, '\\'):
		return bad("a target with a NUL byte or backslash")
	case strings.HasPrefix(target, "/"), len(target) >= 2 && target[1] == ':':
		return bad("an absolute target " + quote(target))
	}
	// ".." may only lead the target: the link's own directories are real
	// directories (nothing is written through a link), so leading ".."
	// elements resolve the same lexically and on disk, while a ".." after
	// another element could climb out of a directory reached through a
	// link.
	descending := false
	for _, e := range strings.Split(target, "/") {
		switch {
		case e == "..":
			if descending {
				return bad(quote(target) + ", with \"..\" after another element")
			}
		case e != "" && e != ".":
			descending = true
		}
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == "." || !filepath.IsLocal(filepath.FromSlash(resolved)) {
		return bad(quote(target) + ", which leaves the tree")
	}
	if err := u.claim(raw, name, kindLink); err != nil {
		return err
	}
	if dir := path.Dir(name); dir != "." {
		if err := u.root.MkdirAll(filepath.FromSlash(dir), 0o700); err != nil {
			return storeErr(raw, err)
		}
	}
	if err := u.root.Symlink(target, filepath.FromSlash(name)); err != nil {
		return storeErr(raw, err)
	}
	u.links[name] = resolved
	return nil
}

// checkLinks refuses a link whose target passes through a link: with the
// whole tree known, every link then resolves in one lexical step inside it.
func (u *unpacker) checkLinks() error {
	for name, target := range u.links {
		elems := strings.Split(target, "/")
		for i := 1; i <= len(elems); i++ {
			if u.seen[strings.ToLower(strings.Join(elems[:i], "/"))] == kindLink {
				return malformed("archive entry "+quote(name), "a link to a file or directory", "a link through the link "+quote(strings.Join(elems[:i], "/")), nil)
			}
		}
	}
	return nil
}

func (u *unpacker) ctxErr() error {
	if err := u.ctx.Err(); err != nil {
		return timeoutErr(err)
	}
	return nil
}

// readErr classifies a failure to read the archive: the context's end, an
// exhausted stream budget, or a corrupt archive.
func (u *unpacker) readErr(subject, expected string, err error) error {
	if cerr := u.ctx.Err(); cerr != nil {
		return timeoutErr(cerr)
	}
	var pe *preflight.Error
	if errors.As(err, &pe) {
		return err
	}
	return malformed(subject, expected, "", err)
}

// streamBudget fails a decompressed stream that grows past its budget.
type streamBudget struct {
	r    io.Reader
	left int64
}

func (s *streamBudget) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, malformed("archive", "a decompressed stream within the limits", "more", nil)
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	return n, err
}

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

func malformed(subject, expected, found string, err error) error {
	return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: expected, Found: found, Err: err,
		Hint: "the archive is corrupt or unsafe to unpack; do not use it"}
}

func timeoutErr(err error) error {
	return &preflight.Error{Class: preflight.ErrTimeout, Subject: "archive", Err: err, Hint: "unpacking did not finish before the deadline"}
}

func storeErr(subject string, err error) error {
	return &preflight.Error{Class: preflight.ErrStore, Subject: "unpack " + subject, Err: err, Hint: "check that the directory is writable and has free space"}
}

func quote(s string) string {
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
