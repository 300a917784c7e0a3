package verifytest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"sync"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/pki"
	"github.com/sigstore/rekor/pkg/types"
	dsse_v001 "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	hashedrekord_v001 "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
	intoto_v002 "github.com/sigstore/rekor/pkg/types/intoto/v0.0.2"
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Rekor entry kinds the virtual log accepts (SignOptions.TlogEntryKind).
const (
	ssKindHashedRekord = "hashedrekord"
	ssKindDSSE         = "dsse"
	ssKindIntoto       = "intoto"
)

// ssLog is the virtual Rekor (v1 API): an append-only RFC 6962 Merkle tree.
// Every entry gets a signed entry timestamp (the inclusion promise) and,
// optionally, an inclusion proof against a checkpoint signed right after the
// entry was appended. Safe for concurrent use; only the leaves are mutable.
type ssLog struct {
	key    *ecdsa.PrivateKey
	id     []byte // raw log ID: SHA-256 of the DER public key
	origin string // checkpoint origin host
	treeID int64

	mu     sync.Mutex
	leaves [][]byte // RFC 6962 leaf hashes, in log order
}

func ssNewLog(baseURL string) (*ssLog, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id, err := ssKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	treeID, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	return &ssLog{key: key, id: id, origin: u.Hostname(), treeID: treeID.Int64() + 1}, nil
}

// append logs the canonical body, integrated at time at, and returns the
// entry as a bundle carries it.
func (l *ssLog) append(kind string, body []byte, at time.Time, withProof bool) (*protorekor.TransparencyLogEntry, error) {
	leaf := rfc6962.DefaultHasher.HashLeaf(body)
	l.mu.Lock()
	index := int64(len(l.leaves))
	l.leaves = append(l.leaves, leaf)
	tree := l.leaves[: index+1 : index+1] // a snapshot: later appends never touch it
	l.mu.Unlock()

	version, err := ssKindVersion(kind)
	if err != nil {
		return nil, err
	}
	integrated := at.Unix()
	set, err := l.signEntryTimestamp(body, integrated, index)
	if err != nil {
		return nil, err
	}
	entry := &protorekor.TransparencyLogEntry{
		LogIndex:          index,
		LogId:             &protocommon.LogId{KeyId: l.id},
		KindVersion:       &protorekor.KindVersion{Kind: kind, Version: version},
		IntegratedTime:    integrated,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
		CanonicalizedBody: body,
	}
	if withProof {
		rootHash := ssTreeHash(tree)
		checkpoint, err := l.signCheckpoint(uint64(len(tree)), rootHash)
		if err != nil {
			return nil, err
		}
		entry.InclusionProof = &protorekor.InclusionProof{
			LogIndex:   index,
			RootHash:   rootHash,
			TreeSize:   int64(len(tree)),
			Hashes:     ssInclusionPath(int(index), tree),
			Checkpoint: &protorekor.Checkpoint{Envelope: checkpoint},
		}
	}
	return entry, nil
}

// signEntryTimestamp signs the SET: canonical JSON of body, integrated time,
// log index and hex log ID, as Rekor v1 does.
func (l *ssLog) signEntryTimestamp(body []byte, integrated, index int64) ([]byte, error) {
	payload, err := json.Marshal(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(body),
		IntegratedTime: integrated,
		LogIndex:       index,
		LogID:          hex.EncodeToString(l.id),
	})
	if err != nil {
		return nil, fmt.Errorf("verifytest: SET payload: %w", err)
	}
	canonical, err := jsoncanonicalizer.Transform(payload)
	if err != nil {
		return nil, fmt.Errorf("verifytest: SET payload: %w", err)
	}
	digest := sha256.Sum256(canonical)
	set, err := ecdsa.SignASN1(rand.Reader, l.key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("verifytest: sign SET: %w", err)
	}
	return set, nil
}

// signCheckpoint signs a Rekor v1 checkpoint (signed note whose origin is
// "host - treeID") for a tree of size with root hash rootHash.
func (l *ssLog) signCheckpoint(size uint64, rootHash []byte) (string, error) {
	signer, err := signature.LoadECDSASignerVerifier(l.key, crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("verifytest: checkpoint signer: %w", err)
	}
	sc, err := util.CreateSignedCheckpoint(util.Checkpoint{
		Origin: fmt.Sprintf("%s - %d", l.origin, l.treeID),
		Size:   size,
		Hash:   rootHash,
	})
	if err != nil {
		return "", fmt.Errorf("verifytest: checkpoint: %w", err)
	}
	if _, err := sc.Sign(l.origin, signer, options.WithCryptoSignerOpts(crypto.SHA256)); err != nil {
		return "", fmt.Errorf("verifytest: sign checkpoint: %w", err)
	}
	text, err := sc.MarshalText()
	if err != nil {
		return "", fmt.Errorf("verifytest: checkpoint: %w", err)
	}
	return string(text), nil
}

// ssTreeHash is the RFC 6962 Merkle tree hash MTH of the given leaf hashes.
func ssTreeHash(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		return rfc6962.DefaultHasher.EmptyRoot()
	case 1:
		return leaves[0]
	}
	k := ssSplit(len(leaves))
	return rfc6962.DefaultHasher.HashChildren(ssTreeHash(leaves[:k]), ssTreeHash(leaves[k:]))
}

// ssInclusionPath is the RFC 6962 audit path PATH(m, D[n]) of leaf m.
func ssInclusionPath(m int, leaves [][]byte) [][]byte {
	if len(leaves) <= 1 {
		return [][]byte{}
	}
	k := ssSplit(len(leaves))
	if m < k {
		return append(ssInclusionPath(m, leaves[:k]), ssTreeHash(leaves[k:]))
	}
	return append(ssInclusionPath(m-k, leaves[k:]), ssTreeHash(leaves[:k]))
}

// ssSplit is the largest power of two smaller than n (n > 1).
func ssSplit(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

func ssKindVersion(kind string) (string, error) {
	switch kind {
	case ssKindHashedRekord:
		return hashedrekord_v001.APIVERSION, nil
	case ssKindDSSE:
		return dsse_v001.APIVERSION, nil
	case ssKindIntoto:
		return intoto_v002.APIVERSION, nil
	}
	return "", ssConfigError("SignOptions.TlogEntryKind", `"hashedrekord", "dsse" or "intoto"`, kind)
}

// ssRekorBody builds the canonicalized entry body Rekor would store, with
// Rekor's own types (which also check that sig verifies with pubPEM). For
// hashedrekord, input is the artifact digest under h; for dsse and intoto,
// the envelope JSON.
func ssRekorBody(kind string, h crypto.Hash, input, pubPEM, sig []byte) ([]byte, error) {
	version, err := ssKindVersion(kind)
	if err != nil {
		return nil, err
	}
	props := types.ArtifactProperties{
		PublicKeyBytes: [][]byte{pubPEM},
		PKIFormat:      string(pki.X509),
	}
	if kind == ssKindHashedRekord {
		props.ArtifactHash = ssHashName(h) + ":" + hex.EncodeToString(input)
		props.SignatureBytes = sig
	} else {
		props.ArtifactBytes = input
	}
	// Rekor's entry API takes a context because some kinds can fetch remote
	// artifacts; every input here is in memory, so nothing can block.
	ctx := context.Background()
	proposed, err := types.NewProposedEntry(ctx, kind, version, props)
	if err != nil {
		return nil, fmt.Errorf("verifytest: rekor %s entry: %w", kind, err)
	}
	impl, err := types.CreateVersionedEntry(proposed)
	if err != nil {
		return nil, fmt.Errorf("verifytest: rekor %s entry: %w", kind, err)
	}
	body, err := types.CanonicalizeEntry(ctx, impl)
	if err != nil {
		return nil, fmt.Errorf("verifytest: rekor %s entry: %w", kind, err)
	}
	return body, nil
}

func ssHashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA384:
		return "sha384"
	case crypto.SHA512:
		return "sha512"
	default:
		return "sha256"
	}
}

func ssB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
