package jsonrpc

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mcp-preflight/preflight"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`,
		`{"jsonrpc":"2.0","id":"x","result":{"tools":[{"name":"a","inputSchema":{"type":"object"}}],"nextCursor":"b"}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"a","Method":"b"}`,
		`{"jsonrpc":"2.0","\u0069d":1e5,"method":"\ud83d\ude00"}`,
		`[1,2,{"a":[true,false,null,-0.5E+3]}]`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"na`,
		"\"\\u00e9\\\"\\/\"",
		"{\"a\":\"\x01\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		// The scanner accepts exactly what encoding/json accepts.
		if got, want := valid(line), json.Valid(line); got != want {
			t.Fatalf("valid(%q) = %v, encoding/json says %v", line, got, want)
		}
		recoverID(line) // must not panic on any prefix
		m, err := Parse(line)
		if err != nil {
			var fe *FrameError
			if !errors.Is(err, preflight.ErrMalformed) || !errors.As(err, &fe) {
				t.Fatalf("Parse error %v is not ErrMalformed with a FrameError", err)
			}
			if fe.ID != nil && !json.Valid(fe.ID) {
				t.Fatalf("recovered id %q is not JSON", fe.ID)
			}
			return
		}
		if !json.Valid(line) {
			t.Fatalf("Parse accepted invalid JSON %q", line)
		}
		// encoding/json (case-insensitive, last duplicate wins) reads the
		// same method and id, because Parse refuses every ambiguity.
		var std struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
		}
		if err := json.Unmarshal(line, &std); err != nil {
			t.Fatalf("encoding/json refuses a parsed message: %v", err)
		}
		if std.Method != m.Method || string(std.ID) != string(m.ID) || std.JSONRPC != "2.0" {
			t.Fatalf("encoding/json reads method %q id %s, Parse %q %s", std.Method, std.ID, m.Method, m.ID)
		}
		switch m.Kind {
		case KindRequest:
			if m.Method == "" || m.ID == nil || m.Result != nil || m.Error != nil {
				t.Fatalf("inconsistent request %+v", m)
			}
		case KindNotification:
			if m.Method == "" || m.ID != nil {
				t.Fatalf("inconsistent notification %+v", m)
			}
		case KindResponse:
			if m.Method != "" || m.ID == nil || m.Result == nil || m.Error != nil {
				t.Fatalf("inconsistent response %+v", m)
			}
		case KindError:
			if m.Method != "" || m.ID == nil || m.Error == nil {
				t.Fatalf("inconsistent error response %+v", m)
			}
		default:
			t.Fatalf("kind %v", m.Kind)
		}
		if m.ID != nil && string(m.ID) != "null" {
			again, err := Parse(m.WithID([]byte(`"relayed"`)))
			if err != nil || again.Kind != m.Kind || again.Method != m.Method || string(again.ID) != `"relayed"` {
				t.Fatalf("WithID broke the message: %v %+v", err, again)
			}
		}
	})
}
