package verifytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/mcp-preflight/preflight/internal/canonical"
)

// SurfaceDigests serves cfg in process and returns the canonical digest of
// each tool it lists (all pages), exactly as a gate computes them from the
// wire. Publishers use it to pin tools in a descriptor; tests use it to
// write lockfiles.
func SurfaceDigests(ctx context.Context, cfg ServerConfig) (map[string]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	toServerR, toServerW := io.Pipe()
	fromServerR, fromServerW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeMCP(ctx, toServerR, fromServerW, cfg)
		fromServerW.Close()
	}()
	defer func() {
		toServerW.Close()
		cancel()
		<-done
	}()
	in := bufio.NewReader(fromServerR)
	id := 0
	call := func(method string, params any) (json.RawMessage, error) {
		id++
		msg, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
		if err != nil {
			return nil, err
		}
		if _, err := toServerW.Write(append(msg, '\n')); err != nil {
			return nil, err
		}
		for {
			line, err := in.ReadBytes('\n')
			if err != nil {
				return nil, fmt.Errorf("verifytest: reading %s response: %w", method, err)
			}
			var resp struct {
				ID     *int            `json:"id"`
				Result json.RawMessage `json:"result"`
				Error  *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(line, &resp); err != nil {
				return nil, err
			}
			if resp.ID == nil || *resp.ID != id {
				continue // a notification
			}
			if resp.Error != nil {
				return nil, fmt.Errorf("verifytest: %s: %s", method, resp.Error.Message)
			}
			return resp.Result, nil
		}
	}
	if _, err := call("initialize", map[string]any{
		"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "verifytest", "version": "1"},
	}); err != nil {
		return nil, err
	}
	if _, err := toServerW.Write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n")); err != nil {
		return nil, err
	}
	digests := map[string]string{}
	cursor := ""
	for page := 0; page < 100; page++ {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		res, err := call("tools/list", params)
		if err != nil {
			return nil, err
		}
		var list struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(res, &list); err != nil {
			return nil, err
		}
		for _, raw := range list.Tools {
			var t struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(raw, &t); err != nil {
				return nil, err
			}
			d, err := canonical.Digest(canonical.Tool, raw)
			if err != nil {
				return nil, err
			}
			digests[t.Name] = d
		}
		if cursor = list.NextCursor; cursor == "" {
			return digests, nil
		}
	}
	return nil, fmt.Errorf("verifytest: more than 100 pages of tools")
}
