package verifytest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// tufTestFetcher is a bounded fetcher for go-tuf's reference updater, used
// here to check the test repository independently of Preflight's client.
type tufTestFetcher struct{ client *http.Client }

func (f tufTestFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	resp, err := f.client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is longer than %d bytes", url, maxLength)}
	}
	return data, nil
}

// goTUFUpdater returns a go-tuf updater caching in cacheDir (a fresh one
// if empty): updaters sharing a cache share trusted metadata.
func goTUFUpdater(t *testing.T, base string, root []byte, cacheDir string) *updater.Updater {
	t.Helper()
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	cfg, err := config.New(base+"/metadata", root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = base + "/targets"
	cfg.LocalMetadataDir = filepath.Join(cacheDir, "metadata")
	cfg.LocalTargetsDir = filepath.Join(cacheDir, "targets")
	cfg.Fetcher = tufTestFetcher{&http.Client{Timeout: 5 * time.Second}}
	u, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func tufRepoWithTargets(t *testing.T, opts verifytest.TUFOptions) *verifytest.TUFRepository {
	t.Helper()
	r, err := verifytest.NewTUFRepository(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(r.AddTarget("weather/server.json", []byte(`{"name":"weather"}`), []byte(`{"kind":"descriptor"}`)))
	check(r.Delegate("acme", []string{"acme/*"}, 2, 3, true))
	check(r.AddDelegatedTarget("acme", "acme/server", []byte("binary")))
	check(r.Publish())
	return r
}

// The reference client (go-tuf's updater) accepts the repository as
// served and as written to a directory, with and without consistent
// snapshots, with thresholds above one.
func TestTUFRepositoryVerifiesWithGoTUF(t *testing.T) {
	for _, opts := range []verifytest.TUFOptions{{}, {Threshold: 2, Keys: 3}, {NoConsistentSnapshot: true}} {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			r := tufRepoWithTargets(t, opts)
			served, err := r.Serve()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := r.WriteDir(dir); err != nil {
				t.Fatal(err)
			}
			static := httptest.NewServer(http.FileServer(http.Dir(dir)))
			defer static.Close()
			for _, base := range []string{served, static.URL} {
				u := goTUFUpdater(t, base, r.RootJSON(), "")
				if err := u.Refresh(); err != nil {
					t.Fatalf("%s: %v", base, err)
				}
				for name, want := range map[string]string{"weather/server.json": `{"name":"weather"}`, "acme/server": "binary"} {
					tf, err := u.GetTargetInfo(name)
					if err != nil {
						t.Fatalf("%s: %s: %v", base, name, err)
					}
					_, data, err := u.DownloadTarget(tf, "", "")
					if err != nil || string(data) != want {
						t.Fatalf("%s: %s: got %q, %v", base, name, data, err)
					}
				}
			}
		})
	}
}

// Each attack helper produces the failure go-tuf's reference client
// reports for that attack.
func TestTUFRepositoryAttacksRefusedByGoTUF(t *testing.T) {
	for name, tc := range map[string]struct {
		opts   verifytest.TUFOptions
		attack func(*verifytest.TUFRepository) error
		warm   bool
		target string
		want   error
	}{
		"rollback timestamp":    {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.Rollback("timestamp", 1) }, want: &metadata.ErrBadVersionNumber{}},
		"rollback snapshot":     {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.Rollback("snapshot", 1) }, want: &metadata.ErrBadVersionNumber{}},
		"rollback targets":      {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.Rollback("targets", 1) }, want: &metadata.ErrBadVersionNumber{}},
		"mix and match":         {attack: func(r *verifytest.TUFRepository) error { return r.MixAndMatch("targets", 1) }, want: &metadata.ErrLengthOrHashMismatch{}},
		"expired timestamp":     {attack: func(r *verifytest.TUFRepository) error { return r.Expire("timestamp") }, want: &metadata.ErrExpiredMetadata{}},
		"expired delegation":    {attack: func(r *verifytest.TUFRepository) error { return r.Expire("acme") }, target: "acme/server", want: &metadata.ErrExpiredMetadata{}},
		"unknown key":           {attack: func(r *verifytest.TUFRepository) error { return r.SignWithUnknownKey("targets") }, want: &metadata.ErrUnsignedMetadata{}},
		"below threshold":       {attack: func(r *verifytest.TUFRepository) error { return r.DropSignatures("acme", 1) }, target: "acme/server", want: &metadata.ErrUnsignedMetadata{}},
		"root without old keys": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.RotateRoot(2, false) }, want: &metadata.ErrUnsignedMetadata{}},
		"tampered metadata": {attack: func(r *verifytest.TUFRepository) error {
			r.TamperMetadata("timestamp.json", func(b []byte) []byte { return bytes.Replace(b, []byte(`"version":2`), []byte(`"version":5`), 1) })
			return nil
		}, want: &metadata.ErrUnsignedMetadata{}},
	} {
		t.Run(name, func(t *testing.T) {
			r := tufRepoWithTargets(t, tc.opts)
			base, err := r.Serve()
			if err != nil {
				t.Fatal(err)
			}
			root, cache := r.RootJSON(), t.TempDir()
			if tc.warm {
				// Publish again so that there is an older version to
				// roll back to, and let the updater trust the newer one.
				if err := r.Publish(); err != nil {
					t.Fatal(err)
				}
				if err := goTUFUpdater(t, base, root, cache).Refresh(); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.attack(r); err != nil {
				t.Fatal(err)
			}
			u := goTUFUpdater(t, base, root, cache)
			err = u.Refresh()
			if err == nil && tc.target != "" {
				_, err = u.GetTargetInfo(tc.target)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("go-tuf reported %v, want %T", err, tc.want)
			}
		})
	}
}

func TestTUFRepositoryServing(t *testing.T) {
	r := tufRepoWithTargets(t, verifytest.TUFOptions{})
	base, err := r.Serve()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Serve(); again != base {
		t.Fatalf("second Serve returned %q, want %q", again, base)
	}
	get := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/metadata/timestamp.json"); code != http.StatusOK {
		t.Fatalf("timestamp.json: %d", code)
	}
	if code := get("/metadata/9.root.json"); code != http.StatusNotFound {
		t.Fatalf("9.root.json: %d", code)
	}
	get("/metadata/timestamp.json")
	if n := r.Requests("/metadata/timestamp.json"); n != 2 {
		t.Fatalf("Requests = %d, want 2", n)
	}
	if log := r.RequestLog(); len(log) != 3 || log[1] != "/metadata/9.root.json" {
		t.Fatalf("RequestLog = %q", log)
	}
	r.ResetRequests()
	if len(r.RequestLog()) != 0 || r.Requests("/metadata/timestamp.json") != 0 {
		t.Fatal("ResetRequests kept requests")
	}

	// Close cuts slow and endless answers short.
	r.SetDelay("/metadata/timestamp.json", time.Minute)
	r.SetEndless("/metadata/root.json")
	done := make(chan struct{}, 2)
	for _, p := range []string{"/metadata/timestamp.json", "/metadata/root.json"} {
		go func() {
			if resp, err := http.Get(base + p); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- struct{}{}
		}()
	}
	for r.Requests("/metadata/timestamp.json") == 0 || r.Requests("/metadata/root.json") == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	for range 2 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not end slow and endless responses")
		}
	}
	<-closed
	if _, err := r.Serve(); err == nil {
		t.Fatal("Serve after Close succeeded")
	}
}

func TestTUFRepositoryRejectsMisuse(t *testing.T) {
	if _, err := verifytest.NewTUFRepository(verifytest.TUFOptions{Threshold: 3, Keys: 2}); err == nil {
		t.Error("NewTUFRepository accepted 2 keys for threshold 3")
	}
	r := tufRepoWithTargets(t, verifytest.TUFOptions{})
	for name, err := range map[string]error{
		"target outside the delegated paths": r.AddDelegatedTarget("acme", "other/x", nil),
		"undelegated role":                   r.AddDelegatedTarget("nobody", "acme/x", nil),
		"delegating twice":                   r.Delegate("acme", []string{"acme/*"}, 1, 1, false),
		"delegating a top-level role":        r.Delegate("snapshot", []string{"x/*"}, 1, 1, false),
		"threshold above keys":               r.Delegate("b", []string{"b/*"}, 2, 1, false),
		"target name escaping":               r.AddTarget("../x", nil, nil),
		"rollback to a version never seen":   r.Rollback("timestamp", 42),
		"rollback of root":                   r.Rollback("root", 1),
		"keeping more signatures than keys":  r.DropSignatures("targets", 2),
		"rotation below threshold":           r.RotateRoot(0, true),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
