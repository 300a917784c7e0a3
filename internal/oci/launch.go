package oci

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	preflight "github.com/mcp-preflight/preflight"
)

// envName is a portable environment variable name. Anything else (an
// "=" above all) could smuggle a value onto the command line.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// runtimes are the container runtimes whose "run" syntax LaunchCommand
// writes.
var runtimes = map[string]bool{"docker": true, "podman": true}

// LaunchCommand returns the unstarted command that runs img, by digest,
// as an MCP stdio server:
//
//	RUNTIME run --rm -i --pull=missing [-e NAME]... REPOSITORY@sha256:HEX [ARG]...
//
// runtime is the path of docker or podman (the caller resolves it, e.g.
// with exec.LookPath); its base name must be docker or podman. env lists
// variable names only: each is passed as "-e NAME", so the runtime copies
// the value from its own environment, which is the returned command's Env
// (nil: the host process's; set it to exactly what the server may see).
// args follow the image and become the container's command arguments.
//
// The command's stdin, stdout and stderr are left for the caller to
// connect. Invalid input is ErrConfig.
func LaunchCommand(runtime string, img Image, args []string, env []string) (*exec.Cmd, error) {
	bad := func(expected, found string) error {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "container launch", Expected: expected, Found: found}
	}
	base := strings.TrimSuffix(filepath.Base(runtime), ".exe")
	if runtime == "" || !runtimes[base] {
		return nil, bad("a docker or podman executable", fmt.Sprintf("%q", runtime))
	}
	if !ociDigestPath.MatchString(img.Digest) {
		return nil, bad("an image resolved to a sha256 digest", fmt.Sprintf("%q", img.Digest))
	}
	// The image must be named by repository and digest alone; parsing it
	// back proves that nothing else (a tag, a flag) got in.
	pinned := img.Pinned()
	ref, err := ParseReference(pinned)
	if err != nil || ref.Name() != pinned {
		return nil, bad("REPOSITORY@sha256:HEX", fmt.Sprintf("%q", pinned))
	}
	argv := []string{"run", "--rm", "-i", "--pull=missing"}
	for _, name := range env {
		if !envName.MatchString(name) {
			return nil, bad("environment variable names ([A-Za-z_][A-Za-z0-9_]*)", fmt.Sprintf("%q", name))
		}
		argv = append(argv, "-e", name)
	}
	argv = append(argv, pinned)
	argv = append(argv, args...)
	return exec.Command(runtime, argv...), nil
}
