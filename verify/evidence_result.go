package verify

import (
	"errors"
	"time"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
)

// BundleResultMediaType identifies BundleResult JSON, version 1.
const BundleResultMediaType = "application/vnd.dev.mcp-preflight.bundle-result+json;version=1"

// BundleResult is the versioned JSON outcome of verifying bundles for one
// artifact, as printed by `preflight verify-bundle --format json`. Either
// Verified is true and Signatures holds the facts, or Verified is false,
// Error says why and ErrorClass names the failure class; never both.
type BundleResult struct {
	MediaType  string                  `json:"mediaType"`
	Verified   bool                    `json:"verified"`
	Artifact   BundleArtifact          `json:"artifact"`
	Signatures []policy.SignatureFacts `json:"signatures,omitempty"`
	TrustRoot  TrustRootFacts          `json:"trustRoot"`
	Error      string                  `json:"error,omitempty"`
	ErrorClass string                  `json:"errorClass,omitempty"`
}

// BundleArtifact names the artifact the bundles were checked against.
type BundleArtifact struct {
	Name    string            `json:"name,omitempty"` // file path, or empty for a bare digest
	Digests map[string]string `json:"digests"`        // algorithm to lower-case hex
}

// TrustRootFacts records which Sigstore trust root a verification used, so a
// report shows whether it came from TUF, a pinned file or the embedded
// snapshot, and how old it is.
type TrustRootFacts struct {
	Source      string    `json:"source"` // "pinned-file", "tuf", "tuf-cache", "embedded-snapshot"
	Date        time.Time `json:"date,omitzero"`
	Digest      string    `json:"digest"` // sha256 of trusted_root.json
	Description string    `json:"description,omitempty"`
}

// NewBundleResult assembles the result of verifying bundles for one
// artifact: facts and err are what VerifyEvidence returned. A failure
// keeps no facts, and names its class in ErrorClass ("ErrIdentity",
// "ErrTampered", ...).
func NewBundleResult(artifactName string, digests map[string]string, trust TrustRootFacts, facts []policy.SignatureFacts, err error) BundleResult {
	r := BundleResult{
		MediaType: BundleResultMediaType,
		Artifact:  BundleArtifact{Name: artifactName, Digests: digests},
		TrustRoot: trust,
	}
	if err != nil {
		r.Error = err.Error()
		r.ErrorClass = evClassName(err)
		return r
	}
	r.Verified = true
	r.Signatures = facts
	return r
}

// evClassName names the class of err as its Go identifier, a stable token
// for machines (the class's message is for people).
func evClassName(err error) string {
	for _, c := range []struct {
		class *preflight.Class
		name  string
	}{
		{preflight.ErrTampered, "ErrTampered"}, {preflight.ErrSignature, "ErrSignature"},
		{preflight.ErrIdentity, "ErrIdentity"}, {preflight.ErrProvenance, "ErrProvenance"},
		{preflight.ErrMetadata, "ErrMetadata"}, {preflight.ErrPolicy, "ErrPolicy"},
		{preflight.ErrToolDrift, "ErrToolDrift"}, {preflight.ErrConfig, "ErrConfig"},
		{preflight.ErrMalformed, "ErrMalformed"}, {preflight.ErrUnavailable, "ErrUnavailable"},
		{preflight.ErrTimeout, "ErrTimeout"}, {preflight.ErrNotFound, "ErrNotFound"},
		{preflight.ErrLaunch, "ErrLaunch"}, {preflight.ErrStore, "ErrStore"},
	} {
		if errors.Is(err, c.class) {
			return c.name
		}
	}
	return "unclassified"
}
