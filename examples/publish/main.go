// Command publish creates and maintains a TUF repository of MCP server
// descriptors on disk, ready to serve from any static host (a bucket, a
// CDN, GitHub Pages), for Preflight's tuf client and any TUF 1.0 client.
//
// An organisation runs one repository as its catalogue of approved
// servers. It holds the top-level keys and delegates to each publisher a
// path prefix (io.github.acme/); the publisher's key can sign targets under
// that prefix only:
//
//	publish init DIR
//	publish delegate DIR --role acme --prefix io.github.acme/ [--threshold N]
//	publish add DIR --role acme --server io.github.acme/weather --version 1.0.0 \
//	    --artifact weather-linux-amd64 --bundle weather-linux-amd64.sigstore.json \
//	    --platform linux/amd64 --args serve --tool-pins tools.json
//	publish timestamp DIR     # from cron, more often than daily
//	publish resign DIR ROLE   # before a role's metadata expires
//
// DIR/keys holds the private keys (ed25519, PKCS #8 PEM, mode 0600) and
// DIR/repository the files to upload: metadata/ (N.root.json, N.ROLE.json,
// N.snapshot.json, timestamp.json, consistent snapshots) and targets/ (each
// target as PATH/SHA256.NAME). Hosts pin metadata/1.root.json.
//
// A server's targets are laid out as the Preflight client expects:
//
//	PREFIX/NAME/server.json        the descriptor: the MCP registry's
//	                               server.json with Preflight's trust
//	                               section under _meta["dev.mcp-preflight/trust"]
//	PREFIX/NAME/VERSION/FILE       the artifacts and their Sigstore bundles
//
// which is why a delegation lists PREFIX*/* and PREFIX*/*/*: in TUF path
// patterns a "*" does not cross a "/". See docs/tuf.md.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mcp-preflight/preflight/internal/safefile"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const usage = `Usage:
  publish init DIR
  publish delegate DIR --role NAME --prefix PREFIX/ [--threshold N]
  publish add DIR --role NAME --server PREFIX/NAME --version V --artifact FILE
              [--bundle FILE]... [--platform OS/ARCH] [--args ARG]...
              [--tool-pins FILE] [--description TEXT]
  publish timestamp DIR
  publish resign DIR ROLE

Creates and maintains a TUF repository of MCP server descriptors. Serve
DIR/repository from any static host; keep DIR/keys private. Hosts pin
DIR/repository/metadata/1.root.json.

Exit status: 0 done, 1 refused or failed, 2 usage error.
`

const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// schemaURL is the MCP registry server.json schema the descriptors name.
const schemaURL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one publish command.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmds := map[string]func(*cmdContext) error{
		"init": cmdInit, "delegate": cmdDelegate, "add": cmdAdd, "timestamp": cmdTimestamp, "resign": cmdResign,
	}
	fn, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "publish: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	c := &cmdContext{name: args[0], fs: flag.NewFlagSet(args[0], flag.ContinueOnError), stdout: stdout, now: time.Now()}
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nFlags of "+args[0]+":\n")
		c.fs.PrintDefaults()
	}
	c.args = args[1:]
	err := fn(c)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "publish %s: %v\nRun 'publish --help' for usage.\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "publish %s: %v\n", args[0], err)
		return exitFailed
	}
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// cmdContext is one invocation: its flags, positional arguments and clock.
type cmdContext struct {
	name   string
	fs     *flag.FlagSet
	args   []string
	stdout io.Writer
	now    time.Time
}

// parse parses flags anywhere among the arguments and returns the
// positional ones, of which it wants exactly n.
func (c *cmdContext) parse(n int, names string) ([]string, error) {
	var positional []string
	for rest := c.args; ; {
		if err := c.fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		if c.fs.NArg() == 0 {
			break
		}
		positional = append(positional, c.fs.Arg(0))
		rest = c.fs.Args()[1:]
	}
	if len(positional) != n {
		return nil, usagef("want %s, got %d arguments", names, len(positional))
	}
	return positional, nil
}

// withLock runs fn while holding DIR/.publish.lock, so two invocations
// never interleave their versions.
func withLock(dir string, fn func() error) error {
	p := filepath.Join(dir, ".publish.lock")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: another publish is running on %s (remove the file if none is)", p, dir)
	}
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(p)
	return fn()
}

func cmdInit(c *cmdContext) error {
	pos, err := c.parse(1, "DIR")
	if err != nil {
		return err
	}
	dir := pos[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return withLock(dir, func() error {
		r, err := createRepo(dir, c.now)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "created a TUF repository in %s\n  serve:  %s\n  pin:    %s\n  keys:   %s (keep private; never upload it)\n",
			dir, filepath.Join(dir, "repository"), filepath.Join(r.metadataDir(), "1.root.json"), r.keysDir())
		return nil
	})
}

// prefixRE accepts clean, relative path prefixes ending in "/", without
// pattern characters.
var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*/$`)

// delegatedPaths are the TUF path patterns delegated for prefix: the
// descriptor PREFIX/NAME/server.json and the files PREFIX/NAME/VERSION/FILE
// ("*" does not cross "/").
func delegatedPaths(prefix string) []string { return []string{prefix + "*/*", prefix + "*/*/*"} }

// prefixOf returns the prefix a delegation made by this program covers.
func prefixOf(d metadata.DelegatedRole) (string, bool) {
	if len(d.Paths) != 2 {
		return "", false
	}
	p, ok := strings.CutSuffix(d.Paths[0], "*/*")
	return p, ok && slices.Equal(d.Paths, delegatedPaths(p))
}

func cmdDelegate(c *cmdContext) error {
	var role, prefix string
	var threshold int
	c.fs.StringVar(&role, "role", "", "`name` of the publisher's role (lower-case letters, digits, - and _)")
	c.fs.StringVar(&prefix, "prefix", "", "registry name `prefix` the role may publish under, ending in /, e.g. io.github.acme/")
	c.fs.IntVar(&threshold, "threshold", 1, "`N` keys are generated and all N must sign the role")
	pos, err := c.parse(1, "DIR")
	if err != nil {
		return err
	}
	switch {
	case !roleNameRE.MatchString(role):
		return usagef("--role %q: want lower-case letters, digits, - and _ (at most 64)", role)
	case slices.Contains(metadata.TOP_LEVEL_ROLE_NAMES[:], role):
		return usagef("--role %q is a top-level role", role)
	case !prefixRE.MatchString(prefix) || strings.Contains(prefix, "/./") || strings.Contains(prefix, "/../") || strings.HasPrefix(prefix, "../"):
		return usagef("--prefix %q: want a clean relative path ending in /, such as io.github.acme/", prefix)
	case threshold < 1 || threshold > 16:
		return usagef("--threshold %d: want 1 to 16", threshold)
	}
	dir := pos[0]
	return withLock(dir, func() error {
		r, err := loadRepo(dir, c.now)
		if err != nil {
			return err
		}
		top := r.targets[metadata.TARGETS]
		for _, d := range delegations(top) {
			if d.Name == role {
				return fmt.Errorf("role %q is already delegated", role)
			}
			if p, ok := prefixOf(d); ok && (strings.HasPrefix(p, prefix) || strings.HasPrefix(prefix, p)) {
				return fmt.Errorf("prefix %q overlaps %q, delegated to %q: a path must have one publisher", prefix, p, d.Name)
			}
		}
		if top.Signed.Delegations == nil {
			top.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
		}
		top.Signed.Delegations.Roles = append(top.Signed.Delegations.Roles, metadata.DelegatedRole{
			Name: role, Threshold: threshold, Terminating: true, Paths: delegatedPaths(prefix),
		})
		for n := 1; n <= threshold; n++ {
			key, err := r.generateKey(role, n)
			if err != nil {
				return err
			}
			if err := top.Signed.AddKey(key, role); err != nil {
				return err
			}
		}
		md := metadata.Targets(r.expires(metadata.TARGETS))
		md.Signed.Version = 0 // commit signs version 1
		r.targets[role] = md
		if err := r.commit(metadata.TARGETS, role); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "delegated %s to role %q (paths %q, threshold %d); its keys are %s\n",
			prefix, role, delegatedPaths(prefix), threshold, r.keyFile(role, 1))
		return nil
	})
}

// stringList collects a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

var (
	serverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	versionRE    = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$`)
	fileNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
)

func cmdAdd(c *cmdContext) error {
	var role, server, version, artifact, platform, toolPins, description string
	var bundles, serverArgs stringList
	c.fs.StringVar(&role, "role", "", "publisher `role` that signs the server")
	c.fs.StringVar(&server, "server", "", "registry `name` of the server, under the role's prefix")
	c.fs.StringVar(&version, "version", "", "`version` being published")
	c.fs.StringVar(&artifact, "artifact", "", "server executable `FILE`")
	c.fs.Var(&bundles, "bundle", "Sigstore bundle `FILE` for the artifact (repeatable)")
	c.fs.StringVar(&platform, "platform", "any", "`os/arch` the artifact runs on, or any")
	c.fs.Var(&serverArgs, "args", "one `argument` hosts pass to the server (repeatable, in order)")
	c.fs.StringVar(&toolPins, "tool-pins", "", "JSON `FILE` mapping tool names to canonical digests (sha256:HEX)")
	c.fs.StringVar(&description, "description", "", "description of the server (default: the previous one, or the name)")
	pos, err := c.parse(1, "DIR")
	if err != nil {
		return err
	}
	if role == "" || server == "" || version == "" || artifact == "" {
		return usagef("--role, --server, --version and --artifact are required")
	}
	if !versionRE.MatchString(version) {
		return usagef("--version %q: want letters, digits, ., +, - and _", version)
	}
	files := append([]string{artifact}, bundles...)
	seen := map[string]bool{}
	for _, f := range files {
		base := filepath.Base(f)
		if !fileNameRE.MatchString(base) {
			return usagef("%q: a target file name must be letters, digits, ., _, + and -", base)
		}
		if seen[base] {
			return usagef("two files are named %q", base)
		}
		seen[base] = true
	}
	var tools map[string]string
	if toolPins != "" {
		data, err := safefile.ReadLimited(toolPins, policy.MaxDescriptorBytes)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &tools); err != nil {
			return fmt.Errorf("--tool-pins %s: want a JSON object of tool name to sha256:HEX: %w", toolPins, err)
		}
	}
	dir := pos[0]
	return withLock(dir, func() error {
		r, err := loadRepo(dir, c.now)
		if err != nil {
			return err
		}
		var deleg *metadata.DelegatedRole
		for _, d := range delegations(r.targets[metadata.TARGETS]) {
			if d.Name == role {
				deleg = &d
			}
		}
		if deleg == nil {
			return fmt.Errorf("role %q is not delegated: run publish delegate first", role)
		}
		prefix, _ := prefixOf(*deleg)
		if name, ok := strings.CutPrefix(server, prefix); !ok || prefix == "" || !serverNameRE.MatchString(name) {
			return fmt.Errorf("server %q is not PREFIX/NAME under role %q's prefix %q", server, role, prefix)
		}
		base := server + "/" + version + "/"
		art := policy.DescriptorArtifact{Platform: platform, Target: base + filepath.Base(artifact), Args: serverArgs}
		for _, b := range bundles {
			art.Bundles = append(art.Bundles, base+filepath.Base(b))
		}
		descName := server + "/server.json"
		desc, err := r.descriptor(role, descName, server, version, description, art, tools)
		if err != nil {
			return err
		}
		for _, name := range append([]string{descName, art.Target}, art.Bundles...) {
			if ok, err := deleg.IsDelegatedPath(name); err != nil || !ok {
				return fmt.Errorf("target %q is outside the paths %q delegated to %q", name, deleg.Paths, role)
			}
		}
		for i, f := range files {
			name := art.Target
			if i > 0 {
				name = art.Bundles[i-1]
			}
			if err := r.addTargetFile(role, name, f); err != nil {
				return err
			}
		}
		if err := r.addTarget(role, descName, bytes.NewReader(desc)); err != nil {
			return err
		}
		if err := r.commit(role); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "published %s %s (%s) signed by %q: %s\n", server, version, platform, role, descName)
		return nil
	})
}

// descriptor writes the server.json for a release: the registry fields and
// Preflight's trust section. Artifacts of other platforms already
// published for the same version are kept; a new version starts afresh.
func (r *repo) descriptor(role, descName, server, version, description string, art policy.DescriptorArtifact, tools map[string]string) ([]byte, error) {
	trust := policy.DescriptorTrust{}
	var packages []json.RawMessage
	old, found, err := r.readTarget(role, descName)
	if err != nil {
		return nil, err
	}
	if found {
		d, err := policy.ParseDescriptor(old)
		if err != nil {
			return nil, fmt.Errorf("the published %s: %w", descName, err)
		}
		if description == "" {
			description = d.Description
		}
		if d.Version == version && d.Trust != nil {
			trust = *d.Trust
			trust.Artifacts = slices.DeleteFunc(trust.Artifacts, func(a policy.DescriptorArtifact) bool { return a.Platform == art.Platform })
			packages = d.Packages
		}
	}
	if description == "" {
		description = "MCP server " + server
	}
	trust.Artifacts = append(trust.Artifacts, art)
	slices.SortFunc(trust.Artifacts, func(a, b policy.DescriptorArtifact) int { return strings.Compare(a.Platform, b.Platform) })
	if tools != nil {
		trust.Tools = tools
	}
	doc := struct {
		Schema      string                     `json:"$schema"`
		Name        string                     `json:"name"`
		Description string                     `json:"description"`
		Version     string                     `json:"version"`
		Packages    []json.RawMessage          `json:"packages,omitempty"`
		Meta        map[string]json.RawMessage `json:"_meta"`
	}{Schema: schemaURL, Name: server, Description: description, Version: version, Packages: packages}
	t, err := json.Marshal(trust)
	if err != nil {
		return nil, err
	}
	doc.Meta = map[string]json.RawMessage{policy.DescriptorTrustKey: t}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	// Hosts parse the descriptor strictly: refuse to publish one they
	// would refuse.
	if _, err := policy.ParseDescriptor(data); err != nil {
		return nil, err
	}
	return data, nil
}

func cmdTimestamp(c *cmdContext) error {
	pos, err := c.parse(1, "DIR")
	if err != nil {
		return err
	}
	return withLock(pos[0], func() error {
		r, err := loadRepo(pos[0], c.now)
		if err != nil {
			return err
		}
		if err := r.commitSnapshot(); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "snapshot %d and timestamp %d signed; the timestamp expires at %s\n",
			r.snapshot.Signed.Version, r.timestamp.Signed.Version, r.timestamp.Signed.Expires.Format(time.RFC3339))
		return nil
	})
}

func cmdResign(c *cmdContext) error {
	pos, err := c.parse(2, "DIR and ROLE")
	if err != nil {
		return err
	}
	dir, role := pos[0], pos[1]
	return withLock(dir, func() error {
		r, err := loadRepo(dir, c.now)
		if err != nil {
			return err
		}
		switch {
		case role == metadata.ROOT:
			r.root.Signed.Version++
			r.root.Signed.Expires = r.expires(metadata.ROOT)
			err = r.writeRoot()
		case role == metadata.TIMESTAMP:
			err = r.commitTimestamp()
		case role == metadata.SNAPSHOT:
			err = r.commitSnapshot()
		case r.targets[role] != nil:
			err = r.commit(role)
		default:
			return fmt.Errorf("no role %q in %s", role, path.Clean(dir))
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "role %q re-signed\n", role)
		return nil
	})
}
