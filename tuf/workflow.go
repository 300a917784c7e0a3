package tuf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Size bounds for metadata whose length no signed metadata states (the
// same defaults as go-tuf's updater), and for root rotations in one
// refresh.
const (
	rootMaxLength      = 512 << 10
	timestampMaxLength = 16 << 10
	snapshotMaxLength  = 2 << 20
	targetsMaxLength   = 5 << 20
	maxRootRotations   = 256
)

// load builds a verified state: the TUF client workflow of the
// specification (5.3 to 5.6), on go-tuf's trustedmetadata, reading through
// the cache so that unchanged files cost no request.
func (c *Client) load(ctx context.Context) (*session, error) {
	tm, err := trustedmetadata.New(c.cfg.Root)
	if err != nil {
		// New verified the pinned root already.
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "tuf.Config.Root", Err: err}
	}
	tm.RefTime = c.cfg.Now()
	s := &session{trusted: tm, offline: c.cfg.Offline}
	if err := c.updateRoot(ctx, s); err != nil {
		return nil, err
	}
	if err := c.updateTimestamp(ctx, s); err != nil {
		return nil, err
	}
	if err := c.updateSnapshot(ctx, s); err != nil {
		return nil, err
	}
	if _, err := c.loadRole(ctx, s, metadata.TARGETS, metadata.ROOT); err != nil {
		return nil, err
	}
	c.log.Debug("TUF metadata verified", "repository", c.cfg.MetadataURL, "offline", s.offline,
		"root", tm.Root.Signed.Version, "timestamp", tm.Timestamp.Signed.Version, "snapshot", tm.Snapshot.Signed.Version)
	return s, nil
}

func rootFile(version int64) string { return fmt.Sprintf("%d.root.json", version) }

// cachedRootFile is where the cache keeps root version v.
func (c *Client) cachedRootFile(version int64) string {
	if c.cfg.Layout == LayoutUnversioned {
		return metadata.ROOT + ".json"
	}
	return rootFile(version)
}

// updateRoot follows root rotations: first those cached by earlier
// refreshes, each verified against the previous root starting from the
// pinned one, then (online) those the repository offers, until it answers
// 404 for the next version. In LayoutUnversioned no cached root is read:
// root.json is made to hold the pinned root, then each verified rotation.
func (c *Client) updateRoot(ctx context.Context, s *session) error {
	tm := s.trusted
	if c.cfg.Layout == LayoutUnversioned {
		if cached, err := c.readCache(c.cachedRootFile(0), rootMaxLength); err != nil || !bytes.Equal(cached, c.cfg.Root) {
			if err := writeCache(c.metaDir, c.cachedRootFile(0), c.cfg.Root); err != nil {
				return err
			}
		}
	}
	for range maxRootRotations {
		if c.cfg.Layout == LayoutUnversioned {
			break
		}
		v := tm.Root.Signed.Version + 1
		data, err := c.readCache(rootFile(v), rootMaxLength)
		if err != nil {
			break
		}
		if _, err := tm.UpdateRoot(data); err != nil {
			c.log.Debug("ignoring a cached root that does not chain from the pinned root", "version", v, "error", err)
			break
		}
	}
	if s.offline {
		return nil
	}
	for range maxRootRotations {
		v := tm.Root.Signed.Version + 1
		data, err := c.fetchMeta(ctx, rootFile(v), rootMaxLength, true)
		if errors.Is(err, preflight.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tm.UpdateRoot(data); err != nil {
			return c.rejected(s, fmt.Sprintf("root.json version %d", v), err)
		}
		if err := writeCache(c.metaDir, c.cachedRootFile(v), data); err != nil {
			return err
		}
		c.log.Debug("TUF root rotated", "version", v)
	}
	return &preflight.Error{Class: preflight.ErrMetadata, Subject: "root.json", Expected: fmt.Sprintf("at most %d root rotations per refresh", maxRootRotations), Found: "more",
		Hint: "the repository offers an implausible number of root versions; contact the publisher"}
}

// updateTimestamp loads the cached timestamp, which guards against
// rollback, then (online) the remote one.
func (c *Client) updateTimestamp(ctx context.Context, s *session) error {
	tm := s.trusted
	const name = metadata.TIMESTAMP + ".json"
	local, err := c.readCache(name, timestampMaxLength)
	if err == nil {
		_, err = tm.UpdateTimestamp(local)
	}
	if s.offline {
		if err != nil {
			return c.offlineErr(s, name, err)
		}
		return nil
	}
	if err != nil {
		c.log.Debug("cached timestamp not usable", "error", err)
	}
	data, err := c.fetchMeta(ctx, name, timestampMaxLength, false)
	if err != nil {
		return err
	}
	if _, err := tm.UpdateTimestamp(data); err != nil {
		if errors.Is(err, &metadata.ErrEqualVersionNumber{}) {
			return nil // nothing new
		}
		return c.rejected(s, name, err)
	}
	return writeCache(c.metaDir, name, data)
}

// updateSnapshot keeps the cached snapshot when it is the one the timestamp
// names; otherwise it downloads that one. A cached snapshot that is not
// the final one still guards the new one against rollback.
func (c *Client) updateSnapshot(ctx context.Context, s *session) error {
	tm := s.trusted
	const name = metadata.SNAPSHOT + ".json"
	local, err := c.readCache(name, snapshotMaxLength)
	if err == nil {
		if _, err = tm.UpdateSnapshot(local, true); err == nil {
			return nil
		}
	}
	if s.offline {
		return c.offlineErr(s, name, err)
	}
	if tm.Timestamp.Signed.IsExpired(tm.RefTime) {
		return c.rejected(s, "timestamp.json", &metadata.ErrExpiredMetadata{Msg: "timestamp.json is expired"})
	}
	meta := tm.Timestamp.Signed.Meta[name]
	if meta == nil {
		return &preflight.Error{Class: preflight.ErrMetadata, Subject: "timestamp.json", Expected: "an entry for snapshot.json", Found: "none", Hint: "the repository's timestamp is malformed; contact the publisher"}
	}
	length := meta.Length
	if length <= 0 {
		length = snapshotMaxLength
	}
	remote := name
	if tm.Root.Signed.ConsistentSnapshot {
		remote = fmt.Sprintf("%d.%s", meta.Version, name)
	}
	data, err := c.fetchMeta(ctx, remote, length, false)
	if err != nil {
		return err
	}
	if _, err := tm.UpdateSnapshot(data, false); err != nil {
		return c.rejected(s, remote, err)
	}
	return writeCache(c.metaDir, name, data)
}

// loadRole returns the verified metadata of a targets role, from the
// session, the cache, or (online) the repository, in that order.
func (c *Client) loadRole(ctx context.Context, s *session, role, parent string) (*metadata.Metadata[metadata.TargetsType], error) {
	tm := s.trusted
	if md, ok := tm.Targets[role]; ok {
		if !md.Signed.IsExpired(tm.RefTime) {
			return md, nil
		}
		delete(tm.Targets, role) // verify again, and report the expiry
	}
	if role != metadata.TARGETS && slices.Contains(metadata.TOP_LEVEL_ROLE_NAMES[:], role) {
		return nil, &preflight.Error{Class: preflight.ErrMetadata, Subject: parent + ".json", Expected: "delegations to roles not named like a top-level role",
			Found: fmt.Sprintf("a delegation to %q", role), Hint: "the repository's delegations are malformed; contact the publisher"}
	}
	name := url.PathEscape(role) + ".json"
	local, err := c.readCache(RoleFileName(role), targetsMaxLength)
	if err == nil {
		var md *metadata.Metadata[metadata.TargetsType]
		if md, err = tm.UpdateDelegatedTargets(local, role, parent); err == nil {
			return md, nil
		}
	}
	if s.offline {
		return nil, c.offlineErr(s, RoleFileName(role), err)
	}
	if tm.Snapshot.Signed.IsExpired(tm.RefTime) {
		return nil, c.rejected(s, "snapshot.json", &metadata.ErrExpiredMetadata{Msg: "snapshot.json is expired"})
	}
	meta := tm.Snapshot.Signed.Meta[role+".json"]
	if meta == nil {
		return nil, &preflight.Error{Class: preflight.ErrMetadata, Subject: "snapshot.json", Expected: "an entry for " + role + ".json", Found: "none",
			Hint: "the snapshot does not list a role its targets delegate to; contact the publisher"}
	}
	length := meta.Length
	if length <= 0 {
		length = targetsMaxLength
	}
	remote := name
	if tm.Root.Signed.ConsistentSnapshot {
		remote = fmt.Sprintf("%d.%s", meta.Version, name)
	}
	data, err := c.fetchMeta(ctx, remote, length, false)
	if err != nil {
		return nil, err
	}
	md, err := tm.UpdateDelegatedTargets(data, role, parent)
	if err != nil {
		return nil, c.rejected(s, remote, err, data)
	}
	if err := writeCache(c.metaDir, RoleFileName(role), data); err != nil {
		return nil, err
	}
	return md, nil
}

// fetchMeta downloads a metadata file. With probe set, a 404 is returned
// as preflight.ErrNotFound (no newer root); otherwise a missing file makes
// the repository unavailable.
func (c *Client) fetchMeta(ctx context.Context, name string, limit int64, probe bool) ([]byte, error) {
	u := c.metaURL + name
	data, err := c.fetcher.Fetch(ctx, u, limit)
	if err == nil && int64(len(data)) > limit {
		err = tooLarge(u, limit, fmt.Sprint(len(data)))
	}
	if err == nil {
		return data, nil
	}
	c.log.Debug("TUF metadata fetch failed", "url", u, "error", err)
	if probe && errors.Is(err, preflight.ErrNotFound) {
		return nil, err
	}
	return nil, fetchErr(ctx, u, err, preflight.ErrMetadata)
}

// fetchErr classifies a Fetcher error. An oversized answer becomes
// oversize (an endless-data attack on signed or bounded content); a
// missing file becomes ErrUnavailable.
func fetchErr(ctx context.Context, subject string, err error, oversize *preflight.Class) error {
	var pe *preflight.Error
	if !errors.As(err, &pe) {
		if ctx.Err() != nil {
			return timeoutErr(subject, ctx.Err())
		}
		return &preflight.Error{Class: preflight.ErrUnavailable, Subject: subject, Err: err}
	}
	switch pe.Class {
	case preflight.ErrMalformed:
		hint := "the repository sent more bytes than the signed metadata allows (an endless-data attack, or a broken mirror); do not use this mirror"
		return reclass(pe, oversize, hint)
	case preflight.ErrNotFound:
		return reclass(pe, preflight.ErrUnavailable, "the repository does not serve a file its signed metadata names; it is incomplete or misconfigured")
	}
	return err
}

// reclass gives a classified error another class. The old error is not
// kept in the chain, so that the result matches one class only.
func reclass(pe *preflight.Error, class *preflight.Class, hint string) error {
	return &preflight.Error{Class: class, Subject: pe.Subject, Expected: pe.Expected, Found: pe.Found, Hint: hint, Err: pe.Err}
}

// offlineErr explains why the cache cannot serve offline: missing, or
// rejected by the workflow (expired, most likely).
func (c *Client) offlineErr(s *session, name string, err error) error {
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return &preflight.Error{Class: preflight.ErrUnavailable, Subject: "TUF cache " + c.cfg.CacheDir, Expected: "a verified " + name, Found: "none",
			Hint: "offline mode needs a cache filled by an online refresh first"}
	}
	var local []byte
	if data, rerr := c.readCache(name, targetsMaxLength); rerr == nil {
		local = data
	}
	return c.rejected(s, "cached "+name, err, local)
}

// rejected classifies an error of the TUF workflow on subject as
// preflight.ErrMetadata, with evidence. data, if given, is the rejected
// document, used to tell when it expired.
func (c *Client) rejected(s *session, subject string, err error, data ...[]byte) error {
	var pe *preflight.Error
	if errors.As(err, &pe) {
		return err
	}
	e := &preflight.Error{Class: preflight.ErrMetadata, Subject: subject, Err: err}
	switch {
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		role, expires := expiry(s.trusted, data)
		if role == "" {
			role = subject
		}
		now := s.trusted.RefTime
		e.Subject = role
		e.Expected = fmt.Sprintf("%s valid at %s", role, now.UTC().Format(time.RFC3339))
		e.Found = "expired at " + expires.UTC().Format(time.RFC3339)
		if expires.IsZero() {
			e.Found = "expired"
		}
		if s.offline {
			e.Hint = fmt.Sprintf("the offline cache has been stale since %s (%s ago); refresh online to renew it, and do not move the clock",
				expires.UTC().Format(time.RFC3339), now.Sub(expires).Round(time.Second))
		} else {
			e.Hint = fmt.Sprintf("%s expired at %s: the repository is frozen or stale (a freeze attack, or a publisher who stopped re-signing); contact the publisher, and do not move the clock",
				role, expires.UTC().Format(time.RFC3339))
		}
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		e.Expected = "signatures by a threshold of the keys trusted for it"
		e.Found = "too few valid signatures (missing, or by unknown keys)"
		e.Hint = "the metadata was not signed by the keys its delegator trusts; do not use this repository until the publisher re-signs it"
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		e.Hint = "the repository served older metadata than this client already trusts (a rollback), or files from different snapshots (mix-and-match); use another mirror or contact the publisher"
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}):
		e.Hint = "the file differs from the length and hashes its snapshot or timestamp lists (mix-and-match or tampered metadata); use another mirror or contact the publisher"
	default:
		e.Hint = "the metadata fails the TUF client workflow; contact the publisher"
	}
	return e
}

// expiry finds which metadata expired, and when: the final root,
// timestamp or snapshot in the trusted set, or else the rejected targets
// document (whose name the caller knows: role is then empty).
func expiry(tm *trustedmetadata.TrustedMetadata, data [][]byte) (string, time.Time) {
	now := tm.RefTime
	switch {
	case tm.Root.Signed.IsExpired(now):
		return "root.json", tm.Root.Signed.Expires
	case tm.Timestamp != nil && tm.Timestamp.Signed.IsExpired(now):
		return "timestamp.json", tm.Timestamp.Signed.Expires
	case tm.Snapshot != nil && tm.Snapshot.Signed.IsExpired(now):
		return "snapshot.json", tm.Snapshot.Signed.Expires
	}
	if len(data) > 0 && data[0] != nil {
		if md, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(data[0]); err == nil {
			return "", md.Signed.Expires
		}
	}
	return "", time.Time{}
}

// RoleFileName is the name under which a client keeps the metadata of a
// targets role in its cache: the role name with every byte outside
// [A-Za-z0-9._-] percent-encoded, and a leading dot too, followed by
// ".json". The result is one path element that is never "." or "..",
// whatever the repository names its roles, and distinct roles get
// distinct names.
func RoleFileName(role string) string {
	return TargetFileName(role) + ".json"
}

// TargetFileName maps a target path to a single file name, for keeping
// targets in a flat directory: every byte outside [A-Za-z0-9._-] and a
// leading "." are percent-encoded (upper-case hex), so the result contains
// no separator, is never "." or ".." or a hidden file, and distinct paths
// get distinct names. An empty path gives "".
func TargetFileName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		ch := name[i]
		switch {
		case ch == '.' && i == 0:
			b.WriteString("%2E")
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9', ch == '.', ch == '_', ch == '-':
			b.WriteByte(ch)
		default:
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}
