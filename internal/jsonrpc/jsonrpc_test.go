package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/mcp-preflight/preflight"
)

func TestParseClassifies(t *testing.T) {
	tests := []struct {
		line   string
		kind   Kind
		id     string
		method string
		params string
		result string
		code   int64
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`, KindRequest, `1`, "tools/call", `{"name":"echo"}`, "", 0},
		{` {"id":"a-1" , "method":"ping","jsonrpc":"2.0"} `, KindRequest, `"a-1"`, "ping", "", "", 0},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification, "", "notifications/initialized", "", "", 0},
		{`{"jsonrpc":"2.0","m\u0065thod":"tools\/list","params":[]}`, KindNotification, "", "tools/list", `[]`, "", 0},
		{`{"jsonrpc":"2.0","id":-7,"result":{"tools":[]}}`, KindResponse, `-7`, "", "", `{"tools":[]}`, 0},
		{`{"jsonrpc":"2.0","id":2.5e3,"result":null}`, KindResponse, `2.5e3`, "", "", `null`, 0},
		{`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no","data":{"x":1}}}`, KindError, `3`, "", "", "", -32601},
		{`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}`, KindError, `null`, "", "", "", -32700},
		{`{"jsonrpc":"2.0","id":1,"result":{},"extension":{"id":9}}`, KindResponse, `1`, "", "", `{}`, 0},
	}
	for _, tt := range tests {
		m, err := Parse([]byte(tt.line))
		if err != nil {
			t.Errorf("Parse(%s): %v", tt.line, err)
			continue
		}
		if m.Kind != tt.kind || string(m.ID) != tt.id || m.Method != tt.method || string(m.Params) != tt.params || string(m.Result) != tt.result {
			t.Errorf("Parse(%s) = kind %v id %s method %q params %s result %s", tt.line, m.Kind, m.ID, m.Method, m.Params, m.Result)
		}
		if tt.kind == KindError && (m.Error == nil || m.Error.Code != tt.code) {
			t.Errorf("Parse(%s): error object %+v", tt.line, m.Error)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, line string
		code       int64
		id         string // recovered request id, "" for none
	}{
		{"not json", `hello`, CodeParseError, ""},
		{"truncated request", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"na`, CodeParseError, "4"},
		{"trailing data", `{"jsonrpc":"2.0","method":"x"} {}`, CodeInvalidRequest, ""},
		{"batch", `[{"jsonrpc":"2.0","method":"x"}]`, CodeInvalidRequest, ""},
		{"wrong version", `{"jsonrpc":"1.0","id":5,"method":"x"}`, CodeInvalidRequest, "5"},
		{"no version", `{"id":5,"method":"x"}`, CodeInvalidRequest, "5"},
		{"duplicate method", `{"jsonrpc":"2.0","id":6,"method":"a","method":"b"}`, CodeInvalidRequest, "6"},
		{"case variant", `{"jsonrpc":"2.0","id":7,"method":"tools/list","Method":"tools/call"}`, CodeInvalidRequest, "7"},
		{"kelvin variant", "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":{},\"param\u017f\":{}}", CodeInvalidRequest, ""},
		{"escaped duplicate", `{"jsonrpc":"2.0","id":8,"method":"a","\u006dethod":"b"}`, CodeInvalidRequest, "8"},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"x"}`, CodeInvalidRequest, ""},
		{"null request id", `{"jsonrpc":"2.0","id":null,"method":"x"}`, CodeInvalidRequest, ""},
		{"empty method", `{"jsonrpc":"2.0","id":1,"method":""}`, CodeInvalidRequest, "1"},
		{"scalar params", `{"jsonrpc":"2.0","id":1,"method":"x","params":3}`, CodeInvalidRequest, "1"},
		{"request with result", `{"jsonrpc":"2.0","id":1,"method":"x","result":{}}`, CodeInvalidRequest, "1"},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}`, CodeInvalidRequest, ""},
		{"bad error object", `{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"m"}}`, CodeInvalidRequest, ""},
		{"empty", `{}`, CodeInvalidRequest, ""},
		{"deep", `{"jsonrpc":"2.0","method":"x","params":[` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `]}`, CodeParseError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.line))
			if err == nil {
				t.Fatalf("Parse accepted it as %v", m.Kind)
			}
			if !errors.Is(err, preflight.ErrMalformed) || !errors.Is(err, preflight.ErrOperational) {
				t.Fatalf("error %v is not of class ErrMalformed", err)
			}
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v carries no FrameError", err)
			}
			if fe.Code != tt.code || string(fe.ID) != tt.id {
				t.Fatalf("FrameError code %d id %q, want code %d id %q (%v)", fe.Code, fe.ID, tt.code, tt.id, err)
			}
		})
	}
}

func TestWithID(t *testing.T) {
	m, err := Parse([]byte(`{"jsonrpc":"2.0","id":"host-7","method":"tools/call","params":{"id":"host-7"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := string(m.WithID([]byte("42")))
	if want := `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"id":"host-7"}}`; got != want {
		t.Fatalf("WithID:\n got %s\nwant %s", got, want)
	}
}

func TestMemberIsStrict(t *testing.T) {
	v, ok, err := Member([]byte(`{"arguments":{"name":"inner"},"name":"echo"}`), "name")
	if err != nil || !ok || string(v) != `"echo"` {
		t.Fatalf("Member = %s %v %v", v, ok, err)
	}
	if _, ok, err := Member([]byte(`{"other":1}`), "name"); err != nil || ok {
		t.Fatalf("absent member: ok %v err %v", ok, err)
	}
	for _, obj := range []string{`{"name":"a","name":"b"}`, `{"name":"a","NAME":"b"}`, `{"n\u0061me":"a","name":"b"}`, `{"name":"a"`, `[]`} {
		if _, _, err := Member([]byte(obj), "name"); err == nil {
			t.Errorf("Member(%s) accepted an ambiguous or broken object", obj)
		}
	}
}

func TestBuilders(t *testing.T) {
	for _, b := range [][]byte{
		NewRequest(json.RawMessage("3"), "tools/list", json.RawMessage(`{"cursor":"x"}`)),
		NewNotification("notifications/tools/list_changed", nil),
		NewResponse(json.RawMessage(`"a"`), json.RawMessage(`{}`)),
		NewError(nil, CodeInvalidParams, "tool \"x\" is \n withheld", json.RawMessage(`{"code":"c"}`)),
	} {
		if _, err := Parse(b); err != nil {
			t.Errorf("built message %s does not parse: %v", b, err)
		}
		if bytes.IndexByte(b, '\n') >= 0 {
			t.Errorf("built message %q contains a newline", b)
		}
	}
}

func TestReaderSurvivesOversizedLine(t *testing.T) {
	big := `{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"text":"` + strings.Repeat("x", 300) + `"}}`
	input := big + "\n" +
		`{"jsonrpc":"2.0","method":"a"}` + "\r\n" +
		"\n   \n" +
		`{"jsonrpc":"2.0","` + strings.Repeat("y", 200) + "\n" +
		`{"jsonrpc":"2.0","method":"b"}`
	// A small bufio buffer would hide bugs in the chunked path, so the
	// limit is larger than one chunk of a tiny reader.
	r := NewReader(io.MultiReader(strings.NewReader(input)), 100)

	_, err := r.Read()
	var fe *FrameError
	if !errors.Is(err, preflight.ErrMalformed) || !errors.As(err, &fe) || string(fe.ID) != `"big"` {
		t.Fatalf("oversized request: %v (id %s), want ErrMalformed with the id recovered", err, fe.ID)
	}
	m, err := r.Read()
	if err != nil || m.Method != "a" {
		t.Fatalf("line after the oversized one: %v %v", m, err)
	}
	_, err = r.Read()
	if !errors.Is(err, preflight.ErrMalformed) || !errors.As(err, &fe) || fe.ID != nil {
		t.Fatalf("oversized garbage: %v, want ErrMalformed without id", err)
	}
	m, err = r.Read()
	if err != nil || m.Method != "b" {
		t.Fatalf("final line without newline: %v %v", m, err)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after the last line: %v, want io.EOF", err)
	}
}

func TestReaderLimitBoundary(t *testing.T) {
	line := `{"jsonrpc":"2.0","method":"` + strings.Repeat("m", 20) + `"}`
	for _, tt := range []struct {
		max  int
		term string
		ok   bool
	}{
		{len(line), "\n", true},
		{len(line), "\r\n", true},
		{len(line) - 1, "\n", false},
		{len(line) - 1, "\r\n", false},
	} {
		r := NewReader(strings.NewReader(line+tt.term+line+tt.term), tt.max)
		_, err := r.Read()
		if (err == nil) != tt.ok {
			t.Errorf("max %d term %q: err %v, want ok %v", tt.max, tt.term, err, tt.ok)
		}
		if tt.ok == false && !errors.Is(err, preflight.ErrMalformed) {
			t.Errorf("max %d: error %v is not ErrMalformed", tt.max, err)
		}
		if _, err2 := r.Read(); (err2 == nil) != tt.ok {
			t.Errorf("max %d term %q: second line err %v", tt.max, tt.term, err2)
		}
	}
}

// chunkWriter records each Write call separately.
type chunkWriter struct {
	mu     sync.Mutex
	writes [][]byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestWriterWholeLines(t *testing.T) {
	cw := &chunkWriter{}
	w := NewWriter(cw)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			msg := NewNotification("n", json.RawMessage(`{"i":`+strings.Repeat("1", i+1)+`}`))
			if err := w.WriteMessage(msg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(cw.writes) != 20 {
		t.Fatalf("%d writes, want 20", len(cw.writes))
	}
	for _, b := range cw.writes {
		if bytes.Count(b, []byte("\n")) != 1 || b[len(b)-1] != '\n' {
			t.Fatalf("write %q is not exactly one line", b)
		}
		if _, err := Parse(b[:len(b)-1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteMessage([]byte("{\n}")); !errors.Is(err, preflight.ErrMalformed) {
		t.Fatalf("message with a newline: %v, want ErrMalformed", err)
	}
}

func TestWriterErrorIsSticky(t *testing.T) {
	pr, pw := io.Pipe()
	pr.Close()
	w := NewWriter(pw)
	err := w.WriteMessage([]byte(`{}`))
	if !errors.Is(err, preflight.ErrUnavailable) || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write to a closed pipe: %v", err)
	}
	if err2 := w.WriteMessage([]byte(`{}`)); err2 != err {
		t.Fatalf("second write: %v, want the first error again", err2)
	}
}
