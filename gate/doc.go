// Package gate decides, message by message, what of an MCP server's surface
// reaches the host: which tools, prompts and resources the host may see and
// call.
//
// # Where it sits
//
// A [Gate] relays between two newline-delimited JSON-RPC streams: the host's
// and the server's. The same code serves the stdio proxy (the host on the
// proxy's stdin and stdout, the server on a child's pipes), an mcp-go client
// (transport.NewIO on pipes into the gate) and the official go-sdk (through
// pipes too), because it works on messages, not on SDK types.
//
// # What it does
//
// After the host's notifications/initialized (or, lazily, before the first
// request that needs it) the gate lists every page of the server's tools,
// and prompts and resources when the server advertised them, with requests
// of its own. It hands each complete list to the [Decider], the policy seam,
// and only then answers the host's list requests:
//
//   - list responses are filtered: an item passes only if the decision
//     exposed its name and its canonical digest is the one the decision saw.
//     A definition changed without notifications/*/list_changed is withheld,
//     logged and decided again; pagination (nextCursor) and _meta pass
//     through untouched;
//   - tools/call, prompts/get and resources/read (and resources/subscribe)
//     for anything not exposed are answered by the gate with a JSON-RPC
//     error of code [CodeWithheld] and never reach the server;
//   - notifications/*/list_changed is held back until the gate has listed
//     and decided again; a decision with End set stops the session: pending
//     host requests are answered with [CodeEnded] and Run returns End.
//
// Request ids are rewritten in both directions (the gate issues requests of
// its own), so responses with unknown or repeated ids are dropped and
// logged. Lines that are not JSON-RPC, or longer than the limit, are
// answered with an error when they carry a request id and dropped otherwise;
// the session goes on. Everything withheld, blocked or dropped is logged as
// a structured event.
//
// # Protocol versions
//
// The gate relays the initialize handshake of MCP revisions up to
// 2025-11-25. It answers server/discover (the stateless protocol of
// 2026-07-28) with "method not found", so clients fall back to the
// handshake; a stateless session would need a gate of its own. Resource
// templates are not part of the decided surface, so resources/templates/list
// is answered with an empty list and a resource is readable only by an
// exposed URI.
//
// # Limits
//
// Every input is bounded: the length of one message, the number of items of
// one kind, the number of pages of one list and the time the server may take
// to answer the gate's own list requests (see [Config]).
package gate
