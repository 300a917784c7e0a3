// Package oci makes container images in OCI registries an artifact source:
// it resolves an image reference to the digest of its manifest, finds the
// Sigstore evidence attached to that digest, and builds the command that
// runs the image by digest with docker or podman. Registry protocol work
// is done by go-containerregistry; this package adds the limits, the
// transport rules and the error classes Preflight needs.
//
// # What is verified
//
// The artifact is the image manifest (or, for a multi-platform image, the
// image index): its SHA-256 digest, computed here from the bytes the
// registry sent, names every byte of the image, because the manifest
// names its config and layers by digest and the container runtime checks
// them when it pulls by digest. Resolve returns that digest; when the
// policy pins one, the resolved digest must equal it or the result is
// preflight.ErrTampered (a tag moved to another image, or a registry
// serving other bytes).
//
// The evidence must then be checked by the caller with
// verify.VerifyEvidence and the artifact digest {"sha256": HEX of
// Image.Digest}. The bundles this package finds are either
//
//   - DSSE envelopes with an in-toto statement whose subject digest is the
//     manifest digest: what cosign v3 "cosign sign" (predicate type
//     https://sigstore.dev/cosign/sign/v1), "cosign attest" and GitHub's
//     actions/attest-build-provenance (SLSA provenance v1) produce; or
//   - message signatures over the manifest bytes, whose signed digest is
//     therefore the manifest digest.
//
// VerifyEvidence binds both kinds to the digest before any cryptography,
// so evidence about another image is ErrTampered. Legacy cosign
// signatures (simple-signing payloads, which carry the digest inside a
// signed JSON document) are not verified; see below.
//
// # Finding evidence
//
// Bundles are found through the OCI 1.1 referrers API
// (GET /v2/REPO/referrers/DIGEST) and, on registries without it, the
// referrers tag scheme (an index tagged "sha256-HEX"), exactly as cosign
// v3 attaches them: a referrer manifest with artifactType
// application/vnd.dev.sigstore.bundle.v0.3+json whose layer is the bundle
// JSON. Referrers whose manifest names another subject are skipped. The
// referrers index is bounded (Limits.MaxReferrers descriptors), as are the
// bundles (Limits.MaxBundles, Limits.MaxBundleBytes each); more is
// preflight.ErrMalformed rather than a silently chosen subset, because the
// subset left out might be the one carrying the provenance.
//
// An image without bundles is preflight.ErrSignature ("no evidence"),
// never ErrNotFound: the policy asked for a signature and none exists,
// which is the verdict the release and verify packages give too. When the
// image has a legacy cosign signature (the tag "sha256-HEX.sig", layers of
// media type application/vnd.dev.cosign.simplesigning.v1+json carrying the
// dev.cosignproject.cosign/signature annotation) or attestation
// ("sha256-HEX.att"), the error says so and asks for cosign v3 bundles:
// turning those into verifiable Sigstore bundles would mean rebuilding
// Rekor entries from annotations and checking the simple-signing payload
// outside sigstore-go, a second verification path Preflight does not
// want.
//
// # Transport
//
// Every request goes through a transport of this package wrapped around
// Config.HTTPClient's (never a global one, never changed): plain http is
// spoken only to loopback registries (localhost, 127.0.0.0/8, ::1); a
// request go-containerregistry would send over plain http to any other
// host (it does so by default for private-network addresses and .local
// names) is sent over https instead. Manifests, indexes and the referrers
// list are bounded by Limits.MaxManifestBytes and blobs by
// Limits.MaxBundleBytes while they are read, whatever Content-Length says,
// and every answer to a request by digest is hashed as it is read and
// refused as preflight.ErrTampered if it is other bytes. Each operation
// (Resolve, Bundles) is bounded by Config.Timeout, each request by
// Config.HTTPClient.Timeout when set. There are no retries: the caller
// decides whether to run a check again. Requests are anonymous; registry
// credentials are not supported yet.
//
// # Launching
//
// LaunchCommand builds "RUNTIME run --rm -i --pull=missing [-e NAME]...
// REPOSITORY@sha256:HEX [ARG]...". The image is named by digest only,
// never by tag, so whatever the runtime pulls or finds locally is the
// verified manifest: both docker and podman check a pulled manifest
// against the digest it was asked for, and a local image is found by that
// digest. --pull=missing pulls in the same step when the image is not yet
// local, which leaves no window between a separate pull and the run.
// Environment variables are passed by name only (-e NAME), so their values
// go from the runtime's own environment (exec.Cmd.Env, set by the caller)
// to the container without appearing on a command line.
package oci
