package policy

// Signer is one identity allowed to sign a server's artifact or its
// attestations. A keyless signer names an OIDC issuer and a subject, each
// exactly or by an anchored pattern; a key signer names a public key.
// Empty fields never act as wildcards: validation requires an issuer and a
// subject (or a key), and every other field that is set must match exactly.
type Signer struct {
	Issuer         string `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	IssuerPattern  string `json:"issuer_pattern,omitempty" yaml:"issuer_pattern,omitempty"`   // anchored RE2: ^...$
	Subject        string `json:"subject,omitempty" yaml:"subject,omitempty"`                 // certificate SAN
	SubjectPattern string `json:"subject_pattern,omitempty" yaml:"subject_pattern,omitempty"` // anchored RE2: ^...$

	// GitHub workflow claims, matched against the Fulcio certificate.
	Repository string `json:"repository,omitempty" yaml:"repository,omitempty"` // OWNER/NAME; matched with SourceRepositoryURI https://github.com/OWNER/NAME
	Ref        string `json:"ref,omitempty" yaml:"ref,omitempty"`               // exact source ref, refs/tags/v1.0.0
	RefPattern string `json:"ref_pattern,omitempty" yaml:"ref_pattern,omitempty"`
	Workflow   string `json:"workflow,omitempty" yaml:"workflow,omitempty"` // signer workflow path, .github/workflows/release.yml (BuildSignerURI)
	Trigger    string `json:"trigger,omitempty" yaml:"trigger,omitempty"`
	Runner     string `json:"runner,omitempty" yaml:"runner,omitempty"` // "github-hosted" or "self-hosted"

	// PublicKey is a PEM public key for key-based bundles (for example the
	// npm registry's publish key). Mutually exclusive with Issuer/Subject.
	PublicKey string `json:"public_key,omitempty" yaml:"public_key,omitempty"`

	// NPMRegistry names the npm registry's attestation keys as Sigstore's
	// TUF repository lists them (registry.npmjs.org/keys.json): the signer
	// of npm publish attestations. The verify package expands it into the
	// current keys, each valid only within its window. It stands alone.
	NPMRegistry bool `json:"npm_registry,omitempty" yaml:"npm_registry,omitempty"`
}
