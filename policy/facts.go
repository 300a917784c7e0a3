package policy

import "time"

// Facts is what verification established about one server, before any
// policy judgement. The verify package produces Facts; Evaluate turns them
// into a Decision. Every field was checked cryptographically or read from
// verified metadata; nothing here is a claim taken on trust.
type Facts struct {
	Server     string           `json:"server"`               // the policy's name for the server
	Artifact   ArtifactFacts    `json:"artifact"`             // the bytes that would run
	Signatures []SignatureFacts `json:"signatures,omitempty"` // one per verified bundle
	Descriptor *DescriptorFacts `json:"descriptor,omitempty"` // set when the server came from a TUF repository
	Surface    *SurfaceFacts    `json:"surface,omitempty"`    // set once the server has been listed
	// Dependencies is the verified dependency closure the artifact runs
	// with (npm packages), each pinned by its integrity.
	Dependencies []Dependency      `json:"dependencies,omitempty"`
	Extra        map[string]string `json:"extra,omitempty"` // source-specific facts (npm name, image reference)
}

// ArtifactFacts describes the artifact's bytes.
type ArtifactFacts struct {
	Name    string            `json:"name"`              // file, package or image name
	Version string            `json:"version,omitempty"` // resolved version, when the source has one
	Source  string            `json:"source"`            // "file", "tuf", "npm", "oci", "url", "mcpb"
	Size    int64             `json:"size"`
	Digests map[string]string `json:"digests"` // algorithm ("sha256", "sha512") to lower-case hex
}

// SignatureFacts are the verified contents of one Sigstore bundle.
type SignatureFacts struct {
	BundleMediaType string `json:"bundleMediaType"`
	// Kind is "message-signature" or "dsse".
	Kind string `json:"kind"`
	// Certificate is set for keyless (Fulcio) signatures.
	Certificate *CertificateFacts `json:"certificate,omitempty"`
	// KeyID is set for signatures by a pinned public key.
	KeyID string `json:"keyId,omitempty"`
	// PredicateType is set for DSSE in-toto statements.
	PredicateType string `json:"predicateType,omitempty"`
	// Provenance is set when the predicate is SLSA provenance, already
	// cross-checked against the certificate.
	Provenance *ProvenanceFacts `json:"provenance,omitempty"`
	// SignedAt is the earliest verified time of signing (transparency-log
	// integrated time or RFC 3161 timestamp).
	SignedAt time.Time `json:"signedAt"`
	// Timestamps lists where the signing times came from, e.g.
	// "rekor:<log id>#<index>" or "tsa:<uri>".
	Timestamps []string `json:"timestamps,omitempty"`
}

// CertificateFacts is the identity a Fulcio certificate binds, with the
// GitHub workflow extensions. Field names follow Fulcio's OID names.
type CertificateFacts struct {
	Issuer                 string `json:"issuer"`
	Subject                string `json:"subject"` // the SAN: URI or email
	SourceRepositoryURI    string `json:"sourceRepositoryURI,omitempty"`
	SourceRepositoryRef    string `json:"sourceRepositoryRef,omitempty"`
	SourceRepositoryDigest string `json:"sourceRepositoryDigest,omitempty"`
	BuildSignerURI         string `json:"buildSignerURI,omitempty"`
	BuildSignerDigest      string `json:"buildSignerDigest,omitempty"`
	BuildConfigURI         string `json:"buildConfigURI,omitempty"`
	BuildTrigger           string `json:"buildTrigger,omitempty"`
	RunnerEnvironment      string `json:"runnerEnvironment,omitempty"` // "github-hosted" or "self-hosted"
	RunInvocationURI       string `json:"runInvocationURI,omitempty"`
}

// ProvenanceFacts are the fields of a SLSA provenance predicate (v0.2 or v1)
// that a policy can constrain.
type ProvenanceFacts struct {
	PredicateType    string `json:"predicateType"`
	BuilderID        string `json:"builderId"`
	BuildType        string `json:"buildType"`
	SourceRepository string `json:"sourceRepository"` // https://github.com/OWNER/NAME
	SourceRef        string `json:"sourceRef"`        // refs/tags/v1.2.3
	SourceCommit     string `json:"sourceCommit"`     // hex
	WorkflowPath     string `json:"workflowPath"`     // .github/workflows/release.yml
	InvocationID     string `json:"invocationId,omitempty"`
}

// DescriptorFacts record where a server descriptor came from.
type DescriptorFacts struct {
	Repository     string    `json:"repository"`     // policy name of the TUF repository
	Target         string    `json:"target"`         // TUF target path of the descriptor
	TargetsVersion int64     `json:"targetsVersion"` // version of the signing targets role
	SignedBy       string    `json:"signedBy"`       // role that signed the target ("targets" or a delegated role)
	Expires        time.Time `json:"expires"`        // earliest expiry among the metadata used
}

// SurfaceFacts are the digests of what the server offers the model.
type SurfaceFacts struct {
	Instructions string            `json:"instructions,omitempty"` // canonical digest
	Tools        map[string]string `json:"tools,omitempty"`        // name to canonical digest
	Prompts      map[string]string `json:"prompts,omitempty"`
	Resources    map[string]string `json:"resources,omitempty"` // uri to canonical digest

	// Parts, when set, hold per-field digests of each item (see
	// SurfaceParts), so that drift can say what changed: the description,
	// the schema or something else.
	ToolParts     map[string]PartDigests `json:"toolParts,omitempty"`
	PromptParts   map[string]PartDigests `json:"promptParts,omitempty"`
	ResourceParts map[string]PartDigests `json:"resourceParts,omitempty"`
}

// Dependency is one package of a verified dependency closure.
type Dependency struct {
	Path      string `json:"path"`               // install location, e.g. node_modules/a/node_modules/b
	Name      string `json:"name"`               // package name
	Version   string `json:"version"`            // exact version
	Resolved  string `json:"resolved,omitempty"` // tarball URL it was fetched from
	Integrity string `json:"integrity"`          // subresource integrity, sha512-<base64>
}
