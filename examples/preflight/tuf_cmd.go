package main

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/safefile"
	"github.com/mcp-preflight/preflight/tuf"
)

const tufUsage = `Usage: preflight tuf --metadata-dir DIR init TRUSTED_ROOT_FILE
       preflight tuf --metadata-url URL --metadata-dir DIR [--time T] refresh
       preflight tuf --metadata-url URL --metadata-dir DIR [--time T]
                     --target-name NAME [--target-name NAME...]
                     --target-dir DIR --target-base-url URL download

A TUF client following the client protocol of the TUF conformance suite,
for any static TUF repository (such as one made by examples/publish).

  init      copies TRUSTED_ROOT_FILE into DIR as root.json, the trust anchor.
            No request is made.
  refresh   runs the TUF client workflow from DIR/root.json: root rotations,
            timestamp, snapshot and top-level targets, with version, expiry,
            hash and threshold checks.
  download  refreshes, resolves each target through the delegations and
            writes it into the target directory under a file name made safe
            by percent-encoding; a local copy with matching hashes is kept
            and not downloaded again.

DIR holds exactly the metadata the client has verified, under unversioned
names: root.json, timestamp.json, snapshot.json, targets.json and ROLE.json
for delegated roles (percent-encoded). Each file is written only after it
verified, so the next run starts from a root.json the client trusted.
Protect DIR like the pinned root itself.

Exit status: 0 success, 1 any failure (the reason on stderr).

Flags (in any order, before or after the command):
`

// Bounds on local files the command reads.
const (
	tufMaxRootFile = 512 << 10
)

// tufExitFailure is the protocol's single failure status: usage errors
// exit with it too, so a driver never mistakes one for success.
const tufExitFailure = 1

// tufTargetNames collects repeated --target-name flags.
type tufTargetNames []string

func (n *tufTargetNames) String() string { return fmt.Sprint(*n) }
func (n *tufTargetNames) Set(s string) error {
	if s == "" {
		return errors.New("empty target name")
	}
	*n = append(*n, s)
	return nil
}

// tufFlags are the command's flags.
type tufFlags struct {
	metadataDir, metadataURL string
	targetDir, targetBaseURL string
	targetNames              tufTargetNames
	at                       string
}

// cmdTUF implements `preflight tuf`.
func cmdTUF(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tuf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, tufUsage)
		fs.PrintDefaults()
	}
	var f tufFlags
	fs.StringVar(&f.metadataDir, "metadata-dir", "", "`DIR` holding the trusted metadata")
	fs.StringVar(&f.metadataURL, "metadata-url", "", "base `URL` of the repository's metadata")
	fs.Var(&f.targetNames, "target-name", "target `path` to download (repeatable)")
	fs.StringVar(&f.targetDir, "target-dir", "", "`DIR` for downloaded targets")
	fs.StringVar(&f.targetBaseURL, "target-base-url", "", "base `URL` of the repository's targets")
	fs.StringVar(&f.at, "time", "", "evaluate expiry at this RFC 3339 `time` instead of now")

	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return tufExitFailure
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "preflight tuf: %v\n", err)
		return tufExitFailure
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "preflight tuf: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'preflight tuf --help' for usage.")
		return tufExitFailure
	}
	if len(positional) == 0 {
		return usageErr("want a command: init, refresh or download")
	}
	if f.metadataDir == "" {
		return usageErr("--metadata-dir is required")
	}
	now := time.Now
	if f.at != "" {
		at, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return usageErr("--time: %v", err)
		}
		now = func() time.Time { return at }
	}
	switch cmd, rest := positional[0], positional[1:]; cmd {
	case "init":
		if len(rest) != 1 {
			return usageErr("init wants exactly one TRUSTED_ROOT_FILE, got %d arguments", len(rest))
		}
		if err := tufInit(f.metadataDir, rest[0]); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "trusted root installed in %s\n", f.metadataDir)
		return exitOK
	case "refresh":
		if len(rest) != 0 {
			return usageErr("refresh takes no arguments, got %q", rest)
		}
		if f.metadataURL == "" {
			return usageErr("refresh needs --metadata-url")
		}
		c, err := tufClient(f, now)
		if err != nil {
			return fail(err)
		}
		if err := c.Refresh(ctx); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "metadata verified and stored in %s\n", f.metadataDir)
		return exitOK
	case "download":
		switch {
		case len(rest) != 0:
			return usageErr("download takes no arguments, got %q", rest)
		case f.metadataURL == "" || f.targetBaseURL == "" || f.targetDir == "" || len(f.targetNames) == 0:
			return usageErr("download needs --metadata-url, --target-base-url, --target-dir and at least one --target-name")
		}
		c, err := tufClient(f, now)
		if err != nil {
			return fail(err)
		}
		if err := c.Refresh(ctx); err != nil {
			return fail(err)
		}
		if err := os.MkdirAll(f.targetDir, 0o755); err != nil {
			return fail(&preflight.Error{Class: preflight.ErrStore, Subject: "--target-dir " + f.targetDir, Err: err})
		}
		for _, name := range f.targetNames {
			p, fresh, err := tufDownload(ctx, c, f.targetDir, name)
			if err != nil {
				return fail(err)
			}
			state := "downloaded"
			if !fresh {
				state = "up to date"
			}
			fmt.Fprintf(stdout, "%s: %s %s\n", name, state, p)
		}
		return exitOK
	default:
		return usageErr("unknown command %q: want init, refresh or download", cmd)
	}
}

// tufInit installs the trust anchor. The protocol asks for no checks beyond
// a copy; the file is still bounded and must look like root metadata, so a
// wrong file fails here rather than at the first refresh. Its signatures
// are verified by every refresh.
func tufInit(metadataDir, rootFile string) error {
	data, err := safefile.ReadLimited(rootFile, tufMaxRootFile)
	if err != nil {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "trusted root " + rootFile, Err: err}
	}
	var probe struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &probe); err != nil || probe.Signed.Type != "root" {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "trusted root " + rootFile, Expected: "TUF root metadata", Found: "another document", Err: err,
			Hint: "pass the repository's root.json (for a repository made by examples/publish, its metadata/1.root.json)"}
	}
	if err := os.MkdirAll(metadataDir, 0o700); err != nil {
		return &preflight.Error{Class: preflight.ErrStore, Subject: "--metadata-dir " + metadataDir, Err: err}
	}
	return tufWriteAtomic(metadataDir, "root.json", data, 0o600)
}

// tufClient builds a client whose cache is the metadata directory in the
// unversioned layout, pinned to the root.json found there: the one init
// installed or a later one that the client wrote after verifying it.
func tufClient(f tufFlags, now func() time.Time) (*tuf.Client, error) {
	rootPath := filepath.Join(f.metadataDir, "root.json")
	root, err := safefile.ReadLimited(rootPath, tufMaxRootFile)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: rootPath, Expected: "a trusted root", Found: "none", Err: err,
			Hint: "run 'preflight tuf --metadata-dir DIR init ROOT' first"}
	}
	targetsURL := f.targetBaseURL
	if targetsURL == "" {
		// refresh reads no target; the client only needs a valid URL.
		targetsURL = f.metadataURL
	}
	return tuf.New(tuf.Config{
		MetadataURL: f.metadataURL,
		TargetsURL:  targetsURL,
		Root:        root,
		CacheDir:    f.metadataDir,
		Layout:      tuf.LayoutUnversioned,
		Now:         now,
	})
}

// tufDownload resolves name and makes dir hold its verified bytes under
// tuf.TargetFileName(name). fresh reports whether it was downloaded now.
func tufDownload(ctx context.Context, c *tuf.Client, dir, name string) (path string, fresh bool, err error) {
	t, err := c.Target(ctx, name)
	if err != nil {
		return "", false, err
	}
	file := tuf.TargetFileName(name)
	if len(file) > 255 {
		return "", false, &preflight.Error{Class: preflight.ErrConfig, Subject: "TUF target " + name, Expected: "a file name of at most 255 bytes",
			Found: fmt.Sprintf("%d bytes once percent-encoded", len(file)), Hint: "this target path is too long to store under a single file name"}
	}
	dst := &tufTargetFile{dir: dir, file: file, target: t}
	if p, ok := dst.current(); ok {
		return p, false, nil
	}
	p, err := c.DownloadTarget(ctx, t, dst)
	if err != nil {
		return "", false, err
	}
	return p, true, nil
}

// tufTargetFile is a tuf.TargetStore for one target, kept as one file in a
// flat directory: the same file for every version of the target, replaced
// atomically.
type tufTargetFile struct {
	dir, file string
	target    *tuf.Target
}

// current returns the file when it is a regular file (not a link) that
// has the target's length and every one of its hashes.
func (f *tufTargetFile) current() (string, bool) {
	p := filepath.Join(f.dir, f.file)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.target.Length {
		return "", false
	}
	r, err := os.Open(p)
	if err != nil {
		return "", false
	}
	defer r.Close()
	hs, err := tufHashers(f.target.Hashes)
	if err != nil {
		return "", false
	}
	if _, err := io.Copy(tufMultiWriter(hs), io.LimitReader(r, f.target.Length+1)); err != nil {
		return "", false
	}
	for alg, h := range hs {
		if hex.EncodeToString(h.Sum(nil)) != f.target.Hashes[alg] {
			return "", false
		}
	}
	return p, true
}

// Lookup implements tuf.TargetStore. It checks every hash of the target,
// not only the SHA-256 it is given.
func (f *tufTargetFile) Lookup(sha256Hex string) (string, bool) {
	if f.target.Hashes["sha256"] != sha256Hex {
		return "", false
	}
	return f.current()
}

// Put implements tuf.TargetStore: it writes r to a temporary file in the
// directory, hashing on the way, and renames it into place only when it
// is exactly size bytes with every wanted digest.
func (f *tufTargetFile) Put(ctx context.Context, r io.Reader, limit, size int64, want map[string]string) (string, error) {
	subject := "TUF target " + f.target.Name
	hs, err := tufHashers(want)
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Err: err}
	}
	tmp, err := os.CreateTemp(f.dir, ".download-*")
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close() // a second Close only reports that it is closed
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(io.MultiWriter(tmp, tufMultiWriter(hs)), io.LimitReader(&tufCtxReader{ctx, r}, limit+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return "", &preflight.Error{Class: preflight.ErrTimeout, Subject: subject, Err: err}
	case err != nil:
		return "", err
	case n > limit:
		return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: subject, Expected: fmt.Sprintf("at most %d bytes", limit), Found: "more"}
	case n != size:
		return "", &preflight.Error{Class: preflight.ErrTampered, Subject: subject, Expected: fmt.Sprintf("%d bytes", size), Found: fmt.Sprintf("%d bytes", n)}
	}
	for alg, h := range hs {
		if got := hex.EncodeToString(h.Sum(nil)); got != want[alg] {
			return "", &preflight.Error{Class: preflight.ErrTampered, Subject: subject, Expected: alg + ":" + want[alg], Found: alg + ":" + got,
				Hint: "the repository served other bytes than its signed metadata describes; do not use this mirror"}
		}
	}
	err = tmp.Sync()
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	p := filepath.Join(f.dir, f.file)
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		return "", &preflight.Error{Class: preflight.ErrStore, Subject: subject, Err: err}
	}
	keep = true
	return p, nil
}

// tufHashers returns a hash per algorithm of want; an algorithm other than
// sha256 and sha512 is an error.
func tufHashers(want map[string]string) (map[string]hash.Hash, error) {
	if len(want) == 0 {
		return nil, errors.New("no digests to check")
	}
	hs := make(map[string]hash.Hash, len(want))
	for alg := range want {
		switch alg {
		case "sha256":
			hs[alg] = sha256.New()
		case "sha512":
			hs[alg] = sha512.New()
		default:
			return nil, fmt.Errorf("unsupported hash algorithm %q", alg)
		}
	}
	return hs, nil
}

func tufMultiWriter(hs map[string]hash.Hash) io.Writer {
	ws := make([]io.Writer, 0, len(hs))
	for _, h := range hs {
		ws = append(ws, h)
	}
	return io.MultiWriter(ws...)
}

// tufCtxReader stops a copy when ctx ends.
type tufCtxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *tufCtxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// tufWriteAtomic writes data to dir/name so that a reader sees the old file
// or the new one.
func tufWriteAtomic(dir, name string, data []byte, perm os.FileMode) error {
	p := filepath.Join(dir, name)
	if err := safefile.WriteAtomic(p, data, perm); err != nil {
		return &preflight.Error{Class: preflight.ErrStore, Subject: p, Err: err}
	}
	return nil
}
