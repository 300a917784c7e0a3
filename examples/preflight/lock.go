package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/safefile"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
)

const lockHelp = `Usage: preflight lock --policy FILE [--lock FILE] [--server NAME]... [--yes] [--format json]

Verifies and launches each server of the policy (or the named ones), lists
its tools, prompts and resources, and records what it observed in the
lockfile: version, artifact digests, signer, source commit and the canonical
digests of the surface. It shows what changed against the existing lockfile
and writes only with --yes, or after a y/N confirmation when standard input
is a terminal. The lockfile (default preflight.lock beside the policy) is
replaced atomically; entries of servers not locked now are kept, and entries
of servers no longer in the policy are dropped when every server is locked.

Servers are verified in enforce mode even when the policy says audit: a
server that fails verification is never recorded, and nothing is written.
The servers are started only to be listed; no tool is called.

Exit codes: 0 written, or already up to date; 1 a server was refused, or
changes were not written (declined, or no --yes without a terminal);
2 usage or environment error.

Examples:
  preflight lock --policy preflight.yaml              # show the changes, ask
  preflight lock --policy preflight.yaml --yes        # accept them
  preflight lock --policy preflight.yaml --server weather --yes

Flags:
`

func cmdLock(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return lockServers(ctx, args, os.Stdin, term.IsTerminal(int(os.Stdin.Fd())), stdout, stderr)
}

// lockChange is what locking one server changes.
type lockChange struct {
	Server string             `json:"server"`
	Status string             `json:"status"` // "new", "changed", "unchanged", "removed"
	Drift  []policy.DriftItem `json:"drift,omitempty"`
}

// lockResult is the JSON output of preflight lock.
type lockResult struct {
	MediaType string       `json:"mediaType"`
	Lockfile  string       `json:"lockfile"`
	Written   bool         `json:"written"`
	Changes   []lockChange `json:"changes"`
	Error     string       `json:"error,omitempty"`
}

const lockResultMediaType = "application/vnd.dev.mcp-preflight.lock-result+json;version=1"

// lockServers is preflight lock with its input and whether that input is an
// interactive terminal as parameters.
func lockServers(ctx context.Context, args []string, stdin io.Reader, interactive bool, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs)
	var servers listFlag
	fs.Var(&servers, "server", "server to lock (repeatable; default: every server in the policy)")
	yes := fs.Bool("yes", false, "write the lockfile without asking")
	fs.Usage = func() {
		fmt.Fprint(stderr, lockHelp)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 || (common.format != "text" && common.format != "json") {
		fs.Usage()
		return exitUsage
	}
	p, err := common.loadPolicy()
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	lockPath := common.lockPath()
	old, oldBytes, err := readLockfile(lockPath)
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	all := len(servers) == 0
	if all {
		servers = slices.Sorted(maps.Keys(p.Servers))
	}
	for _, name := range servers {
		if _, err := p.Server(name); err != nil {
			printErr(stderr, err)
			return exitUsage
		}
	}
	if p.Mode == policy.ModeAudit {
		fmt.Fprintln(stderr, "preflight: note: the policy is in audit mode; lock verifies in enforce mode so that only verified servers are recorded")
	}
	observeOnly(p)
	// The Verifier gets no lockfile: a new release must be verifiable
	// without being refused for differing from the entry it will replace.
	v, closeLog, err := common.newVerifier(p, nil, stderr)
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	defer closeLog()

	next := &policy.Lock{Version: policy.LockVersion, Servers: map[string]*policy.LockEntry{}}
	if old != nil {
		maps.Copy(next.Servers, old.Servers)
	}
	code := exitOK
	var changes []lockChange
	for _, name := range servers {
		entry, err := observe(ctx, v, name)
		if err != nil {
			if rep, ok := verify.ReportOf(err); ok && common.format == "text" {
				writeReport(stdout, rep, "text")
			}
			printErr(stderr, err)
			code = max(code, exitCode(err))
			continue
		}
		ch := lockChange{Server: name, Status: "new"}
		if prev := next.Servers[name]; prev != nil {
			ch.Drift = policy.Drift(prev, entry)
			ch.Status = "unchanged"
			if len(ch.Drift) > 0 {
				ch.Status = "changed"
			}
		}
		next.Servers[name] = entry
		changes = append(changes, ch)
	}
	if all && old != nil {
		for _, name := range slices.Sorted(maps.Keys(old.Servers)) {
			if p.Servers[name] == nil {
				delete(next.Servers, name)
				changes = append(changes, lockChange{Server: name, Status: "removed"})
			}
		}
	}
	res := lockResult{MediaType: lockResultMediaType, Lockfile: lockPath, Changes: changes}
	finish := func(code int, msg string) int {
		if common.format == "json" {
			if code != exitOK {
				res.Error = msg
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(res)
		}
		if msg != "" {
			fmt.Fprintln(stderr, "preflight: "+msg)
		}
		return code
	}
	if code != exitOK {
		return finish(code, "lockfile not written: a server could not be verified")
	}
	data, err := next.Marshal()
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	if common.format == "text" {
		writeLockChanges(stdout, changes)
	}
	if oldBytes != nil && bytes.Equal(data, oldBytes) {
		return finish(exitOK, lockPath+" is up to date")
	}
	if !*yes {
		if !interactive {
			return finish(exitRefused, "lockfile not written: review the changes above and re-run with --yes")
		}
		fmt.Fprintf(stderr, "Write %s? [y/N] ", lockPath)
		line, _ := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return finish(exitRefused, "lockfile not written")
		}
	}
	if err := writeFileAtomic(lockPath, data, 0o644); err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	res.Written = true
	return finish(exitOK, "wrote "+lockPath)
}

// observeOnly relaxes what only matters to a model-facing session: the
// servers are launched to be listed, never to be used, so a changed surface
// is recorded rather than ending the session, whatever on_change says.
func observeOnly(p *policy.Policy) {
	for _, s := range p.Servers {
		for _, r := range []*policy.SurfaceRules{&s.Tools, &s.Prompts, &s.Resources} {
			r.OnChange = policy.ChangeBlock
		}
	}
}

// observe launches a server, lists it and returns what it observed as a
// lockfile entry.
func observe(ctx context.Context, v *verify.Verifier, name string) (*policy.LockEntry, error) {
	rep, err := v.Inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	return policy.EntryFromFacts(rep.Facts), nil
}

// readLockfile reads an existing lockfile; a missing one is (nil, nil, nil).
func readLockfile(path string) (*policy.Lock, []byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, &preflight.Error{Class: preflight.ErrConfig, Subject: path, Err: err}
	}
	l, err := policy.ParseLock(data)
	if err != nil {
		return nil, nil, err
	}
	return l, data, nil
}

func writeLockChanges(w io.Writer, changes []lockChange) {
	for _, ch := range changes {
		switch ch.Status {
		case "new":
			fmt.Fprintf(w, "%s  %s\n", colorize(w, colorOK, "NEW"), ch.Server)
		case "unchanged":
			fmt.Fprintf(w, "UNCHANGED  %s\n", ch.Server)
		case "removed":
			fmt.Fprintf(w, "%s  %s (no longer in the policy)\n", colorize(w, colorWarn, "REMOVED"), ch.Server)
		default:
			fmt.Fprintf(w, "%s  %s\n", colorize(w, colorWarn, "CHANGED"), ch.Server)
			writeDrift(w, ch.Drift)
		}
	}
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory is written, synced and renamed over path, so readers see the old
// or the new content, never a mix. perm applies to a new file; an existing
// file keeps its permission bits.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := safefile.WriteAtomic(path, data, perm); err != nil {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: path, Err: err, Hint: "check that the directory is writable"}
	}
	return nil
}
