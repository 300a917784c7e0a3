package verifytest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReleaseHost is a fake release download host (GitHub releases, a CDN, an
// MCPB mirror) served over plain HTTP on loopback. Files are added by path;
// the fault helpers (Tamper, SetDelay, Truncate, Oversize, Status,
// RedirectTo) each make one path misbehave the way a hostile or broken host
// does, until Add is called for that path again. Requests counts every
// request per path, so tests can prove a second fetch was served from a
// cache.
//
// A ReleaseHost is safe for concurrent use.
type ReleaseHost struct {
	srv       *httptest.Server
	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	files    map[string]*relFile
	requests map[string]int
}

// relFile is what the host serves for one path.
type relFile struct {
	data     []byte // what Add published
	served   []byte // what is sent: data, or the Tamper replacement
	delay    time.Duration
	truncate bool
	oversize bool
	status   int
	redirect string
}

// relOversizeCap bounds an Oversize body, so that a client without any
// limit still finishes.
const relOversizeCap = 1 << 30

// NewReleaseHost starts a release host on a loopback port.
func NewReleaseHost() (*ReleaseHost, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("verifytest: release host: %w", err)
	}
	h := &ReleaseHost{closed: make(chan struct{}), files: map[string]*relFile{}, requests: map[string]int{}}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serveHTTP))
	h.srv.Listener.Close()
	h.srv.Listener = l
	h.srv.Start()
	return h, nil
}

// URL is the host's base URL, http://127.0.0.1:PORT, without a trailing
// slash; a file added at "/a/b" is at URL()+"/a/b".
func (h *ReleaseHost) URL() string { return h.srv.URL }

// Close stops the host, ending any delayed or endless answer first.
func (h *ReleaseHost) Close() {
	h.closeOnce.Do(func() {
		close(h.closed)
		h.srv.CloseClientConnections()
		h.srv.Close()
	})
}

func relPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "/" + p
	}
	return p
}

// Add publishes data at path (a leading slash is added when missing) and
// clears every fault set for it.
func (h *ReleaseHost) Add(path string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := bytes.Clone(data)
	h.files[relPath(path)] = &relFile{data: d, served: d}
}

// file returns the entry for path, creating an empty one so that faults
// can be set on paths that were never added.
func (h *ReleaseHost) file(path string) *relFile {
	p := relPath(path)
	f, ok := h.files[p]
	if !ok {
		f = &relFile{}
		h.files[p] = f
	}
	return f
}

// Tamper makes the host serve data at path instead of what Add published:
// a compromised host or mirror swapping the bytes.
func (h *ReleaseHost) Tamper(path string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.file(path).served = bytes.Clone(data)
}

// SetDelay holds every answer for path for d before sending the headers
// (a slow-retrieval attack or an overloaded host). The wait ends early
// when the client gives up or the host closes.
func (h *ReleaseHost) SetDelay(path string, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.file(path).delay = d
}

// Truncate makes the host declare a Content-Length larger than the body it
// sends and then drop the connection after half of the body.
func (h *ReleaseHost) Truncate(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.file(path).truncate = true
}

// Oversize makes the host send the file followed by endless zero bytes,
// without a Content-Length (an endless-data attack), until the client
// disconnects or 1 GiB was sent.
func (h *ReleaseHost) Oversize(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.file(path).oversize = true
}

// Status makes the host answer requests for path with the HTTP status code
// and no body.
func (h *ReleaseHost) Status(path string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.file(path).status = code
}

// RedirectTo makes the host answer requests for path with a 302 redirect to
// url, as GitHub does for release assets.
func (h *ReleaseHost) RedirectTo(path, url string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.file(path).redirect = url
}

// Requests returns how many requests the host received for path, whatever
// it answered.
func (h *ReleaseHost) Requests(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests[relPath(path)]
}

func (h *ReleaseHost) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests[r.URL.Path]++
	var f relFile
	fp, ok := h.files[r.URL.Path]
	if ok {
		f = *fp
	}
	h.mu.Unlock()
	if !ok || (f.served == nil && f.status == 0 && f.redirect == "") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-h.closed:
			return
		}
	}
	switch {
	case f.status != 0:
		w.WriteHeader(f.status)
		return
	case f.redirect != "":
		http.Redirect(w, r, f.redirect, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	switch {
	case f.truncate:
		w.Header().Set("Content-Length", strconv.Itoa(len(f.served)+1024))
		w.WriteHeader(http.StatusOK)
		w.Write(f.served[:len(f.served)/2])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		// Returning with fewer bytes than declared makes the server close
		// the connection: the client sees an unexpected EOF.
	case f.oversize:
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(f.served); err != nil {
			return
		}
		zeros := make([]byte, 32<<10)
		for sent := len(f.served); sent < relOversizeCap; sent += len(zeros) {
			select {
			case <-r.Context().Done():
				return
			case <-h.closed:
				return
			default:
			}
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	default:
		w.Header().Set("Content-Length", strconv.Itoa(len(f.served)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(f.served)
		}
	}
}

// ArchiveEntry is one entry of an archive built by TarArchive or
// ZipArchive. Every field is written as given, so tests can craft the
// unsafe archives a hostile publisher would: traversal names, links,
// devices, duplicates.
type ArchiveEntry struct {
	Name string
	Data []byte
	// Mode holds the permission bits; zero means 0755 (files stay
	// executable, as release binaries are).
	Mode int64
	// Type is the tar type flag: tar.TypeReg (also for zero), tar.TypeDir,
	// tar.TypeSymlink, tar.TypeLink, tar.TypeFifo, tar.TypeChar, ... In a
	// zip, directories, symbolic links (Data is ignored, Linkname is the
	// content), FIFOs and devices get the matching file mode.
	Type     byte
	Linkname string
}

// TarGz builds a gzip-compressed tar of files (name to content), in
// name order, each a regular file with mode 0755 under its parent
// directories' implicit entries. It panics only if the tar writer refuses
// a name, which names built from ordinary strings never cause.
func TarGz(files map[string][]byte) []byte {
	return TarArchive(relEntries(files), true)
}

// Zip builds a zip of files (name to content), in name order, each a
// deflated regular file with mode 0755.
func Zip(files map[string][]byte) []byte {
	return ZipArchive(relEntries(files))
}

func relEntries(files map[string][]byte) []ArchiveEntry {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	entries := make([]ArchiveEntry, 0, len(names))
	for _, n := range names {
		entries = append(entries, ArchiveEntry{Name: n, Data: files[n]})
	}
	return entries
}

// TarArchive builds a tar of entries, in order, compressed with gzip when
// gz is set. It panics if the tar writer refuses an entry (for example a
// name too long for every tar format), which is a bug in the test.
func TarArchive(entries []ArchiveEntry, gz bool) []byte {
	var buf bytes.Buffer
	var tw *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		tw = tar.NewWriter(zw)
	} else {
		tw = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.Name, Mode: relMode(e.Mode), Typeflag: typ, Linkname: e.Linkname, Format: tar.FormatPAX,
			ModTime: time.Unix(1700000000, 0)}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(fmt.Sprintf("verifytest: tar entry %q: %v", e.Name, err))
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.Data); err != nil {
				panic(fmt.Sprintf("verifytest: tar entry %q: %v", e.Name, err))
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(fmt.Sprintf("verifytest: tar: %v", err))
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			panic(fmt.Sprintf("verifytest: gzip: %v", err))
		}
	}
	return buf.Bytes()
}

// ZipArchive builds a zip of entries, in order, deflating regular files.
// It panics if the zip writer refuses an entry, which is a bug in the test.
func ZipArchive(entries []ArchiveEntry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: time.Unix(1700000000, 0).UTC()}
		perm := fs.FileMode(relMode(e.Mode))
		data := e.Data
		switch e.Type {
		case 0, tar.TypeReg:
			hdr.SetMode(perm)
		case tar.TypeDir:
			hdr.Method = zip.Store
			hdr.SetMode(fs.ModeDir | perm)
			data = nil
		case tar.TypeSymlink:
			hdr.SetMode(fs.ModeSymlink | perm)
			data = []byte(e.Linkname)
		case tar.TypeFifo:
			hdr.SetMode(fs.ModeNamedPipe | perm)
		case tar.TypeChar:
			hdr.SetMode(fs.ModeDevice | fs.ModeCharDevice | perm)
		case tar.TypeBlock:
			hdr.SetMode(fs.ModeDevice | perm)
		default:
			panic(fmt.Sprintf("verifytest: zip entry %q: no zip equivalent of tar type %q", e.Name, e.Type))
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			panic(fmt.Sprintf("verifytest: zip entry %q: %v", e.Name, err))
		}
		if _, err := w.Write(data); err != nil {
			panic(fmt.Sprintf("verifytest: zip entry %q: %v", e.Name, err))
		}
	}
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("verifytest: zip: %v", err))
	}
	return buf.Bytes()
}

func relMode(m int64) int64 {
	if m == 0 {
		return 0o755
	}
	return m
}
