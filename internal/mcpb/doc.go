// Package mcpb fetches, checks and unpacks MCP bundles (.mcpb files, once
// called .dxt): zip archives with a manifest.json that says how to start
// the server they carry.
//
// # Checks
//
// A bundle is an asset like any release file: Fetch downloads it with a
// release.Fetcher, so the file's SHA-256 (the fileSha256 of the MCP
// registry's server.json package entry) and, when the fetcher has a
// Verify function, its Sigstore bundle are checked before the bytes are
// kept. The verified file is then unpacked with internal/archive under
// the store, and the manifest is read from the unpacked tree, so the
// launch spec comes from exactly the verified bytes.
//
// # Manifest
//
// ParseManifest is strict: manifest versions 0.1 to 0.4 (manifest_version,
// or the older dxt_version), every member the MCPB schema defines and no
// other (the schema forbids unknown members; _meta is the extension
// point), required members present with the right types, and bounds on
// sizes and counts. Only the members that decide what runs are
// interpreted: server.type, server.entry_point, server.mcp_config with its
// platform_overrides, compatibility.platforms and user_config defaults.
//
// # Launch spec
//
// LaunchSpec resolves mcp_config for one platform ("darwin", "linux" or
// "win32", the names MCPB uses) and substitutes its placeholders in a
// single pass (substituted values are never substituted again):
// ${__dirname} is the unpacked bundle directory, ${/} and
// ${pathSeparator} the path separator, ${user_config.KEY} the caller's
// value or the manifest's default, and any other ${NAME} (HOME, DESKTOP,
// DOCUMENTS, DOWNLOADS) only a value the caller passes: library code
// reads no environment. An unresolved placeholder is an ErrConfig
// failure (MCPB hosts leave it as text; Preflight fails closed), while "${"
// without a closing brace is plain text, as for MCPB hosts. For a "binary" server the command must be a file inside the
// bundle, and that file is made executable (0500); node and python
// servers name their interpreter, which the host finds as it finds any
// command.
package mcpb
