package npm

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/store"
)

// markerName is the file Install writes last into a finished install. It
// records the install's digest and the chosen bin.
const markerName = ".preflight-install.json"

type marker struct {
	Digest string `json:"digest"`
	Bin    string `json:"bin"`
}

// Install lays out root and its closure in dir and returns the absolute
// path of the script to run with node.
//
// Every tarball is fetched with FetchTarball against its pinned integrity
// before anything is unpacked, and hashed again (SHA-512) while it is
// unpacked, so only verified bytes are installed. No npm and no lifecycle
// script ever runs: tarballs are unpacked by walkTarball's rules (see
// there). The root package fills dir itself and each locked package its
// Path below it, so Node's module resolution finds exactly the closure.
// Every package's package.json must name the locked name and version
// (ErrTampered otherwise).
//
// The install is built in a temporary directory beside dir and renamed into
// place, so dir is either complete or absent. When dir already holds the
// same install (same InstallDigest), Install returns at once without
// fetching anything; when it holds another one, Install fails with
// ErrStore: name dir after InstallDigest. The installed files are
// read-only but, unlike store entries, are not hashed again on reuse.
//
// The bin is the package's only bin entry, or else the one named after the
// package without its scope (npx's rule), read from the verified
// package.json; a package with neither fails with ErrNotFound.
func (c *Client) Install(ctx context.Context, root *Version, cl *Closure, st *store.Store, dir string) (string, error) {
	if root == nil || cl == nil || st == nil || dir == "" {
		return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "npm install", Expected: "a root version, a closure, a store and a directory", Found: "a missing argument"}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "npm install", Err: err}
	}
	subject := "npm install of " + root.Name + "@" + root.Version
	digest := InstallDigest(root, cl)
	if bin, ok, err := readMarker(dir, digest); err != nil || ok {
		return bin, err
	}

	// Verify everything before unpacking anything.
	type item struct {
		path      string // "" for the root
		name      string
		version   string
		integrity string
		resolved  string
		entry     store.Entry
	}
	items := []item{{name: root.Name, version: root.Version, integrity: root.Integrity, resolved: root.Tarball}}
	seen := map[string]bool{}
	for _, p := range cl.Packages {
		if _, err := splitTreePath(p.Path); err != nil || seen[p.Path] {
			return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "unique node_modules paths", Found: fmt.Sprintf("%q", p.Path), Err: err}
		}
		seen[p.Path] = true
		items = append(items, item{path: p.Path, name: p.Name, version: p.Version, integrity: p.Integrity, resolved: p.Resolved})
	}
	sort.SliceStable(items[1:], func(i, j int) bool { return items[1+i].path < items[1+j].path })
	for i, it := range items {
		e, err := c.FetchTarball(ctx, &Version{Name: it.name, Version: it.version, Tarball: it.resolved, Integrity: it.integrity}, st)
		if err != nil {
			return "", err
		}
		items[i].entry = e
	}

	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	tree, err := os.OpenRoot(tmp)
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
	}
	defer tree.Close()

	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return "", &preflight.Error{Class: preflight.ErrTimeout, Subject: subject, Err: err}
		}
		if err := c.unpackOne(tree, it.path, it.name, it.version, it.integrity, it.entry); err != nil {
			return "", err
		}
	}
	bin, err := chooseBin(tree, root)
	if err != nil {
		return "", err
	}
	m, _ := json.Marshal(marker{Digest: digest, Bin: bin})
	if err := tree.WriteFile(markerName, m, 0o400); err != nil {
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
	}
	if err := os.Rename(tmp, dir); err != nil {
		// A concurrent Install of the same closure may have won.
		if bin, ok, merr := readMarker(dir, digest); merr == nil && ok {
			return bin, nil
		}
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err, Hint: "the install directory exists; remove it or name it after InstallDigest"}
	}
	done = true
	c.log.LogAttrs(ctx, slog.LevelInfo, "npm package installed", slog.String("package", root.Name+"@"+root.Version), slog.Int("dependencies", len(cl.Packages)), slog.String("dir", dir))
	return filepath.Join(dir, filepath.FromSlash(bin)), nil
}

// readMarker reports whether dir holds a finished install with digest.
func readMarker(dir, digest string) (string, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(dir); serr == nil {
			return "", false, &preflight.Error{Class: preflight.ErrStore, Subject: "npm install " + dir, Expected: "an empty place or a finished install", Found: "a directory without " + markerName,
				Hint: "remove the directory; Install creates it"}
		}
		return "", false, nil
	}
	if err != nil {
		return "", false, &preflight.Error{Class: preflight.ErrStore, Subject: "npm install " + dir, Err: err}
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || m.Digest != digest {
		return "", false, &preflight.Error{Class: preflight.ErrStore, Subject: "npm install " + dir, Expected: "install " + digest, Found: "another install",
			Hint: "name the directory after InstallDigest so that each closure has its own"}
	}
	rel, ok := cleanRel(m.Bin)
	if !ok {
		return "", false, &preflight.Error{Class: preflight.ErrStore, Subject: "npm install " + dir, Expected: "a bin inside the install", Found: fmt.Sprintf("%q", m.Bin)}
	}
	return filepath.Join(dir, filepath.FromSlash(rel)), true, nil
}

// unpackOne unpacks one verified tarball into tree at rel ("" for the
// root) and checks its package.json.
func (c *Client) unpackOne(tree *os.Root, rel, name, version, integrity string, e store.Entry) error {
	subject := "npm " + name + "@" + version
	want, err := integrityHex(integrity)
	if err != nil {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a sha512 integrity", Found: integrity, Err: err}
	}
	target := "."
	if rel != "" {
		target = filepath.FromSlash(rel)
		// Every directory on the way must be a real one: a link from a
		// package above would redirect this package elsewhere.
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if fi, err := tree.Lstat(filepath.FromSlash(d)); err == nil && !fi.IsDir() {
				return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "directory " + d, Found: "a " + fi.Mode().Type().String()}
			}
		}
		if _, err := tree.Lstat(target); err == nil {
			return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "nothing at " + rel, Found: "an entry from another package's tarball",
				Hint: "a package bundles a dependency the lockfile also installs"}
		}
		if err := tree.MkdirAll(target, 0o700); err != nil {
			return &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
		}
	}
	pkgRoot, err := tree.OpenRoot(target)
	if err != nil {
		return &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
	}
	defer pkgRoot.Close()
	f, err := openEntry(e)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha512.New()
	if err := extract(io.TeeReader(f, h), pkgRoot, c.limits()); err != nil {
		return tarErr(subject, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &preflight.Error{Class: preflight.ErrTampered, Subject: subject + " (store entry " + e.Path + ")", Expected: "sha512:" + want, Found: "sha512:" + got,
			Hint: "the store was modified after verification; remove the entry and install again"}
	}
	b, err := readPackageJSON(pkgRoot)
	if err != nil {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a package.json", Err: err}
	}
	var pj struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "package.json", Found: "invalid JSON", Err: err}
	}
	if pj.Name != name || pj.Version != version {
		return &preflight.Error{Class: preflight.ErrTampered, Subject: subject, Expected: "package.json of " + name + "@" + version, Found: pj.Name + "@" + pj.Version,
			Hint: "the tarball pinned for this package holds another package"}
	}
	return nil
}

const maxPackageJSON = 4 << 20

func readPackageJSON(r *os.Root) ([]byte, error) {
	fi, err := r.Lstat("package.json")
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxPackageJSON {
		return nil, fmt.Errorf("package.json is not a regular file of at most %d bytes", maxPackageJSON)
	}
	return r.ReadFile("package.json")
}

// chooseBin picks the script to run from the installed root's package.json.
func chooseBin(tree *os.Root, root *Version) (string, error) {
	subject := "npm " + root.Name + "@" + root.Version
	b, err := readPackageJSON(tree)
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "a package.json", Err: err}
	}
	var pj struct {
		Bin json.RawMessage `json:"bin"`
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "package.json", Found: "invalid JSON", Err: err}
	}
	bins, err := parseBin(root.Name, pj.Bin)
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "bin as a path or a map of names to paths", Err: err}
	}
	var rel string
	switch p, ok := bins[unscoped(root.Name)]; {
	case len(bins) == 1:
		for _, p := range bins {
			rel = p
		}
	case ok:
		rel = p
	default:
		names := make([]string, 0, len(bins))
		for n := range bins {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", &preflight.Error{Class: preflight.ErrNotFound, Subject: subject, Expected: "one bin, or one named " + unscoped(root.Name), Found: fmt.Sprintf("bins %v", names),
			Hint: "the package has no single command to run"}
	}
	rel, _ = cleanRel(rel)
	fi, err := tree.Lstat(filepath.FromSlash(rel))
	if err != nil || !fi.Mode().IsRegular() {
		return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: "bin " + rel + " as a file in the package", Found: "no such file", Err: err}
	}
	return rel, nil
}
