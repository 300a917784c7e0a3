package tuf

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgtuf "github.com/sigstore/sigstore-go/pkg/tuf"

	"github.com/mcp-preflight/preflight"
)

// TrustRootSource says where a Sigstore trust root came from.
type TrustRootSource string

// The sources of a Sigstore trust root, from most to least current.
const (
	// SourceTUF: trusted_root.json fetched and verified through a TUF
	// repository just now.
	SourceTUF TrustRootSource = "tuf"
	// SourceTUFCache: trusted_root.json from a TUF cache filled earlier,
	// verified offline from the pinned TUF root and still unexpired.
	SourceTUFCache TrustRootSource = "tuf-cache"
	// SourcePinnedFile: a trusted_root.json the caller pinned (air-gapped
	// or private Sigstore instances).
	SourcePinnedFile TrustRootSource = "pinned-file"
	// SourceEmbeddedSnapshot: the public-good trusted_root.json compiled
	// into Preflight, used offline when nothing is cached. It dates from
	// 2026-08-21: keys rotated since are missing from it.
	SourceEmbeddedSnapshot TrustRootSource = "embedded-snapshot"
)

// PublicGoodTUFURL is the TUF repository of Sigstore's public-good
// instance. Its metadata lies at the base URL, its targets under targets/.
const PublicGoodTUFURL = "https://tuf-repo-cdn.sigstore.dev"

// sigSnapshotDate is the date of the embedded public-good snapshot:
// Sigstore's root-signing repository as it stood on 2026-08-21 (TUF root 15,
// snapshot 165, targets 14).
var sigSnapshotDate = time.Date(2026, 8, 21, 0, 0, 0, 0, time.UTC)

const (
	embeddedTrustedRoot = "embedded/public-good-trusted_root.json"
	embeddedNPMKeys     = "embedded/registry.npmjs.org-keys.json"
	// sigMaxTrustedRoot bounds a pinned trusted_root.json; the public-good
	// one is about 7 KB.
	sigMaxTrustedRoot = 4 << 20
)

//go:embed embedded/public-good-trusted_root.json embedded/registry.npmjs.org-keys.json
var sigEmbedded embed.FS

// EmbeddedTrustedRoot returns a copy of the embedded public-good
// trusted_root.json, a snapshot of 2026-08-21.
func EmbeddedTrustedRoot() []byte { return sigReadEmbedded(embeddedTrustedRoot) }

// EmbeddedNPMKeys returns a copy of the embedded keys.json of the npm
// registry (TUF target registry.npmjs.org/keys.json of Sigstore's
// repository, same date): the keys npm signs publish attestations with,
// with their validity windows.
func EmbeddedNPMKeys() []byte { return sigReadEmbedded(embeddedNPMKeys) }

func sigReadEmbedded(name string) []byte {
	b, err := sigEmbedded.ReadFile(name)
	if err != nil {
		panic("tuf: embedded file missing from the build: " + name) // a broken build, not a runtime condition
	}
	return b
}

// TrustRootInfo describes the trust root LoadSigstoreRoot returned, for
// reports: where it came from, how current it is, and its digest.
type TrustRootInfo struct {
	Source TrustRootSource `json:"source"`
	// Date is when the trust root was last known current: the embedded
	// snapshot's date, or the time the TUF metadata was verified. Zero for
	// a pinned file, whose age Preflight cannot know.
	Date time.Time `json:"date,omitzero"`
	// Digest is "sha256:" and the hex SHA-256 of trusted_root.json.
	Digest      string `json:"digest"`
	Description string `json:"description"`
}

// SigstoreConfig says where the Sigstore trust root comes from. The zero
// value means Sigstore's public-good instance through its TUF repository,
// starting from the TUF root embedded in sigstore-go, with no cache.
//
// Exactly one source is used:
//   - TrustedRootPath or TrustedRootJSON: a pinned trusted_root.json, and
//     nothing else may be set but Logger;
//   - otherwise the TUF repository at TUFURL (default PublicGoodTUFURL),
//     pinned by TUFRoot (required for any other URL), cached in CacheDir.
//
// Offline makes no request: a warm cache is verified from the pinned TUF
// root and used until its metadata expires (then the load fails and says
// since when); with nothing cached, the public-good default falls back to
// the embedded snapshot, reported as SourceEmbeddedSnapshot. Online, a
// network failure is an error: there is no silent downgrade to an older
// trust root, which is what an attacker blocking the network would want.
type SigstoreConfig struct {
	TrustedRootPath string // a pinned trusted_root.json file
	TrustedRootJSON []byte // a pinned trusted_root.json document

	TUFURL        string // base URL of the TUF metadata; default PublicGoodTUFURL
	TUFTargetsURL string // base URL of the targets; default TUFURL + "/targets"
	TUFRoot       []byte // pinned TUF root.json; default sigstore-go's embedded public-good root
	// CacheDir keeps verified TUF metadata and trusted_root.json between
	// runs. Empty means a temporary directory removed after the load
	// (online), or no cache at all (offline).
	CacheDir string
	Offline  bool
	Fetcher  Fetcher          // nil: a zero HTTPFetcher
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger     // nil: discard
}

// LoadSigstoreRoot returns the Sigstore trusted material cfg designates and
// what it is. Failures are *preflight.Error: ErrConfig for contradictory
// settings, ErrMalformed for a trusted_root.json that does not parse,
// ErrMetadata for TUF metadata that is rejected (including an expired or
// tampered cache), ErrUnavailable or ErrTimeout for the network.
//
// Parsing is memoized per process by the SHA-256 of trusted_root.json, so
// loading the same root again costs a TUF refresh at most; callers that
// verify many artifacts should still keep the returned material. The
// material is safe for concurrent use.
func LoadSigstoreRoot(ctx context.Context, cfg SigstoreConfig) (root.TrustedMaterial, TrustRootInfo, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pinned := cfg.TrustedRootPath != "" || len(cfg.TrustedRootJSON) > 0
	if pinned {
		if cfg.TrustedRootPath != "" && len(cfg.TrustedRootJSON) > 0 {
			return nil, TrustRootInfo{}, sigConfigErr("TrustedRootPath and TrustedRootJSON", "one of them", "both", "")
		}
		if cfg.TUFURL != "" || cfg.TUFTargetsURL != "" || len(cfg.TUFRoot) > 0 || cfg.CacheDir != "" || cfg.Offline || cfg.Fetcher != nil {
			return nil, TrustRootInfo{}, sigConfigErr("SigstoreConfig", "either a pinned trusted_root.json or TUF settings", "both",
				"a pinned trusted root is used as is; drop the TUF settings")
		}
		return sigLoadPinned(cfg, log)
	}

	data, target, url, cacheDir, err := sigFetchTarget(ctx, cfg, log, "trusted_root.json")
	if errors.Is(err, errSigUseEmbedded) {
		log.Debug("Sigstore trust root: offline with nothing cached, using the embedded snapshot")
		return sigEmbeddedSnapshot()
	}
	if err != nil {
		return nil, TrustRootInfo{}, err
	}
	tm, digest, err := sigParse(data, "trusted_root.json from "+url)
	if err != nil {
		// Signed by the repository yet unparseable: the repository is broken.
		return nil, TrustRootInfo{}, err
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	info := TrustRootInfo{Source: SourceTUF, Date: now().UTC(), Digest: digest,
		Description: fmt.Sprintf("trusted_root.json from the TUF repository %s (targets version %d, expires %s)",
			url, target.TargetsVersion, target.Expires.UTC().Format(time.RFC3339))}
	if cfg.Offline {
		info.Source = SourceTUFCache
		info.Description = fmt.Sprintf("trusted_root.json from the TUF cache %s of %s, verified offline (targets version %d, expires %s)",
			cacheDir, url, target.TargetsVersion, target.Expires.UTC().Format(time.RFC3339))
	}
	log.Debug("Sigstore trust root loaded", "source", info.Source, "digest", info.Digest)
	return tm, info, nil
}

func sigLoadPinned(cfg SigstoreConfig, log *slog.Logger) (root.TrustedMaterial, TrustRootInfo, error) {
	data, name := cfg.TrustedRootJSON, "the pinned trusted_root.json"
	if cfg.TrustedRootPath != "" {
		name = cfg.TrustedRootPath
		f, err := os.Open(cfg.TrustedRootPath)
		if err != nil {
			return nil, TrustRootInfo{}, &preflight.Error{Class: preflight.ErrConfig, Subject: name, Expected: "a readable trusted_root.json", Err: err}
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, sigMaxTrustedRoot+1))
		if err != nil {
			return nil, TrustRootInfo{}, &preflight.Error{Class: preflight.ErrConfig, Subject: name, Expected: "a readable trusted_root.json", Err: err}
		}
	}
	if len(data) > sigMaxTrustedRoot {
		return nil, TrustRootInfo{}, &preflight.Error{Class: preflight.ErrMalformed, Subject: name,
			Expected: fmt.Sprintf("at most %d bytes", sigMaxTrustedRoot), Found: "more"}
	}
	tm, digest, err := sigParse(data, name)
	if err != nil {
		return nil, TrustRootInfo{}, err
	}
	log.Debug("Sigstore trust root loaded", "source", SourcePinnedFile, "digest", digest)
	return tm, TrustRootInfo{Source: SourcePinnedFile, Digest: digest, Description: "pinned trusted_root.json " + name}, nil
}

func sigEmbeddedSnapshot() (root.TrustedMaterial, TrustRootInfo, error) {
	tm, digest, err := sigParse(EmbeddedTrustedRoot(), "embedded trusted_root.json")
	if err != nil {
		return nil, TrustRootInfo{}, err
	}
	return tm, TrustRootInfo{Source: SourceEmbeddedSnapshot, Date: sigSnapshotDate, Digest: digest,
		Description: "Sigstore public-good trusted_root.json embedded in Preflight (snapshot of " +
			sigSnapshotDate.Format("2006-01-02") + "); go online once, with a CacheDir, to use the current one"}, nil
}

// The parse memo: trusted roots by the SHA-256 of their JSON. A process
// sees a handful of trust roots; the bound keeps a caller cycling through
// many from growing it without limit.
var (
	sigMemoMu sync.Mutex
	sigMemo   = map[string]*root.TrustedRoot{}
)

const sigMemoMax = 16

// sigParse parses trusted_root.json once per process per content.
func sigParse(data []byte, name string) (root.TrustedMaterial, string, error) {
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	sigMemoMu.Lock()
	tr, ok := sigMemo[digest]
	sigMemoMu.Unlock()
	if ok {
		return tr, digest, nil
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, "", &preflight.Error{Class: preflight.ErrMalformed, Subject: name, Expected: "a Sigstore trusted_root.json", Err: err,
			Hint: "pass the trusted_root.json of the Sigstore instance that signed the bundles"}
	}
	sigMemoMu.Lock()
	if len(sigMemo) >= sigMemoMax {
		clear(sigMemo)
	}
	sigMemo[digest] = tr
	sigMemoMu.Unlock()
	return tr, digest, nil
}

func sigConfigErr(field, expected, found, hint string) error {
	return &preflight.Error{Class: preflight.ErrConfig, Subject: "tuf." + field, Expected: expected, Found: found, Hint: hint}
}

// errSigUseEmbedded tells a loader to fall back to the embedded public-good
// snapshot: offline, with nothing cached yet.
var errSigUseEmbedded = errors.New("use the embedded snapshot")

// sigFetchTarget reads one target of the Sigstore TUF repository cfg names
// (public-good by default), through the verified cache when offline.
func sigFetchTarget(ctx context.Context, cfg SigstoreConfig, log *slog.Logger, name string) (data []byte, target *Target, url, cacheDir string, err error) {
	url = strings.TrimSuffix(cfg.TUFURL, "/")
	publicGood := url == "" || url == PublicGoodTUFURL
	if url == "" {
		url = PublicGoodTUFURL
	}
	tufRoot := cfg.TUFRoot
	if len(tufRoot) == 0 {
		if !publicGood {
			return nil, nil, "", "", sigConfigErr("TUFRoot", "the pinned root.json of "+url, "nothing",
				"a private Sigstore TUF repository must be pinned by its root.json")
		}
		tufRoot = sgtuf.DefaultRoot()
	}
	targetsURL := cfg.TUFTargetsURL
	if targetsURL == "" {
		targetsURL = url + "/targets"
	}
	if cfg.Offline && cfg.CacheDir == "" {
		if !publicGood {
			return nil, nil, "", "", sigConfigErr("CacheDir", "a TUF cache for offline use of "+url, "nothing", "")
		}
		return nil, nil, "", "", errSigUseEmbedded
	}
	cacheDir = cfg.CacheDir
	if cacheDir == "" {
		dir, err := os.MkdirTemp("", "preflight-sigstore-tuf-")
		if err != nil {
			return nil, nil, "", "", &preflight.Error{Class: preflight.ErrStore, Subject: "Sigstore TUF cache", Err: err}
		}
		defer os.RemoveAll(dir)
		cacheDir = dir
	}
	client, err := New(Config{
		MetadataURL: url, TargetsURL: targetsURL, Root: tufRoot, CacheDir: cacheDir,
		Fetcher: cfg.Fetcher, Now: cfg.Now, Logger: log, Offline: cfg.Offline,
	})
	if err != nil {
		return nil, nil, "", "", err
	}
	target, err = client.Target(ctx, name)
	if err == nil {
		data, err = client.ReadTarget(ctx, target)
	}
	if err != nil {
		if cfg.Offline && publicGood && errors.Is(err, preflight.ErrUnavailable) {
			// Nothing cached yet (a stale or tampered cache is ErrMetadata
			// and fails closed instead).
			log.Debug("Sigstore TUF: nothing cached", "cache", cacheDir, "target", name)
			return nil, nil, "", "", errSigUseEmbedded
		}
		return nil, nil, "", "", err
	}
	return data, target, url, cacheDir, nil
}

// LoadNPMRegistryKeys returns the npm registry's keys.json (the target
// registry.npmjs.org/keys.json of Sigstore's TUF repository, through the
// same repository, cache and offline rules as LoadSigstoreRoot), or the
// embedded copy when cfg pins a trusted_root.json or is offline with
// nothing cached; the info says which.
func LoadNPMRegistryKeys(ctx context.Context, cfg SigstoreConfig) ([]byte, TrustRootInfo, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	embedded := func() ([]byte, TrustRootInfo, error) {
		data := EmbeddedNPMKeys()
		sum := sha256.Sum256(data)
		return data, TrustRootInfo{Source: SourceEmbeddedSnapshot, Date: sigSnapshotDate, Digest: "sha256:" + hex.EncodeToString(sum[:]),
			Description: "embedded snapshot of registry.npmjs.org/keys.json from Sigstore's TUF repository"}, nil
	}
	if cfg.TrustedRootPath != "" || len(cfg.TrustedRootJSON) > 0 {
		return embedded()
	}
	data, target, url, _, err := sigFetchTarget(ctx, cfg, log, "registry.npmjs.org/keys.json")
	if errors.Is(err, errSigUseEmbedded) {
		return embedded()
	}
	if err != nil {
		return nil, TrustRootInfo{}, err
	}
	sum := sha256.Sum256(data)
	return data, TrustRootInfo{Source: SourceTUF, Date: time.Now().UTC(), Digest: "sha256:" + hex.EncodeToString(sum[:]),
		Description: fmt.Sprintf("registry.npmjs.org/keys.json from the TUF repository %s (targets version %d)", url, target.TargetsVersion)}, nil
}
