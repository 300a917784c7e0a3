package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
)

const checkHelp = `Usage: preflight check --policy FILE [--lock FILE] [--server NAME]... [--live[=false]] [--format json]

Verifies every server of the policy (or the named ones) without exposing it
to a model: TUF metadata, artifact digests, Sigstore signatures and
provenance, the policy, and the lockfile (default preflight.lock beside the
policy, when present).

Lockfile drift: the artifact digest, version, signer and source commit are
compared for every server with a lockfile entry. The tool, prompt and
resource surface can only be compared by starting the server and listing
it; that is the live check. By default it runs for exactly the servers whose
lockfile entry records a surface; --live starts every server, --live=false
none. A live check starts the verified server, lists it and stops it; no
tool is called.

Exit codes: 0 every server allowed and matching its lockfile entry; 1 a
server refused or drifted from the lockfile; 2 usage or environment error.

Examples:
  preflight check --policy preflight.yaml
  preflight check --policy preflight.yaml --server weather --format json
  preflight check --policy preflight.yaml --live=false     # never start a server

Flags:
`

// checkMediaType identifies the JSON output of preflight check.
const checkMediaType = "application/vnd.dev.mcp-preflight.check+json;version=1"

// checkOutput is the JSON output of preflight check.
type checkOutput struct {
	MediaType string        `json:"mediaType"`
	ExitCode  int           `json:"exitCode"`
	Servers   []checkResult `json:"servers"`
}

// checkResult is the outcome for one server. Verdict is "allowed",
// "refused", "drift" or "error"; Report is missing only for errors that
// stopped verification before a decision.
type checkResult struct {
	Server    string             `json:"server"`
	Verdict   string             `json:"verdict"`
	Live      bool               `json:"live"`
	Report    *verify.Report     `json:"report,omitempty"`
	Drift     []policy.DriftItem `json:"drift,omitempty"`
	Error     string             `json:"error,omitempty"`
	ErrorKind string             `json:"errorKind,omitempty"` // "security" or "operational"
}

// liveFlag is --live: unset (decide per server), true or false.
type liveFlag struct{ set, value bool }

func (l *liveFlag) String() string {
	if !l.set {
		return "auto"
	}
	return strconv.FormatBool(l.value)
}

func (l *liveFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	l.set, l.value = true, v
	return nil
}

func (l *liveFlag) IsBoolFlag() bool { return true }

// for says whether a server with this lockfile entry is checked live.
func (l *liveFlag) forEntry(e *policy.LockEntry) bool {
	if l.set {
		return l.value
	}
	return e != nil && (e.Tools != nil || e.Prompts != nil || e.Resources != nil)
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs)
	var servers listFlag
	fs.Var(&servers, "server", "server to check (repeatable; default: every server in the policy)")
	var live liveFlag
	fs.Var(&live, "live", "start servers to compare their surface with the lockfile (default: the servers whose lockfile entry records one)")
	fs.Usage = func() {
		fmt.Fprint(stderr, checkHelp)
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
	lock, err := common.loadLock()
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	if len(servers) == 0 {
		servers = slices.Sorted(maps.Keys(p.Servers))
	}
	// A live check lists the surface to compare it, so a change is
	// recorded as drift instead of ending the listing session.
	observeOnly(p)
	v, closeLog, err := common.newVerifier(p, lock, stderr)
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	defer closeLog()
	out := checkOutput{MediaType: checkMediaType, Servers: []checkResult{}}
	for _, name := range servers {
		var entry *policy.LockEntry
		if lock != nil {
			entry = lock.Servers[name]
		}
		res := checkServer(ctx, v, name, entry, live.forEntry(entry))
		out.Servers = append(out.Servers, res)
		code := exitOK
		switch res.Verdict {
		case "refused", "drift":
			code = exitRefused
		case "error":
			code = exitUsage
		}
		out.ExitCode = max(out.ExitCode, code)
		if common.format == "json" {
			continue
		}
		if res.Report != nil {
			verdict := ""
			if res.Verdict == "drift" {
				verdict = "DRIFT"
			}
			writeReportText(stdout, res.Report, verdict)
			writeDrift(stdout, res.Drift)
		}
		if res.Error != "" {
			kind := "error"
			if res.ErrorKind == "security" {
				kind = "REFUSED"
			}
			fmt.Fprintf(stderr, "preflight: %s: %s\n", kind, res.Error)
		}
	}
	if common.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	}
	return out.ExitCode
}

// checkServer verifies one server, live or not, and compares it with its
// lockfile entry (nil when it has none).
func checkServer(ctx context.Context, v *verify.Verifier, name string, entry *policy.LockEntry, live bool) checkResult {
	res := checkResult{Server: name, Live: live}
	var err error
	if live {
		res.Report, err = v.Inspect(ctx, name)
	} else {
		res.Report, err = v.Check(ctx, name)
	}
	if r, ok := verify.ReportOf(err); ok {
		res.Report = r
	}
	if res.Report != nil && entry != nil {
		res.Drift = policy.Drift(entry, policy.EntryFromFacts(res.Report.Facts))
	}
	switch {
	case err != nil:
		res.Error = err.Error()
		res.Verdict, res.ErrorKind = "error", "operational"
		if errors.Is(err, preflight.ErrSecurity) {
			res.Verdict, res.ErrorKind = "refused", "security"
		}
	case len(res.Drift) > 0:
		res.Verdict = "drift"
	default:
		res.Verdict = "allowed"
	}
	return res
}
