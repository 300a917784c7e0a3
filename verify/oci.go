package verify

import (
	"context"
	"errors"
	"os/exec"
	"sort"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/oci"
	"github.com/mcp-preflight/preflight/policy"
)

// ociLaunch is how an allowed image runs: by digest, through a container
// runtime, never by tag.
type ociLaunch struct {
	image oci.Image
}

// resolveOCI resolves the image reference to its manifest digest (checked
// against the policy's pin) and finds its Sigstore bundles through the
// referrers API. The bytes themselves live in the container runtime's store;
// the run names the image by the verified digest.
func (v *Verifier) resolveOCI(ctx context.Context, s *policy.Server) (*candidate, error) {
	src := s.Source.OCI
	client, err := oci.New(oci.Config{Logger: v.log.With("server", s.Name)})
	if err != nil {
		return nil, err
	}
	img, err := client.Resolve(ctx, src.Image, src.Digest)
	if err != nil {
		return nil, err
	}
	var bundles []Bundle
	found, err := client.Bundles(ctx, img)
	switch {
	case errors.Is(err, preflight.ErrSignature) && len(found) == 0:
		// No evidence at all: decide reports it as a finding.
	case err != nil:
		return nil, err
	}
	for _, b := range found {
		bundles = append(bundles, Bundle(b))
	}
	return &candidate{
		name: s.Name, server: s, bundles: bundles,
		artifact: policy.ArtifactFacts{Name: img.Repository, Version: img.Tag, Source: "oci", Size: img.Size,
			Digests: map[string]string{"sha256": img.Hex()}},
		args: append([]string(nil), s.Args...),
		oci:  &ociLaunch{image: img},
	}, nil
}

// ociCommand runs the image by digest with docker (or podman). The runtime
// client keeps the host environment it needs to reach its daemon; the
// container receives only the variables the policy names, passed by name.
func (v *Verifier) ociCommand(c *candidate) (*exec.Cmd, error) {
	runtime := v.cfg.ContainerRuntime
	if runtime == "" {
		var err error
		if runtime, err = exec.LookPath("docker"); err != nil {
			if runtime, err = exec.LookPath("podman"); err != nil {
				return nil, &preflight.Error{Class: preflight.ErrLaunch, Subject: "server " + c.name, Err: err,
					Hint: "image servers run with docker or podman; install one or set Config.ContainerRuntime"}
			}
		}
	}
	names := append([]string(nil), c.server.Env...)
	for k := range c.server.SetEnv {
		names = append(names, k)
	}
	sort.Strings(names)
	cmd, err := oci.LaunchCommand(runtime, c.oci.image, c.args, names)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(v.hostEnviron(), v.environment(c.server)...)
	return cmd, nil
}
