package verifytest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TUFOptions configures NewTUFRepository. The zero value is a usable
// repository: one key per top-level role, threshold 1, metadata valid for
// 24 hours, consistent snapshots on.
type TUFOptions struct {
	// Threshold is the signature threshold of the root, targets, snapshot
	// and timestamp roles. Zero means 1.
	Threshold int
	// Keys is the number of keys of each top-level role. Zero means
	// Threshold; it may not be lower than Threshold.
	Keys int
	// Expiry is how long newly signed metadata stays valid. Zero means 24h.
	Expiry time.Duration
	// NoConsistentSnapshot turns consistent snapshots off: metadata is then
	// fetched as ROLE.json and targets by their plain names only.
	NoConsistentSnapshot bool
}

// TUFRepository is an in-memory TUF repository of MCP server metadata, with
// real ed25519 keys and signatures made by go-tuf's metadata package, for
// tests and demos. Serve publishes it over HTTP on loopback (metadata under
// /metadata/, targets under /targets/); WriteDir writes it as static files.
//
// Changes (AddTarget, Delegate, AddDelegatedTarget) are staged until
// Publish. The attack helpers (Rollback, MixAndMatch, Expire, TamperTarget,
// TamperMetadata, SignWithUnknownKey, DropSignatures, RotateRoot without the
// old keys, SignDelegatedOutsidePrefix, SetDelay, SetEndless) each simulate
// one attack from the TUF threat model; they change what is served and
// leave the repository in the attacked state.
//
// A TUFRepository is safe for concurrent use.
type TUFRepository struct {
	mu         sync.Mutex
	threshold  int
	nkeys      int
	expiry     time.Duration
	consistent bool

	// keys holds the signing keys of every role, top-level and delegated.
	keys      map[string][]*tufKey
	root      *metadata.Metadata[metadata.RootType]
	roles     map[string]*metadata.Metadata[metadata.TargetsType] // "targets" and delegated roles
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	dirty     map[string]bool
	// listed is the version of each targets role that the next snapshot
	// lists; it differs from the working copy's only after Rollback.
	listed map[string]int64
	// history holds every signed version of every role: role → version → bytes.
	history map[string]map[int64][]byte

	meta    map[string][]byte // served under /metadata/, by file name
	targets map[string][]byte // served under /targets/, by path

	delays   map[string]time.Duration
	endless  map[string]bool
	requests map[string]int
	log      []string
	srv      *httptest.Server
	closed   chan struct{}
}

type tufKey struct {
	id     string
	key    *metadata.Key
	signer signature.Signer
}

func newTUFKey() (*tufKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := signature.LoadED25519Signer(priv)
	if err != nil {
		return nil, err
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	id, err := key.ID()
	if err != nil {
		return nil, err
	}
	return &tufKey{id: id, key: key, signer: signer}, nil
}

func newTUFKeys(n int) ([]*tufKey, error) {
	keys := make([]*tufKey, n)
	for i := range keys {
		k, err := newTUFKey()
		if err != nil {
			return nil, fmt.Errorf("verifytest: generating a TUF key: %w", err)
		}
		keys[i] = k
	}
	return keys, nil
}

// tufSign replaces md's signatures by signatures of keys and returns the
// serialized metadata.
func tufSign[T metadata.Roles](md *metadata.Metadata[T], keys []*tufKey) ([]byte, error) {
	md.ClearSignatures()
	for _, k := range keys {
		if _, err := md.Sign(k.signer); err != nil {
			return nil, fmt.Errorf("verifytest: signing TUF metadata: %w", err)
		}
	}
	return md.ToBytes(false)
}

var tufTopLevel = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// NewTUFRepository creates a repository with empty top-level targets and
// publishes version 1 of every top-level role.
func NewTUFRepository(opts TUFOptions) (*TUFRepository, error) {
	if opts.Threshold < 0 || opts.Keys < 0 || opts.Expiry < 0 {
		return nil, errors.New("verifytest: TUFOptions: negative Threshold, Keys or Expiry")
	}
	if opts.Threshold == 0 {
		opts.Threshold = 1
	}
	if opts.Keys == 0 {
		opts.Keys = opts.Threshold
	}
	if opts.Keys < opts.Threshold {
		return nil, fmt.Errorf("verifytest: TUFOptions: %d keys cannot meet threshold %d", opts.Keys, opts.Threshold)
	}
	if opts.Expiry == 0 {
		opts.Expiry = 24 * time.Hour
	}
	r := &TUFRepository{
		threshold:  opts.Threshold,
		nkeys:      opts.Keys,
		expiry:     opts.Expiry,
		consistent: !opts.NoConsistentSnapshot,
		keys:       map[string][]*tufKey{},
		roles:      map[string]*metadata.Metadata[metadata.TargetsType]{},
		dirty:      map[string]bool{},
		listed:     map[string]int64{},
		history:    map[string]map[int64][]byte{},
		meta:       map[string][]byte{},
		targets:    map[string][]byte{},
		delays:     map[string]time.Duration{},
		endless:    map[string]bool{},
		requests:   map[string]int{},
		closed:     make(chan struct{}),
	}
	expires := r.expires()
	r.root = metadata.Root(expires)
	r.root.Signed.ConsistentSnapshot = r.consistent
	for _, role := range tufTopLevel {
		keys, err := newTUFKeys(r.nkeys)
		if err != nil {
			return nil, err
		}
		r.keys[role] = keys
		r.setRootRole(role, keys)
	}
	r.roles[metadata.TARGETS] = metadata.Targets(expires)
	r.snapshot = metadata.Snapshot(expires)
	r.timestamp = metadata.Timestamp(expires)
	if err := r.record(metadata.ROOT, 1, r.root, r.keys[metadata.ROOT]); err != nil {
		return nil, err
	}
	if err := r.signRole(metadata.TARGETS, expires, r.keys[metadata.TARGETS], false); err != nil {
		return nil, err
	}
	if err := r.signSnapshot(expires, r.keys[metadata.SNAPSHOT], false); err != nil {
		return nil, err
	}
	if err := r.signTimestamp(expires, r.keys[metadata.TIMESTAMP], false); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *TUFRepository) expires() time.Time {
	return time.Now().UTC().Add(r.expiry).Truncate(time.Second)
}

// setRootRole makes keys the keys of a top-level role in the working root,
// dropping key entries no role uses any more.
func (r *TUFRepository) setRootRole(role string, keys []*tufKey) {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.id
		r.root.Signed.Keys[k.id] = k.key
	}
	r.root.Signed.Roles[role] = &metadata.Role{KeyIDs: ids, Threshold: r.threshold}
	for id := range r.root.Signed.Keys {
		used := false
		for _, rl := range r.root.Signed.Roles {
			used = used || slices.Contains(rl.KeyIDs, id)
		}
		if !used {
			delete(r.root.Signed.Keys, id)
		}
	}
}

// record signs md with keys and serves it under the names a client asks
// for: VERSION.ROLE.json always (root and consistent snapshots) and
// ROLE.json (the latest, and the only name for timestamp.json).
func record[T metadata.Roles](r *TUFRepository, role string, version int64, md *metadata.Metadata[T], keys []*tufKey) error {
	data, err := tufSign(md, keys)
	if err != nil {
		return err
	}
	if r.history[role] == nil {
		r.history[role] = map[int64][]byte{}
	}
	r.history[role][version] = data
	if role != metadata.TIMESTAMP {
		r.meta[fmt.Sprintf("%d.%s.json", version, role)] = data
	}
	r.meta[role+".json"] = data
	return nil
}

func (r *TUFRepository) record(role string, version int64, md *metadata.Metadata[metadata.RootType], keys []*tufKey) error {
	return record(r, role, version, md, keys)
}

// signRole signs the working copy of a targets role, bumping its version
// when bump is set, and makes the next snapshot list it.
func (r *TUFRepository) signRole(role string, expires time.Time, keys []*tufKey, bump bool) error {
	md := r.roles[role]
	if bump {
		md.Signed.Version++
	}
	md.Signed.Expires = expires
	if err := record(r, role, md.Signed.Version, md, keys); err != nil {
		return err
	}
	r.listed[role] = md.Signed.Version
	return nil
}

// signSnapshot signs a snapshot listing r.listed, with the length and
// SHA-256 of each listed version so that a client detects mixed metadata.
func (r *TUFRepository) signSnapshot(expires time.Time, keys []*tufKey, bump bool) error {
	meta := map[string]*metadata.MetaFiles{}
	for role, v := range r.listed {
		meta[role+".json"] = tufMetaFile(v, r.history[role][v])
	}
	r.snapshot.Signed.Meta = meta
	if bump {
		r.snapshot.Signed.Version++
	}
	r.snapshot.Signed.Expires = expires
	if err := record(r, metadata.SNAPSHOT, r.snapshot.Signed.Version, r.snapshot, keys); err != nil {
		return err
	}
	r.listed[metadata.SNAPSHOT] = r.snapshot.Signed.Version
	return nil
}

// signTimestamp signs a timestamp pointing at the listed snapshot version.
func (r *TUFRepository) signTimestamp(expires time.Time, keys []*tufKey, bump bool) error {
	v := r.listed[metadata.SNAPSHOT]
	r.timestamp.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": tufMetaFile(v, r.history[metadata.SNAPSHOT][v])}
	if bump {
		r.timestamp.Signed.Version++
	}
	r.timestamp.Signed.Expires = expires
	return record(r, metadata.TIMESTAMP, r.timestamp.Signed.Version, r.timestamp, keys)
}

func tufMetaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	return &metadata.MetaFiles{Version: version, Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

// reissue signs a new version of role with keys and expiry, then re-signs
// the snapshot and timestamp that lead to it with their real keys, so a
// client reaches the new version through valid online metadata: the
// situation of an attacker (or a broken publisher) that holds the online
// keys but not the key of role.
func (r *TUFRepository) reissue(role string, expires time.Time, keys []*tufKey) error {
	switch role {
	case metadata.ROOT:
		r.root.Signed.Version++
		r.root.Signed.Expires = expires
		return r.record(metadata.ROOT, r.root.Signed.Version, r.root, keys)
	case metadata.TIMESTAMP:
		return r.signTimestamp(expires, keys, true)
	case metadata.SNAPSHOT:
		if err := r.signSnapshot(expires, keys, true); err != nil {
			return err
		}
	default:
		if r.roles[role] == nil {
			return fmt.Errorf("verifytest: unknown TUF role %q", role)
		}
		if err := r.signRole(role, expires, keys, true); err != nil {
			return err
		}
		if err := r.signSnapshot(r.expires(), r.keys[metadata.SNAPSHOT], true); err != nil {
			return err
		}
	}
	return r.signTimestamp(r.expires(), r.keys[metadata.TIMESTAMP], true)
}

// RootJSON returns the latest root.json, the document a client pins.
func (r *TUFRepository) RootJSON() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.meta["root.json"])
}

// AddTarget stages a target signed by the top-level targets role. custom,
// if not nil, becomes the target's "custom" field. It is served from the
// next Publish.
func (r *TUFRepository) AddTarget(name string, data []byte, custom json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addTarget(metadata.TARGETS, name, data, custom)
}

func (r *TUFRepository) addTarget(role, name string, data []byte, custom json.RawMessage) error {
	if err := tufCheckTargetName(name); err != nil {
		return err
	}
	tf, err := metadata.TargetFile().FromBytes(name, data, "sha256")
	if err != nil {
		return err
	}
	if custom != nil {
		c := json.RawMessage(slices.Clone(custom))
		tf.Custom = &c
	}
	r.roles[role].Signed.Targets[name] = tf
	r.dirty[role] = true
	for _, p := range r.targetPaths(name, tf) {
		r.targets[p] = slices.Clone(data)
	}
	return nil
}

func tufCheckTargetName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || slices.Contains(strings.Split(name, "/"), "..") || path.Clean(name) != name {
		return fmt.Errorf("verifytest: invalid TUF target name %q", name)
	}
	return nil
}

// targetPaths returns where a client fetches target name: DIR/SHA256.BASE
// with consistent snapshots, and the plain name in any case.
func (r *TUFRepository) targetPaths(name string, tf *metadata.TargetFiles) []string {
	paths := []string{name}
	if r.consistent {
		dir, base := path.Split(name)
		paths = append(paths, dir+hex.EncodeToString(tf.Hashes["sha256"])+"."+base)
	}
	return paths
}

// Delegate stages a delegation from the top-level targets role to a new
// role with its own keys, trusted only for targets matching paths (TUF
// shell-style patterns such as "acme/*"). A terminating delegation stops
// the search for a matching target at this role.
func (r *TUFRepository) Delegate(role string, paths []string, threshold, keys int, terminating bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if role == "" || slices.Contains(tufTopLevel, role) || strings.ContainsAny(role, "/\\") || role == "." || role == ".." {
		return fmt.Errorf("verifytest: invalid delegated role name %q", role)
	}
	if r.roles[role] != nil {
		return fmt.Errorf("verifytest: role %q is already delegated", role)
	}
	if threshold < 1 || keys < threshold || len(paths) == 0 {
		return fmt.Errorf("verifytest: delegation %q needs paths and 1 <= threshold <= keys", role)
	}
	ks, err := newTUFKeys(keys)
	if err != nil {
		return err
	}
	top := r.roles[metadata.TARGETS]
	if top.Signed.Delegations == nil {
		top.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.id
		top.Signed.Delegations.Keys[k.id] = k.key
	}
	top.Signed.Delegations.Roles = append(top.Signed.Delegations.Roles, metadata.DelegatedRole{
		Name: role, KeyIDs: ids, Threshold: threshold, Terminating: terminating, Paths: slices.Clone(paths),
	})
	r.keys[role] = ks
	md := metadata.Targets(r.expires())
	md.Signed.Version = 0 // the first Publish signs version 1
	r.roles[role] = md
	r.dirty[metadata.TARGETS] = true
	r.dirty[role] = true
	return nil
}

// AddDelegatedTarget stages a target signed by a delegated role. name must
// match the role's delegated paths: see SignDelegatedOutsidePrefix for the
// attack.
func (r *TUFRepository) AddDelegatedTarget(role, name string, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.delegation(role)
	if d == nil {
		return fmt.Errorf("verifytest: %q is not a delegated role", role)
	}
	if ok, err := d.IsDelegatedPath(name); err != nil || !ok {
		return fmt.Errorf("verifytest: role %q is not trusted for %q (paths %q)", role, name, d.Paths)
	}
	return r.addTarget(role, name, data, nil)
}

func (r *TUFRepository) delegation(role string) *metadata.DelegatedRole {
	d := r.roles[metadata.TARGETS].Signed.Delegations
	if d == nil {
		return nil
	}
	for i := range d.Roles {
		if d.Roles[i].Name == role {
			return &d.Roles[i]
		}
	}
	return nil
}

// Publish signs a new version of every targets role changed since the last
// Publish, then a new snapshot and timestamp.
func (r *TUFRepository) Publish() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.publish()
}

func (r *TUFRepository) publish() error {
	expires := r.expires()
	roles := make([]string, 0, len(r.dirty))
	for role := range r.dirty {
		roles = append(roles, role)
	}
	slices.Sort(roles)
	for _, role := range roles {
		if err := r.signRole(role, expires, r.keys[role], true); err != nil {
			return err
		}
	}
	clear(r.dirty)
	if err := r.signSnapshot(expires, r.keys[metadata.SNAPSHOT], true); err != nil {
		return err
	}
	return r.signTimestamp(expires, r.keys[metadata.TIMESTAMP], true)
}

// Rollback simulates a rollback attack on role, replaying version, an
// older signed version kept from history:
//   - "timestamp": the old timestamp.json is served as is;
//   - "snapshot": a new timestamp, validly signed (the attacker holds the
//     online timestamp key), points at the old snapshot;
//   - a targets role: a new snapshot and timestamp, validly signed, list the
//     old version of the role.
//
// A client that trusted a newer version must refuse the result.
func (r *TUFRepository) Rollback(role string, version int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.history[role][version]
	if !ok {
		return fmt.Errorf("verifytest: no version %d of %q was published", version, role)
	}
	switch role {
	case metadata.ROOT:
		return errors.New("verifytest: a client never fetches an older root; roll back another role")
	case metadata.TIMESTAMP:
		r.meta["timestamp.json"] = old
		return nil
	case metadata.SNAPSHOT:
		r.listed[metadata.SNAPSHOT] = version
		r.meta["snapshot.json"] = old
		return r.signTimestamp(r.expires(), r.keys[metadata.TIMESTAMP], true)
	default:
		r.listed[role] = version
		r.meta[role+".json"] = old
		if err := r.signSnapshot(r.expires(), r.keys[metadata.SNAPSHOT], true); err != nil {
			return err
		}
		return r.signTimestamp(r.expires(), r.keys[metadata.TIMESTAMP], true)
	}
}

// MixAndMatch simulates a mix-and-match attack: the older signed version of
// role (snapshot or a targets role) is served where the snapshot or
// timestamp expects the current one, so the metadata a client receives
// comes from different repository states.
func (r *TUFRepository) MixAndMatch(role string, version int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.history[role][version]
	if !ok || role == metadata.ROOT || role == metadata.TIMESTAMP {
		return fmt.Errorf("verifytest: no version %d of %q to mix in", version, role)
	}
	cur := r.listed[role]
	r.meta[fmt.Sprintf("%d.%s.json", cur, role)] = old
	r.meta[role+".json"] = old
	return nil
}

// Expire simulates a freeze attack: role is re-signed (with a new version)
// with an expiry an hour in the past, and the snapshot and timestamp that
// lead to it are re-signed validly, as a mirror replaying stale metadata
// would serve it. For "root" the new root version itself is expired.
func (r *TUFRepository) Expire(role string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	keys, ok := r.keys[role]
	if !ok {
		return fmt.Errorf("verifytest: unknown TUF role %q", role)
	}
	return r.reissue(role, past, keys)
}

// TamperTarget simulates a distribution server that swaps bytes: every path
// of target name serves data, while the signed metadata is unchanged.
func (r *TUFRepository) TamperTarget(name string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, md := range r.roles {
		if tf, ok := md.Signed.Targets[name]; ok {
			for _, p := range r.targetPaths(name, tf) {
				r.targets[p] = slices.Clone(data)
			}
		}
	}
}

// TamperMetadata simulates an attacker editing a metadata file on the
// server without the keys: file (a served name such as "timestamp.json" or
// "2.snapshot.json") is replaced by mutate's result. mutate gets a copy.
func (r *TUFRepository) TamperMetadata(file string, mutate func([]byte) []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.meta[file] = mutate(slices.Clone(r.meta[file]))
}

// SignWithUnknownKey simulates an attacker signing role with keys the
// repository does not trust: a new version of role is signed by as many
// fresh keys as its threshold requires, and the online metadata leading to
// it is re-signed validly (the attacker holds the online keys, not role's).
func (r *TUFRepository) SignWithUnknownKey(role string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.keys[role]; !ok {
		return fmt.Errorf("verifytest: unknown TUF role %q", role)
	}
	keys, err := newTUFKeys(max(r.threshold, r.roleThreshold(role)))
	if err != nil {
		return err
	}
	return r.reissue(role, r.expires(), keys)
}

func (r *TUFRepository) roleThreshold(role string) int {
	if d := r.delegation(role); d != nil {
		return d.Threshold
	}
	return r.threshold
}

// DropSignatures simulates metadata below its signature threshold: a new
// version of role carries only the first keep of its signatures, and the
// online metadata leading to it is re-signed validly.
func (r *TUFRepository) DropSignatures(role string, keep int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, ok := r.keys[role]
	if !ok || keep < 0 || keep > len(keys) {
		return fmt.Errorf("verifytest: cannot keep %d signatures of role %q", keep, role)
	}
	return r.reissue(role, r.expires(), keys[:keep])
}

// RotateRoot publishes a new root version in which the root and timestamp
// keys are replaced by newKeys fresh keys each, and a timestamp signed by
// the new timestamp keys, so that a client must follow the rotation to
// verify anything new. The new root is signed by the new root keys and,
// when signWithOld is set, by the old ones as the TUF specification
// requires; without them the rotation is an attack a client must refuse.
func (r *TUFRepository) RotateRoot(newKeys int, signWithOld bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if newKeys < r.threshold {
		return fmt.Errorf("verifytest: %d new keys cannot meet threshold %d", newKeys, r.threshold)
	}
	rootKeys, err := newTUFKeys(newKeys)
	if err != nil {
		return err
	}
	tsKeys, err := newTUFKeys(newKeys)
	if err != nil {
		return err
	}
	signers := slices.Clone(rootKeys)
	if signWithOld {
		signers = append(signers, r.keys[metadata.ROOT]...)
	}
	r.setRootRole(metadata.ROOT, rootKeys)
	r.setRootRole(metadata.TIMESTAMP, tsKeys)
	r.keys[metadata.ROOT] = rootKeys
	r.keys[metadata.TIMESTAMP] = tsKeys
	if err := r.reissue(metadata.ROOT, r.expires(), signers); err != nil {
		return err
	}
	return r.signTimestamp(r.expires(), tsKeys, true)
}

// SignDelegatedOutsidePrefix simulates a publisher's stolen key used beyond
// its delegation: role signs target name although name is outside the
// paths delegated to it, and the result is published. A TUF client must
// not find the target through role.
func (r *TUFRepository) SignDelegatedOutsidePrefix(role, name string, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.delegation(role) == nil {
		return fmt.Errorf("verifytest: %q is not a delegated role", role)
	}
	if err := r.addTarget(role, name, data, nil); err != nil {
		return err
	}
	return r.publish()
}

// SetDelay simulates a slow-retrieval attack: requests for path (a URL
// path such as "/metadata/timestamp.json") are answered after d.
func (r *TUFRepository) SetDelay(path string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delays[path] = d
}

// SetEndless simulates an endless-data attack: path answers with its
// content followed by filler bytes until the client hangs up, without a
// Content-Length.
func (r *TUFRepository) SetEndless(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endless[path] = true
}

// Requests returns how many requests for path (a URL path such as
// "/metadata/timestamp.json") were served.
func (r *TUFRepository) Requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[path]
}

// RequestLog returns the URL paths of all requests served since the last
// ResetRequests, in order.
func (r *TUFRepository) RequestLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// ResetRequests forgets the requests served so far.
func (r *TUFRepository) ResetRequests() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.requests)
	r.log = nil
}

// Serve starts serving the repository on a loopback address and returns
// its base URL: metadata is at baseURL+"/metadata/", targets at
// baseURL+"/targets/". Calling it again returns the same URL.
func (r *TUFRepository) Serve() (baseURL string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.closed:
		return "", errors.New("verifytest: TUF repository is closed")
	default:
	}
	if r.srv == nil {
		r.srv = httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	}
	return r.srv.URL, nil
}

// Close stops the server, cutting slow and endless responses short. It may
// be called more than once.
func (r *TUFRepository) Close() {
	r.mu.Lock()
	srv := r.srv
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	r.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

func (r *TUFRepository) serveHTTP(w http.ResponseWriter, req *http.Request) {
	p := req.URL.Path
	r.mu.Lock()
	r.requests[p]++
	r.log = append(r.log, p)
	delay, endless := r.delays[p], r.endless[p]
	var data []byte
	var ok bool
	if name, found := strings.CutPrefix(p, "/metadata/"); found {
		data, ok = r.meta[name]
	} else if name, found := strings.CutPrefix(p, "/targets/"); found {
		data, ok = r.targets[name]
	}
	r.mu.Unlock()
	if req.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return
		case <-r.closed:
			return
		}
	}
	if !ok {
		http.NotFound(w, req)
		return
	}
	if !endless {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data)
		return
	}
	w.Write(data)
	filler := make([]byte, 32<<10)
	for i := range filler {
		filler[i] = ' '
	}
	flusher, _ := w.(http.Flusher)
	for {
		select {
		case <-req.Context().Done():
			return
		case <-r.closed:
			return
		default:
		}
		if _, err := w.Write(filler); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// WriteDir writes the repository as static files: DIR/metadata/ and
// DIR/targets/, laid out as Serve serves them, for any static web server.
func (r *TUFRepository) WriteDir(dir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	write := func(sub, name string, data []byte) error {
		p := filepath.Join(dir, sub, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	for name, data := range r.meta {
		if err := write("metadata", name, data); err != nil {
			return err
		}
	}
	for name, data := range r.targets {
		if err := write("targets", name, data); err != nil {
			return err
		}
	}
	return nil
}
