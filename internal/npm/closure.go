package npm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/store"
)

// LockedPackage is one package of a dependency closure, pinned by its
// tarball's integrity.
type LockedPackage struct {
	// Path is where the package is installed, relative to the root
	// package's directory: node_modules/a or node_modules/a/node_modules/@s/b.
	Path string `json:"path"`
	// Name is the package's registry name. It differs from the last element
	// of Path for an alias (npm:name@range).
	Name    string `json:"name"`
	Version string `json:"version"`
	// Resolved is the tarball URL; empty means the registry's usual URL.
	Resolved string `json:"resolved,omitempty"`
	// Integrity is the tarball's "sha512-<base64>".
	Integrity string `json:"integrity"`
}

// Closure is the dependency closure of a root package: every package
// installed beside it, sorted by Path. It is what preflight.lock records.
type Closure struct {
	Packages []LockedPackage `json:"packages"`
}

// InstallDigest names an install: the hex SHA-256 of the root package's
// name, version and integrity and of the closure. Callers use it to name
// the directory passed to Install, so that two different installs never
// share one.
func InstallDigest(root *Version, cl *Closure) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	enc.Encode([]string{"preflight-npm-install-v1", root.Name, root.Version, root.Integrity})
	for _, p := range cl.Packages {
		enc.Encode([]string{p.Path, p.Name, p.Version, p.Integrity})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// maxShrinkwrapBytes bounds an npm-shrinkwrap.json or package-lock.json.
const maxShrinkwrapBytes = 32 << 20

// maxTreeDepth bounds the nesting of node_modules directories.
const maxTreeDepth = 64

// ClosureFromShrinkwrap reads the "packages" map of an npm-shrinkwrap.json
// or package-lock.json (lockfileVersion 2 or 3). It is strict and fails
// closed:
//
//   - every installed entry must have a sha512 integrity, a semantic
//     version and a path made of node_modules/NAME steps whose parent is
//     itself in the map;
//   - links (workspaces, file: dependencies) are refused;
//   - duplicate keys and paths that differ only in case are refused.
//
// The root entry ("") is the package itself, dev-only entries are not
// installed, and entries inBundle ship inside a verified parent tarball,
// so those three are left out of the closure. Every failure is
// ErrMalformed.
func ClosureFromShrinkwrap(data []byte) (*Closure, error) {
	malformed := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm shrinkwrap", Expected: expected, Found: found, Err: err,
			Hint: "the package's lockfile cannot pin its dependencies; ask the publisher for a lockfile made by npm 7 or later"}
	}
	if len(data) > maxShrinkwrapBytes {
		return nil, malformed(fmt.Sprintf("at most %d bytes", maxShrinkwrapBytes), fmt.Sprintf("%d bytes", len(data)), nil)
	}
	var doc struct {
		LockfileVersion int                        `json:"lockfileVersion"`
		Packages        map[string]json.RawMessage `json:"packages"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, malformed("lockfile JSON", "invalid JSON", err)
	}
	if doc.LockfileVersion != 2 && doc.LockfileVersion != 3 || doc.Packages == nil {
		return nil, malformed("lockfileVersion 2 or 3 with a packages map", fmt.Sprintf("lockfileVersion %d", doc.LockfileVersion), nil)
	}
	if err := noDuplicateKeys(data); err != nil {
		return nil, malformed("a packages map without duplicate keys", "", err)
	}
	if len(doc.Packages) > DefaultMaxPackages+1 {
		return nil, malformed(fmt.Sprintf("at most %d packages", DefaultMaxPackages), fmt.Sprint(len(doc.Packages)), nil)
	}
	folded := make(map[string]string, len(doc.Packages))
	cl := &Closure{}
	for key, raw := range doc.Packages {
		if key == "" {
			continue
		}
		if prev, ok := folded[strings.ToLower(key)]; ok {
			return nil, malformed("paths that differ in more than case", fmt.Sprintf("%q and %q", prev, key), nil)
		}
		folded[strings.ToLower(key)] = key
		var e struct {
			Name      string `json:"name"`
			Version   string `json:"version"`
			Resolved  string `json:"resolved"`
			Integrity string `json:"integrity"`
			Dev       bool   `json:"dev"`
			InBundle  bool   `json:"inBundle"`
			Link      bool   `json:"link"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&e); err != nil {
			return nil, malformed(fmt.Sprintf("entry %q as an object", key), "", err)
		}
		if e.Link {
			return nil, malformed(fmt.Sprintf("entry %q installed from the registry", key), "a link", nil)
		}
		names, err := splitTreePath(key)
		if err != nil {
			return nil, malformed("paths of node_modules/NAME steps", fmt.Sprintf("%q", key), err)
		}
		if len(names) > 1 {
			parent := key[:strings.LastIndex(key, "/node_modules/")]
			if _, ok := doc.Packages[parent]; !ok {
				return nil, malformed(fmt.Sprintf("the parent %q of %q", parent, key), "no such entry", nil)
			}
		}
		if e.Dev || e.InBundle {
			continue
		}
		name := names[len(names)-1]
		if e.Name != "" {
			if !validName(e.Name) {
				return nil, malformed(fmt.Sprintf("a package name for %q", key), fmt.Sprintf("%q", e.Name), nil)
			}
			name = e.Name
		}
		if _, ok := parseSemver(e.Version); !ok {
			return nil, malformed(fmt.Sprintf("a semantic version for %q", key), fmt.Sprintf("%q", e.Version), nil)
		}
		integrity, err := pickIntegrity(e.Integrity)
		if err != nil {
			return nil, malformed(fmt.Sprintf("a sha512 integrity for %q", key), fmt.Sprintf("%q", e.Integrity), err)
		}
		if e.Resolved != "" && !strings.HasPrefix(e.Resolved, "https://") && !strings.HasPrefix(e.Resolved, "http://") {
			return nil, malformed(fmt.Sprintf("a registry tarball URL for %q", key), fmt.Sprintf("%q", e.Resolved), nil)
		}
		cl.Packages = append(cl.Packages, LockedPackage{Path: key, Name: name, Version: e.Version, Resolved: e.Resolved, Integrity: integrity})
	}
	sort.Slice(cl.Packages, func(i, j int) bool { return cl.Packages[i].Path < cl.Packages[j].Path })
	return cl, nil
}

// splitTreePath splits node_modules/a/node_modules/@s/b into [a @s/b].
func splitTreePath(p string) ([]string, error) {
	var names []string
	rest := p
	for rest != "" {
		r, ok := strings.CutPrefix(rest, "node_modules/")
		if !ok {
			return nil, fmt.Errorf("expected node_modules/ at %q", rest)
		}
		name := r
		if i := strings.Index(r, "/node_modules/"); i >= 0 {
			name, rest = r[:i], r[i+1:]
		} else {
			rest = ""
		}
		if !validName(name) {
			return nil, fmt.Errorf("invalid package name %q", name)
		}
		names = append(names, name)
		if len(names) > maxTreeDepth {
			return nil, fmt.Errorf("deeper than %d levels", maxTreeDepth)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("empty path")
	}
	return names, nil
}

// noDuplicateKeys refuses a top-level "packages" object with a key twice:
// encoding/json keeps the last, another reader might keep the first.
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if t != "packages" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if _, err := dec.Token(); err != nil { // {
			return err
		}
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q twice", key)
			}
			seen[key] = true
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // }
			return err
		}
	}
	return nil
}

// Closure returns the dependency closure of root: the one its tarball's
// npm-shrinkwrap.json pins when it ships one (read from the verified
// tarball, never trusting the packument's claim), and otherwise the one
// ResolveClosure computes. The root tarball is fetched into st.
func (c *Client) Closure(ctx context.Context, root *Version, st *store.Store) (*Closure, error) {
	e, err := c.FetchTarball(ctx, root, st)
	if err != nil {
		return nil, err
	}
	sw, err := c.readShrinkwrap(root, e)
	if err != nil {
		return nil, err
	}
	if sw != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "npm closure from shrinkwrap", slog.String("package", root.Name+"@"+root.Version))
		return ClosureFromShrinkwrap(sw)
	}
	return c.ResolveClosure(ctx, root)
}

// treeNode is one package placed in the tree ResolveClosure builds.
type treeNode struct {
	path  string
	v     *Version
	deps  []depEdge
	edges map[string]string // dependency name → path it resolves to
}

type depEdge struct {
	name, spec string
	optional   bool
}

// ResolveClosure resolves root's dependencies from the registry, for a
// package that ships no shrinkwrap. Like npm, it lays out node_modules as
// flat as possible: a dependency goes to the highest directory from which
// it is found and where it neither conflicts with another version nor
// shadows one that a package below already uses; otherwise it is nested.
// Dependency names are visited breadth first, in sorted order, so the
// result is deterministic for a given registry state.
//
// Production, optional and non-optional peer dependencies are resolved;
// bundled ones ship inside their parent's tarball. An optional dependency
// that cannot be resolved (not found, unsupported range) is left out.
// Only registry ranges are supported: git, file, URL and npm: alias
// specifications are refused with ErrMalformed. The closure is bounded by
// Config.MaxPackages and a nesting depth of 64.
func (c *Client) ResolveClosure(ctx context.Context, root *Version) (*Closure, error) {
	if root == nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "npm closure", Expected: "a root version", Found: "nil"}
	}
	packuments := map[string]*packument{}
	picked := map[string]*Version{} // name@spec → version
	resolve := func(name, spec string) (*Version, error) {
		key := name + "@" + spec
		if v, ok := picked[key]; ok {
			return v, nil
		}
		p, ok := packuments[name]
		if !ok {
			var err error
			if p, err = c.fetchPackument(ctx, name); err != nil {
				return nil, err
			}
			packuments[name] = p
		}
		v, err := c.pick(p, spec)
		if err != nil {
			return nil, err
		}
		picked[key] = v
		return v, nil
	}

	tree := map[string]*treeNode{"": {path: "", v: root, deps: depsOf(root), edges: map[string]string{}}}
	queue := []string{""}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, &preflight.Error{Class: preflight.ErrTimeout, Subject: "npm closure of " + root.Name, Err: err}
		}
		n := tree[queue[0]]
		queue = queue[1:]
		for _, d := range n.deps {
			if err := checkSpec(d.name, d.spec); err != nil {
				if d.optional {
					c.log.LogAttrs(ctx, slog.LevelDebug, "npm optional dependency skipped", slog.String("name", d.name), slog.String("reason", err.Error()))
					continue
				}
				return nil, err
			}
			r, err := parseRange(d.spec)
			if err != nil { // a dist-tag: pin it to the version it names now
				v, err := resolve(d.name, d.spec)
				if err != nil {
					if d.optional && errors.Is(err, preflight.ErrNotFound) {
						continue
					}
					return nil, err
				}
				r, _ = parseRange(v.Version)
			}
			// Walk up as Node's resolution does, collecting the
			// directories where the dependency could go.
			var candidates []string
			found := false
			for lvl := n.path; ; lvl = parentOf(lvl) {
				p := childPath(lvl, d.name)
				if m, ok := tree[p]; ok {
					if satisfies(m.v, r) {
						n.edges[d.name] = p
						found = true
					}
					break
				}
				candidates = append(candidates, lvl)
				if lvl == "" {
					break
				}
			}
			if found {
				continue
			}
			v, err := resolve(d.name, d.spec)
			if err != nil {
				if d.optional && errors.Is(err, preflight.ErrNotFound) {
					c.log.LogAttrs(ctx, slog.LevelDebug, "npm optional dependency skipped", slog.String("name", d.name), slog.String("reason", err.Error()))
					continue
				}
				return nil, err
			}
			at, ok := placeAt(tree, candidates, d.name)
			if !ok {
				return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm closure of " + root.Name,
					Expected: "a node_modules layout for " + d.name + "@" + d.spec, Found: "none without shadowing another version",
					Hint: "publish the package with an npm-shrinkwrap.json"}
			}
			p := childPath(at, d.name)
			if strings.Count(p, "node_modules/") > maxTreeDepth {
				return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm closure of " + root.Name, Expected: fmt.Sprintf("at most %d nested levels", maxTreeDepth), Found: "more"}
			}
			if len(tree) > c.cfg.MaxPackages {
				return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm closure of " + root.Name,
					Expected: fmt.Sprintf("at most %d packages", c.cfg.MaxPackages), Found: "more", Hint: "raise Config.MaxPackages if the package really needs that many"}
			}
			tree[p] = &treeNode{path: p, v: v, deps: depsOf(v), edges: map[string]string{}}
			n.edges[d.name] = p
			queue = append(queue, p)
		}
	}
	// The layout must resolve, from every package, to what it was
	// resolved against.
	for _, n := range tree {
		for name, want := range n.edges {
			if got := nodeResolve(tree, n.path, name); got != want {
				return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm closure of " + root.Name,
					Expected: fmt.Sprintf("%s from %q to resolve to %q", name, n.path, want), Found: fmt.Sprintf("%q", got)}
			}
		}
	}
	cl := &Closure{}
	for p, n := range tree {
		if p == "" {
			continue
		}
		cl.Packages = append(cl.Packages, LockedPackage{Path: p, Name: n.v.Name, Version: n.v.Version, Resolved: n.v.Tarball, Integrity: n.v.Integrity})
	}
	sort.Slice(cl.Packages, func(i, j int) bool { return cl.Packages[i].Path < cl.Packages[j].Path })
	return cl, nil
}

func depsOf(v *Version) []depEdge {
	bundled := map[string]bool{}
	for _, b := range v.BundleDependencies {
		bundled[b] = true
	}
	seen := map[string]bool{}
	var out []depEdge
	add := func(m map[string]string, optional bool) {
		for name, spec := range m {
			if seen[name] || bundled[name] {
				continue
			}
			seen[name] = true
			_, opt := v.OptionalDependencies[name]
			out = append(out, depEdge{name: name, spec: spec, optional: optional || opt})
		}
	}
	add(v.Dependencies, false)
	add(v.OptionalDependencies, true)
	add(v.PeerDependencies, false)
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// checkSpec accepts dist-tags and ranges, and refuses the specifications
// that name something other than a registry version.
func checkSpec(name, spec string) error {
	s := strings.TrimSpace(spec)
	bad := strings.Contains(s, ":") || strings.Contains(s, "/") || strings.HasPrefix(s, "git") || strings.HasPrefix(s, "file")
	if !bad {
		if _, err := parseRange(s); err != nil && !validTag(s) {
			bad = true
		}
	}
	if bad {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "npm dependency " + name, Expected: "a registry version, range or dist-tag", Found: fmt.Sprintf("%q", spec),
			Hint: "git, file, URL and alias dependencies are not supported; publish the package with an npm-shrinkwrap.json"}
	}
	return nil
}

func validTag(s string) bool {
	return s != "" && len(s) < 128 && validPart(s)
}

// satisfies reports whether an installed version is in a dependency's
// range.
func satisfies(v *Version, r versionRange) bool {
	sv, ok := parseSemver(v.Version)
	return ok && r.contains(sv)
}

// placeAt picks the highest candidate directory where name can go without
// shadowing, for a package below, a version of name it already resolves
// to above that directory. Candidates run from the dependent upwards.
func placeAt(tree map[string]*treeNode, candidates []string, name string) (string, bool) {
	for i := len(candidates) - 1; i >= 0; i-- {
		c := candidates[i]
		if !shadows(tree, c, name) {
			return c, true
		}
	}
	return "", false
}

func shadows(tree map[string]*treeNode, dir, name string) bool {
	if dir == "" {
		return false // nothing above the root
	}
	prefix := dir + "/"
	for p, n := range tree {
		if p != dir && !strings.HasPrefix(p, prefix) {
			continue
		}
		if t, ok := n.edges[name]; ok && !strings.HasPrefix(t, prefix) {
			return true
		}
	}
	return false
}

func childPath(dir, name string) string {
	if dir == "" {
		return "node_modules/" + name
	}
	return dir + "/node_modules/" + name
}

// parentOf returns the package directory containing p ("" for a top-level
// package).
func parentOf(p string) string {
	i := strings.LastIndex(p, "/node_modules/")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// nodeResolve finds name from dir as Node does: the nearest node_modules.
func nodeResolve(tree map[string]*treeNode, dir, name string) string {
	for lvl := dir; ; lvl = parentOf(lvl) {
		if _, ok := tree[childPath(lvl, name)]; ok {
			return childPath(lvl, name)
		}
		if lvl == "" {
			return ""
		}
	}
}

// readShrinkwrap returns the npm-shrinkwrap.json in a stored tarball, or
// nil when there is none.
func (c *Client) readShrinkwrap(v *Version, e store.Entry) ([]byte, error) {
	f, err := openEntry(e)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var found []byte
	err = walkTarball(f, c.limits(), func(rel string, hdr tarEntry, r io.Reader) error {
		if rel != "npm-shrinkwrap.json" || !hdr.regular {
			return nil
		}
		if found != nil {
			return errors.New("npm-shrinkwrap.json twice")
		}
		b, err := io.ReadAll(io.LimitReader(r, maxShrinkwrapBytes+1))
		if err != nil {
			return err
		}
		if len(b) > maxShrinkwrapBytes {
			return fmt.Errorf("npm-shrinkwrap.json larger than %d bytes", maxShrinkwrapBytes)
		}
		found = b
		return nil
	})
	if err != nil {
		return nil, tarErr("npm "+v.Name+"@"+v.Version, err)
	}
	return found, nil
}
