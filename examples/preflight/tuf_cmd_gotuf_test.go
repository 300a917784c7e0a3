package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/examples/repository/repository"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// gotufRepo is a TUF 1.0 repository built with go-tuf's metadata API and
// its example repository type, the way a publisher with another tool
// would, independent of Preflight's test kit and of examples/publish: an
// ECDSA P-256 targets key beside ed25519 keys, targets hashed with SHA-256
// and SHA-512 (served under both consistent-snapshot names), snapshot and
// timestamp metadata that list versions only, and delegations under any
// role name go-tuf accepts.
type gotufRepo struct {
	t       *testing.T
	expires time.Time
	roles   *repository.Type
	signers map[string]signature.Signer
	names   []string // targets roles, "targets" first
	// published is set after the first publish, which signs version 1.
	published bool

	mu       sync.Mutex
	files    map[string][]byte // repository path ("metadata/1.root.json") → bytes
	requests []string          // escaped URL paths, in order
}

func newGoTUFRepo(t *testing.T) *gotufRepo {
	t.Helper()
	g := &gotufRepo{t: t, expires: time.Now().UTC().Add(72 * time.Hour).Truncate(time.Second), roles: repository.New(),
		signers: map[string]signature.Signer{}, names: []string{metadata.TARGETS}, files: map[string][]byte{}}
	root := metadata.Root(g.expires)
	root.Signed.ConsistentSnapshot = true
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		key := g.newKey(role, role == metadata.TARGETS)
		if err := root.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
	}
	g.roles.SetRoot(root)
	g.roles.SetTargets(metadata.TARGETS, metadata.Targets(g.expires))
	g.roles.SetSnapshot(metadata.Snapshot(g.expires))
	g.roles.SetTimestamp(metadata.Timestamp(g.expires))
	g.write("metadata/1.root.json", g.sign(metadata.ROOT, root))
	return g
}

// newKey makes a signing key, stored as signers[name]: ECDSA P-256 or
// ed25519.
func (g *gotufRepo) newKey(name string, useECDSA bool) *metadata.Key {
	g.t.Helper()
	var pub crypto.PublicKey
	var signer signature.Signer
	var err error
	if useECDSA {
		var priv *ecdsa.PrivateKey
		if priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err == nil {
			pub = priv.Public()
			signer, err = signature.LoadECDSASigner(priv, crypto.SHA256)
		}
	} else {
		var priv ed25519.PrivateKey
		if pub, priv, err = ed25519.GenerateKey(rand.Reader); err == nil {
			signer, err = signature.LoadED25519Signer(priv)
		}
	}
	if err != nil {
		g.t.Fatal(err)
	}
	key, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		g.t.Fatal(err)
	}
	g.signers[name] = signer
	return key
}

func (g *gotufRepo) sign(role string, md interface {
	ClearSignatures()
	Sign(signature.Signer) (*metadata.Signature, error)
	ToBytes(bool) ([]byte, error)
}) []byte {
	g.t.Helper()
	md.ClearSignatures()
	if _, err := md.Sign(g.signers[role]); err != nil {
		g.t.Fatal(err)
	}
	data, err := md.ToBytes(true)
	if err != nil {
		g.t.Fatal(err)
	}
	return data
}

func (g *gotufRepo) write(name string, data []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.files[name] = data
}

// delegate delegates paths from the top-level targets role to role.
func (g *gotufRepo) delegate(role string, paths []string, terminating bool) {
	g.t.Helper()
	top := &g.roles.Targets(metadata.TARGETS).Signed
	if top.Delegations == nil {
		top.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	top.Delegations.Roles = append(top.Delegations.Roles, metadata.DelegatedRole{Name: role, Threshold: 1, Terminating: terminating, Paths: paths})
	if err := top.AddKey(g.newKey(delegatedKey(role), false), role); err != nil {
		g.t.Fatal(err)
	}
	g.roles.SetTargets(role, metadata.Targets(g.expires))
	g.names = append(g.names, role)
}

// addTarget lists data as target name of role, served under both hashes.
func (g *gotufRepo) addTarget(role, name string, data []byte) {
	g.t.Helper()
	tf, err := metadata.TargetFile().FromBytes(name, data, "sha256", "sha512")
	if err != nil {
		g.t.Fatal(err)
	}
	g.roles.Targets(role).Signed.Targets[name] = tf
	dir, base := path.Split(name)
	for _, h := range tf.Hashes {
		g.write("targets/"+dir+hex.EncodeToString(h)+"."+base, data)
	}
}

// publish signs a new version of every targets role, the snapshot and the
// timestamp (version 1 the first time).
func (g *gotufRepo) publish() {
	g.t.Helper()
	snap := g.roles.Snapshot()
	bump := func(v *int64) {
		if g.published {
			*v++
		}
	}
	defer func() { g.published = true }()
	snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	for _, role := range g.names {
		md := g.roles.Targets(role)
		bump(&md.Signed.Version)
		signer := metadata.TARGETS
		if role != metadata.TARGETS {
			signer = delegatedKey(role)
		}
		g.write(fmt.Sprintf("metadata/%d.%s.json", md.Signed.Version, role), g.sign(signer, md))
		snap.Signed.Meta[role+".json"] = metadata.MetaFile(md.Signed.Version)
	}
	bump(&snap.Signed.Version)
	g.write(fmt.Sprintf("metadata/%d.snapshot.json", snap.Signed.Version), g.sign(metadata.SNAPSHOT, snap))
	ts := g.roles.Timestamp()
	bump(&ts.Signed.Version)
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(snap.Signed.Version)
	g.write("metadata/timestamp.json", g.sign(metadata.TIMESTAMP, ts))
}

// delegatedKey names the signer of a delegated role apart from the
// top-level roles, which a delegated role may be named like.
func delegatedKey(role string) string { return "delegated/" + role }

// root returns 1.root.json.
func (g *gotufRepo) root() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.files["metadata/1.root.json"]
}

// serve serves the files by decoded URL path, recording each escaped
// path, so role and target names that no file system could hold are
// served as well.
func (g *gotufRepo) serve() string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.requests = append(g.requests, r.URL.EscapedPath())
		data, ok := g.files[r.URL.Path[1:]]
		g.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	g.t.Cleanup(srv.Close)
	return srv.URL
}

// writeDir writes the files under dir, for a plain static file server.
func (g *gotufRepo) writeDir(dir string) {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, data := range g.files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
}

func (g *gotufRepo) requestLog() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}
