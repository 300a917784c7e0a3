package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
)

const runHelp = `Usage:
  preflight run --policy FILE [flags] --server NAME
  preflight run --policy FILE [flags] -- COMMAND [ARGS...]

Verifies a server of the policy, starts exactly the verified bytes and relays
MCP between this process's stdin/stdout and the server through the tool gate,
until stdin ends, the server exits or SIGINT/SIGTERM arrives (the server is
then stopped and reaped). Standard output carries only the protocol; every
human line, the report and the audit log go to standard error (or --log).

With a command after --, Preflight recognises what it would start and runs
the policy server with that source instead (the command itself never runs):
  a path or a name on PATH     the server whose source.file.path is that file
  npx [-y] PKG[@VERSION]       the server whose source.npm.package is PKG
  node SCRIPT                  the npm server of the package holding SCRIPT
  docker|podman run ... IMAGE  the server whose source.oci.image is IMAGE
A command no server matches is refused: add a server entry for it.

--mode audit overrides the policy's mode for this run: findings are logged
(to stderr unless --log says otherwise) and the server starts anyway.

Exit codes: 0 the session ended normally (stdin closed, server exited, or a
signal); 1 refused before launch, or ended by the gate (rug pull with
on_change: end); 2 usage or environment error.

Examples:
  preflight run --policy ~/.config/preflight/preflight.yaml --server weather
  preflight run --policy preflight.yaml -- npx -y @acme/weather-mcp@1.2.0
  preflight run --policy preflight.yaml --mode audit --log audit.jsonl -- ./bin/weather-server

Flags:
`

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runProxy(ctx, args, interruptible(os.Stdin), stdout, stderr)
}

// interruptible returns a reader of f that the gate can close, so that a
// session ended by a signal does not wait for the host's next line. A pipe
// (what MCP hosts give a stdio server) is switched to non-blocking mode and
// read through Go's poller, which Close interrupts; anything else is copied
// through an in-process pipe, leaving only the copying goroutine blocked
// until the process exits.
func interruptible(f *os.File) io.ReadCloser {
	if r := pollable(f); r != nil {
		return r
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, f)
		pw.CloseWithError(err)
	}()
	return pr
}

// runProxy is preflight run with its standard input as a parameter.
func runProxy(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs)
	server := fs.String("server", "", "policy name of the server to run")
	mode := fs.String("mode", "", "override the policy's mode for this run: audit or enforce")
	fs.Usage = func() {
		fmt.Fprint(stderr, runHelp)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args); done {
		return code
	}
	command := fs.Args()
	if (*server == "") == (len(command) == 0) {
		fmt.Fprintln(stderr, "preflight run: give either --server NAME or a command after --, not both")
		return exitUsage
	}
	if common.format != "text" && common.format != "json" {
		fmt.Fprintf(stderr, "preflight run: --format %q: want text or json\n", common.format)
		return exitUsage
	}
	p, err := common.loadPolicy()
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	switch policy.Mode(*mode) {
	case "":
	case policy.ModeAudit:
		p.Mode = policy.ModeAudit
		fmt.Fprintln(stderr, colorize(stderr, colorWarn, "preflight: WARNING: audit mode (--mode audit): the policy is NOT enforced for this run; every finding is logged and the server starts anyway"))
		if common.logFile == "" {
			common.logFile = "-"
		}
	case policy.ModeEnforce:
		p.Mode = policy.ModeEnforce
	default:
		fmt.Fprintf(stderr, "preflight run: --mode %q: want audit or enforce\n", *mode)
		return exitUsage
	}
	name := *server
	if len(command) > 0 {
		var notes []string
		name, notes, err = serverForCommand(p, filepath.Dir(common.policy), command, exec.LookPath)
		for _, n := range notes {
			fmt.Fprintf(stderr, "preflight: note: %s\n", n)
		}
		if err != nil {
			printErr(stderr, err)
			return exitCode(err)
		}
		fmt.Fprintf(stderr, "preflight: %s is server %q of the policy\n", shellQuote(command), name)
	}
	lock, err := common.loadLock()
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	v, closeLog, err := common.newVerifier(p, lock, stderr)
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	defer closeLog()
	rep, err := v.Proxy(ctx, name, stdin, stdout)
	if r, ok := verify.ReportOf(err); ok {
		rep = r
	}
	if rep != nil {
		writeReport(stderr, rep, common.format)
	}
	switch {
	case err != nil && rep == nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "preflight: interrupted before the server was started")
		return exitUsage
	case err != nil:
		printErr(stderr, err)
		return exitCode(err)
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "preflight: stopped by a signal; the server was stopped")
	}
	return exitOK
}

// parseFlags parses args; done is true when the command should return code
// at once (help asked for, or a usage error already printed).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		return exitUsage, true
	}
	return exitOK, false
}

// launchTarget is what a command line would start, as far as Preflight can
// tell without running it.
type launchTarget struct {
	kind string // "file", "npm" or "oci"

	path string // file: absolute path of the executable

	pkg, version string // npm: package name and the version or tag asked for, if any

	image string // oci: the image reference as given
}

func (t launchTarget) String() string {
	switch t.kind {
	case "npm":
		if t.version != "" {
			return "npm package " + t.pkg + "@" + t.version
		}
		return "npm package " + t.pkg
	case "oci":
		return "OCI image " + t.image
	}
	return "executable " + t.path
}

// serverForCommand returns the name of the policy server whose source is
// what argv would start, with notes on what differs from the command (the
// policy's version and arguments are the ones used). A command no server
// matches is refused (preflight.ErrPolicy); one that several servers match,
// or that cannot be recognised, is an ErrConfig failure.
func serverForCommand(p *policy.Policy, policyDir string, argv []string, lookPath func(string) (string, error)) (string, []string, error) {
	cmdline := shellQuote(argv)
	t, err := recognise(argv, lookPath)
	if err != nil {
		return "", nil, &preflight.Error{Class: preflight.ErrPolicy, Subject: "command " + cmdline, Err: err,
			Hint: "add a server entry with a verifiable source (file, npm, oci or tuf) to the policy and run it with --server NAME"}
	}
	var names, notes, near []string
	for _, name := range slices.Sorted(maps.Keys(p.Servers)) {
		s := p.Servers[name]
		ok, note, nearMiss := matchSource(s.Source, policyDir, t)
		if nearMiss != "" {
			near = append(near, fmt.Sprintf("server %q: %s", name, nearMiss))
		}
		if !ok {
			continue
		}
		names = append(names, name)
		if note != "" {
			notes = append(notes, fmt.Sprintf("server %q: %s", name, note))
		}
		if t.kind == "file" && !slices.Equal(argv[1:], s.Args) {
			notes = append(notes, fmt.Sprintf("server %q: the policy's arguments %s are used, not %s", name, shellQuote(s.Args), shellQuote(argv[1:])))
		}
	}
	switch len(names) {
	case 0:
		e := &preflight.Error{Class: preflight.ErrPolicy, Subject: "command " + cmdline,
			Expected: "a server entry in the policy for the " + t.String(), Found: "none",
			Hint: "add a server entry for it to the policy (source " + sourceHint(t) + ", signers, tools), then run it again"}
		if len(near) > 0 {
			e.Found = strings.Join(near, "; ")
		}
		return "", nil, e
	case 1:
		return names[0], notes, nil
	}
	return "", nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "command " + cmdline,
		Expected: "one server entry for the " + t.String(), Found: "servers " + strings.Join(names, ", "),
		Hint: "choose one with --server NAME instead of the command"}
}

func sourceHint(t launchTarget) string {
	switch t.kind {
	case "npm":
		return "npm: {package: " + t.pkg + ", version: ...}"
	case "oci":
		return "oci: {image: " + t.image + "}"
	}
	return "file: {path: " + t.path + "}"
}

// matchSource says whether src is the source of t; nearMiss explains a
// source of the same package or image that differs in version or tag.
func matchSource(src policy.Source, policyDir string, t launchTarget) (ok bool, note, nearMiss string) {
	switch {
	case t.kind == "file" && src.File != nil:
		return sameFile(resolvePath(policyDir, src.File.Path), t.path), "", ""
	case t.kind == "npm" && src.NPM != nil:
		if src.NPM.Package != t.pkg {
			return false, "", ""
		}
		switch {
		case t.version == "" || t.version == src.NPM.Version:
			return true, "", ""
		case exactVersion(t.version):
			return false, "", "pins " + t.pkg + "@" + src.NPM.Version + ", the command asks for " + t.version
		}
		return true, "the command asks for " + t.pkg + "@" + t.version + "; the policy's pinned version " + src.NPM.Version + " runs", ""
	case t.kind == "oci" && src.OCI != nil:
		want, got := parseImage(src.OCI.Image), parseImage(t.image)
		if want.repo != got.repo {
			return false, "", ""
		}
		if got.tag != "" && got.tag != want.tag {
			return false, "", "pins " + src.OCI.Image + ", the command asks for tag " + got.tag
		}
		if got.digest != "" && src.OCI.Digest != "" && !strings.EqualFold(got.digest, src.OCI.Digest) {
			return false, "", "pins digest " + src.OCI.Digest + ", the command asks for " + got.digest
		}
		return true, "", ""
	}
	return false, "", ""
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	abs, err := filepath.Abs(filepath.Join(dir, p))
	if err != nil {
		return filepath.Join(dir, p)
	}
	return abs
}

// sameFile compares two paths by the file they name (symbolic links and
// hard links included), or by their clean form when either is missing.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}

// exactVersion reports whether v is an exact semantic version rather than a
// dist-tag or a range.
func exactVersion(v string) bool {
	core, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), "-")
	core, _, _ = strings.Cut(core, "+")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// launchers that start code Preflight cannot verify yet; naming them keeps
// the refusal from pointing at the interpreter binary.
var unsupportedLaunchers = []string{"uvx", "uv", "pipx", "python", "python3", "bunx", "bun", "deno", "pnpm", "yarn", "sh", "bash", "zsh", "cmd", "powershell", "pwsh"}

// recognise works out what argv would start.
func recognise(argv []string, lookPath func(string) (string, error)) (launchTarget, error) {
	if len(argv) == 0 || argv[0] == "" {
		return launchTarget{}, errors.New("empty command")
	}
	base := strings.ToLower(filepath.Base(argv[0]))
	for _, ext := range []string{".exe", ".cmd", ".bat"} {
		base = strings.TrimSuffix(base, ext)
	}
	switch base {
	case "npx":
		return recogniseNPX(argv[1:])
	case "npm":
		if len(argv) > 1 && (argv[1] == "exec" || argv[1] == "x") {
			return recogniseNPX(argv[2:])
		}
		return launchTarget{}, errors.New("npm is recognised only as npm exec PKG")
	case "node", "nodejs":
		return recogniseNode(argv[1:])
	case "docker", "podman":
		return recogniseContainer(argv[1:])
	}
	if slices.Contains(unsupportedLaunchers, base) {
		return launchTarget{}, fmt.Errorf("servers started through %s cannot be verified yet", base)
	}
	p := argv[0]
	if !strings.ContainsRune(p, filepath.Separator) && !strings.ContainsRune(p, '/') {
		found, err := lookPath(p)
		if err != nil {
			return launchTarget{}, fmt.Errorf("%s is not a file and not found on PATH: %w", p, err)
		}
		p = found
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return launchTarget{}, err
	}
	return launchTarget{kind: "file", path: abs}, nil
}

// recogniseNPX reads npx's arguments: flags, then the package to run, or
// the package named by -p/--package.
func recogniseNPX(args []string) (launchTarget, error) {
	var pkg string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-y" || a == "--yes" || a == "-q" || a == "--quiet" || a == "--no" || a == "--no-install" || a == "--":
		case a == "-p" || a == "--package":
			if i+1 >= len(args) {
				return launchTarget{}, errors.New("npx " + a + " without a package")
			}
			i++
			pkg = args[i]
		case strings.HasPrefix(a, "--package="):
			pkg = strings.TrimPrefix(a, "--package=")
		case a == "-c" || a == "--call" || strings.HasPrefix(a, "--call="):
			return launchTarget{}, errors.New("npx --call runs a shell command, which cannot be verified")
		case strings.HasPrefix(a, "-"):
			// Other npm options (--registry=..., --prefer-offline) do not
			// change which package is meant.
		default:
			if pkg == "" {
				pkg = a
			}
			return npmTarget(pkg)
		}
	}
	if pkg != "" {
		return npmTarget(pkg)
	}
	return launchTarget{}, errors.New("npx without a package")
}

func npmTarget(spec string) (launchTarget, error) {
	if strings.HasPrefix(spec, ".") || strings.HasPrefix(spec, "/") || strings.Contains(spec, ":") {
		return launchTarget{}, fmt.Errorf("%q is a local path, URL or git reference, not a registry package", spec)
	}
	name, version := spec, ""
	if i := strings.LastIndex(spec, "@"); i > 0 {
		name, version = spec[:i], spec[i+1:]
	}
	if name == "" || strings.HasPrefix(name, "@") && !strings.Contains(name, "/") {
		return launchTarget{}, fmt.Errorf("%q is not an npm package name", spec)
	}
	return launchTarget{kind: "npm", pkg: name, version: version}, nil
}

// recogniseNode finds the script node would run and the npm package it
// belongs to: the directory after the last node_modules, else the name in the
// nearest package.json.
func recogniseNode(args []string) (launchTarget, error) {
	script := ""
	for i := 0; i < len(args) && script == ""; i++ {
		a := args[i]
		switch {
		case a == "-e" || a == "--eval" || a == "-p" || a == "--print" || a == "-" || a == "-i":
			return launchTarget{}, errors.New("node " + a + " runs code that is not a package file")
		case a == "-r" || a == "--require" || a == "--import" || a == "--loader" || a == "--experimental-loader" || a == "--env-file" || a == "-C" || a == "--conditions":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			script = a
		}
	}
	if script == "" {
		return launchTarget{}, errors.New("node without a script")
	}
	abs, err := filepath.Abs(script)
	if err != nil {
		return launchTarget{}, err
	}
	slash := filepath.ToSlash(abs)
	if i := strings.LastIndex(slash, "/node_modules/"); i >= 0 {
		rest := strings.Split(slash[i+len("/node_modules/"):], "/")
		name := rest[0]
		if strings.HasPrefix(name, "@") && len(rest) > 1 {
			name += "/" + rest[1]
		}
		return npmTarget(name)
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if name, ok := packageName(filepath.Join(dir, "package.json")); ok {
			return npmTarget(name)
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	return launchTarget{}, fmt.Errorf("%s is not part of an npm package (no node_modules directory or package.json with a name)", script)
}

// packageName reads the name of a package.json, bounded to 1 MiB.
func packageName(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	var pj struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&pj); err != nil || pj.Name == "" {
		return "", false
	}
	return pj.Name, true
}

// dockerBoolFlags are the flags of docker/podman run that take no value.
var dockerBoolFlags = []string{
	"--rm", "--init", "--privileged", "--read-only", "--detach", "--interactive", "--tty", "--publish-all",
	"--no-healthcheck", "--oom-kill-disable", "--sig-proxy", "--quiet", "--replace", "--rmi", "--help",
}

// recogniseContainer finds the image of docker/podman [container] run.
func recogniseContainer(args []string) (launchTarget, error) {
	if len(args) > 0 && args[0] == "container" {
		args = args[1:]
	}
	if len(args) == 0 || args[0] != "run" {
		return launchTarget{}, errors.New("only docker run IMAGE is recognised")
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return launchTarget{kind: "oci", image: args[i+1]}, nil
			}
		case strings.HasPrefix(a, "--"):
			if !strings.Contains(a, "=") && !slices.Contains(dockerBoolFlags, a) {
				i++ // --name VALUE
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// Short flags: a cluster of boolean letters (-it, -d, -P) or one
			// flag with its value (-e KEY=V, -v A:B, -eKEY=V).
			if strings.Trim(a[1:], "itdPq") != "" && len(a) == 2 {
				i++
			}
		default:
			return launchTarget{kind: "oci", image: a}, nil
		}
	}
	return launchTarget{}, errors.New("docker run without an image")
}

type imageRef struct{ repo, tag, digest string }

// parseImage splits an image reference and normalises Docker Hub names
// (weather → docker.io/library/weather).
func parseImage(ref string) imageRef {
	var r imageRef
	ref, r.digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, r.tag = ref[:i], ref[i+1:]
	}
	first, _, hasSlash := strings.Cut(ref, "/")
	switch {
	case !hasSlash:
		ref = "docker.io/library/" + ref
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		ref = "docker.io/" + ref
	case first == "index.docker.io":
		ref = "docker.io/" + strings.TrimPrefix(ref, "index.docker.io/")
	}
	r.repo = strings.ToLower(ref)
	return r
}

// shellQuote renders argv for messages, quoting what a shell would split.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
