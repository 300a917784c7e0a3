// Package verifytest is Preflight's public test kit: a virtual Sigstore that
// writes real bundles and a matching trusted_root.json, an in-process TUF
// repository served on loopback, and a tiny MCP test server, together with
// helpers that tamper with each piece. Downstream projects use it to test
// their integration offline, and the preflight demo command is built on it.
//
// Nothing in the kit reaches beyond loopback.
package verifytest
