package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mcp-preflight/preflight/policy"
)

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const help = `Usage:
  preflight policy lint [--format json] FILE
                                report every problem in a policy file as FILE:LINE:COLUMN: message
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
		fs := flag.NewFlagSet("policy lint", flag.ContinueOnError)
		fs.SetOutput(stderr)
		format := fs.String("format", "text", "output format: text or json")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 || (*format != "text" && *format != "json") {
			fmt.Fprint(stderr, help)
			return exitUsage
		}
		file := fs.Arg(0)
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "preflight: %v\n", err)
			return exitUsage
		}
		problems := policy.Lint(file, data)
		if *format == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(struct {
				MediaType string           `json:"mediaType"`
				File      string           `json:"file"`
				Problems  []policy.Problem `json:"problems"`
			}{"application/vnd.dev.mcp-preflight.policy-lint+json;version=1", file, append([]policy.Problem{}, problems...)})
		} else {
			for _, p := range problems {
				fmt.Fprintln(stdout, p.String())
			}
		}
		if len(problems) > 0 {
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", file, len(problems))
			return exitRefused
		}
		fmt.Fprintf(stderr, "%s: ok\n", file)
		return exitOK
	}
	fmt.Fprint(stderr, help)
	return exitUsage
}
