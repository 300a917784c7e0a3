package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/mcpb"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
)

// registryPackage is the part of an MCP registry server.json package entry
// Preflight reads.
type registryPackage struct {
	RegistryType     string `json:"registryType"`
	RegistryBaseURL  string `json:"registryBaseUrl"`
	Identifier       string `json:"identifier"`
	Version          string `json:"version"`
	FileSHA256       string `json:"fileSha256"`
	PackageArguments []struct {
		Type  string `json:"type"`
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"packageArguments"`
	Transport struct {
		Type string `json:"type"`
	} `json:"transport"`
}

// resolveServerJSON reads an MCP registry server.json, picks the package
// entry of the registry type the policy names and resolves it as that
// source. A trust section in the server.json can only narrow the policy,
// like a TUF descriptor's, although the file itself is not signed.
func (v *Verifier) resolveServerJSON(ctx context.Context, s *policy.Server) (*candidate, error) {
	src := s.Source.ServerJSON
	var data []byte
	var err error
	if src.Path != "" {
		data, err = readBounded(v.path(src.Path), maxDescriptorBytes)
	} else {
		f := v.cfg.Fetcher
		if f == nil {
			f = &tuf.HTTPFetcher{}
		}
		data, err = f.Fetch(ctx, src.URL, maxDescriptorBytes)
	}
	if err != nil {
		return nil, err
	}
	desc, err := policy.ParseDescriptor(data)
	if err != nil {
		return nil, err
	}
	var pkg *registryPackage
	var raw json.RawMessage
	var types []string
	for _, r := range desc.Packages {
		var p registryPackage
		if err := json.Unmarshal(r, &p); err != nil {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "server.json " + desc.Name, Err: err}
		}
		types = append(types, p.RegistryType)
		if p.RegistryType == src.Package && pkg == nil {
			pkg, raw = &p, r
		}
	}
	if pkg == nil {
		sort.Strings(types)
		return nil, &preflight.Error{Class: preflight.ErrNotFound, Subject: "server.json " + desc.Name,
			Expected: "a package of registry type " + src.Package, Found: "types " + strings.Join(types, ", "),
			Hint: "set source.server_json.package to one of the types the server publishes"}
	}
	if pkg.Transport.Type != "" && pkg.Transport.Type != "stdio" {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "server.json " + desc.Name, Expected: "a stdio package", Found: pkg.Transport.Type + " transport"}
	}
	eff := *s
	var findings []policy.Finding
	if desc.Trust != nil {
		narrowed, f := policy.Narrow(s, &desc.Trust.Expectations)
		eff, findings = *narrowed, f
	}
	for _, a := range pkg.PackageArguments {
		switch a.Type {
		case "positional":
			eff.Args = append([]string{a.Value}, eff.Args...)
		case "named":
			eff.Args = append([]string{a.Name, a.Value}, eff.Args...)
		}
	}
	eff.Source = policy.Source{}
	var c *candidate
	switch pkg.RegistryType {
	case "npm":
		eff.Source.NPM = &policy.NPMSource{Package: pkg.Identifier, Version: pkg.Version, Registry: pkg.RegistryBaseURL}
		c, err = v.resolveNPM(ctx, &eff)
	case "mcpb":
		var ms mcpb.Source
		if ms, err = mcpb.SourceFromPackage(raw); err == nil {
			c, err = v.resolveMCPB(ctx, &eff, ms)
		}
	case "oci":
		eff.Source.OCI = &policy.OCISource{Image: imageReference(pkg)}
		c, err = v.resolveOCI(ctx, &eff)
	default:
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "server.json " + desc.Name,
			Expected: "an npm, oci or mcpb package", Found: "registry type " + pkg.RegistryType,
			Hint: "this version launches npm, oci and mcpb packages from server.json"}
	}
	if err != nil {
		return nil, err
	}
	c.findings = append(findings, c.findings...)
	return c, nil
}

// resolveMCPB downloads an MCP bundle, checks its pinned digest and its
// Sigstore bundle before keeping it, unpacks it safely into the store and
// resolves its launch command from the manifest.
func (v *Verifier) resolveMCPB(ctx context.Context, s *policy.Server, src mcpb.Source) (*candidate, error) {
	f, info, err := v.releaseFetcher(ctx, s)
	if err != nil {
		return nil, err
	}
	b, err := mcpb.Fetch(ctx, f, src, mcpb.Options{})
	if err != nil {
		if errors.Is(err, preflight.ErrSecurity) {
			return nil, v.refuseEarly(s, policy.ArtifactFacts{Name: src.URL, Source: "mcpb"}, info, err)
		}
		return nil, err
	}
	bundles := make([]Bundle, len(b.Bundles))
	for i, x := range b.Bundles {
		bundles[i] = Bundle(x)
	}
	return &candidate{
		name: s.Name, server: s, entry: b.File, artifact: b.Artifact, bundles: bundles, verified: b.Signatures,
		args: append(append([]string(nil), b.Launch.Args...), s.Args...),
		mcpb: &b.Launch,
	}, nil
}

// mcpbCommand starts a bundle's server as its manifest says: a binary from
// the unpacked, read-only bundle, or an interpreter (node, python) on one
// of its files. The manifest's own variables come after the policy's.
func (v *Verifier) mcpbCommand(c *candidate) (*exec.Cmd, error) {
	l := c.mcpb
	path := l.Command
	if !filepath.IsAbs(path) {
		p, err := exec.LookPath(path)
		if err != nil {
			return nil, &preflight.Error{Class: preflight.ErrLaunch, Subject: "server " + c.name, Err: err,
				Hint: fmt.Sprintf("the bundle runs with %q, which is not installed", path)}
		}
		path = p
	}
	cmd := &exec.Cmd{Path: path, Args: append([]string{l.Command}, c.args...), Dir: l.Dir, Env: []string{}}
	// The manifest's variables first, so that the policy's win (the last
	// value of a name counts).
	for _, k := range sortedKeys(l.Env) {
		cmd.Env = append(cmd.Env, k+"="+l.Env[k])
	}
	cmd.Env = append(cmd.Env, v.environment(c.server)...)
	return cmd, nil
}

// imageReference builds an image reference from a server.json oci package:
// the identifier as it is when it names its registry host and tag or
// digest, otherwise completed with registryBaseUrl's host and the version.
func imageReference(pkg *registryPackage) string {
	image := pkg.Identifier
	first, _, hasSlash := strings.Cut(image, "/")
	if pkg.RegistryBaseURL != "" && (!hasSlash || !strings.ContainsAny(first, ".:")) {
		if u, err := url.Parse(pkg.RegistryBaseURL); err == nil && u.Host != "" {
			image = u.Host + "/" + image
		}
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if pkg.Version != "" && !strings.ContainsAny(last, ":@") {
		image += ":" + pkg.Version
	}
	return image
}
