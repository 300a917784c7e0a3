package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mcp-preflight/preflight"
)

// Kind classifies a JSON-RPC message.
type Kind uint8

// The four kinds of JSON-RPC 2.0 message.
const (
	KindRequest      Kind = iota + 1 // method and id
	KindNotification                 // method, no id
	KindResponse                     // id and result
	KindError                        // id (possibly null) and error
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	case KindError:
		return "error response"
	}
	return "invalid"
}

// Standard JSON-RPC 2.0 error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// Message is one parsed JSON-RPC message. Its raw fields alias Raw, the line
// it was parsed from; none of them is ever re-encoded.
type Message struct {
	Kind Kind
	// ID is the raw id: a JSON string or number, or null in an error
	// response to a message whose id could not be read. Nil for
	// notifications.
	ID     json.RawMessage
	Method string          // requests and notifications
	Params json.RawMessage // requests and notifications; nil when absent
	Result json.RawMessage // responses
	Error  *ErrorObject    // error responses
	Raw    []byte          // the whole message, without line terminator

	idStart, idEnd int // offsets of ID in Raw
}

// ErrorObject is the error member of an error response.
type ErrorObject struct {
	Code    int64
	Message string
	Data    json.RawMessage // nil when absent
}

// FrameError describes a line that is not a usable JSON-RPC message. It is
// the cause inside the preflight.ErrMalformed errors of this package.
type FrameError struct {
	// ID is the id of the request the line appears to be (it names a method
	// and an id), recovered so that the sender can still be answered; nil
	// when the line is not recognisably a request.
	ID json.RawMessage
	// Code is the JSON-RPC error code an answer should carry.
	Code int64
	// Reason says what is wrong, for logs.
	Reason string
}

func (e *FrameError) Error() string { return e.Reason }

func malformed(id json.RawMessage, code int64, format string, args ...any) error {
	return &preflight.Error{
		Class:   preflight.ErrMalformed,
		Subject: "JSON-RPC message",
		Err:     &FrameError{ID: id, Code: code, Reason: fmt.Sprintf(format, args...)},
	}
}

// The members a JSON-RPC message may carry, in the order of the fields of
// the parse state below.
var rpcMembers = [...]string{"jsonrpc", "id", "method", "params", "result", "error"}

const (
	mJSONRPC = iota
	mID
	mMethod
	mParams
	mResult
	mError
)

// Parse classifies line as one JSON-RPC 2.0 message. The returned message
// aliases line. Errors are of class preflight.ErrMalformed with a
// *FrameError cause.
func Parse(line []byte) (*Message, error) {
	s := scanner{b: line}
	i := s.space(0)
	if i >= len(line) || line[i] != '{' {
		if i < len(line) && line[i] == '[' {
			return nil, malformed(nil, CodeInvalidRequest, "JSON-RPC batches are not supported")
		}
		return nil, malformed(nil, CodeParseError, "not a JSON object")
	}
	var (
		spans [len(rpcMembers)][2]int
		seen  [len(rpcMembers)]bool
	)
	end, err := s.object(i, 1, func(m member) error {
		idx, err := s.rpcMember(m)
		if err != nil || idx < 0 {
			return err
		}
		if seen[idx] {
			return fmt.Errorf("member %q appears twice", rpcMembers[idx])
		}
		seen[idx] = true
		spans[idx] = [2]int{m.valueStart, m.valueEnd}
		return nil
	})
	if err == nil && s.space(end) != len(line) {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		code := int64(CodeInvalidRequest)
		if errors.Is(err, errSyntax) || errors.Is(err, errTruncated) || errors.Is(err, errDepth) {
			code = CodeParseError
		}
		return nil, malformed(recoverID(line), code, "%v", err)
	}
	raw := func(idx int) []byte {
		if !seen[idx] {
			return nil
		}
		return line[spans[idx][0]:spans[idx][1]]
	}
	m := &Message{Raw: line}
	// An id is recoverable from here on only if the message is a request.
	var reqID json.RawMessage
	if seen[mID] && seen[mMethod] {
		reqID = raw(mID)
	}
	if v := raw(mJSONRPC); string(v) != `"2.0"` {
		return nil, malformed(reqID, CodeInvalidRequest, `member "jsonrpc" must be "2.0"`)
	}
	if seen[mID] {
		id := raw(mID)
		switch c := id[0]; {
		case c == '"' || c == '-' || (c >= '0' && c <= '9'):
		case c == 'n' && !seen[mMethod] && seen[mError]:
			// null: only in an error response to an unreadable message.
		default:
			return nil, malformed(nil, CodeInvalidRequest, "id must be a string or a number")
		}
		m.ID, m.idStart, m.idEnd = id, spans[mID][0], spans[mID][1]
	}
	switch {
	case seen[mMethod]:
		if seen[mResult] || seen[mError] {
			return nil, malformed(reqID, CodeInvalidRequest, "a request cannot carry a result or an error")
		}
		method, err := String(raw(mMethod))
		if err != nil || method == "" {
			return nil, malformed(reqID, CodeInvalidRequest, "method must be a non-empty string")
		}
		m.Method = method
		if p := raw(mParams); p != nil {
			if p[0] != '{' && p[0] != '[' {
				return nil, malformed(reqID, CodeInvalidRequest, "params must be an object or an array")
			}
			m.Params = p
		}
		if seen[mID] {
			m.Kind = KindRequest
		} else {
			m.Kind = KindNotification
		}
	case seen[mParams]:
		return nil, malformed(nil, CodeInvalidRequest, "params without a method")
	case !seen[mID]:
		return nil, malformed(nil, CodeInvalidRequest, "neither a method nor an id")
	case seen[mResult] && seen[mError]:
		return nil, malformed(nil, CodeInvalidRequest, "a response cannot carry both a result and an error")
	case seen[mResult]:
		m.Kind, m.Result = KindResponse, raw(mResult)
	case seen[mError]:
		e, err := parseErrorObject(raw(mError))
		if err != nil {
			return nil, malformed(nil, CodeInvalidRequest, "error member: %v", err)
		}
		m.Kind, m.Error = KindError, e
	default:
		return nil, malformed(nil, CodeInvalidRequest, "a response needs a result or an error")
	}
	return m, nil
}

// rpcMember returns the index of m in rpcMembers, -1 for another member, or
// an error for a member whose name differs from a JSON-RPC member only in
// case: encoding/json would read it as that member, a strict parser would not.
func (s *scanner) rpcMember(m member) (int, error) {
	k := string(s.b[m.keyStart:m.keyEnd]) // does not allocate in the switch below
	if m.keyEscaped {
		var err error
		if k, err = s.key(m); err != nil {
			return -1, err
		}
	}
	switch k {
	case "jsonrpc":
		return mJSONRPC, nil
	case "id":
		return mID, nil
	case "method":
		return mMethod, nil
	case "params":
		return mParams, nil
	case "result":
		return mResult, nil
	case "error":
		return mError, nil
	}
	// Case folding can turn a three-byte rune into an ASCII letter (the
	// Kelvin sign folds to k, the long s to s), so compare generously.
	if len(k) <= 3*len("jsonrpc") {
		for idx, name := range rpcMembers {
			if strings.EqualFold(k, name) {
				return -1, fmt.Errorf("member %q is ambiguous with %q", k, rpcMembers[idx])
			}
		}
	}
	return -1, nil
}

func parseErrorObject(raw []byte) (*ErrorObject, error) {
	if raw[0] != '{' {
		return nil, errors.New("not an object")
	}
	code, ok, err := Member(raw, "code")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("no code")
	}
	n, err := strconv.ParseInt(string(code), 10, 64)
	if err != nil {
		return nil, errors.New("code is not an integer")
	}
	msg, ok, err := Member(raw, "message")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("no message")
	}
	text, err := String(msg)
	if err != nil {
		return nil, errors.New("message is not a string")
	}
	data, _, err := Member(raw, "data")
	if err != nil {
		return nil, err
	}
	return &ErrorObject{Code: n, Message: text, Data: data}, nil
}

// recoverID walks the top-level members of a line that is invalid or was
// cut short and returns its id if the members read before the damage
// include both an id and a method, so that a request can still be answered.
func recoverID(line []byte) json.RawMessage {
	s := scanner{b: line}
	i := s.space(0)
	if i >= len(line) || line[i] != '{' {
		return nil
	}
	var id []byte
	var method bool
	s.object(i, 1, func(m member) error { //nolint:errcheck // damage is expected
		idx, err := s.rpcMember(m)
		if err != nil {
			return err
		}
		switch idx {
		case mID:
			v := line[m.valueStart:m.valueEnd]
			if id != nil || (v[0] != '"' && v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
				id = nil
				return errSyntax
			}
			id = v
		case mMethod:
			method = true
		case mResult, mError:
			id = nil
			return errSyntax
		}
		return nil
	})
	if !method || id == nil {
		return nil
	}
	return append(json.RawMessage(nil), id...)
}

// WithID returns a copy of the message's raw bytes with its id replaced by
// id, which must be a JSON string or number. The message must have an id.
func (m *Message) WithID(id []byte) []byte {
	out := make([]byte, 0, len(m.Raw)-(m.idEnd-m.idStart)+len(id))
	out = append(out, m.Raw[:m.idStart]...)
	out = append(out, id...)
	return append(out, m.Raw[m.idEnd:]...)
}

// AppendString appends s to dst as a JSON string.
func AppendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a Go string always marshals
	return append(dst, b...)
}

// NewRequest returns a request; params must be a JSON object or nil.
func NewRequest(id json.RawMessage, method string, params json.RawMessage) []byte {
	b := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	b = append(b, `,"method":`...)
	b = AppendString(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// NewNotification returns a notification; params must be a JSON object or nil.
func NewNotification(method string, params json.RawMessage) []byte {
	b := AppendString([]byte(`{"jsonrpc":"2.0","method":`), method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// NewResponse returns a response carrying result, which must be valid JSON.
func NewResponse(id json.RawMessage, result json.RawMessage) []byte {
	b := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	return append(b, '}')
}

// NewError returns an error response. data, when not nil, must be valid JSON.
func NewError(id json.RawMessage, code int64, message string, data json.RawMessage) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	b := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, code, 10)
	b = append(b, `,"message":`...)
	b = AppendString(b, message)
	if data != nil {
		b = append(b, `,"data":`...)
		b = append(b, data...)
	}
	return append(b, "}}"...)
}
