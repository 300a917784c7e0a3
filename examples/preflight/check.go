package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/mcp-preflight/preflight/verify"
)

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs)
	var servers listFlag
	fs.Var(&servers, "server", "server to check (repeatable; default: every server in the policy)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: preflight check --policy FILE [--lock FILE] [--server NAME]... [--format json]

Verifies every server of the policy (or the named ones) without launching it:
TUF metadata, artifact digests, Sigstore signatures and provenance, policy.

Exit codes: 0 every server allowed; 1 a server refused; 2 usage or environment error.

Examples:
  preflight check --policy preflight.yaml
  preflight check --policy preflight.yaml --server weather --format json
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	v, p, closeLog, err := common.verifier(stderr)
	if err != nil {
		printErr(stderr, err)
		return exitCode(err)
	}
	defer closeLog()
	if len(servers) == 0 {
		for name := range p.Servers {
			servers = append(servers, name)
		}
		sort.Strings(servers)
	}
	code := exitOK
	for _, name := range servers {
		rep, err := v.Check(ctx, name)
		if err != nil {
			if r, ok := verify.ReportOf(err); ok {
				writeReport(stdout, r, common.format)
			}
			printErr(stderr, err)
			code = max(code, exitCode(err))
			continue
		}
		writeReport(stdout, rep, common.format)
	}
	return code
}
