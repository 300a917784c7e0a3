package main

import "github.com/mcp-preflight/preflight/verify/verifytest"

func commands() []command {
	return []command{
		{"demo", "verify, launch and gate a server end to end on loopback, then show three refusals", cmdDemo},
		{"check", "verify servers of a policy and compare them with the lockfile (the CI gate)", cmdCheck},
		{"verify-bundle", "verify a Sigstore bundle for an artifact (sigstore-conformance client protocol)", cmdVerifyBundle},
		{"policy", "lint a policy file or print its JSON Schema", cmdPolicy},
		{"run", "verify a server, launch it and relay stdio through the tool gate", cmdRun},
		{"lock", "record the verified servers' digests, signers and tool surfaces in the lockfile", cmdLock},
		{"wrap-config", "rewrite an MCP client configuration so that stdio servers start through preflight run", cmdWrapConfig},
		{"tuf", "TUF client: init, refresh, download (TUF conformance suite client protocol)", cmdTUF},
	}
}

// serverMain lets the demo and the tests re-execute this binary as an MCP
// test server; it returns false for every other invocation.
var serverMain = verifytest.ServerMain
