package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

const mappingPolicy = `version: 1
trust:
  sigstore:
    instance: public-good
servers:
  local:
    source: {file: {path: bin/weather-server}}
    signers: [{issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/acme/w/.github/workflows/r.yml@refs/tags/v1.0.0"}]
  npm-weather:
    source: {npm: {package: "@acme/weather-mcp", version: "1.2.0"}}
    signers: [{issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/acme/w/.github/workflows/r.yml@refs/tags/v1.0.0"}]
  npm-plain:
    source: {npm: {package: "weather-mcp", version: "2.0.0"}}
    signers: [{issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/acme/w/.github/workflows/r.yml@refs/tags/v1.0.0"}]
  oci:
    source: {oci: {image: "ghcr.io/acme/weather:1.2.0"}}
    signers: [{issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/acme/w/.github/workflows/r.yml@refs/tags/v1.0.0"}]
  hub:
    source: {oci: {image: "mcp/fetch:latest"}}
    signers: [{issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/acme/w/.github/workflows/r.yml@refs/tags/v1.0.0"}]
`

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestServerForCommand(t *testing.T) {
	dir := t.TempDir()
	p, err := policy.Parse("preflight.yaml", []byte(mappingPolicy))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "weather-server")
	writeFile(t, bin, "#!/bin/sh\n", 0o700)
	if err := os.Symlink(bin, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "bin", "other-server")
	writeFile(t, other, "#!/bin/sh\n", 0o700)
	writeFile(t, filepath.Join(dir, "node_modules", "@acme", "weather-mcp", "dist", "index.js"), "", 0o600)
	writeFile(t, filepath.Join(dir, "proj", "package.json"), `{"name": "weather-mcp", "version": "2.0.0"}`, 0o600)
	writeFile(t, filepath.Join(dir, "proj", "build", "index.js"), "", 0o600)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(cwd, bin)
	if err != nil {
		t.Fatal(err)
	}
	lookPath := func(name string) (string, error) {
		if name == "weather-server" {
			return bin, nil
		}
		return "", exec.ErrNotFound
	}
	for _, tc := range []struct {
		argv []string
		want string           // server name, when it maps
		note string           // a note that must be printed
		err  *preflight.Class // the failure class, when it does not
		msg  string           // text the failure must contain
	}{
		{argv: []string{bin, "--port", "0"}, want: "local", note: "the policy's arguments"},
		{argv: []string{bin}, want: "local"},
		{argv: []string{filepath.Join(dir, "link")}, want: "local"},
		{argv: []string{"weather-server"}, want: "local"},
		{argv: []string{rel}, want: "local"},
		{argv: []string{other}, err: preflight.ErrPolicy, msg: "add a server entry for it to the policy (source file: {path: " + other},
		{argv: []string{"no-such-server"}, err: preflight.ErrPolicy, msg: "not found on PATH"},
		{argv: []string{"npx", "-y", "@acme/weather-mcp@1.2.0"}, want: "npm-weather"},
		{argv: []string{"npx", "@acme/weather-mcp", "--verbose"}, want: "npm-weather"},
		{argv: []string{"npx", "-y", "@acme/weather-mcp@latest"}, want: "npm-weather", note: "pinned version 1.2.0 runs"},
		{argv: []string{"npx", "-y", "@acme/weather-mcp@1.3.0"}, err: preflight.ErrPolicy, msg: "pins @acme/weather-mcp@1.2.0, the command asks for 1.3.0"},
		{argv: []string{"npx", "--package=weather-mcp", "weather"}, want: "npm-plain"},
		{argv: []string{"npx", "-p", "weather-mcp@2.0.0", "weather"}, want: "npm-plain"},
		{argv: []string{"npm", "exec", "--", "weather-mcp@2.0.0"}, want: "npm-plain"},
		{argv: []string{"npx.cmd", "-y", "weather-mcp"}, want: "npm-plain"},
		{argv: []string{"npx", "-y", "left-pad"}, err: preflight.ErrPolicy, msg: "add a server entry"},
		{argv: []string{"npx", "-c", "echo hi"}, err: preflight.ErrPolicy, msg: "shell command"},
		{argv: []string{"npx", "-y", "github:acme/weather"}, err: preflight.ErrPolicy, msg: "not a registry package"},
		{argv: []string{"node", filepath.Join(dir, "node_modules", "@acme", "weather-mcp", "dist", "index.js")}, want: "npm-weather"},
		{argv: []string{"node", "--enable-source-maps", filepath.Join(dir, "proj", "build", "index.js")}, want: "npm-plain"},
		{argv: []string{"node", "-e", "require('x')"}, err: preflight.ErrPolicy, msg: "not a package file"},
		{argv: []string{"docker", "run", "-i", "--rm", "-e", "API_KEY", "ghcr.io/acme/weather:1.2.0"}, want: "oci"},
		{argv: []string{"docker", "run", "-it", "--name", "w", "--env=A=B", "-v", "/a:/b", "ghcr.io/acme/weather", "serve"}, want: "oci"},
		{argv: []string{"docker", "container", "run", "--rm", "-i", "mcp/fetch"}, want: "hub"},
		{argv: []string{"docker", "run", "-i", "docker.io/mcp/fetch:latest"}, want: "hub"},
		{argv: []string{"podman", "run", "ghcr.io/acme/weather:2.0.0"}, err: preflight.ErrPolicy, msg: "the command asks for tag 2.0.0"},
		{argv: []string{"docker", "run", "ghcr.io/other/thing"}, err: preflight.ErrPolicy, msg: "docker run ghcr.io/other/thing"},
		{argv: []string{"docker", "exec", "c", "server"}, err: preflight.ErrPolicy, msg: "only docker run"},
		{argv: []string{"uvx", "mcp-server-fetch"}, err: preflight.ErrPolicy, msg: "through uvx cannot be verified"},
		{argv: []string{"python3", "server.py"}, err: preflight.ErrPolicy, msg: "through python3"},
	} {
		name, notes, err := serverForCommand(p, dir, tc.argv, lookPath)
		switch {
		case tc.err != nil:
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%q: got %q, %v; want %v containing %q", tc.argv, name, err, tc.err, tc.msg)
			}
		case err != nil || name != tc.want:
			t.Errorf("%q: got %q, %v; want %q", tc.argv, name, err, tc.want)
		case tc.note != "" && !strings.Contains(strings.Join(notes, "\n"), tc.note):
			t.Errorf("%q: notes %q, want one containing %q", tc.argv, notes, tc.note)
		case tc.note == "" && len(notes) > 0:
			t.Errorf("%q: unexpected notes %q", tc.argv, notes)
		}
	}
}

func TestServerForCommandAmbiguous(t *testing.T) {
	p, err := policy.Parse("preflight.yaml", []byte(mappingPolicy+`  npm-again:
    source: {npm: {package: "weather-mcp", version: "2.0.0"}}
    signers: [{issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/acme/w/.github/workflows/r.yml@refs/tags/v1.0.0"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = serverForCommand(p, t.TempDir(), []string{"npx", "-y", "weather-mcp"}, exec.LookPath)
	if !errors.Is(err, preflight.ErrConfig) || !strings.Contains(err.Error(), "npm-again, npm-plain") {
		t.Fatalf("got %v, want ErrConfig naming both servers", err)
	}
}

func TestParseImage(t *testing.T) {
	for in, want := range map[string]imageRef{
		"weather":                        {repo: "docker.io/library/weather"},
		"mcp/fetch:1":                    {repo: "docker.io/mcp/fetch", tag: "1"},
		"localhost:5000/w:2":             {repo: "localhost:5000/w", tag: "2"},
		"ghcr.io/Acme/W@sha256:ab":       {repo: "ghcr.io/acme/w", digest: "sha256:ab"},
		"index.docker.io/library/node:1": {repo: "docker.io/library/node", tag: "1"},
	} {
		if got := parseImage(in); got != want {
			t.Errorf("parseImage(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// TestRunRefusesUnmappedCommand shows that a command without a policy
// entry is refused and never executed.
func TestRunRefusesUnmappedCommand(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t, verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather"})
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "evil-server")
	writeFile(t, script, "#!/bin/sh\ntouch "+marker+"\n", 0o700)
	code, stdout, stderr := runCLI(t, "run", "--policy", pol, "--store", t.TempDir(), "--", script, "--flag")
	if code != exitRefused || stdout != "" {
		t.Fatalf("exit %d, stdout %q, want 1 and nothing", code, stdout)
	}
	for _, want := range []string{"REFUSED", "command " + script + " --flag", "add a server entry"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the unmapped command was executed")
	}
}

func TestRunUsageErrors(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t, verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather"})
	for _, args := range [][]string{
		{"run", "--policy", pol},
		{"run", "--policy", pol, "--server", "weather", "--", "npx", "x"},
		{"run", "--policy", pol, "--mode", "lenient", "--server", "weather"},
		{"run", "--policy", pol, "--format", "yaml", "--server", "weather"},
		{"run", "--server", "weather"},
		{"run", "--policy", filepath.Join(t.TempDir(), "missing.yaml"), "--server", "weather"},
		{"run", "--policy", pol, "--store", t.TempDir(), "--server", "no-such-server"},
	} {
		code, stdout, stderr := runCLI(t, args...)
		if code != exitUsage || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing\n%s", args, code, stdout, stderr)
		}
	}
}

func TestRunRefusedServer(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t, verifytest.PolicyServer{Name: "calendar", Server: "io.github.acme/calendar"})
	code, stdout, stderr := runCLI(t, "run", "--policy", pol, "--store", t.TempDir(), "--server", "calendar")
	if code != exitRefused || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing on stdout", code, stdout)
	}
	if !strings.HasPrefix(stderr, "REFUSED  calendar") || !strings.Contains(stderr, "signer identity not allowed") {
		t.Fatalf("stderr:\n%s", stderr)
	}
}

// goSDKOverRun connects the go-sdk client to runProxy in this process through
// pipes, and returns the session and a function that ends the session and
// returns the exit code and standard error.
func goSDKOverRun(t *testing.T, ctx context.Context, args []string, opts *mcp.ClientOptions) (*mcp.ClientSession, func() (int, string)) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		code := runProxy(ctx, args, inR, outW, stderr)
		outW.Close()
		inR.Close()
		done <- code
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "cli-test", Version: "1"}, opts)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		inW.Close()
		t.Fatalf("connect: %v\nstderr:\n%s", err, stderr.String())
	}
	return cs, func() (int, string) {
		cs.Close()
		select {
		case code := <-done:
			return code, stderr.String()
		case <-time.After(20 * time.Second):
			t.Fatalf("preflight run did not end after stdin closed\n%s", stderr.String())
			return 0, ""
		}
	}
}

// TestRunCommandLine runs a server named by its command line (a file
// source) in this process and completes a session over its stdio.
func TestRunCommandLine(t *testing.T) {
	f := sharedFixture(t)
	pol := f.filePolicy(t, "local-weather", cliWeather, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--policy", pol, "--store", t.TempDir(), "--"}, f.exe)
	args = append(args, verifytest.ServerArgs(cliWeather)...)
	cs, end := goSDKOverRun(t, ctx, args, nil)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_forecast", Arguments: map[string]any{"text": "Lisbon"}})
	if err != nil || toolResultText(res) != "echo: Lisbon" {
		t.Fatalf("call: %v %+v", err, res)
	}
	code, stderr := end()
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{`is server "local-weather" of the policy`, "ALLOWED  local-weather", "tools exposed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
}

// TestRunAuditMode runs a server the policy refuses (wrong signer) with
// --mode audit: it starts, and the run says loudly that nothing was
// enforced, with the findings in the audit log on stderr.
func TestRunAuditMode(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t, verifytest.PolicyServer{Name: "calendar", Server: "io.github.acme/calendar"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, end := goSDKOverRun(t, ctx, []string{"--policy", pol, "--store", t.TempDir(), "--mode", "audit", "--server", "calendar"}, nil)
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	code, stderr := end()
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"WARNING: audit mode", "ALLOWED IN AUDIT MODE DESPITE FINDINGS  calendar", `"msg":"preflight decision"`, "signer"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	if !strings.HasPrefix(stderr, "preflight: WARNING: audit mode") {
		t.Errorf("the audit warning is not the first line:\n%s", stderr)
	}
}

// TestRunRugPullEndsSession: under on_change: end the gate ends the session
// when the server changes a tool, and preflight run exits 1 saying why.
func TestRunRugPullEndsSession(t *testing.T) {
	f := sharedFixture(t)
	pol := f.tufPolicy(t, verifytest.PolicyServer{Name: "notes", Server: "io.github.acme/notes", OnChange: "end"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, end := goSDKOverRun(t, ctx, []string{"--policy", pol, "--store", t.TempDir(), "--server", "notes"}, nil)
	cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "x"}}) //nolint:errcheck // the session may end before the answer
	// Wait until preflight run closes its output: the gate, not the
	// client, must end the session.
	cs.Wait() //nolint:errcheck // a closed connection is what is awaited
	code, stderr := end()
	if code != exitRefused || !strings.Contains(stderr, "tool surface changed") {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
}

func toolResultText(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			return t.Text
		}
	}
	return ""
}

// TestRunInteropGoSDK drives the built preflight binary with the official
// go-sdk client over CommandTransport, as an MCP host would: listing across
// pages, an allowed call, a refused call, sampling from the server, and a
// rug pull in the middle of a session.
func TestRunInteropGoSDK(t *testing.T) {
	f := sharedFixture(t)
	bin := f.cli(t)
	pol := f.tufPolicy(t,
		verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather", Deny: []string{"get_alerts"}},
		verifytest.PolicyServer{Name: "notes", Server: "io.github.acme/notes"},
	)
	store := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	connect := func(t *testing.T, server string, opts *mcp.ClientOptions) (*mcp.ClientSession, *syncBuffer) {
		t.Helper()
		cmd := exec.Command(bin, "run", "--policy", pol, "--store", store, "--server", server)
		stderr := &syncBuffer{}
		cmd.Stderr = stderr
		client := mcp.NewClient(&mcp.Implementation{Name: "interop", Version: "1"}, opts)
		cs, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			t.Fatalf("connect: %v\nstderr:\n%s", err, stderr.String())
		}
		t.Cleanup(func() { cs.Close() })
		return cs, stderr
	}

	t.Run("weather", func(t *testing.T) {
		var sampled []string
		//lint:ignore SA1019 sampling is deprecated only from protocol 2026-07-28; the gate relays the revisions that have it
		sampler := func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			for _, m := range req.Params.Messages {
				if tc, ok := m.Content.(*mcp.TextContent); ok {
					sampled = append(sampled, tc.Text)
				}
			}
			//lint:ignore SA1019 see above
			return &mcp.CreateMessageResult{Content: &mcp.TextContent{Text: "sunny, says the model"}, Model: "test-model", Role: "assistant"}, nil
		}
		//lint:ignore SA1019 see above
		cs, stderr := connect(t, "weather", &mcp.ClientOptions{CreateMessageHandler: sampler})
		// Pagination: the server lists one tool per page; the gate passes
		// the cursors through and filters every page.
		var names []string
		pages := 0
		params := &mcp.ListToolsParams{}
		for {
			res, err := cs.ListTools(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
			}
			if res.NextCursor == "" {
				break
			}
			params = &mcp.ListToolsParams{Cursor: res.NextCursor}
		}
		slices.Sort(names)
		if got := strings.Join(names, ","); got != "ask,get_forecast" || pages < 2 {
			t.Fatalf("listed %q in %d pages; want ask,get_forecast over several pages", got, pages)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_forecast", Arguments: map[string]any{"text": "Lisbon"}})
		if err != nil || toolResultText(res) != "echo: Lisbon" {
			t.Fatalf("allowed call: %v %+v", err, res)
		}
		if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_alerts", Arguments: map[string]any{"text": "x"}}); err == nil {
			t.Fatalf("the denied tool was called: %+v", res)
		} else if !strings.Contains(err.Error(), "get_alerts") {
			t.Fatalf("refusal does not name the tool: %v", err)
		}
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask", Arguments: map[string]any{"text": "weather in Lisbon?"}})
		if err != nil || toolResultText(res) != "sunny, says the model" {
			t.Fatalf("sampling call: %v %+v\n%s", err, res, stderr.String())
		}
		if !slices.Contains(sampled, "weather in Lisbon?") {
			t.Fatalf("the sampling request did not reach the host: %q", sampled)
		}
	})

	t.Run("rug pull", func(t *testing.T) {
		changed := make(chan struct{}, 1)
		cs, stderr := connect(t, "notes", &mcp.ClientOptions{
			ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
				select {
				case changed <- struct{}{}:
				default:
				}
			},
		})
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "buy milk"}}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("tools/list_changed never reached the host\n%s", stderr.String())
		}
		list, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tool := range list.Tools {
			if tool.Name == "add_note" {
				t.Fatal("the changed tool is still listed")
			}
		}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"text": "x"}}); err == nil {
			t.Fatal("the changed tool is still callable")
		}
		if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_notes", Arguments: map[string]any{"text": "x"}}); err != nil || toolResultText(res) != "echo: x" {
			t.Fatalf("an unchanged tool stopped working: %v %+v", err, res)
		}
	})
}

// TestRunSignalStopsServer sends SIGTERM to a running preflight run: the
// server it started is stopped and reaped, and the run exits 0.
func TestRunSignalStopsServer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("finds the child process through /proc")
	}
	f := sharedFixture(t)
	bin := f.cli(t)
	pol := f.tufPolicy(t, verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather"})
	cmd := exec.Command(bin, "run", "--policy", pol, "--store", t.TempDir(), "--server", "weather")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, `"serverInfo"`) {
		t.Fatalf("initialize: %q %v\n%s", line, err, stderr.String())
	}
	children := childPIDs(cmd.Process.Pid)
	if len(children) != 1 {
		t.Fatalf("preflight run has children %v, want the one server", children)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("preflight run: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("preflight run did not exit after SIGTERM\n%s", stderr.String())
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(children[0])); err == nil {
		t.Fatalf("the server process %d outlived preflight run", children[0])
	}
	if !strings.Contains(stderr.String(), "stopped by a signal") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}

// childPIDs lists the processes whose parent is pid, from /proc.
func childPIDs(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name in parentheses may contain spaces; the fields
		// after its closing parenthesis are state, then ppid.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}
