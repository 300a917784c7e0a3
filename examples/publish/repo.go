package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-preflight/preflight/internal/safefile"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// How long newly signed metadata stays valid. The timestamp is the
// shortest: `publish timestamp` must run more often than once a day (from
// cron or CI), or clients refuse the repository as frozen.
var lifetimes = map[string]time.Duration{
	metadata.ROOT:      365 * 24 * time.Hour,
	metadata.TARGETS:   90 * 24 * time.Hour, // and delegated roles
	metadata.SNAPSHOT:  7 * 24 * time.Hour,
	metadata.TIMESTAMP: 24 * time.Hour,
}

// Bounds on files read back from the repository directory.
const (
	maxMetadataFile = 16 << 20
	maxKeyFile      = 64 << 10
	maxRootVersions = 1 << 16
)

// roleNameRE is what a delegated role may be called: a name that is a
// plain file name and URL segment everywhere, with no dot so that key
// files (ROLE.pem, ROLE.2.pem) cannot collide.
var roleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// repo is the signed state of a repository directory:
//
//	DIR/keys/ROLE.pem, ROLE.2.pem, ...   private keys (0600, directory 0700)
//	DIR/repository/metadata/             N.root.json, N.ROLE.json, N.snapshot.json, timestamp.json
//	DIR/repository/targets/              PATH/SHA256.NAME (consistent snapshots)
//
// DIR/repository is what a static host serves; DIR/keys never leaves the
// publisher. Every change writes new versioned files first and
// timestamp.json last, so a host serving the directory during an update
// offers the old state or the new one, never a mix.
type repo struct {
	dir       string
	now       time.Time
	root      *metadata.Metadata[metadata.RootType]
	targets   map[string]*metadata.Metadata[metadata.TargetsType] // "targets" and delegated roles
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
}

func (r *repo) keysDir() string     { return filepath.Join(r.dir, "keys") }
func (r *repo) metadataDir() string { return filepath.Join(r.dir, "repository", "metadata") }
func (r *repo) targetsDir() string  { return filepath.Join(r.dir, "repository", "targets") }

func (r *repo) expires(role string) time.Time {
	d, ok := lifetimes[role]
	if !ok {
		d = lifetimes[metadata.TARGETS]
	}
	return r.now.Add(d).UTC().Truncate(time.Second)
}

// createRepo makes a new repository in dir: one fresh key per top-level
// role and version 1 of their metadata, with consistent snapshots.
func createRepo(dir string, now time.Time) (*repo, error) {
	r := &repo{dir: dir, now: now, targets: map[string]*metadata.Metadata[metadata.TargetsType]{}}
	if entries, err := os.ReadDir(r.keysDir()); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s already holds keys: refusing to create a repository over them", r.keysDir())
	}
	if _, err := os.Stat(r.metadataDir()); err == nil {
		return nil, fmt.Errorf("%s exists: %s already holds a repository", r.metadataDir(), dir)
	}
	if err := os.MkdirAll(r.keysDir(), 0o700); err != nil {
		return nil, err
	}
	for _, d := range []string{r.metadataDir(), r.targetsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	r.root = metadata.Root(r.expires(metadata.ROOT))
	r.root.Signed.ConsistentSnapshot = true
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		key, err := r.generateKey(role, 1)
		if err != nil {
			return nil, err
		}
		if err := r.root.Signed.AddKey(key, role); err != nil {
			return nil, err
		}
	}
	if err := r.writeRoot(); err != nil {
		return nil, err
	}
	top := metadata.Targets(r.expires(metadata.TARGETS))
	top.Signed.Version = 0 // commit signs version 1
	r.targets[metadata.TARGETS] = top
	r.snapshot = metadata.Snapshot(r.expires(metadata.SNAPSHOT))
	r.snapshot.Signed.Version = 0
	r.timestamp = metadata.Timestamp(r.expires(metadata.TIMESTAMP))
	r.timestamp.Signed.Version = 0
	return r, r.commit(metadata.TARGETS)
}

// loadRepo reads the current state of the repository in dir: the newest
// root, then what timestamp.json leads to, each verified by its delegator
// so that nothing edited behind the publisher's back gets signed again.
func loadRepo(dir string, now time.Time) (*repo, error) {
	r := &repo{dir: dir, now: now, targets: map[string]*metadata.Metadata[metadata.TargetsType]{}}
	entries, err := os.ReadDir(r.metadataDir())
	if err != nil {
		return nil, fmt.Errorf("%s is not a repository made by publish init: %w", dir, err)
	}
	var newest int64
	for _, e := range entries {
		if v, ok := strings.CutSuffix(e.Name(), ".root.json"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > newest && n <= maxRootVersions {
				newest = n
			}
		}
	}
	if newest == 0 {
		return nil, fmt.Errorf("%s holds no N.root.json", r.metadataDir())
	}
	if r.root, err = readMetadata(r, metadata.Root(), fmt.Sprintf("%d.root.json", newest)); err != nil {
		return nil, err
	}
	if err := r.root.VerifyDelegate(metadata.ROOT, r.root); err != nil {
		return nil, fmt.Errorf("%d.root.json: %w", newest, err)
	}
	if r.timestamp, err = readMetadata(r, metadata.Timestamp(), "timestamp.json"); err != nil {
		return nil, err
	}
	if err := r.root.VerifyDelegate(metadata.TIMESTAMP, r.timestamp); err != nil {
		return nil, fmt.Errorf("timestamp.json: %w", err)
	}
	sm := r.timestamp.Signed.Meta["snapshot.json"]
	if sm == nil {
		return nil, errors.New("timestamp.json lists no snapshot")
	}
	if r.snapshot, err = readMetadata(r, metadata.Snapshot(), fmt.Sprintf("%d.snapshot.json", sm.Version)); err != nil {
		return nil, err
	}
	if err := r.root.VerifyDelegate(metadata.SNAPSHOT, r.snapshot); err != nil {
		return nil, fmt.Errorf("snapshot.json: %w", err)
	}
	tm := r.snapshot.Signed.Meta["targets.json"]
	if tm == nil {
		return nil, errors.New("snapshot lists no targets.json")
	}
	top, err := readMetadata(r, metadata.Targets(), fmt.Sprintf("%d.targets.json", tm.Version))
	if err != nil {
		return nil, err
	}
	if err := r.root.VerifyDelegate(metadata.TARGETS, top); err != nil {
		return nil, fmt.Errorf("targets.json: %w", err)
	}
	r.targets[metadata.TARGETS] = top
	for _, d := range delegations(top) {
		m := r.snapshot.Signed.Meta[d.Name+".json"]
		if m == nil {
			return nil, fmt.Errorf("snapshot lists no %s.json", d.Name)
		}
		md, err := readMetadata(r, metadata.Targets(), fmt.Sprintf("%d.%s.json", m.Version, d.Name))
		if err != nil {
			return nil, err
		}
		if err := top.VerifyDelegate(d.Name, md); err != nil {
			return nil, fmt.Errorf("%s.json: %w", d.Name, err)
		}
		r.targets[d.Name] = md
	}
	return r, nil
}

func delegations(top *metadata.Metadata[metadata.TargetsType]) []metadata.DelegatedRole {
	if top.Signed.Delegations == nil {
		return nil
	}
	return top.Signed.Delegations.Roles
}

func readMetadata[T metadata.Roles](r *repo, md *metadata.Metadata[T], name string) (*metadata.Metadata[T], error) {
	data, err := safefile.ReadLimited(filepath.Join(r.metadataDir(), name), maxMetadataFile)
	if err != nil {
		return nil, err
	}
	out, err := md.FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// keyFile is the n-th key file of role: ROLE.pem, then ROLE.2.pem, ...
func (r *repo) keyFile(role string, n int) string {
	if n == 1 {
		return filepath.Join(r.keysDir(), role+".pem")
	}
	return filepath.Join(r.keysDir(), fmt.Sprintf("%s.%d.pem", role, n))
}

// generateKey makes the n-th ed25519 key of role and stores it as PKCS #8
// PEM, readable by the owner only. It never overwrites a key.
func (r *repo) generateKey(role string, n int) (*metadata.Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(r.keyFile(role, n), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return metadata.KeyFromPublicKey(pub)
}

// signers loads role's key files and returns a signer for each of them
// whose key is one of keyIDs.
func (r *repo) signers(role string, keyIDs []string) ([]signature.Signer, error) {
	var out []signature.Signer
	for n := 1; ; n++ {
		data, err := safefile.ReadLimited(r.keyFile(role, n), maxKeyFile)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("%s: not a PKCS #8 PEM private key", r.keyFile(role, n))
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.keyFile(role, n), err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an ed25519 key", r.keyFile(role, n))
		}
		key, err := metadata.KeyFromPublicKey(priv.Public())
		if err != nil {
			return nil, err
		}
		id, err := key.ID()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(keyIDs, id) {
			continue // a retired key
		}
		s, err := signature.LoadED25519Signer(priv)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no key of role %q in %s (expected %s)", role, r.keysDir(), r.keyFile(role, 1))
	}
	return out, nil
}

// sign replaces md's signatures with those of role's keys, checks them
// with verify (the delegator's view: threshold and key IDs) and returns
// the serialized metadata.
func sign[T metadata.Roles](r *repo, md *metadata.Metadata[T], role string, keyIDs []string, verify func() error) ([]byte, error) {
	signers, err := r.signers(role, keyIDs)
	if err != nil {
		return nil, err
	}
	md.ClearSignatures()
	for _, s := range signers {
		if _, err := md.Sign(s); err != nil {
			return nil, err
		}
	}
	if err := verify(); err != nil {
		return nil, fmt.Errorf("role %q: the keys in %s do not meet its threshold: %w", role, r.keysDir(), err)
	}
	return md.ToBytes(true)
}

// writeRoot signs the working root with the root keys and writes it as
// N.root.json.
func (r *repo) writeRoot() error {
	data, err := sign(r, r.root, metadata.ROOT, r.root.Signed.Roles[metadata.ROOT].KeyIDs,
		func() error { return r.root.VerifyDelegate(metadata.ROOT, r.root) })
	if err != nil {
		return err
	}
	return writeAtomic(r.metadataDir(), fmt.Sprintf("%d.root.json", r.root.Signed.Version), data, 0o644)
}

// keyIDsOf returns the key IDs trusted for a targets role by its
// delegator.
func (r *repo) keyIDsOf(role string) []string {
	if role == metadata.TARGETS {
		return r.root.Signed.Roles[metadata.TARGETS].KeyIDs
	}
	for _, d := range delegations(r.targets[metadata.TARGETS]) {
		if d.Name == role {
			return d.KeyIDs
		}
	}
	return nil
}

// commit signs a new version of each targets role in roles, then of the
// snapshot and the timestamp, and writes them, timestamp.json last.
func (r *repo) commit(roles ...string) error {
	slices.Sort(roles)
	roles = slices.Compact(roles)
	for _, role := range roles {
		md := r.targets[role]
		md.Signed.Version++
		md.Signed.Expires = r.expires(metadata.TARGETS)
		data, err := sign(r, md, role, r.keyIDsOf(role), func() error {
			if role == metadata.TARGETS {
				return r.root.VerifyDelegate(role, md)
			}
			return r.targets[metadata.TARGETS].VerifyDelegate(role, md)
		})
		if err != nil {
			return err
		}
		if err := writeAtomic(r.metadataDir(), fmt.Sprintf("%d.%s.json", md.Signed.Version, role), data, 0o644); err != nil {
			return err
		}
		if r.snapshot.Signed.Meta == nil {
			r.snapshot.Signed.Meta = map[string]*metadata.MetaFiles{}
		}
		r.snapshot.Signed.Meta[role+".json"] = metaFile(md.Signed.Version, data)
	}
	return r.commitSnapshot()
}

// commitSnapshot signs a new snapshot and timestamp.
func (r *repo) commitSnapshot() error {
	r.snapshot.Signed.Version++
	r.snapshot.Signed.Expires = r.expires(metadata.SNAPSHOT)
	data, err := sign(r, r.snapshot, metadata.SNAPSHOT, r.root.Signed.Roles[metadata.SNAPSHOT].KeyIDs,
		func() error { return r.root.VerifyDelegate(metadata.SNAPSHOT, r.snapshot) })
	if err != nil {
		return err
	}
	if err := writeAtomic(r.metadataDir(), fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version), data, 0o644); err != nil {
		return err
	}
	r.timestamp.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFile(r.snapshot.Signed.Version, data)}
	return r.commitTimestamp()
}

// commitTimestamp signs a new timestamp and writes it: the commit point of
// every change.
func (r *repo) commitTimestamp() error {
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Expires = r.expires(metadata.TIMESTAMP)
	data, err := sign(r, r.timestamp, metadata.TIMESTAMP, r.root.Signed.Roles[metadata.TIMESTAMP].KeyIDs,
		func() error { return r.root.VerifyDelegate(metadata.TIMESTAMP, r.timestamp) })
	if err != nil {
		return err
	}
	return writeAtomic(r.metadataDir(), "timestamp.json", data, 0o644)
}

// metaFile describes signed metadata in the snapshot or timestamp with
// its length and SHA-256, so clients detect files mixed from different
// states.
func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	m := metadata.MetaFile(version)
	m.Length = int64(len(data))
	m.Hashes = metadata.Hashes{"sha256": sum[:]}
	return m
}

// addTargetFile copies the file src into the repository as target name of
// role, under its consistent-snapshot name DIR/SHA256.BASE, and lists it.
func (r *repo) addTargetFile(role, name, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return r.addTarget(role, name, in)
}

// addTarget stores the bytes of rd as target name of role.
func (r *repo) addTarget(role, name string, rd io.Reader) error {
	dir, base := path.Split(name)
	outDir := filepath.Join(r.targetsDir(), filepath.FromSlash(dir))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(outDir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rd)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	sum := h.Sum(nil)
	if err := os.Rename(tmp.Name(), filepath.Join(outDir, fmt.Sprintf("%x.%s", sum, base))); err != nil {
		return err
	}
	tf := metadata.TargetFile()
	tf.Path, tf.Length, tf.Hashes = name, n, metadata.Hashes{"sha256": sum}
	r.targets[role].Signed.Targets[name] = tf
	return nil
}

// readTarget returns the bytes of a listed target of role, checked against
// its signed length and SHA-256.
func (r *repo) readTarget(role, name string) ([]byte, bool, error) {
	tf, ok := r.targets[role].Signed.Targets[name]
	if !ok {
		return nil, false, nil
	}
	dir, base := path.Split(name)
	p := filepath.Join(r.targetsDir(), filepath.FromSlash(dir), fmt.Sprintf("%x.%s", []byte(tf.Hashes["sha256"]), base))
	data, err := safefile.ReadLimited(p, tf.Length)
	if err != nil {
		return nil, true, err
	}
	if sum := sha256.Sum256(data); int64(len(data)) != tf.Length || string(sum[:]) != string(tf.Hashes["sha256"]) {
		return nil, true, fmt.Errorf("%s differs from its signed hash: the repository directory was modified", p)
	}
	return data, true, nil
}

// writeAtomic writes data to dir/name through a temporary file.
func writeAtomic(dir, name string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
