// Package policy holds Preflight's trust policy and lockfile: the types,
// strict parsing with line and column in every problem, the JSON Schema of
// the format, the composition of local rules with a TUF descriptor's
// expectations, and the pure judgement of verified facts. It does no I/O:
// every function works on the bytes and values it is given.
//
// # Format
//
// A policy (preflight.yaml) is one YAML document; JSON is accepted too.
// Parse is strict: unknown fields, duplicate keys, wrong types, aliases,
// several documents and invalid values are problems, and Parse reports all
// of them at once in a *ParseError (matching preflight.ErrConfig) as
// file:line:column: message. Lint returns the same problems as a list.
// Schema returns the JSON Schema (draft 2020-12) of the format.
//
//	version: 1
//	mode: enforce            # or audit
//	trust:
//	  sigstore: {instance: public-good}
//	  repositories:
//	    acme: {url: https://mcp.example.com/metadata, root_digest: "sha256:..."}
//	defaults:
//	  tools: {pin: lockfile, on_change: block}
//	servers:
//	  weather:
//	    source: {tuf: {repository: acme, server: io.github.acme/weather}}
//	    signers:
//	      - issuer: https://token.actions.githubusercontent.com
//	        subject_pattern: ^https://github\.com/acme/weather/\.github/workflows/release\.yml@refs/tags/v[0-9.]+$
//	    provenance: {builders: [https://github.com/actions/runner/github-hosted], repository: acme/weather}
//
// An empty field never means "anything". Validation refuses: a version
// other than 1, an unknown mode; a server without a source or with two; a
// tuf source naming a repository that trust.repositories does not define;
// an empty signer (one needs an issuer and a subject, each exact or by
// pattern, or a public key); patterns that are not anchored as a whole
// (^...$, no top-level alternation), do not compile or are too complex
// (MaxPatternProgram); a provenance section naming neither builders nor a
// repository; a name both allowed and denied by exact name; pin: none
// without an explicit allow list (write allow: ["*"] to expose every name on
// purpose); pin: descriptor for a server whose source has no descriptor;
// plain http URLs other than loopback; malformed digests.
//
// Parse fills in the defaults: mode enforce, Sigstore instance public-good,
// targets_url = url + "/targets", provenance required: true, pin lockfile,
// on_change block; a server that leaves out tools, prompts or resources
// takes that section from defaults as a whole.
//
// # Composition
//
// The local policy is the final authority. A TUF descriptor's trust section
// (Expectations) can only narrow it; Narrow returns the effective rules as a
// new Server. A descriptor signer D is kept only when it lies within a local
// signer L: both name the same public key, or every constraint L sets is
// implied by D — L's exact issuer, subject, ref, workflow, trigger, runner
// and repository are equal in D; L's patterns are either the same pattern in
// D or match D's exact value. Kept descriptor signers replace the local
// ones; the others are dropped with a "descriptor.widen" warning, and if
// none is kept the server cannot pass ("descriptor.conflict", and Evaluate
// finds "signer.none"). Descriptor provenance constraints hold in addition
// to the local ones (Server.Descriptor carries them; Evaluate checks both).
// Descriptor surface pins are the pins of sections with pin: descriptor,
// and turn pin: none into pin: descriptor.
//
// # Evaluation
//
// Evaluate judges a server's Facts (what verification proved) and returns a
// Decision: its findings and whether the server may run. A Signer matches
// a keyless signature when the issuer and the subject match (exactly or by
// pattern) and every other field the rule sets matches the Fulcio
// certificate: repository against the source repository URI
// (https://github.com/OWNER/NAME, case-insensitively), ref or ref_pattern
// against the source ref, workflow against the build signer URI (a path
// inside its repository, or a whole URI; the @ref part only when the rule
// has one), trigger and runner exactly. A key signer matches a signature
// whose key id is KeyID of its public key. Provenance constraints apply to
// every provenance statement; HostedRunners is read from the certificate,
// never from the predicate. A statement that disagrees is refused even when
// provenance is not required. In audit mode the decision allows the server
// and keeps every finding; Decision.Err gives the error for a refusal,
// classed by its first blocking finding.
//
// EvaluateSurface gates tools, prompts and resources: deny beats allow,
// names follow the MCP tool-name rules, look-alikes of allowed or pinned
// names (homoglyphs, case, separators) are refused, and with pinning every
// item must match its pinned digest.
//
// # Findings
//
// Codes are stable. Each maps to an error class (Finding.Class):
//
//	server.unknown          ErrPolicy     no policy for the server
//	signature.missing       ErrSignature  no verified signature
//	signature.unsigned      ErrSignature  warning: allow_unsigned, trusted by its pinned digest only
//	signer.none             ErrPolicy     no signer rules (or none left after Narrow)
//	signer.identity         ErrIdentity   a signature by a signer no rule allows
//	provenance.missing      ErrProvenance no verified provenance (warning when not required)
//	provenance.predicate    ErrProvenance a required predicate type is absent
//	provenance.builder      ErrProvenance builder not allowed
//	provenance.repository   ErrProvenance source repository not allowed
//	provenance.ref          ErrProvenance source ref matches no pattern
//	provenance.runner       ErrProvenance not a GitHub-hosted runner
//	artifact.digest         ErrTampered   bytes differ from the policy's or the lockfile's digest
//	artifact.version        ErrPolicy     version differs from the one the source pins
//	policy.invalid          ErrPolicy     rules that cannot be applied
//	descriptor.widen        ErrPolicy     a descriptor signer outside the local rules (warning)
//	descriptor.conflict     ErrPolicy     descriptor and local rules cannot both hold
//	version                 ErrPolicy     lockfile: version changed
//	source                  ErrPolicy     lockfile: source kind changed
//	signer                  ErrIdentity   lockfile: signer identity or key changed
//	source.commit           ErrProvenance lockfile: source commit changed
//	instructions.changed    ErrToolDrift  lockfile: server instructions changed
//	KIND.added              ErrToolDrift  an item that is not pinned
//	KIND.removed            ErrToolDrift  a pinned item is gone (warning)
//	KIND.drift              ErrToolDrift  an item's digest differs from its pin
//	KIND.description        ErrToolDrift  lockfile: the description changed
//	KIND.schema             ErrToolDrift  lockfile: input/output schema (prompt arguments) changed
//	KIND.changed            ErrToolDrift  lockfile: another part changed
//	KIND.lookalike          ErrToolDrift  a name imitating an allowed or pinned one
//	KIND.duplicate          ErrToolDrift  a name listed twice
//	KIND.denied             ErrPolicy     a deny pattern matches
//	KIND.not-allowed        ErrPolicy     no allow pattern matches
//	KIND.name               ErrPolicy     a name outside the MCP tool-name rules
//	KIND.unpinned           ErrPolicy     pinning is on but nothing is pinned
//	KIND.limit              ErrPolicy     more than MaxSurfaceItems items
//
// KIND is tool, prompt or resource. Surface drift found by Evaluate against
// the lockfile is a warning (the gate withholds the item) unless the section
// says on_change: end.
//
// # Lockfile
//
// preflight.lock is JSON, {"version": 1, "servers": {NAME: LockEntry}}:
// per server the resolved version, source kind, artifact digests, observed
// signer (certificate identity or key id), source commit, and the canonical
// digests (package internal/canonical: RFC 8785 JSON of the model-visible
// fields, SHA-256) of the instructions, tools, prompts and resources, with
// per-field digests (SurfaceParts) so that drift can tell a changed
// description from a changed schema. ParseLock is strict and bounded;
// Marshal writes sorted keys with two-space indentation and a trailing
// newline; EntryFromFacts records an observation; Drift compares two
// entries. Writing the file is the caller's job.
package policy
