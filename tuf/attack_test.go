package tuf_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// TestAttacks runs the TUF attack matrix. Each case starts from a
// repository with a top-level target and a publisher's delegated target,
// optionally lets the client trust it first (warm), applies one attack and
// asserts the class of the failure, go-tuf's error kind in the chain where
// one applies, and that nothing was cached or stored.
func TestAttacks(t *testing.T) {
	descriptor := []byte(`{"name":"io.example/weather"}`)
	binary := bytes.Repeat([]byte{0x7f, 'E', 'L', 'F'}, 512)
	type attack struct {
		opts    verifytest.TUFOptions
		warm    bool // the client refreshes before the attack
		attack  func(*verifytest.TUFRepository) error
		fetcher *tuf.HTTPFetcher
		target  string // what to look up; default top.json
		op      string // "refresh", "target" (default), "read" or "download"
		class   *preflight.Class
		tufErr  error // go-tuf error kind expected in the chain
		message string
	}
	cases := map[string]attack{
		"rollback timestamp": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.Rollback("timestamp", 2) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrBadVersionNumber{}},
		"rollback snapshot": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.Rollback("snapshot", 2) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrBadVersionNumber{}},
		"rollback targets": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.Rollback("targets", 1) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrBadVersionNumber{}},
		"rollback delegated role": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.Rollback("acme", 1) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrBadVersionNumber{}},
		"freeze: expired timestamp": {attack: func(r *verifytest.TUFRepository) error { return r.Expire("timestamp") },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrExpiredMetadata{}, message: "timestamp.json expired at"},
		"freeze: expired snapshot": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.Expire("snapshot") },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrExpiredMetadata{}, message: "snapshot.json expired at"},
		"freeze: expired targets": {attack: func(r *verifytest.TUFRepository) error { return r.Expire("targets") },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrExpiredMetadata{}, message: "expired at"},
		"freeze: expired root": {attack: func(r *verifytest.TUFRepository) error { return r.Expire("root") },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrExpiredMetadata{}, message: "root.json expired at"},
		"freeze: expired delegated role": {attack: func(r *verifytest.TUFRepository) error { return r.Expire("acme") },
			target: "acme/server", class: preflight.ErrMetadata, tufErr: &metadata.ErrExpiredMetadata{}, message: "expired at"},
		"mix-and-match targets": {attack: func(r *verifytest.TUFRepository) error { return r.MixAndMatch("targets", 1) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrLengthOrHashMismatch{}},
		"mix-and-match snapshot": {attack: func(r *verifytest.TUFRepository) error { return r.MixAndMatch("snapshot", 1) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrLengthOrHashMismatch{}},
		"tampered timestamp": {attack: func(r *verifytest.TUFRepository) error {
			r.TamperMetadata("timestamp.json", func(b []byte) []byte { return bytes.Replace(b, []byte(`"version":3`), []byte(`"version":9`), 1) })
			return nil
		}, op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrUnsignedMetadata{}},
		"threshold not met: targets": {opts: verifytest.TUFOptions{Threshold: 2}, attack: func(r *verifytest.TUFRepository) error { return r.DropSignatures("targets", 1) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrUnsignedMetadata{}},
		"threshold not met: timestamp": {opts: verifytest.TUFOptions{Threshold: 2, Keys: 3}, warm: true, attack: func(r *verifytest.TUFRepository) error { return r.DropSignatures("timestamp", 1) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrUnsignedMetadata{}},
		"unknown key: targets": {attack: func(r *verifytest.TUFRepository) error { return r.SignWithUnknownKey("targets") },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrUnsignedMetadata{}},
		"unknown key: snapshot": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.SignWithUnknownKey("snapshot") },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrUnsignedMetadata{}},
		"unknown key: delegated role": {attack: func(r *verifytest.TUFRepository) error { return r.SignWithUnknownKey("acme") },
			target: "acme/server", class: preflight.ErrMetadata, tufErr: &metadata.ErrUnsignedMetadata{}},
		"unknown key: new root": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.SignWithUnknownKey("root") },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrUnsignedMetadata{}},
		"root rotation without the old keys": {warm: true, attack: func(r *verifytest.TUFRepository) error { return r.RotateRoot(1, false) },
			op: "refresh", class: preflight.ErrMetadata, tufErr: &metadata.ErrUnsignedMetadata{}},
		"delegated role signs outside its prefix": {attack: func(r *verifytest.TUFRepository) error {
			return r.SignDelegatedOutsidePrefix("acme", "weather/evil", []byte("evil"))
		}, target: "weather/evil", class: preflight.ErrNotFound},
		"endless timestamp": {attack: func(r *verifytest.TUFRepository) error { r.SetEndless("/metadata/timestamp.json"); return nil },
			op: "refresh", class: preflight.ErrMetadata},
		"endless snapshot": {attack: func(r *verifytest.TUFRepository) error { r.SetEndless("/metadata/3.snapshot.json"); return nil },
			op: "refresh", class: preflight.ErrMetadata},
		"slow retrieval": {attack: func(r *verifytest.TUFRepository) error {
			r.SetDelay("/metadata/timestamp.json", 10*time.Second)
			return nil
		},
			fetcher: &tuf.HTTPFetcher{Timeout: 100 * time.Millisecond}, op: "refresh", class: preflight.ErrTimeout},
		"arbitrary target bytes (read)": {attack: func(r *verifytest.TUFRepository) error {
			r.TamperTarget("top.json", []byte(`{"name":"io.example/weathex"}`))
			return nil
		}, op: "read", class: preflight.ErrTampered},
		"arbitrary target bytes (download)": {attack: func(r *verifytest.TUFRepository) error {
			r.TamperTarget("acme/server", bytes.Repeat([]byte{0x7f, 'E', 'L', 'G'}, 512))
			return nil
		}, target: "acme/server", op: "download", class: preflight.ErrTampered},
		"longer target (read)": {attack: func(r *verifytest.TUFRepository) error {
			r.TamperTarget("top.json", append(bytes.Clone(descriptor), ' '))
			return nil
		}, op: "read", class: preflight.ErrTampered},
		"shorter target (download)": {attack: func(r *verifytest.TUFRepository) error {
			r.TamperTarget("acme/server", binary[:100])
			return nil
		}, target: "acme/server", op: "download", class: preflight.ErrTampered},
		"endless target (read)": {attack: func(r *verifytest.TUFRepository) error {
			r.SetEndless("/targets/" + hashedPath("top.json", descriptor))
			return nil
		},
			op: "read", class: preflight.ErrTampered},
		"endless target (download)": {attack: func(r *verifytest.TUFRepository) error {
			r.SetEndless("/targets/" + hashedPath("acme/server", binary))
			return nil
		},
			target: "acme/server", op: "download", class: preflight.ErrTampered},
		"slow target": {attack: func(r *verifytest.TUFRepository) error {
			r.SetDelay("/targets/"+hashedPath("acme/server", binary), 10*time.Second)
			return nil
		}, fetcher: &tuf.HTTPFetcher{Timeout: 200 * time.Millisecond}, target: "acme/server", op: "download", class: preflight.ErrTimeout},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.opts)
			must(t, f.repo.AddTarget("top.json", descriptor, nil))
			must(t, f.repo.Delegate("acme", []string{"acme/*"}, 1, 1, false))
			must(t, f.repo.AddDelegatedTarget("acme", "acme/server", binary))
			must(t, f.repo.Publish())
			must(t, f.repo.AddDelegatedTarget("acme", "acme/other", []byte("other")))
			must(t, f.repo.Publish()) // targets v2, snapshot v3, timestamp v3, acme v2
			ctx := context.Background()
			cfg := f.config(t)
			if tc.fetcher != nil {
				tc.fetcher.Retries = -1
				cfg.Fetcher = tc.fetcher
			}
			c := newClient(t, cfg)
			target := tc.target
			if target == "" {
				target = "top.json"
			}
			var tg *tuf.Target
			if tc.warm || tc.op == "read" || tc.op == "download" {
				var err error
				tg, err = c.Target(ctx, target)
				must(t, err)
			}
			must(t, tc.attack(f.repo))
			st := newStore(t)
			var err error
			switch tc.op {
			case "refresh":
				err = c.Refresh(ctx)
			case "read":
				var data []byte
				data, err = c.ReadTarget(ctx, tg)
				if data != nil {
					t.Errorf("ReadTarget returned %d bytes with its error", len(data))
				}
			case "download":
				var p string
				p, err = c.DownloadTarget(ctx, tg, st)
				if p != "" {
					t.Errorf("DownloadTarget returned path %q with its error", p)
				}
			default:
				tg, err = c.Target(ctx, target)
				if tg != nil {
					t.Errorf("Target returned %+v with its error", tg)
				}
			}
			t.Log(err)
			pe := assertClass(t, err, tc.class)
			if tc.tufErr != nil && !errors.Is(err, tc.tufErr) {
				t.Errorf("error %q does not wrap go-tuf's %T", err, tc.tufErr)
			}
			if tc.message != "" && !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not contain %q", err, tc.message)
			}
			if pe.Class.Security() && pe.Hint == "" {
				t.Errorf("security error %q has no hint", err)
			}
			assertEmpty(t, filepath.Join(cfg.CacheDir, "targets"))
			assertEmpty(t, filepath.Join(st.s.Dir(), "sha256"))
			assertEmpty(t, filepath.Join(st.s.Dir(), "tmp"))
		})
	}
}

// hashedPath is where a consistent-snapshot repository serves a target.
func hashedPath(name string, data []byte) string {
	dir, base := filepath.Split(name)
	return dir + sha256Hex(data) + "." + base
}

// After a refused attack the client keeps its last verified state and does
// not cache the attacker's metadata: a later valid refresh works.
func TestAttackLeavesTrustedStateIntact(t *testing.T) {
	f := newFixture(t, verifytest.TUFOptions{})
	must(t, f.repo.AddTarget("top.json", []byte("{}"), nil))
	must(t, f.repo.Publish())
	ctx := context.Background()
	c := newClient(t, f.config(t))
	must(t, c.Refresh(ctx))
	must(t, f.repo.SignWithUnknownKey("targets"))
	assertClass(t, c.Refresh(ctx), preflight.ErrMetadata)
	if _, err := c.Target(ctx, "top.json"); err != nil {
		t.Fatalf("lookup after a refused refresh: %v", err)
	}
}
