package tuf_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

const sigEmbeddedDigest = "sha256:6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"

func sigDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func sigWantClass(t *testing.T, err error, class *preflight.Class) {
	t.Helper()
	var pe *preflight.Error
	if !errors.As(err, &pe) || !errors.Is(err, class) {
		t.Fatalf("error %v, want a *preflight.Error of class %v", err, class)
	}
}

func TestLoadSigstoreRootEmbeddedSnapshot(t *testing.T) {
	for name, cfg := range map[string]tuf.SigstoreConfig{
		"offline, no cache":           {Offline: true},
		"offline, empty cache":        {Offline: true, CacheDir: t.TempDir()},
		"offline, public-good by URL": {Offline: true, TUFURL: tuf.PublicGoodTUFURL + "/"},
	} {
		t.Run(name, func(t *testing.T) {
			tm, info, err := tuf.LoadSigstoreRoot(context.Background(), cfg)
			if err != nil {
				t.Fatalf("LoadSigstoreRoot: %v", err)
			}
			if info.Source != tuf.SourceEmbeddedSnapshot || info.Digest != sigEmbeddedDigest ||
				!info.Date.Equal(time.Date(2026, 8, 21, 0, 0, 0, 0, time.UTC)) || info.Description == "" {
				t.Errorf("info = %+v", info)
			}
			if len(tm.FulcioCertificateAuthorities()) == 0 || len(tm.RekorLogs()) != 2 || len(tm.TimestampingAuthorities()) == 0 {
				t.Errorf("embedded material lacks Fulcio, the two Rekor logs or the TSA")
			}
		})
	}
	if got := sigDigest(tuf.EmbeddedNPMKeys()); got != "sha256:160677eb6e1c7083c89b166b20f8fe4e837fb71181506aff1991b80b89184f7d" {
		t.Errorf("embedded npm keys digest %s", got)
	}
}

func TestLoadSigstoreRootPinned(t *testing.T) {
	s, err := verifytest.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	tm, info, err := tuf.LoadSigstoreRoot(context.Background(), tuf.SigstoreConfig{TrustedRootPath: path})
	if err != nil {
		t.Fatalf("LoadSigstoreRoot: %v", err)
	}
	if info.Source != tuf.SourcePinnedFile || info.Digest != sigDigest(raw) || !info.Date.IsZero() {
		t.Errorf("info = %+v", info)
	}
	tm2, _, err := tuf.LoadSigstoreRoot(context.Background(), tuf.SigstoreConfig{TrustedRootJSON: raw})
	if err != nil {
		t.Fatal(err)
	}
	if tm != tm2 {
		t.Errorf("the same trusted_root.json was parsed twice")
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"mediaType":"nope"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		cfg   tuf.SigstoreConfig
		class *preflight.Class
	}{
		"missing file":                        {tuf.SigstoreConfig{TrustedRootPath: filepath.Join(t.TempDir(), "none.json")}, preflight.ErrConfig},
		"not a trusted root":                  {tuf.SigstoreConfig{TrustedRootPath: bad}, preflight.ErrMalformed},
		"path and JSON":                       {tuf.SigstoreConfig{TrustedRootPath: path, TrustedRootJSON: raw}, preflight.ErrConfig},
		"pinned and TUF":                      {tuf.SigstoreConfig{TrustedRootJSON: raw, TUFURL: "https://tuf.example"}, preflight.ErrConfig},
		"pinned and offline":                  {tuf.SigstoreConfig{TrustedRootJSON: raw, Offline: true}, preflight.ErrConfig},
		"private TUF without its root":        {tuf.SigstoreConfig{TUFURL: "https://tuf.example", CacheDir: t.TempDir()}, preflight.ErrConfig},
		"private TUF offline without a cache": {tuf.SigstoreConfig{TUFURL: "https://tuf.example", TUFRoot: []byte("{}"), Offline: true}, preflight.ErrConfig},
	} {
		t.Run(name, func(t *testing.T) {
			tm, _, err := tuf.LoadSigstoreRoot(context.Background(), tt.cfg)
			if tm != nil {
				t.Error("material returned alongside an error")
			}
			sigWantClass(t, err, tt.class)
		})
	}
}

// sigPrivateTUF is a private Sigstore deployment: a TUF repository whose
// target trusted_root.json is the virtual Sigstore's.
func sigPrivateTUF(t *testing.T) (repo *verifytest.TUFRepository, base string, trustedRoot []byte) {
	t.Helper()
	s, err := verifytest.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	trustedRoot, err = s.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	repo, err = verifytest.NewTUFRepository(verifytest.TUFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.AddTarget("trusted_root.json", trustedRoot, nil); err != nil {
		t.Fatal(err)
	}
	if err := repo.Publish(); err != nil {
		t.Fatal(err)
	}
	base, err = repo.Serve()
	if err != nil {
		t.Fatal(err)
	}
	return repo, base, trustedRoot
}

func sigPrivateConfig(repo *verifytest.TUFRepository, base, cache string, offline bool) tuf.SigstoreConfig {
	return tuf.SigstoreConfig{TUFURL: base + "/metadata", TUFTargetsURL: base + "/targets", TUFRoot: repo.RootJSON(),
		CacheDir: cache, Offline: offline}
}

func TestLoadSigstoreRootPrivateTUF(t *testing.T) {
	repo, base, trustedRoot := sigPrivateTUF(t)
	cache := t.TempDir()

	tm, info, err := tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(repo, base, cache, false))
	if err != nil {
		t.Fatalf("online: %v", err)
	}
	if info.Source != tuf.SourceTUF || info.Digest != sigDigest(trustedRoot) || info.Date.IsZero() || tm == nil {
		t.Errorf("online info = %+v", info)
	}

	_, info, err = tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(repo, base, cache, true))
	if err != nil {
		t.Fatalf("offline from the warm cache: %v", err)
	}
	if info.Source != tuf.SourceTUFCache || info.Digest != sigDigest(trustedRoot) {
		t.Errorf("offline info = %+v", info)
	}

	// Offline with a cold cache: a private repository has no embedded
	// snapshot to fall back on.
	_, _, err = tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(repo, base, t.TempDir(), true))
	sigWantClass(t, err, preflight.ErrUnavailable)
}

func TestLoadSigstoreRootOnlineFailureIsNotADowngrade(t *testing.T) {
	repo, base, _ := sigPrivateTUF(t)
	cfg := sigPrivateConfig(repo, base, t.TempDir(), false)
	cfg.TUFURL = "http://127.0.0.1:1/metadata" // nothing listens on port 1
	cfg.TUFTargetsURL = "http://127.0.0.1:1/targets"
	cfg.Fetcher = &tuf.HTTPFetcher{Retries: -1, Timeout: 2 * time.Second}
	tm, _, err := tuf.LoadSigstoreRoot(context.Background(), cfg)
	if tm != nil {
		t.Fatal("material returned alongside an error")
	}
	sigWantClass(t, err, preflight.ErrUnavailable)
}

// TestLoadSigstoreRootTamperedCache: whatever is written into the cache,
// trust still starts from the pinned TUF root.
func TestLoadSigstoreRootTamperedCache(t *testing.T) {
	t.Run("edited metadata", func(t *testing.T) {
		repo, base, _ := sigPrivateTUF(t)
		cache := t.TempDir()
		if _, _, err := tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(repo, base, cache, false)); err != nil {
			t.Fatal(err)
		}
		files, err := filepath.Glob(filepath.Join(cache, "metadata", "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no cached metadata (%v)", err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 1
			if err := os.WriteFile(f, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		tm, info, err := tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(repo, base, cache, true))
		if err == nil {
			t.Fatalf("tampered cache trusted: %+v", info)
		}
		sigWantClass(t, err, preflight.ErrMetadata)
		if tm != nil {
			t.Error("material returned alongside an error")
		}
	})
	t.Run("another repository's metadata", func(t *testing.T) {
		repo, base, _ := sigPrivateTUF(t)
		evil, evilBase, evilRoot := sigPrivateTUF(t)
		cache := t.TempDir()
		// Fill the cache from the attacker's repository, then load offline
		// with the genuine pinned root.
		if _, _, err := tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(evil, evilBase, cache, false)); err != nil {
			t.Fatal(err)
		}
		_, info, err := tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(repo, base, cache, true))
		if err == nil {
			t.Fatalf("cache filled by another repository trusted: %+v", info)
		}
		sigWantClass(t, err, preflight.ErrMetadata)
		if info.Digest == sigDigest(evilRoot) {
			t.Fatal("attacker's trusted root returned")
		}
	})
	t.Run("edited trusted_root.json target", func(t *testing.T) {
		repo, base, _ := sigPrivateTUF(t)
		cache := t.TempDir()
		if _, _, err := tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(repo, base, cache, false)); err != nil {
			t.Fatal(err)
		}
		targets, err := filepath.Glob(filepath.Join(cache, "targets", "*"))
		if err != nil || len(targets) != 1 {
			t.Fatalf("cached targets %v (%v)", targets, err)
		}
		if err := os.WriteFile(targets[0], []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, info, err := tuf.LoadSigstoreRoot(context.Background(), sigPrivateConfig(repo, base, cache, true))
		if err == nil {
			t.Fatalf("edited cached trusted_root.json used: %+v", info)
		}
	})
}

func TestNPMAttestationKeys(t *testing.T) {
	tm, err := tuf.NPMAttestationKeys(tuf.EmbeddedNPMKeys())
	if err != nil {
		t.Fatal(err)
	}
	old, err := tm.PublicKeyVerifier("SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA")
	if err != nil {
		t.Fatal(err)
	}
	if !old.ValidAtTime(time.Date(2023, 4, 18, 0, 0, 0, 0, time.UTC)) || old.ValidAtTime(time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("the first npm key's window is not 2022-12-01 to 2025-01-29")
	}
	if _, err := tm.PublicKeyVerifier("SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U"); err != nil {
		t.Errorf("successor key missing: %v", err)
	}
	for name, in := range map[string]string{"not JSON": "nope", "no keys": `{"keys":[]}`,
		"other key type": `{"keys":[{"keyId":"x","keyUsage":"npm:attestations","publicKey":{"rawBytes":"AA==","keyDetails":"PKIX_RSA"}}]}`} {
		if _, err := tuf.NPMAttestationKeys([]byte(in)); !errors.Is(err, preflight.ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed", name, err)
		}
	}
}

// TestLoadNPMRegistryKeys: keys.json comes from the Sigstore TUF repository
// when it has the target, and from the embedded copy with a pinned trusted
// root or offline with nothing cached.
func TestLoadNPMRegistryKeys(t *testing.T) {
	repo, base, _ := sigPrivateTUF(t)
	keys := tuf.EmbeddedNPMKeys()
	if err := repo.AddTarget("registry.npmjs.org/keys.json", keys, nil); err != nil {
		t.Fatal(err)
	}
	if err := repo.Publish(); err != nil {
		t.Fatal(err)
	}
	data, info, err := tuf.LoadNPMRegistryKeys(context.Background(), sigPrivateConfig(repo, base, t.TempDir(), false))
	if err != nil {
		t.Fatal(err)
	}
	if info.Source != tuf.SourceTUF || sigDigest(data) != sigDigest(keys) {
		t.Fatalf("from TUF: info %+v", info)
	}
	pems, err := tuf.NPMAttestationKeyPEMs(data)
	if err != nil || len(pems) == 0 {
		t.Fatalf("keys %d, %v", len(pems), err)
	}

	repo.TamperTarget("registry.npmjs.org/keys.json", []byte(`{"keys":[]}`))
	_, _, err = tuf.LoadNPMRegistryKeys(context.Background(), sigPrivateConfig(repo, base, t.TempDir(), false))
	sigWantClass(t, err, preflight.ErrTampered)

	_, info, err = tuf.LoadNPMRegistryKeys(context.Background(), tuf.SigstoreConfig{TrustedRootJSON: []byte("{}")})
	if err != nil || info.Source != tuf.SourceEmbeddedSnapshot {
		t.Fatalf("pinned trusted root: %+v, %v", info, err)
	}
	_, info, err = tuf.LoadNPMRegistryKeys(context.Background(), tuf.SigstoreConfig{Offline: true})
	if err != nil || info.Source != tuf.SourceEmbeddedSnapshot {
		t.Fatalf("offline without a cache: %+v, %v", info, err)
	}
}
