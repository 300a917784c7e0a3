package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
)

const wrapConfigHelp = `Usage: preflight wrap-config FILE [--policy FILE] [--preflight PATH] [--dry-run] [--format json]

Rewrites an MCP client configuration so that every stdio server starts
through 'preflight run': Claude Desktop (claude_desktop_config.json) and
Claude Code (.mcp.json) and Cursor (.cursor/mcp.json) under "mcpServers",
VS Code (.vscode/mcp.json) under "servers". An entry with a "command" becomes

  {"command": "<preflight>", "args": ["run", "--policy", "<policy>", "--",
   <original command>, <original args>...], "env": <unchanged>, ...}

Remote entries (with a "url") and entries already wrapped are left alone,
so running it twice changes nothing; every other field and the order of keys
are kept. The file must be plain JSON (no comments).

Before writing, a backup FILE.bak-<timestamp> is made; the file is then
replaced atomically. --dry-run prints the change as a diff and writes nothing.
When the policy exists, each wrapped command is matched with its server entry
and commands without one are named: preflight run refuses them until the
policy has an entry for them. The server receives only the environment
variables the policy names (env, set_env), whatever the entry's "env" says.

Exit codes: 0 rewritten, or nothing to do; 2 usage or environment error.

Examples:
  preflight wrap-config ~/Library/Application\ Support/Claude/claude_desktop_config.json \
      --policy ~/.config/preflight/preflight.yaml --dry-run
  preflight wrap-config .vscode/mcp.json --policy preflight.yaml --preflight /usr/local/bin/preflight

Flags:
`

// wrapResult is the JSON output of preflight wrap-config.
type wrapResult struct {
	File    string        `json:"file"`
	Policy  string        `json:"policy"`
	Wrapped []wrappedItem `json:"wrapped"`
	Skipped []skippedItem `json:"skipped"`
	Written bool          `json:"written"`
	Backup  string        `json:"backup,omitempty"`
	Diff    string        `json:"diff,omitempty"`
}

type wrappedItem struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	// Server is the policy server the command maps to; Problem says why
	// there is none (preflight run will refuse the entry).
	Server  string `json:"server,omitempty"`
	Problem string `json:"problem,omitempty"`
}

type skippedItem struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

func cmdWrapConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wrap-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyPath := fs.String("policy", "", "trust policy the wrapped servers run under (default: preflight/preflight.yaml in the user config directory)")
	self := fs.String("preflight", "", "path of the preflight binary the configuration will start (default: this executable)")
	dryRun := fs.Bool("dry-run", false, "print the change as a diff and write nothing")
	format := fs.String("format", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprint(stderr, wrapConfigHelp)
		fs.PrintDefaults()
	}
	// Flags may come before or after FILE.
	var files []string
	for {
		if code, done := parseFlags(fs, args); done {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 || (*format != "text" && *format != "json") {
		fs.Usage()
		return exitUsage
	}
	file := files[0]
	pol, err := defaultPolicyPath(*policyPath)
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	exe, err := preflightPath(*self, stderr)
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	fi, err := os.Stat(file)
	if err != nil {
		printErr(stderr, &preflight.Error{Class: preflight.ErrConfig, Subject: file, Err: err})
		return exitUsage
	}
	data, err := os.ReadFile(file)
	if err != nil {
		printErr(stderr, &preflight.Error{Class: preflight.ErrConfig, Subject: file, Err: err})
		return exitUsage
	}
	out, res, err := wrapConfig(data, exe, pol)
	if err != nil {
		printErr(stderr, &preflight.Error{Class: preflight.ErrConfig, Subject: file, Err: err,
			Hint: "wrap-config reads plain JSON with an mcpServers or servers object; remove comments and trailing commas"})
		return exitUsage
	}
	res.File = file
	annotate(res, pol)
	changed := !bytes.Equal(out, data)
	if changed {
		res.Diff = unifiedDiff(file, file+" (wrapped)", string(data), string(out))
	}
	if changed && !*dryRun {
		backup := fmt.Sprintf("%s.bak-%s", file, time.Now().UTC().Format("20060102T150405.000000000Z"))
		if err := writeBackup(backup, data, fi.Mode().Perm()); err != nil {
			printErr(stderr, err)
			return exitUsage
		}
		if err := writeFileAtomic(file, out, fi.Mode().Perm()); err != nil {
			printErr(stderr, err)
			return exitUsage
		}
		res.Written, res.Backup = true, backup
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		enc.Encode(res)
		return exitOK
	}
	if *dryRun && changed {
		io.WriteString(stdout, res.Diff)
	}
	for _, w := range res.Wrapped {
		if w.Server != "" {
			fmt.Fprintf(stderr, "wrapped  %s  (policy server %q)\n", w.Name, w.Server)
		} else {
			fmt.Fprintf(stderr, "wrapped  %s  %s: %s\n", w.Name, colorize(stderr, colorWarn, "WARNING"), w.Problem)
		}
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(stderr, "skipped  %s  (%s)\n", s.Name, s.Reason)
	}
	switch {
	case !changed:
		fmt.Fprintf(stderr, "preflight: %s: nothing to wrap\n", file)
	case *dryRun:
		fmt.Fprintf(stderr, "preflight: dry run: %s not written\n", file)
	default:
		fmt.Fprintf(stderr, "preflight: wrote %s (backup %s)\n", file, res.Backup)
	}
	return exitOK
}

func defaultPolicyPath(p string) (string, error) {
	if p == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "--policy", Err: err, Hint: "pass --policy FILE"}
		}
		p = filepath.Join(dir, "preflight", "preflight.yaml")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "--policy", Err: err}
	}
	return abs, nil
}

// preflightPath is the absolute path the rewritten configuration starts.
func preflightPath(p string, stderr io.Writer) (string, error) {
	if p == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "--preflight", Err: err, Hint: "pass --preflight PATH"}
		}
		if strings.Contains(filepath.ToSlash(exe), "/go-build") {
			fmt.Fprintf(stderr, "preflight: WARNING: %s is a temporary go run build; pass --preflight with an installed binary\n", exe)
		}
		p = exe
	} else if !strings.ContainsRune(p, '/') && !strings.ContainsRune(p, filepath.Separator) {
		found, err := exec.LookPath(p)
		if err != nil {
			return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "--preflight", Err: err}
		}
		p = found
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "--preflight", Err: err}
	}
	return abs, nil
}

// annotate matches every wrapped command with its policy server, when the
// policy can be read.
func annotate(res *wrapResult, policyPath string) {
	data, err := os.ReadFile(policyPath)
	var p *policy.Policy
	if err == nil {
		p, err = policy.Parse(policyPath, data)
	}
	for i := range res.Wrapped {
		w := &res.Wrapped[i]
		if err != nil {
			w.Problem = "the policy cannot be read yet (" + err.Error() + "); preflight run refuses every server until it can"
			continue
		}
		name, _, merr := serverForCommand(p, filepath.Dir(policyPath), w.Command, exec.LookPath)
		if merr != nil {
			w.Problem = merr.Error()
			continue
		}
		w.Server = name
	}
}

func writeBackup(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err == nil {
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: path, Err: err, Hint: "the backup could not be written; nothing was changed"}
	}
	return nil
}

// wrapConfig rewrites the stdio servers of an MCP client configuration.
func wrapConfig(data []byte, exe, policyPath string) ([]byte, *wrapResult, error) {
	root, err := decodeObject(data)
	if err != nil {
		return nil, nil, err
	}
	res := &wrapResult{Policy: policyPath, Wrapped: []wrappedItem{}, Skipped: []skippedItem{}}
	found := false
	for _, key := range []string{"mcpServers", "servers"} {
		i := root.index(key)
		if i < 0 {
			continue
		}
		found = true
		servers, err := decodeObject(root[i].value)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", key, err)
		}
		for j, m := range servers {
			entry, err := decodeObject(m.value)
			if err != nil {
				res.Skipped = append(res.Skipped, skippedItem{m.key, "not a JSON object"})
				continue
			}
			wrapped, item, reason := wrapEntry(entry, exe, policyPath)
			if reason != "" {
				res.Skipped = append(res.Skipped, skippedItem{m.key, reason})
				continue
			}
			item.Name = m.key
			res.Wrapped = append(res.Wrapped, item)
			servers[j].value = wrapped.marshal()
		}
		root[i].value = servers.marshal()
	}
	if !found {
		return nil, nil, errors.New(`no "mcpServers" or "servers" object`)
	}
	if len(res.Wrapped) == 0 {
		return data, res, nil
	}
	var b bytes.Buffer
	if err := json.Indent(&b, root.marshal(), "", indentOf(data)); err != nil {
		return nil, nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), res, nil
}

// wrapEntry returns the wrapped form of one server entry, or the reason it
// is left alone.
func wrapEntry(entry object, exe, policyPath string) (object, wrappedItem, string) {
	ci := entry.index("command")
	if ci < 0 {
		if entry.index("url") >= 0 {
			return nil, wrappedItem{}, "remote server"
		}
		return nil, wrappedItem{}, "no command"
	}
	var command string
	if err := json.Unmarshal(entry[ci].value, &command); err != nil || command == "" {
		return nil, wrappedItem{}, "command is not a string"
	}
	var args []string
	ai := entry.index("args")
	if ai >= 0 {
		if err := json.Unmarshal(entry[ai].value, &args); err != nil {
			return nil, wrappedItem{}, "args is not a list of strings"
		}
	}
	if isWrapped(command, args, exe) {
		return nil, wrappedItem{}, "already wrapped"
	}
	argv := append([]string{command}, args...)
	newArgs := append([]string{"run", "--policy", policyPath, "--"}, argv...)
	out := append(object(nil), entry...)
	out[ci].value = jsonValue(exe)
	if ai >= 0 {
		out[ai].value = jsonValue(newArgs)
	} else {
		out = append(out[:ci+1], append(object{{key: "args", value: jsonValue(newArgs)}}, out[ci+1:]...)...)
	}
	return out, wrappedItem{Command: argv}, ""
}

// isWrapped recognises an entry that already starts preflight run.
func isWrapped(command string, args []string, exe string) bool {
	if len(args) == 0 || args[0] != "run" {
		return false
	}
	base := strings.TrimSuffix(strings.ToLower(filepath.Base(command)), ".exe")
	return command == exe || base == "preflight"
}

func jsonValue(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v) //nolint:errcheck // strings and string slices always encode
	return bytes.TrimRight(b.Bytes(), "\n")
}

// indentOf returns the indentation unit of a JSON document: the leading
// white space of its first indented line, two spaces if it has none.
func indentOf(data []byte) string {
	for _, line := range bytes.Split(data, []byte("\n"))[1:] {
		trimmed := bytes.TrimLeft(line, " \t")
		if n := len(line) - len(trimmed); n > 0 && len(trimmed) > 0 {
			return string(line[:n])
		}
	}
	return "  "
}

// object is a JSON object with its members in document order, so that a
// rewrite keeps unknown fields and the order of keys.
type object []member

type member struct {
	key   string
	value json.RawMessage
}

// maxConfigBytes bounds the configuration files wrap-config reads.
const maxConfigBytes = 16 << 20

func decodeObject(data []byte) (object, error) {
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("%d bytes, more than the limit of %d", len(data), maxConfigBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var o object
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o = append(o, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the top-level object")
	}
	return o, nil
}

func (o object) index(key string) int {
	for i, m := range o {
		if m.key == key {
			return i
		}
	}
	return -1
}

func (o object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonValue(m.key))
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// unifiedDiff renders the line differences between a and b in the unified
// format with three lines of context.
func unifiedDiff(nameA, nameB, a, b string) string {
	la, lb := splitLines(a), splitLines(b)
	ops := diffLines(la, lb)
	const context = 3
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		// A hunk runs from context lines before its first change to context
		// lines after its last; changes at most 2*context lines apart share
		// one hunk.
		start, last := max(i-context, 0), i
		for j := i + 1; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				if j-last-1 > 2*context {
					break
				}
				last = j
			}
		}
		end := min(last+context+1, len(ops))
		var aLen, bLen int
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				aLen++
			}
			if op.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(ops[start].a, aLen), hunkRange(ops[start].b, bLen))
		for _, op := range ops[start:end] {
			line := ""
			if op.kind == '+' {
				line = lb[op.b]
			} else {
				line = la[op.a]
			}
			out.WriteByte(op.kind)
			out.WriteString(line)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// diffOp is one line of an edit script: ' ' kept, '-' removed from a,
// '+' added from b; a and b are the line's position in each input.
type diffOp struct {
	kind byte
	a, b int
}

// diffLines computes a shortest edit script by longest common subsequence
// after trimming the common prefix and suffix. Configuration files are
// small; beyond maxDiffCells the middle is shown as replaced.
func diffLines(a, b []string) []diffOp {
	const maxDiffCells = 4 << 20
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	var ops []diffOp
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{' ', i, i})
	}
	n, m := len(ma), len(mb)
	if n*m > maxDiffCells {
		for i := range ma {
			ops = append(ops, diffOp{'-', pre + i, pre})
		}
		for j := range mb {
			ops = append(ops, diffOp{'+', pre + n, pre + j})
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		lcs := make([][]int, n+1)
		for i := range lcs {
			lcs[i] = make([]int, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, diffOp{' ', pre + i, pre + j})
				i++
				j++
			case j < m && (i == n || lcs[i][j+1] > lcs[i+1][j]):
				ops = append(ops, diffOp{'+', pre + i, pre + j})
				j++
			default:
				ops = append(ops, diffOp{'-', pre + i, pre + j})
				i++
			}
		}
	}
	for k := 0; k < suf; k++ {
		ops = append(ops, diffOp{' ', len(a) - suf + k, len(b) - suf + k})
	}
	return ops
}
