package verifytest_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight/verify/verifytest"
)

func relGet(t *testing.T, ctx context.Context, url string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func TestReleaseHostFaults(t *testing.T) {
	h, err := verifytest.NewReleaseHost()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	data := []byte("release bytes")
	h.Add("a/bin", data) // a leading slash is added

	resp, body, err := relGet(t, ctx, h.URL()+"/a/bin")
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("plain: %v, %q, %v", resp, body, err)
	}

	h.Tamper("/a/bin", []byte("evil"))
	if _, body, _ := relGet(t, ctx, h.URL()+"/a/bin"); string(body) != "evil" {
		t.Fatalf("tampered body %q", body)
	}
	h.Add("/a/bin", data) // clears the fault

	h.Status("/a/bin", http.StatusServiceUnavailable)
	if resp, _, _ := relGet(t, ctx, h.URL()+"/a/bin"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h.Add("/a/bin", data)

	h.RedirectTo("/a/bin", "http://example.invalid/x")
	if resp, _, _ := relGet(t, ctx, h.URL()+"/a/bin"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://example.invalid/x" {
		t.Fatalf("redirect %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	h.Add("/a/bin", data)

	h.Truncate("/a/bin")
	if _, _, err := relGet(t, ctx, h.URL()+"/a/bin"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated read err = %v, want unexpected EOF", err)
	}
	h.Add("/a/bin", data)

	h.Oversize("/a/bin")
	if resp, body, _ := relGet(t, ctx, h.URL()+"/a/bin"); resp.ContentLength != -1 || len(body) != 1<<20 || !bytes.HasPrefix(body, data) {
		t.Fatalf("oversize: length %d, read %d", resp.ContentLength, len(body))
	}
	h.Add("/a/bin", data)

	h.SetDelay("/a/bin", time.Minute)
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := relGet(t, tctx, h.URL()+"/a/bin"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed err = %v, want deadline exceeded", err)
	}

	if resp, _, _ := relGet(t, ctx, h.URL()+"/missing"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("missing: %d", resp.StatusCode)
	}
	if n := h.Requests("/a/bin"); n != 7 {
		t.Fatalf("requests = %d, want 7", n)
	}
	if n := h.Requests("missing"); n != 1 {
		t.Fatalf("requests for a missing path = %d, want 1", n)
	}
}

func TestReleaseHostCloseEndsDelays(t *testing.T) {
	h, err := verifytest.NewReleaseHost()
	if err != nil {
		t.Fatal(err)
	}
	h.Add("/slow", []byte("x"))
	h.SetDelay("/slow", time.Hour)
	done := make(chan struct{})
	go func() {
		defer close(done)
		relGet(t, context.Background(), h.URL()+"/slow")
	}()
	for h.Requests("/slow") == 0 {
		time.Sleep(time.Millisecond)
	}
	h.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close left a delayed request hanging")
	}
}

func TestArchiveBuilders(t *testing.T) {
	files := map[string][]byte{"b/server": []byte("bin"), "a.txt": []byte("text")}

	zr, err := gzip.NewReader(bytes.NewReader(verifytest.TarGz(files)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if !bytes.Equal(body, files[hdr.Name]) || hdr.Mode != 0o755 || hdr.Typeflag != tar.TypeReg {
			t.Fatalf("tar entry %+v holds %q", hdr, body)
		}
		names = append(names, hdr.Name)
	}
	if len(names) != 2 || names[0] != "a.txt" {
		t.Fatalf("tar names %v, want sorted", names)
	}

	z := verifytest.Zip(files)
	r, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.File) != 2 || r.File[0].Name != "a.txt" || r.File[1].Mode().Perm() != 0o755 {
		t.Fatalf("zip entries %v", r.File)
	}

	// Crafted entries keep what a hostile archive needs.
	z = verifytest.ZipArchive([]verifytest.ArchiveEntry{{Name: "l", Type: tar.TypeSymlink, Linkname: "../../etc"}, {Name: "d/", Type: tar.TypeDir}})
	if r, err = zip.NewReader(bytes.NewReader(z), int64(len(z))); err != nil {
		t.Fatal(err)
	}
	rc, err := r.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	target, _ := io.ReadAll(rc)
	rc.Close()
	if r.File[0].Mode()&fs.ModeSymlink == 0 || string(target) != "../../etc" || !r.File[1].Mode().IsDir() {
		t.Fatalf("crafted zip: %v %q %v", r.File[0].Mode(), target, r.File[1].Mode())
	}
}
