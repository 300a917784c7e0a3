package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"golang.org/x/term"
)

// commonFlags are the flags every command that verifies servers shares.
type commonFlags struct {
	policy, lock, store string
	offline             bool
	format              string
	logFile             string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.policy, "policy", "", "trust policy file (YAML or JSON)")
	fs.StringVar(&c.lock, "lock", "", "lockfile (default: preflight.lock beside the policy, if present)")
	fs.StringVar(&c.store, "store", "", "content-addressed store directory (default: the user cache directory)")
	fs.BoolVar(&c.offline, "offline", false, "use only cached metadata and the embedded trust root")
	fs.StringVar(&c.format, "format", "text", "output format: text or json")
	fs.StringVar(&c.logFile, "log", "", "write the JSON audit log to this file (default: none)")
}

// loadPolicy reads and parses the --policy file.
func (c *commonFlags) loadPolicy() (*policy.Policy, error) {
	if c.policy == "" {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "--policy", Expected: "a policy file", Found: "none"}
	}
	data, err := os.ReadFile(c.policy)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: c.policy, Err: err}
	}
	return policy.Parse(c.policy, data)
}

// lockPath is --lock, or preflight.lock beside the policy.
func (c *commonFlags) lockPath() string {
	if c.lock != "" {
		return c.lock
	}
	return filepath.Join(filepath.Dir(c.policy), "preflight.lock")
}

// loadLock reads the lockfile: --lock must exist; the default one beside
// the policy is optional (nil when absent).
func (c *commonFlags) loadLock() (*policy.Lock, error) {
	lockPath := c.lockPath()
	ldata, err := os.ReadFile(lockPath)
	if c.lock == "" && errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: lockPath, Err: err}
	}
	return policy.ParseLock(ldata)
}

// newVerifier builds a Verifier for p and lock (nil for none) with the
// store, offline and log flags.
func (c *commonFlags) newVerifier(p *policy.Policy, lock *policy.Lock, stderr io.Writer) (*verify.Verifier, func(), error) {
	storeDir := c.store
	if storeDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "--store", Err: err, Hint: "pass --store DIR"}
		}
		storeDir = filepath.Join(cache, "preflight", "store")
	}
	logger, closeLog, err := c.auditLogger(stderr)
	if err != nil {
		return nil, nil, err
	}
	cfg := verify.Config{
		Policy: p, PolicyDir: filepath.Dir(c.policy), Lock: lock, StoreDir: storeDir,
		Offline: c.offline, Logger: logger, Stderr: stderr,
		NPMRC: userNPMRC(),
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Progress = newProgressPrinter(stderr).report
	}
	v, err := verify.New(cfg)
	if err != nil {
		closeLog()
		return nil, nil, err
	}
	return v, closeLog, nil
}

func (c *commonFlags) auditLogger(stderr io.Writer) (*slog.Logger, func(), error) {
	switch c.logFile {
	case "":
		return nil, func() {}, nil
	case "-":
		return slog.New(slog.NewJSONHandler(stderr, nil)), func() {}, nil
	}
	f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "--log", Err: err}
	}
	return slog.New(slog.NewJSONHandler(f, nil)), func() { f.Close() }, nil
}

// exitCode maps an error to the documented exit codes: security refusals
// are 1, everything operational is 2.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, preflight.ErrSecurity):
		return exitRefused
	default:
		return exitUsage
	}
}

// printErr writes an error as a verdict line and its details.
func printErr(w io.Writer, err error) {
	kind := "error"
	if errors.Is(err, preflight.ErrSecurity) {
		kind = "REFUSED"
	}
	fmt.Fprintf(w, "preflight: %s: %s\n", kind, err)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }
