package verify

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/npm"
	"github.com/mcp-preflight/preflight/policy"
)

// npmLaunch is what materializing an npm server needs once it is allowed:
// the package and its closure, installed from verified tarballs only.
type npmLaunch struct {
	client  *npm.Client
	version *npm.Version
	closure *npm.Closure
}

// resolveNPM fetches the package tarball (checked against dist.integrity
// and, when pinned, the policy's integrity), its registry attestations
// (provenance and publish) and its dependency closure: the lockfile's when
// it records one, else the package's shrinkwrap, else a fresh resolution
// that `preflight lock` then records.
func (v *Verifier) resolveNPM(ctx context.Context, s *policy.Server) (*candidate, error) {
	src := s.Source.NPM
	registry := src.Registry
	if registry == "" && v.cfg.NPMRC != nil {
		if r, ok := npm.RegistryFromNPMRC(v.cfg.NPMRC, src.Package); ok {
			registry = r
		}
	}
	client, err := npm.New(npm.Config{Registry: registry, Logger: v.log.With("server", s.Name)})
	if err != nil {
		return nil, err
	}
	ver, err := client.Resolve(ctx, src.Package, src.Version)
	if err != nil {
		return nil, err
	}
	if src.Integrity != "" && src.Integrity != ver.Integrity {
		return nil, &preflight.Error{Class: preflight.ErrTampered, Subject: "npm package " + src.Package + "@" + ver.Version,
			Expected: src.Integrity, Found: ver.Integrity,
			Hint: "the registry publishes other bytes than the policy pins; do not run them unless the publisher confirms a new release"}
	}
	entry, err := client.FetchTarball(ctx, ver, v.store)
	if err != nil {
		return nil, err
	}
	sha512, err := ver.SHA512()
	if err != nil {
		return nil, err
	}
	var bundles []Bundle
	atts, err := client.Attestations(ctx, ver.Name, ver.Version)
	switch {
	case errors.Is(err, preflight.ErrNotFound):
		// No attestations: decide reports the missing evidence.
	case err != nil:
		return nil, err
	}
	for i, a := range atts {
		bundles = append(bundles, Bundle{Name: ver.Name + "@" + ver.Version + " attestation " + string(rune('1'+i)), JSON: a})
	}
	closure, err := v.npmClosure(ctx, s.Name, client, ver)
	if err != nil {
		return nil, err
	}
	deps := make([]policy.Dependency, len(closure.Packages))
	for i, p := range closure.Packages {
		deps[i] = policy.Dependency{Path: p.Path, Name: p.Name, Version: p.Version, Resolved: p.Resolved, Integrity: p.Integrity}
	}
	return &candidate{
		name:   s.Name,
		server: s,
		entry:  entry,
		artifact: policy.ArtifactFacts{Name: ver.Name, Version: ver.Version, Source: "npm", Size: entry.Size,
			Digests: map[string]string{"sha256": entry.SHA256, "sha512": sha512}},
		bundles:      bundles,
		args:         append([]string(nil), s.Args...),
		dependencies: deps,
		npm:          &npmLaunch{client: client, version: ver, closure: closure},
	}, nil
}

// npmClosure returns the pinned closure from the lockfile when it has one
// for this server, else the package's own (shrinkwrap or resolved).
func (v *Verifier) npmClosure(ctx context.Context, server string, client *npm.Client, ver *npm.Version) (*npm.Closure, error) {
	if v.cfg.Lock != nil {
		if e := v.cfg.Lock.Servers[server]; e != nil && len(e.Dependencies) > 0 && e.Version == ver.Version {
			cl := &npm.Closure{}
			for _, d := range e.Dependencies {
				cl.Packages = append(cl.Packages, npm.LockedPackage{Path: d.Path, Name: d.Name, Version: d.Version, Resolved: d.Resolved, Integrity: d.Integrity})
			}
			return cl, nil
		}
	}
	return client.Closure(ctx, ver, v.store)
}

// npmCommand installs the verified closure into the store (a no-op when it
// is there) and runs the package's bin with node. The JavaScript that runs
// is the read-only install of verified tarballs; node itself is the host's.
func (v *Verifier) npmCommand(ctx context.Context, c *candidate) (*exec.Cmd, error) {
	n := c.npm
	dir := filepath.Join(v.store.Dir(), "npm-install", npm.InstallDigest(n.version, n.closure))
	bin, err := n.client.Install(ctx, n.version, n.closure, v.store, dir)
	if err != nil {
		return nil, err
	}
	node := v.cfg.Node
	if node == "" {
		if node, err = exec.LookPath("node"); err != nil {
			return nil, &preflight.Error{Class: preflight.ErrLaunch, Subject: "server " + c.name, Err: err,
				Hint: "node is needed to run npm servers; install Node.js or set Config.Node"}
		}
	}
	return &exec.Cmd{Path: node, Args: append([]string{"node", bin}, c.args...), Dir: dir, Env: v.environment(c.server)}, nil
}
