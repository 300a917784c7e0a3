package main

import "github.com/mcp-preflight/preflight/verify/verifytest"

func commands() []command {
	return []command{
		{"demo", "verify, launch and gate a server end to end on loopback, then show three refusals", cmdDemo},
		{"check", "verify servers of a policy without launching them (the CI gate)", cmdCheck},
		{"verify-bundle", "verify a Sigstore bundle for an artifact (sigstore-conformance client protocol)", cmdVerifyBundle},
		{"policy", "lint a policy file or print its JSON Schema", cmdPolicy},
		{"tuf", "TUF client: init, refresh, download (TUF conformance suite client protocol)", cmdTUF},
	}
}

// serverMain lets the demo and the tests re-execute this binary as an MCP
// test server; it returns false for every other invocation.
var serverMain = verifytest.ServerMain
