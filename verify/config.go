package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/store"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
)

// Config configures a Verifier. The zero value is not usable (a policy and a
// store directory are required) but no zero field ever weakens a check.
// New copies the Config; later changes by the caller have no effect.
type Config struct {
	// Policy is the host's trust policy, the final authority. Required.
	Policy *policy.Policy
	// PolicyDir resolves relative paths in the policy (pinned roots, trusted
	// roots, file sources). Usually the directory of the policy file.
	PolicyDir string
	// Lock is the lockfile; nil when the host has none. Servers whose tool
	// pins come from the lockfile expose nothing pinned until it exists.
	Lock *policy.Lock
	// StoreDir is the content-addressed store of verified artifacts. Required.
	StoreDir string
	// CacheDir holds TUF metadata and the Sigstore trust root cache.
	// Defaults to StoreDir/cache.
	CacheDir string
	// TrustedMaterial, when set, replaces the Sigstore trust root named in
	// the policy. Tests and air-gapped hosts use it.
	TrustedMaterial root.TrustedMaterial
	// Fetcher performs every remote read of TUF metadata and targets.
	// Nil means a tuf.HTTPFetcher with bounded timeouts and retries.
	Fetcher tuf.Fetcher
	// Offline forbids network access: TUF metadata and the Sigstore trust
	// root come from the cache (while not expired) or the embedded snapshot.
	Offline bool
	// Platform selects the artifact of multi-platform descriptors, as
	// "os/arch". Defaults to the running platform.
	Platform string
	// Environ is the host environment the policy's pass-through variables
	// are taken from. Nil means os.Environ(). The server never receives a
	// variable the policy does not name.
	Environ []string
	// NPMRC is the content of the user's .npmrc, whose registry settings
	// apply to npm servers whose policy names no registry. Nil: none.
	NPMRC []byte
	// Node is the node executable that runs npm servers. Empty means
	// "node" looked up in PATH at launch. Node itself is not verified.
	Node string
	// ContainerRuntime is the docker or podman executable that runs image
	// servers. Empty means docker, else podman, looked up in PATH.
	ContainerRuntime string
	// Progress, when set, is called as the bytes of every download into
	// the store arrive (at most every 256 KiB, and once at the end). It
	// must be safe for concurrent use and must not block.
	Progress func(Progress)
	// Stderr receives the server's standard error. Nil discards it.
	Stderr io.Writer
	// HandshakeTimeout bounds initialize and the first listing in Inspect
	// and in the SDK adapters (verify/mcpgo). Default 20s.
	HandshakeTimeout time.Duration
	// MaxArtifactBytes bounds artifacts read from files. Default 1 GiB.
	MaxArtifactBytes int64
	// Now is the clock for expiry checks. Nil means time.Now.
	Now func() time.Time
	// Logger receives one structured event per decision, finding and blocked
	// call. Nil discards.
	Logger *slog.Logger
}

// Progress reports one download into the store as its bytes arrive.
type Progress struct {
	// ID tells concurrent downloads apart within the process.
	ID uint64
	// Done is the number of bytes received so far; Total the expected
	// size, or 0 when the source did not say. Final marks the last report.
	Done, Total int64
	Final       bool
}

// Verifier verifies and launches the servers of one policy. It is safe for
// concurrent use.
type Verifier struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	repos map[string]*tuf.Client

	verdicts verdictCache

	rootMu   sync.Mutex
	material root.TrustedMaterial
	rootInfo *tuf.TrustRootInfo
	// npmKeyPEMs are the npm registry's attestation keys, loaded with the
	// trust root when a signer rule names npm_registry.
	npmKeyPEMs []string
}

// New validates cfg and returns a Verifier. Contradictions and missing
// requirements are reported here, not at first use.
func New(cfg Config) (*Verifier, error) {
	if cfg.Policy == nil {
		return nil, configErr("policy", "a parsed policy", "nil", "load one with policy.Parse")
	}
	if cfg.StoreDir == "" {
		return nil, configErr("store directory", "a directory path", "empty", "set Config.StoreDir")
	}
	if cfg.Platform == "" {
		cfg.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 20 * time.Second
	}
	if cfg.MaxArtifactBytes <= 0 {
		cfg.MaxArtifactBytes = 1 << 30
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.StoreDir, "cache")
	}
	if cfg.Environ != nil {
		cfg.Environ = append([]string(nil), cfg.Environ...)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := store.Open(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	if fn := cfg.Progress; fn != nil {
		st = st.WithProgress(func(p store.Progress) { fn(Progress(p)) })
	}
	v := &Verifier{cfg: cfg, log: log, store: st, repos: map[string]*tuf.Client{}}
	v.material = cfg.TrustedMaterial
	if v.material != nil {
		v.rootInfo = &tuf.TrustRootInfo{Source: "caller", Description: "trusted material supplied by the host"}
		if policyNamesNPMRegistry(cfg.Policy) {
			// With the host's own material, npm_registry means the
			// registry keys Preflight embeds (Sigstore's TUF, 2026-08-21).
			keysJSON := tuf.EmbeddedNPMKeys()
			keys, err := tuf.NPMAttestationKeys(keysJSON)
			if err != nil {
				return nil, err
			}
			if v.npmKeyPEMs, err = tuf.NPMAttestationKeyPEMs(keysJSON); err != nil {
				return nil, err
			}
			v.material = root.TrustedMaterialCollection{v.material, keys}
			v.rootInfo.Description += "; npm registry keys: the embedded snapshot of Sigstore's TUF repository"
		}
	}
	for name, repo := range cfg.Policy.Trust.Repositories {
		c, err := v.newRepoClient(name, repo)
		if err != nil {
			return nil, err
		}
		v.repos[name] = c
	}
	return v, nil
}

func (v *Verifier) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.cfg.PolicyDir, p)
}

// newRepoClient builds the TUF client of one metadata repository from its
// pinned root.
func (v *Verifier) newRepoClient(name string, repo *policy.Repository) (*tuf.Client, error) {
	subject := "trust.repositories." + name
	if repo.Root == "" {
		return nil, configErr(subject+".root", "the path of the pinned root.json", "none",
			"pin the repository's root.json in the policy; trust is never bootstrapped from the network")
	}
	rootJSON, err := os.ReadFile(v.path(repo.Root))
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: subject + ".root", Err: err, Hint: "the pinned root.json must be readable"}
	}
	if repo.RootDigest != "" {
		sum := sha256.Sum256(rootJSON)
		got := "sha256:" + hex.EncodeToString(sum[:])
		if !strings.EqualFold(got, repo.RootDigest) {
			return nil, &preflight.Error{Class: preflight.ErrTampered, Subject: subject + ".root", Expected: repo.RootDigest, Found: got,
				Hint: "the pinned root file differs from the digest pinned beside it; restore the file or update both together"}
		}
	}
	return tuf.New(tuf.Config{
		MetadataURL: repo.URL,
		TargetsURL:  repo.TargetsURL,
		Root:        rootJSON,
		CacheDir:    filepath.Join(v.cfg.CacheDir, "tuf", safeName(name)),
		Fetcher:     v.cfg.Fetcher,
		Now:         v.cfg.Now,
		Logger:      v.log.With("repository", name),
		Offline:     v.cfg.Offline,
	})
}

// trustedMaterial returns the Sigstore trust root, loading it once per
// Verifier. A failed load is retried by the next caller.
func (v *Verifier) trustedMaterial(ctx context.Context) (root.TrustedMaterial, tuf.TrustRootInfo, error) {
	v.rootMu.Lock()
	defer v.rootMu.Unlock()
	if v.material != nil {
		return v.material, *v.rootInfo, nil
	}
	sig := v.cfg.Policy.Trust.Sigstore
	var cfg tuf.SigstoreConfig
	if sig.TrustedRoot != "" {
		// A pinned trusted_root.json is used as it is: no TUF, no cache.
		cfg.TrustedRootPath = v.path(sig.TrustedRoot)
	} else {
		cfg = tuf.SigstoreConfig{
			CacheDir: filepath.Join(v.cfg.CacheDir, "sigstore"),
			Offline:  v.cfg.Offline,
			Fetcher:  v.cfg.Fetcher,
			Now:      v.cfg.Now,
			Logger:   v.log,
		}
		if sig.TUF != nil {
			rootJSON, err := os.ReadFile(v.path(sig.TUF.Root))
			if err != nil {
				return nil, tuf.TrustRootInfo{}, &preflight.Error{Class: preflight.ErrConfig, Subject: "trust.sigstore.tuf.root", Err: err}
			}
			cfg.TUFURL, cfg.TUFTargetsURL, cfg.TUFRoot = sig.TUF.URL, sig.TUF.TargetsURL, rootJSON
		}
	}
	m, info, err := tuf.LoadSigstoreRoot(ctx, cfg)
	if err != nil {
		return nil, tuf.TrustRootInfo{}, err
	}
	if policyNamesNPMRegistry(v.cfg.Policy) {
		// The registry's keys come from the same TUF repository (or the
		// embedded copy), each valid only within its window.
		keysJSON, keysInfo, err := tuf.LoadNPMRegistryKeys(ctx, cfg)
		if err != nil {
			return nil, tuf.TrustRootInfo{}, err
		}
		keys, err := tuf.NPMAttestationKeys(keysJSON)
		if err != nil {
			return nil, tuf.TrustRootInfo{}, err
		}
		if v.npmKeyPEMs, err = tuf.NPMAttestationKeyPEMs(keysJSON); err != nil {
			return nil, tuf.TrustRootInfo{}, err
		}
		m = root.TrustedMaterialCollection{m, keys}
		info.Description += "; npm registry keys: " + keysInfo.Description
	}
	v.material, v.rootInfo = m, &info
	return m, info, nil
}

// policyNamesNPMRegistry reports whether any signer rule of p names the npm
// registry's keys.
func policyNamesNPMRegistry(p *policy.Policy) bool {
	for _, s := range p.Servers {
		for _, sg := range s.Signers {
			if sg.NPMRegistry {
				return true
			}
		}
	}
	return false
}

// expandSigners returns s with every npm_registry signer rule replaced by
// the registry's current keys, so that verification and evaluation see
// plain key signers. s itself is not changed.
func (v *Verifier) expandSigners(ctx context.Context, s *policy.Server) (*policy.Server, error) {
	if !slices.ContainsFunc(s.Signers, func(sg policy.Signer) bool { return sg.NPMRegistry }) {
		return s, nil
	}
	if _, _, err := v.trustedMaterial(ctx); err != nil {
		return nil, err
	}
	v.rootMu.Lock()
	pems := v.npmKeyPEMs
	v.rootMu.Unlock()
	eff := *s
	eff.Signers = nil
	for _, sg := range s.Signers {
		if !sg.NPMRegistry {
			eff.Signers = append(eff.Signers, sg)
			continue
		}
		for _, pem := range pems {
			eff.Signers = append(eff.Signers, policy.Signer{PublicKey: pem})
		}
	}
	return &eff, nil
}

// loadedRootInfo describes the trust root if one has been loaded.
func (v *Verifier) loadedRootInfo() tuf.TrustRootInfo {
	v.rootMu.Lock()
	defer v.rootMu.Unlock()
	if v.rootInfo == nil {
		return tuf.TrustRootInfo{}
	}
	return *v.rootInfo
}

func configErr(subject, expected, found, hint string) error {
	return &preflight.Error{Class: preflight.ErrConfig, Subject: subject, Expected: expected, Found: found, Hint: hint}
}

// safeName turns a policy name into one path element.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "%%%02X", r)
		}
	}
	if b.Len() == 0 || strings.Trim(b.String(), ".") == "" {
		return "%2E" + b.String()
	}
	return b.String()
}
