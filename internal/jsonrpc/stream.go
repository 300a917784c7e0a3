package jsonrpc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mcp-preflight/preflight"
)

// DefaultMaxBytes is the line limit of a Reader made with a limit of zero.
const DefaultMaxBytes = 4 << 20

// Reader reads newline-delimited messages with a hard limit on the length
// of one line. It is not safe for concurrent use.
type Reader struct {
	br   *bufio.Reader
	max  int
	line []byte
}

// NewReader returns a Reader of r that refuses lines longer than maxBytes
// (not counting the line terminator); maxBytes <= 0 means DefaultMaxBytes.
func NewReader(r io.Reader, maxBytes int) *Reader {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Reader{br: bufio.NewReaderSize(r, min(maxBytes+2, 64<<10)), max: maxBytes}
}

// ReadLine returns the next line that is not blank, without its "\n" or
// "\r\n" terminator. The slice is valid until the next call. A final line
// without terminator is returned before io.EOF.
//
// A line longer than the limit is consumed to its end and reported as an
// error of class preflight.ErrMalformed whose *FrameError carries the id of
// the request it began with, when that could be read; the next call reads
// the next line. Any other error comes from the underlying reader and ends
// the stream.
func (r *Reader) ReadLine() ([]byte, error) {
	for {
		r.line = r.line[:0]
		over := false
		var err error
		for {
			var chunk []byte
			chunk, err = r.br.ReadSlice('\n')
			if !over {
				content := chunk
				if len(content) > 0 && content[len(content)-1] == '\n' {
					content = content[:len(content)-1]
				}
				if len(r.line)+len(content) > r.max+1 { // +1: a "\r" may end it
					over = true
					// Keep what fits: the id may still be read from it.
					if keep := r.max - len(r.line); keep > 0 {
						r.line = append(r.line, content[:keep]...)
					}
				} else {
					r.line = append(r.line, content...)
				}
			}
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if err != nil && (err != io.EOF || (len(r.line) == 0 && !over)) {
			return nil, err
		}
		if over {
			return nil, &preflight.Error{
				Class:    preflight.ErrMalformed,
				Subject:  "JSON-RPC message",
				Expected: fmt.Sprintf("at most %d bytes on one line", r.max),
				Found:    "a longer line",
				Err:      &FrameError{ID: recoverID(r.line), Code: CodeInvalidRequest, Reason: fmt.Sprintf("message exceeds %d bytes", r.max)},
			}
		}
		line := r.line
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > r.max {
			// Exactly one byte over, and it was not a "\r".
			return nil, &preflight.Error{
				Class:    preflight.ErrMalformed,
				Subject:  "JSON-RPC message",
				Expected: fmt.Sprintf("at most %d bytes on one line", r.max),
				Found:    fmt.Sprintf("%d bytes", len(line)),
				Err:      &FrameError{ID: recoverID(line), Code: CodeInvalidRequest, Reason: fmt.Sprintf("message exceeds %d bytes", r.max)},
			}
		}
		if len(bytes.TrimLeft(line, " \t\r")) > 0 {
			return line, nil
		}
		if err == io.EOF {
			return nil, io.EOF
		}
	}
}

// Read returns the next message. The message owns its bytes. Errors of
// class preflight.ErrMalformed concern one line only; the next call reads
// the next line.
func (r *Reader) Read() (*Message, error) {
	line, err := r.ReadLine()
	if err != nil {
		return nil, err
	}
	return Parse(bytes.Clone(line))
}

// Writer writes one message per line. It is safe for concurrent use: each
// message reaches the underlying writer in one Write call, never interleaved
// with another. After a write fails, every later write returns the same
// error.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	err error
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// WriteMessage writes msg followed by "\n". A message that contains a
// newline would break the framing and is refused with preflight.ErrMalformed;
// a failed write is reported with preflight.ErrUnavailable.
func (w *Writer) WriteMessage(msg []byte) error {
	if bytes.IndexByte(msg, '\n') >= 0 {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "JSON-RPC message",
			Err: errors.New("message contains a newline")}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.buf = append(append(w.buf[:0], msg...), '\n')
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = &preflight.Error{Class: preflight.ErrUnavailable, Subject: "JSON-RPC stream",
			Hint: "the peer stopped reading", Err: err}
		return w.err
	}
	if cap(w.buf) > 64<<10 {
		w.buf = nil // do not pin a large message's buffer
	}
	return nil
}
