// Package archive unpacks untrusted tar, gzip-compressed tar and zip
// archives into a directory, refusing anything that could write outside it
// or exhaust the disk.
//
// # What is refused
//
// Every refusal is an error of class preflight.ErrMalformed naming the
// entry. Unpack refuses:
//
//   - names that are absolute, contain a ".." element, a backslash, a NUL
//     byte or a Windows volume name, or that are empty once cleaned;
//   - two entries with the same name, also when the names differ only in
//     case (they would collide on case-insensitive file systems) or only in
//     "./" prefixes and trailing slashes; a directory entry for a
//     directory already created implicitly by an earlier file is allowed;
//   - hard links, always, and symbolic links unless Limits.AllowSymlinks
//     is set, in which case only a relative link whose target stays inside
//     the tree is written, and no later entry may be written through it;
//   - devices, FIFOs, sparse files, encrypted zip entries and every other
//     entry type that is neither a regular file nor a directory;
//   - archives over any of the Limits: total and per-file uncompressed
//     bytes, number of entries, and the ratio of uncompressed to compressed
//     bytes (the shape of a decompression bomb).
//
// Links are refused by default because the simplest rule that cannot be
// got wrong is "no entry can point anywhere": release archives and MCP
// bundles do not need them.
//
// # Atomicity and modes
//
// Unpack writes into a fresh temporary directory next to the destination
// and renames it into place only when every entry was written, so the
// destination either does not exist or is complete. On failure the
// temporary directory is removed. Files get mode 0400, or 0500 when the
// archive marks them executable by their owner; directories get 0700.
// Other permission bits, owners, times and extended attributes from the
// archive are ignored.
package archive
