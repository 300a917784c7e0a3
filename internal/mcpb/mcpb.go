package mcpb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/archive"
	"github.com/mcp-preflight/preflight/internal/release"
	"github.com/mcp-preflight/preflight/internal/store"
	"github.com/mcp-preflight/preflight/policy"
)

// Source is where a bundle comes from.
type Source struct {
	// URL is the .mcpb file: https, or http for loopback hosts.
	URL string
	// FileSHA256 pins the file (hex), as server.json's fileSha256 does.
	FileSHA256 string
	// BundleURL is the Sigstore bundle; empty means URL + ".sigstore.json"
	// when the fetcher verifies signatures.
	BundleURL string
}

// SourceFromPackage reads one entry of a server.json "packages" list. It
// must have registryType "mcpb"; its identifier is the download URL and
// its fileSha256, when present, the pin. Failures are ErrMalformed.
func SourceFromPackage(pkg []byte) (Source, error) {
	var p struct {
		RegistryType string `json:"registryType"`
		Identifier   string `json:"identifier"`
		FileSHA256   string `json:"fileSha256"`
	}
	bad := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "server.json package", Expected: expected, Found: found, Err: err}
	}
	if len(pkg) > MaxManifestBytes {
		return Source{}, bad(fmt.Sprintf("at most %d bytes", MaxManifestBytes), fmt.Sprintf("%d bytes", len(pkg)), nil)
	}
	if err := json.Unmarshal(pkg, &p); err != nil {
		return Source{}, bad("a package object", "invalid JSON", err)
	}
	if p.RegistryType != "mcpb" {
		return Source{}, bad(`registryType "mcpb"`, strconv.Quote(p.RegistryType), nil)
	}
	if p.Identifier == "" {
		return Source{}, bad("an identifier (the bundle's URL)", "none", nil)
	}
	return Source{URL: p.Identifier, FileSHA256: p.FileSHA256}, nil
}

// Options qualify one Fetch. The zero value is usable.
type Options struct {
	// Platform is "darwin", "linux" or "win32"; empty means the running
	// system's.
	Platform string
	// Vars are placeholder values (see Manifest.LaunchSpec).
	Vars map[string]string
}

// Bundle is a fetched, checked and unpacked bundle. Nothing is returned
// alongside an error.
type Bundle struct {
	File     store.Entry // the .mcpb file in the store
	Dir      string      // the unpacked bundle
	Manifest *Manifest
	Launch   Launch
	Artifact policy.ArtifactFacts // Source "mcpb"
	Bundles  []release.Bundle
	// Signatures are the verified Sigstore bundles' facts, when the
	// fetcher verifies signatures.
	Signatures []policy.SignatureFacts
	// Downloaded is false when the file came from the store.
	Downloaded bool
}

// Fetch downloads the bundle with f (checking its digest and evidence
// before keeping it), unpacks it under the store, parses its manifest,
// checks that the entry point is in it, and resolves the launch spec.
// Failures are those of release.Fetcher.Download and Unpack, ErrMalformed
// (no or an invalid manifest, a missing entry point, a binary command
// outside the bundle) and those of Manifest.LaunchSpec.
func Fetch(ctx context.Context, f *release.Fetcher, src Source, opts Options) (*Bundle, error) {
	if f == nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "bundle " + src.URL, Expected: "a release fetcher", Found: "none"}
	}
	platform := opts.Platform
	if platform == "" {
		platform = Platform(runtime.GOOS)
	}
	res, err := f.Download(ctx, release.Asset{URL: src.URL, SHA256: src.FileSHA256, BundleURL: src.BundleURL})
	if err != nil {
		return nil, err
	}
	dir, err := f.Unpack(ctx, res.File, archive.FormatZip)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrStore, Subject: dir, Err: err}
	}
	defer root.Close()
	m, err := readManifest(root)
	if err != nil {
		return nil, err
	}
	subject := "bundle " + m.Name
	entry := filepath.FromSlash(m.Server.EntryPoint)
	if info, err := root.Lstat(entry); err != nil || !info.Mode().IsRegular() {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "the entry point " + m.Server.EntryPoint + " in the bundle", Found: "none",
			Hint: "the bundle is incomplete; ask the publisher to fix it"}
	}
	launch, err := m.LaunchSpec(dir, platform, opts.Vars)
	if err != nil {
		return nil, err
	}
	if m.Server.Type == "binary" {
		rel, err := filepath.Rel(dir, filepath.Clean(launch.Command))
		if err != nil || !filepath.IsAbs(launch.Command) || !filepath.IsLocal(rel) {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a binary server's command inside the bundle",
				Found: strconv.Quote(launch.Command), Hint: "only the verified bundle's own files may run"}
		}
		info, err := root.Lstat(rel)
		if err != nil || !info.Mode().IsRegular() {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "the command " + rel + " as a file in the bundle", Found: "none"}
		}
		// Zips made on systems without Unix modes carry no executable bit.
		if err := root.Chmod(rel, 0o500); err != nil {
			return nil, &preflight.Error{Class: preflight.ErrStore, Subject: launch.Command, Err: err}
		}
	}
	art := res.Artifact
	art.Source = "mcpb"
	art.Version = m.Version
	return &Bundle{File: res.File, Dir: dir, Manifest: m, Launch: launch, Artifact: art, Bundles: res.Bundles, Signatures: res.Signatures, Downloaded: res.Downloaded}, nil
}

func readManifest(root *os.Root) (*Manifest, error) {
	fh, err := root.Open("manifest.json")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "bundle", Expected: "a manifest.json at the top of the bundle", Found: "none"}
		}
		return nil, &preflight.Error{Class: preflight.ErrStore, Subject: "bundle manifest", Err: err}
	}
	defer fh.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(fh, MaxManifestBytes+1)); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrStore, Subject: "bundle manifest", Err: err}
	}
	return ParseManifest(buf.Bytes())
}

// Platform maps a GOOS to the platform name MCPB uses.
func Platform(goos string) string {
	if goos == "windows" {
		return "win32"
	}
	return strings.ToLower(goos)
}
