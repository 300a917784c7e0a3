package jsonrpc

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/mcp-preflight/preflight"
)

// FuzzReader frames an arbitrary byte stream (what a server writes on its
// stdout) with a small line limit: every line returned is within the
// limit, has no terminator and is not blank (spaces, tabs and carriage
// returns only; a form feed is not JSON whitespace and is returned for
// Parse to refuse); an over-long line is an ErrMalformed *FrameError after
// which reading goes on; the stream ends with io.EOF; and the bytes of the
// accepted lines appear in the input in order.
func FuzzReader(f *testing.F) {
	for _, seed := range []string{
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n",
		"a\r\nb\n\n\r\n  \nc",
		"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"" + string(bytes.Repeat([]byte("x"), 100)) + "\"}\nok\n",
		"\r\r\n\n",
		"",
		"no terminator",
	} {
		f.Add([]byte(seed), 16)
	}
	f.Fuzz(func(t *testing.T, stream []byte, limit int) {
		limit = 1 + abs(limit)%256
		r := NewReader(bytes.NewReader(stream), limit)
		rest := stream
		for range len(stream) + 2 {
			line, err := r.ReadLine()
			if err == io.EOF {
				return
			}
			if err != nil {
				var fe *FrameError
				if !errors.Is(err, preflight.ErrMalformed) || !errors.As(err, &fe) {
					t.Fatalf("framing error %v is not ErrMalformed with a FrameError", err)
				}
				continue
			}
			if len(line) > limit {
				t.Fatalf("line of %d bytes passed a limit of %d", len(line), limit)
			}
			if len(bytes.Trim(line, " \t\r")) == 0 || bytes.HasSuffix(line, []byte("\n")) {
				t.Fatalf("line %q is blank or keeps its terminator", line)
			}
			i := bytes.Index(rest, line)
			if i < 0 {
				t.Fatalf("line %q is not in the rest of the input", line)
			}
			rest = rest[i+len(line):]
		}
		t.Fatal("the reader did not reach io.EOF")
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}
