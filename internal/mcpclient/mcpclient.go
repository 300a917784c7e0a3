// Package mcpclient is a small MCP client over a newline-delimited JSON-RPC
// stream, with no SDK behind it. Preflight uses it where it must speak MCP
// itself (listing a verified server's surface for the lockfile, the demo)
// without linking an MCP SDK into every program that imports verify.
//
// A Client answers the server's ping requests, refuses its other requests
// (sampling, roots, elicitation) with "method not found", and hands
// notifications to the caller. It is safe for concurrent use; Close stops
// its reader.
package mcpclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/jsonrpc"
)

// ProtocolVersion is the MCP revision the client asks for.
const ProtocolVersion = "2025-06-18"

// RPCError is an error response from the server.
type RPCError struct {
	Code    int64
	Message string
}

func (e *RPCError) Error() string { return fmt.Sprintf("%s (JSON-RPC %d)", e.Message, e.Code) }

// Client talks MCP to one server.
type Client struct {
	w      *jsonrpc.Writer
	closer io.Closer

	mu      sync.Mutex
	nextID  int64
	pending map[string]chan *jsonrpc.Message
	readErr error
	done    chan struct{}

	notes chan string
}

// New starts a client on rw; Close closes rw and stops the reader.
func New(rw io.ReadWriteCloser) *Client {
	c := &Client{w: jsonrpc.NewWriter(rw), closer: rw, pending: map[string]chan *jsonrpc.Message{},
		done: make(chan struct{}), notes: make(chan string, 64)}
	go c.read(bufio.NewReader(rw))
	return c
}

// Notifications delivers the method of each notification the server sends
// (for example notifications/tools/list_changed). When the buffer is full
// further notifications are dropped.
func (c *Client) Notifications() <-chan string { return c.notes }

// Close ends the session.
func (c *Client) Close() error { return c.closer.Close() }

func (c *Client) read(r *bufio.Reader) {
	rd := jsonrpc.NewReader(r, 0)
	defer close(c.done)
	for {
		msg, err := rd.Read()
		var fe *jsonrpc.FrameError
		switch {
		case errors.As(err, &fe):
			continue
		case err != nil:
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		switch msg.Kind {
		case jsonrpc.KindResponse, jsonrpc.KindError:
			c.mu.Lock()
			ch := c.pending[string(msg.ID)]
			delete(c.pending, string(msg.ID))
			c.mu.Unlock()
			if ch != nil {
				ch <- msg
			}
		case jsonrpc.KindRequest:
			if msg.Method == "ping" {
				c.w.WriteMessage(jsonrpc.NewResponse(msg.ID, json.RawMessage(`{}`))) //nolint:errcheck // a dead peer ends the reader
			} else {
				c.w.WriteMessage(jsonrpc.NewError(msg.ID, jsonrpc.CodeMethodNotFound, "this client does not support "+msg.Method, nil)) //nolint:errcheck // see above
			}
		case jsonrpc.KindNotification:
			select {
			case c.notes <- msg.Method:
			default:
			}
		}
	}
}

// Call sends a request and waits for its response. An error response is
// returned as *RPCError; a closed stream as preflight.ErrUnavailable; the
// end of ctx as preflight.ErrTimeout.
func (c *Client) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nextID++
	id := json.RawMessage(strconv.FormatInt(c.nextID, 10))
	ch := make(chan *jsonrpc.Message, 1)
	c.pending[string(id)] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, string(id))
		c.mu.Unlock()
	}()
	if err := c.w.WriteMessage(jsonrpc.NewRequest(id, method, p)); err != nil {
		return nil, err
	}
	select {
	case msg := <-ch:
		if msg.Kind == jsonrpc.KindError {
			return nil, &RPCError{Code: msg.Error.Code, Message: msg.Error.Message}
		}
		return msg.Result, nil
	case <-c.done:
		c.mu.Lock()
		err := c.readErr
		c.mu.Unlock()
		return nil, &preflight.Error{Class: preflight.ErrUnavailable, Subject: "MCP server", Err: err, Hint: "the server closed the session during " + method}
	case <-ctx.Done():
		return nil, &preflight.Error{Class: preflight.ErrTimeout, Subject: "MCP server", Err: ctx.Err(), Hint: "no answer to " + method + " in time"}
	}
}

// Notify sends a notification.
func (c *Client) Notify(method string, params any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	return c.w.WriteMessage(jsonrpc.NewNotification(method, p))
}

// InitializeResult is what Initialize reports of the server.
type InitializeResult struct {
	Instructions string
	// Tools, Prompts and Resources say which lists the server offers.
	Tools, Prompts, Resources bool
}

// Initialize performs the MCP handshake (initialize, then
// notifications/initialized).
func (c *Client) Initialize(ctx context.Context) (*InitializeResult, error) {
	raw, err := c.Call(ctx, "initialize", map[string]any{
		"protocolVersion": ProtocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]string{"name": "preflight", "version": "1"},
	})
	if err != nil {
		return nil, err
	}
	var res struct {
		Instructions string `json:"instructions"`
		Capabilities struct {
			Tools, Prompts, Resources json.RawMessage
		} `json:"capabilities"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: "initialize result", Err: err}
	}
	present := func(r json.RawMessage) bool { return len(r) > 0 && string(r) != "null" }
	if err := c.Notify("notifications/initialized", map[string]any{}); err != nil {
		return nil, err
	}
	return &InitializeResult{Instructions: res.Instructions, Tools: present(res.Capabilities.Tools),
		Prompts: present(res.Capabilities.Prompts), Resources: present(res.Capabilities.Resources)}, nil
}

// MaxPages bounds ListAll.
const MaxPages = 100

// ListAll calls a list method (tools/list, prompts/list, resources/list)
// page by page and returns the items under key ("tools", "prompts",
// "resources").
func (c *Client) ListAll(ctx context.Context, method, key string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	cursor := ""
	for range MaxPages {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		raw, err := c.Call(ctx, method, params)
		if err != nil {
			return nil, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: method + " result", Err: err}
		}
		var list []json.RawMessage
		if err := json.Unmarshal(page[key], &list); err != nil && page[key] != nil {
			return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: method + " result", Err: err}
		}
		items = append(items, list...)
		cursor = ""
		if nc := page["nextCursor"]; nc != nil {
			json.Unmarshal(nc, &cursor) //nolint:errcheck // a cursor that is not a string ends the listing
		}
		if cursor == "" {
			return items, nil
		}
	}
	return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: method, Expected: fmt.Sprintf("at most %d pages", MaxPages), Found: "more"}
}

// CallTool calls a tool and returns the text of its first text content.
// A tool that reports an error (isError) is returned as *RPCError with code 0.
func (c *Client) CallTool(ctx context.Context, name string, args map[string]any) (string, error) {
	raw, err := c.Call(ctx, "tools/call", map[string]any{"name": name, "arguments": args})
	if err != nil {
		return "", err
	}
	var res struct {
		IsError bool `json:"isError"`
		Content []struct {
			Type, Text string
		} `json:"content"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return "", &preflight.Error{Class: preflight.ErrMalformed, Subject: "tools/call result", Err: err}
	}
	text := ""
	for _, ct := range res.Content {
		if ct.Type == "text" {
			text = ct.Text
			break
		}
	}
	if res.IsError {
		return "", &RPCError{Message: text}
	}
	return text, nil
}
