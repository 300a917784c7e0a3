package verify

import (
	"context"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
)

// CommandFor verifies the server like Check and returns an unstarted command
// that executes exactly the verified bytes, with the environment the policy
// allows, for hosts whose MCP SDK starts the process itself (for example the
// go-sdk's mcp.CommandTransport). The caller sets up stdio and should gate
// the session with package gate. On Linux the command holds the verified file
// open in ExtraFiles; close it after Start.
func (v *Verifier) CommandFor(ctx context.Context, server string) (*exec.Cmd, *Report, error) {
	c, rep, err := v.check(ctx, server)
	if err != nil {
		return nil, nil, err
	}
	cmd, err := v.command(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	return cmd, rep, nil
}

// command builds the command for the allowed candidate. A binary is opened
// from the store and hashed once from the descriptor that will be executed;
// the other kinds run through their runtime (node, docker, the interpreter a
// bundle names) on verified, read-only files.
func (v *Verifier) command(ctx context.Context, c *candidate) (*exec.Cmd, error) {
	switch {
	case c.npm != nil:
		return v.npmCommand(ctx, c)
	case c.oci != nil:
		return v.ociCommand(c)
	case c.mcpb != nil:
		return v.mcpbCommand(c)
	}
	f, err := v.store.Open(c.entry.SHA256)
	if err != nil {
		return nil, err
	}
	cmd := verifiedCommand(f, c.artifact.Name, c.args)
	cmd.Dir = os.TempDir()
	cmd.Env = v.environment(c.server)
	return cmd, nil
}

func pathCommand(f *os.File, argv0 string, args []string) *exec.Cmd {
	// The open file is still handed over so its lifetime matches the
	// Linux variant; the path is that of the read-only store entry.
	return &exec.Cmd{Path: f.Name(), Args: append([]string{argv0}, args...), ExtraFiles: []*os.File{f}}
}

// environment returns exactly the variables the policy names: pass-through
// names taken from the host environment, then fixed values.
func (v *Verifier) environment(s *policy.Server) []string {
	values := map[string]string{}
	for _, kv := range v.hostEnviron() {
		if k, val, ok := strings.Cut(kv, "="); ok {
			values[k] = val
		}
	}
	env := []string{}
	for _, name := range s.Env {
		if val, ok := values[name]; ok {
			env = append(env, name+"="+val)
		}
	}
	for _, k := range sortedKeys(s.SetEnv) {
		env = append(env, k+"="+s.SetEnv[k])
	}
	return env
}

// hostEnviron is the host environment the policy's pass-through names are
// taken from.
func (v *Verifier) hostEnviron() []string {
	if v.cfg.Environ != nil {
		return v.cfg.Environ
	}
	return os.Environ()
}

func launchErr(subject string, err error, hint string) error {
	return &preflight.Error{Class: preflight.ErrLaunch, Subject: subject, Err: err, Hint: hint}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
