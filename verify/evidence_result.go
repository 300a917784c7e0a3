package verify

import (
	"time"

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
