// Package npm is Preflight's npm artifact source: it resolves a package
// from a registry, fetches its tarball into the content-addressed store
// against the published SHA-512 integrity, reads the registry's Sigstore
// attestations, pins the whole dependency closure by integrity, and
// installs the package and its closure without npm and without lifecycle
// scripts, so that what node runs is exactly what was verified.
//
// # Flow
//
//	v, _ := c.Resolve(ctx, "@acme/weather-mcp", "^1.2.0")  // packument
//	e, _ := c.FetchTarball(ctx, v, st)                      // integrity-checked store entry
//	bundles, _ := c.Attestations(ctx, v.Name, v.Version)    // verify with verify.VerifyEvidence
//	cl, _ := c.Closure(ctx, v, st)                          // shrinkwrap, or resolved
//	bin, _ := c.Install(ctx, v, cl, st, dir)                // node bin
//
// The packument is not signed, so nothing in it is trusted on its own: the
// integrity it names is checked against the bytes, and the caller checks
// the same SHA-512 against the attestations (whose subject is
// pkg:npm/NAME@VERSION) and against preflight.lock.
//
// # Trust in the closure
//
// Dependencies are pinned by the integrity in the package's own
// npm-shrinkwrap.json, read from its verified tarball, or else by the
// integrity the registry publishes for the versions ResolveClosure picks;
// in that case the closure is only as good as the registry at lock time,
// which is why preflight.lock records it and later runs install exactly
// the recorded closure.
//
// # Limits
//
// Packuments, tarballs, attestations, lockfiles, unpacked bytes, archive
// entries and closure sizes are all bounded (see Config). Exceeding a bound
// is an ErrMalformed failure, never a truncated result.
//
// # Errors
//
// Every error is a *preflight.Error whose class tells what happened:
// ErrTampered (bytes that differ from a pinned integrity, or a tarball
// holding another package), ErrNotFound, ErrMalformed (unparseable or
// unsafe input, limits), ErrUnavailable (network, HTTP errors, refused
// redirects), ErrTimeout (the context's deadline), ErrStore and ErrConfig.
package npm
