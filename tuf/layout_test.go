package tuf_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// metadataFiles lists the regular files directly in dir.
func metadataFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestLayoutUnversioned(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	must(t, f.repo.Delegate("acme", []string{"acme/*"}, 1, 1, true))
	must(t, f.repo.AddDelegatedTarget("acme", "acme/server.json", []byte(`{}`)))
	must(t, f.repo.Publish())
	ctx := context.Background()
	cfg := f.config(t)
	cfg.Layout = tuf.LayoutUnversioned
	c := newClient(t, cfg)
	if _, err := c.Target(ctx, "acme/server.json"); err != nil {
		t.Fatal(err)
	}
	want := []string{"acme.json", "root.json", "snapshot.json", "targets.json", "timestamp.json"}
	if got := metadataFiles(t, cfg.CacheDir); !slices.Equal(got, want) {
		t.Fatalf("metadata directory holds %q, want %q", got, want)
	}
	root, err := os.ReadFile(filepath.Join(cfg.CacheDir, "root.json"))
	must(t, err)
	if !bytes.Equal(root, f.root) {
		t.Fatal("root.json is not the pinned root")
	}

	// A rotation replaces root.json with the verified new root; no
	// versioned file appears.
	must(t, f.repo.RotateRoot(1, true))
	must(t, c.Refresh(ctx))
	root, err = os.ReadFile(filepath.Join(cfg.CacheDir, "root.json"))
	must(t, err)
	if !bytes.Equal(root, f.repo.RootJSON()) {
		t.Fatal("root.json does not hold the rotated root")
	}
	if got := metadataFiles(t, cfg.CacheDir); !slices.Equal(got, want) {
		t.Fatalf("after the rotation the metadata directory holds %q, want %q", got, want)
	}

	// Resuming from root.json costs the root probe and the timestamp.
	f.repo.ResetRequests()
	resumed := cfg
	resumed.Root = root
	c2 := newClient(t, resumed)
	if _, err := c2.Target(ctx, "acme/server.json"); err != nil {
		t.Fatal(err)
	}
	if got, want := f.repo.RequestLog(), []string{"/metadata/3.root.json", "/metadata/timestamp.json"}; !slices.Equal(got, want) {
		t.Fatalf("resumed client made requests %q, want %q", got, want)
	}

	// A refused rotation leaves root.json as it was.
	must(t, f.repo.RotateRoot(1, false))
	assertClass(t, c2.Refresh(ctx), preflight.ErrMetadata)
	after, err := os.ReadFile(filepath.Join(cfg.CacheDir, "root.json"))
	must(t, err)
	if !bytes.Equal(after, root) {
		t.Fatal("a refused root replaced root.json")
	}
}

func TestLayoutValidation(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	cfg := f.config(t)
	cfg.Layout = tuf.Layout(7)
	_, err := tuf.New(cfg)
	assertClass(t, err, preflight.ErrConfig)
}

func TestRoleAndTargetFileNames(t *testing.T) {
	for role, want := range map[string]string{
		"acme":             "acme.json",
		"acme-corp_2.x":    "acme-corp_2.x.json",
		"?":                "%3F.json",
		"#":                "%23.json",
		"/delegatedrole":   "%2Fdelegatedrole.json",
		"../delegatedrole": "%2E.%2Fdelegatedrole.json",
		".":                "%2E.json",
		"..":               "%2E..json",
		`a\b`:              "a%5Cb.json",
		"a:b~c%":           "a%3Ab%7Ec%25.json",
		"é":                "%C3%A9.json",
		"a\x00b":           "a%00b.json",
	} {
		got := tuf.RoleFileName(role)
		if got != want {
			t.Errorf("RoleFileName(%q) = %q, want %q", role, got, want)
		}
		if filepath.Base(got) != got || got == "." || got == ".." {
			t.Errorf("RoleFileName(%q) = %q is not one path element", role, got)
		}
		// The encoding is percent-encoding, so it decodes back: distinct
		// roles never share a file.
		if back, err := url.PathUnescape(tuf.TargetFileName(role)); err != nil || back != role {
			t.Errorf("TargetFileName(%q) decodes to %q, %v", role, back, err)
		}
	}
	for _, name := range []string{".", "..", "../../etc/passwd", "a/../../b", "/abs"} {
		got := tuf.TargetFileName(name)
		if filepath.Base(got) != got || got == "." || got == ".." || got[0] == '.' {
			t.Errorf("TargetFileName(%q) = %q is not a plain file name", name, got)
		}
	}
}

func FuzzTargetFileName(f *testing.F) {
	for _, s := range []string{"a/b", "..", ".x", "%2F", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := tuf.TargetFileName(name)
		if name == "" {
			return
		}
		if filepath.Base(got) != got || got == "." || got == ".." || got[0] == '.' {
			t.Fatalf("TargetFileName(%q) = %q is not a plain file name", name, got)
		}
		if back, err := url.PathUnescape(got); err != nil || back != name {
			t.Fatalf("TargetFileName(%q) = %q decodes to %q, %v", name, got, back, err)
		}
	})
}
