package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mcp-preflight/preflight/policy"
)

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const help = `Usage:
  preflight policy lint FILE    report every problem in a policy file as FILE:LINE:COLUMN: message
  preflight policy schema       print the JSON Schema of the policy format

Exit codes: 0 clean; 1 problems found; 2 usage error.

Examples:
  preflight policy lint preflight.yaml
  preflight policy schema > preflight.schema.json
`
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, help)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "schema":
		stdout.Write(policy.Schema())
		return exitOK
	case "lint":
		if len(args) != 2 {
			fmt.Fprint(stderr, help)
			return exitUsage
		}
		data, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintf(stderr, "preflight: %v\n", err)
			return exitUsage
		}
		problems := policy.Lint(args[1], data)
		for _, p := range problems {
			fmt.Fprintln(stdout, p.String())
		}
		if len(problems) > 0 {
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", args[1], len(problems))
			return exitRefused
		}
		fmt.Fprintf(stderr, "%s: ok\n", args[1])
		return exitOK
	}
	fmt.Fprint(stderr, help)
	return exitUsage
}
