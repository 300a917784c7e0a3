// Package release fetches release binaries (and other files published on a
// download host, such as MCP bundles) into the content-addressed store,
// checking them against a pinned digest, a Sigstore bundle, or both, before
// any byte is kept.
//
// # Order of checks
//
// The evidence is checked before the artifact is downloaded. With a
// Verify function configured, the bundle is fetched first (URL +
// ".sigstore.json" unless the asset names another), and verified against
// the pinned digest, or, without a pin, against the digest the bundle
// itself signs (a message signature's digest, or the subject of an in-toto
// statement named like the asset). Only then is the artifact streamed into
// the store with that digest as the expectation, so bytes that differ are
// refused (preflight.ErrTampered) before they are kept, and the artifact is
// hashed exactly once. A signature by a signer the check does not allow
// fails without downloading the artifact at all.
//
// A missing bundle when a Verify function is configured is a security
// failure, preflight.ErrSignature ("no evidence"), never ErrNotFound: the
// policy asked for a signature and none exists, which is the same verdict
// the verify package gives an artifact without bundles.
//
// An asset with neither a pinned digest nor a Verify function is refused
// as preflight.ErrConfig: nothing would check the bytes.
//
// # Bundles
//
// ParseBundles reads every bundle layout publishers use: one Sigstore
// bundle JSON (cosign's .sigstore.json), GitHub's attestation API answer
// ({"attestations":[{"bundle":{...}}]}) or a single {"bundle":{...}}
// object, and the JSON Lines file gh attestation download writes (one
// bundle per line, media type application/vnd.dev.sigstore.bundle.v0.3+json).
//
// # Transport
//
// URLs must be https; plain http is accepted for loopback hosts only, for
// tests. Redirects are followed only to the same host (host and port) or to
// a host listed in Config.AllowRedirectHosts (GitHubReleaseHosts lists the
// hosts GitHub release downloads redirect to), never from https to http,
// and at most five times. Every request has a timeout and every body a
// size limit.
//
// # Archives
//
// An asset with a Binary name is an archive: it is stored as downloaded,
// unpacked with internal/archive into DIR/unpacked/<sha256 of the archive>
// under the store (once; later fetches reuse the tree), and the named
// executable is added to the store as an entry of its own, which is what
// the caller runs. The unpacked tree is a cache like the store: the
// executable's store entry is re-hashed when it is opened for launch,
// the tree's other files are not.
package release
