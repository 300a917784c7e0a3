// Package tuf holds Preflight's clients of TUF (The Update Framework)
// repositories: repositories of MCP server metadata, whose targets are
// server descriptors, Sigstore bundles and server artifacts signed by
// publishers through delegations, and the Sigstore trusted root.
//
// # Trust
//
// A Client starts from a root.json pinned by the caller (Config.Root) and
// never from its cache: cached root versions are used only when they chain
// from the pinned root by verified rotations, and every other cached file is
// verified again, signatures and expiry, before use. The TUF client
// workflow itself (root rotation, timestamp, snapshot and targets with their
// version, hash, expiry and threshold checks, delegations) is go-tuf's
// trustedmetadata package driven in the order of the TUF specification, so
// rollback, freeze, mix-and-match, endless-data and slow-retrieval attacks
// and metadata signed below its threshold are refused. A delegated role is
// only consulted for the paths delegated to it: a publisher's key can sign
// nothing outside its prefix.
//
// Config.Layout chooses how the cache is laid out: versioned roots that
// chain from the pinned root (the default), or the unversioned layout of
// the TUF conformance suite and of go-tuf's and python-tuf's updaters, in
// which the directory holds exactly the metadata the client verified and
// its root.json can be handed back as the next run's Config.Root.
// Delegated role names become file names through RoleFileName, which
// percent-encodes them into a single safe path element.
//
// # Errors
//
// Every error wraps a class of the preflight package: an attack by the
// repository is preflight.ErrMetadata (a target whose bytes differ from
// their signed hashes or length is preflight.ErrTampered), a network
// failure preflight.ErrUnavailable or preflight.ErrTimeout, an unknown
// target preflight.ErrNotFound. go-tuf's own error (metadata.ErrRepository
// and its kinds) stays in the chain for errors.As.
//
// # Network
//
// All reads go through one interface, Fetcher, with a context, a size bound
// and, in HTTPFetcher, a per-request timeout and bounded retries. go-tuf's
// own fetchers are never used. A refresh with nothing new costs two small
// requests: the probe for the next root version that the TUF specification
// requires before anything else (answered 404) and timestamp.json; unchanged
// snapshot, targets and delegated metadata are verified from the cache
// instead of downloaded.
//
// # Offline use
//
// With Config.Offline the client makes no request at all: it verifies the
// cached metadata from the pinned root and answers while none of it has
// expired. Past the earliest expiry it fails closed with an error that says
// since when; there is no silent fallback from online to offline.
package tuf
