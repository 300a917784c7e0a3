package tuf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Target is a target file as signed metadata describes it. Values come
// from Client.Target; the fields are read-only evidence.
type Target struct {
	// Name is the target path in the repository, such as
	// "acme/weather/server.json".
	Name string
	// Length is the exact size in bytes.
	Length int64
	// Hashes maps an algorithm ("sha256", "sha512") to the lower-case hex
	// digest of the bytes.
	Hashes map[string]string
	// Custom is the target's "custom" metadata, if any.
	Custom json.RawMessage
	// SignedBy is the targets role that lists the target: "targets" or
	// a delegated (publisher) role.
	SignedBy string
	// TargetsVersion is the version of SignedBy's metadata.
	TargetsVersion int64
	// Expires is when SignedBy's metadata expires.
	Expires time.Time

	hashPrefixed bool // the repository serves it as DIR/HASH.BASE (consistent snapshots)
}

// maxReadTarget bounds ReadTarget, which holds a target in memory; larger
// targets go through DownloadTarget.
const maxReadTarget = 64 << 20

// Target looks name up through the delegations of the repository, in the
// order the TUF specification prescribes: only roles delegated a path
// matching name are consulted, and a terminating delegation ends the
// search. It refreshes first when this client has no valid state yet (or
// its state expired). A name that no trusted role lists, including a name
// that a delegated role signed outside its paths, is preflight.ErrNotFound.
func (c *Client) Target(ctx context.Context, name string) (*Target, error) {
	if name == "" || strings.HasPrefix(name, "/") || len(name) > 4096 {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "TUF target", Expected: "a relative target path", Found: fmt.Sprintf("%q", name)}
	}
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trusted.RefTime = c.cfg.Now()
	tf, md, role, truncated, err := c.find(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if tf == nil {
		e := &preflight.Error{Class: preflight.ErrNotFound, Subject: "TUF target " + name,
			Hint: "no role trusted for this path lists it: check the name, or ask the publisher to publish it (a role signing outside its delegated paths is ignored)"}
		if truncated {
			e.Hint = fmt.Sprintf("the search stopped after %d targets roles (Config.MaxDelegations)", c.cfg.MaxDelegations)
		}
		return nil, e
	}
	t := &Target{
		Name:           name,
		Length:         tf.Length,
		Hashes:         make(map[string]string, len(tf.Hashes)),
		SignedBy:       role,
		TargetsVersion: md.Signed.Version,
		Expires:        md.Signed.Expires,
		hashPrefixed:   s.trusted.Root.Signed.ConsistentSnapshot,
	}
	for alg, h := range tf.Hashes {
		t.Hashes[alg] = hex.EncodeToString(h)
	}
	if tf.Custom != nil {
		t.Custom = slices.Clone(*tf.Custom)
	}
	if err := t.check(); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMetadata, Subject: "TUF target " + name, Err: err,
			Hint: "the signed metadata describes the target in a way this client cannot verify; contact the publisher"}
	}
	return t, nil
}

// find walks the delegation graph depth-first, in order of appearance, as
// go-tuf's updater does, bounded by MaxDelegations.
func (c *Client) find(ctx context.Context, s *session, name string) (tf *metadata.TargetFiles, md *metadata.Metadata[metadata.TargetsType], role string, truncated bool, err error) {
	type visit struct{ role, parent string }
	stack := []visit{{metadata.TARGETS, metadata.ROOT}}
	visited := map[string]bool{}
	for len(stack) > 0 {
		if len(visited) >= c.cfg.MaxDelegations+1 {
			return nil, nil, "", true, nil
		}
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[v.role] {
			continue
		}
		md, err := c.loadRole(ctx, s, v.role, v.parent)
		if err != nil {
			return nil, nil, "", false, err
		}
		if tf, ok := md.Signed.Targets[name]; ok {
			return tf, md, v.role, false, nil
		}
		visited[v.role] = true
		if md.Signed.Delegations == nil {
			continue
		}
		var children []visit
		for _, r := range md.Signed.Delegations.GetRolesForTarget(name) {
			children = append(children, visit{r.Name, v.role})
			if r.Terminating {
				stack = stack[:0]
				break
			}
		}
		slices.Reverse(children)
		stack = append(stack, children...)
	}
	return nil, nil, "", false, nil
}

// check validates a target's description: a length, and hashes this client
// can verify, at least one of them.
func (t *Target) check() error {
	if t.Length < 0 {
		return fmt.Errorf("negative length %d", t.Length)
	}
	if len(t.Hashes) == 0 {
		return errors.New("no hashes")
	}
	for alg, h := range t.Hashes {
		fn := hashFunc(alg)
		if fn == nil {
			return fmt.Errorf("unsupported hash algorithm %q", alg)
		}
		if b, err := hex.DecodeString(h); err != nil || len(b) != fn().Size() || h != strings.ToLower(h) {
			return fmt.Errorf("malformed %s digest %q", alg, h)
		}
	}
	return nil
}

func hashFunc(alg string) func() hash.Hash {
	switch alg {
	case "sha256":
		return sha256.New
	case "sha512":
		return sha512.New
	}
	return nil
}

// primary returns the algorithm and digest that name the target: SHA-256
// when listed, else the first other one in sorted order.
func (t *Target) primary() (string, string) {
	if h, ok := t.Hashes["sha256"]; ok {
		return "sha256", h
	}
	algs := make([]string, 0, len(t.Hashes))
	for alg := range t.Hashes {
		algs = append(algs, alg)
	}
	slices.Sort(algs)
	return algs[0], t.Hashes[algs[0]]
}

// url returns where the repository serves the target.
func (c *Client) targetURL(t *Target) string {
	dir, base := path.Split(t.Name)
	if t.hashPrefixed {
		_, h := t.primary()
		base = h + "." + base
	}
	var b strings.Builder
	b.WriteString(c.targetsURL)
	for seg := range strings.SplitSeq(dir, "/") {
		if seg != "" {
			b.WriteString(url.PathEscape(seg))
			b.WriteByte('/')
		}
	}
	b.WriteString(url.PathEscape(base))
	return b.String()
}

// verify checks data against the target's length and every hash.
func (t *Target) verify(data []byte) error {
	if int64(len(data)) != t.Length {
		return &preflight.Error{Class: preflight.ErrTampered, Subject: "TUF target " + t.Name, Expected: fmt.Sprintf("%d bytes", t.Length), Found: fmt.Sprintf("%d bytes", len(data)),
			Hint: "the repository served other bytes than its signed metadata describes; do not use this mirror"}
	}
	for alg, want := range t.Hashes {
		h := hashFunc(alg)()
		h.Write(data)
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return &preflight.Error{Class: preflight.ErrTampered, Subject: "TUF target " + t.Name, Expected: alg + ":" + want, Found: alg + ":" + got,
				Hint: "the repository served other bytes than its signed metadata describes; do not use this mirror"}
		}
	}
	return nil
}

// ReadTarget returns the bytes of a small target (a descriptor, a bundle),
// verified against t's length and hashes. It is served from
// CacheDir/targets when a cached copy verifies, so an unchanged target is
// downloaded once; otherwise it is downloaded (bounded by t.Length) and
// cached. Offline, only the cache is used. Bytes that do not match are
// preflight.ErrTampered and are neither returned nor cached.
func (c *Client) ReadTarget(ctx context.Context, t *Target) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "TUF target " + t.Name, Err: err, Hint: "pass a Target returned by Client.Target"}
	}
	if t.Length > maxReadTarget {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "TUF target " + t.Name, Expected: fmt.Sprintf("at most %d bytes for ReadTarget", maxReadTarget),
			Found: fmt.Sprintf("%d bytes", t.Length), Hint: "use DownloadTarget for large targets"}
	}
	alg, digest := t.primary()
	cached := filepath.Join(c.targetsDir, alg+"-"+digest)
	if data, err := readBounded(cached, t.Length); err == nil {
		if t.verify(data) == nil {
			return data, nil
		}
		os.Remove(cached)
	}
	if c.cfg.Offline {
		return nil, &preflight.Error{Class: preflight.ErrUnavailable, Subject: "TUF target " + t.Name, Expected: "a cached copy", Found: "none",
			Hint: "offline mode reads targets cached by an earlier online read"}
	}
	if t.Length == 0 {
		return []byte{}, t.verify(nil)
	}
	u := c.targetURL(t)
	data, err := c.fetcher.Fetch(ctx, u, t.Length)
	if err == nil && int64(len(data)) > t.Length {
		err = tooLarge(u, t.Length, fmt.Sprint(len(data)))
	}
	if err != nil {
		return nil, fetchErr(ctx, u, err, preflight.ErrTampered)
	}
	if err := t.verify(data); err != nil {
		return nil, err
	}
	if err := writeCache(c.targetsDir, alg+"-"+digest, data); err != nil {
		return nil, err
	}
	return data, nil
}

func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// TargetStore is where DownloadTarget puts large targets: a
// content-addressed store such as Preflight's internal store. It must be
// safe for concurrent use.
type TargetStore interface {
	// Lookup returns the path of the complete entry whose SHA-256 is
	// sha256Hex (lower-case), if the store has it.
	Lookup(sha256Hex string) (path string, ok bool)
	// Put copies r into the store, hashing it on the way, reading at most
	// limit+1 bytes. It keeps the entry only when it is exactly size bytes
	// and every digest in want (algorithm → lower-case hex) matches, and
	// otherwise leaves nothing behind. A mismatch is an error matching
	// preflight.ErrTampered, a longer input preflight.ErrMalformed, a
	// failure of the store preflight.ErrStore, and an error returned by r
	// is returned as its cause.
	Put(ctx context.Context, r io.Reader, limit, size int64, want map[string]string) (path string, err error)
}

// DownloadTarget puts a target into dst and returns its path there. A
// target already in dst (by SHA-256) is not downloaded again. The bytes
// stream from the Fetcher (when it is a StreamFetcher) into dst, which
// verifies them against t's length and every hash; nothing is kept when
// they do not match (preflight.ErrTampered). Offline, only dst is looked
// at.
func (c *Client) DownloadTarget(ctx context.Context, t *Target, dst TargetStore) (string, error) {
	if err := t.check(); err != nil {
		return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "TUF target " + t.Name, Err: err, Hint: "pass a Target returned by Client.Target"}
	}
	if dst == nil {
		return "", &preflight.Error{Class: preflight.ErrConfig, Subject: "TUF target " + t.Name, Expected: "a TargetStore", Found: "nil"}
	}
	if h, ok := t.Hashes["sha256"]; ok {
		if p, ok := dst.Lookup(h); ok {
			return p, nil
		}
	}
	if c.cfg.Offline {
		return "", &preflight.Error{Class: preflight.ErrUnavailable, Subject: "TUF target " + t.Name, Expected: "the target in the store", Found: "none",
			Hint: "offline mode uses only targets already in the store"}
	}
	u := c.targetURL(t)
	var body io.ReadCloser
	if sf, ok := c.fetcher.(StreamFetcher); ok {
		rc, err := sf.Open(ctx, u, max(t.Length, 1))
		if err != nil {
			return "", fetchErr(ctx, u, err, preflight.ErrTampered)
		}
		body = rc
	} else {
		data, err := c.fetcher.Fetch(ctx, u, max(t.Length, 1))
		if err != nil {
			return "", fetchErr(ctx, u, err, preflight.ErrTampered)
		}
		body = io.NopCloser(bytes.NewReader(data))
	}
	defer body.Close()
	cr := &countingReader{r: body}
	p, err := dst.Put(ctx, cr, t.Length, t.Length, t.Hashes)
	switch {
	case err == nil:
		return p, nil
	case cr.n > t.Length:
		return "", &preflight.Error{Class: preflight.ErrTampered, Subject: "TUF target " + t.Name, Expected: fmt.Sprintf("%d bytes", t.Length), Found: "more",
			Hint: "the repository sent more bytes than its signed metadata describes (an endless-data attack, or a broken mirror); do not use this mirror", Err: cr.err}
	case cr.err != nil:
		return "", fetchErr(ctx, u, cr.err, preflight.ErrTampered)
	}
	return "", err
}

// countingReader counts the bytes read and keeps the reader's first
// failure, so that DownloadTarget reports the download's error rather
// than the store's view of it.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}
