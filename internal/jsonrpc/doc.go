// Package jsonrpc frames and classifies the newline-delimited JSON-RPC 2.0
// messages of the MCP stdio transport, with hard limits.
//
// # Framing
//
// A [Reader] returns one message per line. A line longer than its limit is
// consumed up to its newline and reported as an error of class
// preflight.ErrMalformed; the stream stays usable and the next call reads the
// next line. A [Writer] writes one message per line and is safe for
// concurrent use, so that responses, notifications and requests produced by
// different goroutines never interleave.
//
// # Parsing
//
// [Parse] classifies a line as a request, a notification, a response or an
// error response and keeps its raw bytes, so that a relay can forward a
// message without re-encoding it ([Message.WithID] splices a new id in).
// The parser is strict where a lenient one would let two peers read the same
// bytes differently: member names are matched exactly, a duplicated member
// or one that differs from a JSON-RPC member only in case or escaping is
// refused, and batches (top-level arrays) are refused as MCP does since
// protocol version 2025-06-18.
package jsonrpc
