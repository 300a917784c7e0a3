package jsonrpc

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects, as encoding/json does,
// so that hostile input cannot exhaust the stack.
const maxDepth = 10000

var (
	errTruncated = errors.New("unexpected end of JSON input")
	errSyntax    = errors.New("invalid JSON")
	errDepth     = errors.New("JSON nested too deeply")
)

// A scanner validates JSON in one pass without building values. It accepts
// exactly what encoding/json's Valid accepts (the fuzz test holds it to
// that), and it never reads past the end of its input, so it also walks
// truncated prefixes, reporting errTruncated where they end.
type scanner struct {
	b []byte
}

func (s *scanner) space(i int) int {
	for i < len(s.b) {
		switch s.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value validates the value starting at or after i (after white space) and
// returns the offsets of its first byte and of the byte after it.
func (s *scanner) value(i, depth int) (start, end int, err error) {
	i = s.space(i)
	if i >= len(s.b) {
		return i, i, errTruncated
	}
	switch c := s.b[i]; {
	case c == '{':
		end, err = s.object(i, depth+1, nil)
	case c == '[':
		end, err = s.array(i, depth+1)
	case c == '"':
		end, _, err = s.str(i)
	case c == 't':
		end, err = s.literal(i, "true")
	case c == 'f':
		end, err = s.literal(i, "false")
	case c == 'n':
		end, err = s.literal(i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		end, err = s.number(i)
	default:
		err = errSyntax
	}
	return i, end, err
}

func (s *scanner) literal(i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(s.b) {
			return i + k, errTruncated
		}
		if s.b[i+k] != lit[k] {
			return i + k, errSyntax
		}
	}
	return i + len(lit), nil
}

func (s *scanner) digits(i int) int {
	for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
		i++
	}
	return i
}

// number validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number(i int) (int, error) {
	if s.b[i] == '-' {
		i++
	}
	if i >= len(s.b) {
		return i, errTruncated
	}
	switch c := s.b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i = s.digits(i + 1)
	default:
		return i, errSyntax
	}
	if i < len(s.b) && s.b[i] == '.' {
		i++
		if i >= len(s.b) {
			return i, errTruncated
		}
		j := s.digits(i)
		if j == i {
			return i, errSyntax
		}
		i = j
	}
	if i < len(s.b) && (s.b[i] == 'e' || s.b[i] == 'E') {
		i++
		if i < len(s.b) && (s.b[i] == '+' || s.b[i] == '-') {
			i++
		}
		if i >= len(s.b) {
			return i, errTruncated
		}
		j := s.digits(i)
		if j == i {
			return i, errSyntax
		}
		i = j
	}
	return i, nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// str validates the string starting at s.b[i] == '"' and returns the offset
// after its closing quote and whether it contains escapes.
func (s *scanner) str(i int) (end int, escaped bool, err error) {
	for j := i + 1; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			return j + 1, escaped, nil
		case c == '\\':
			escaped = true
			j++
			if j >= len(s.b) {
				return j, escaped, errTruncated
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for k := 1; k <= 4; k++ {
					if j+k >= len(s.b) {
						return j + k, escaped, errTruncated
					}
					if !isHex(s.b[j+k]) {
						return j + k, escaped, errSyntax
					}
				}
				j += 4
			default:
				return j, escaped, errSyntax
			}
		case c < 0x20:
			return j, escaped, errSyntax
		}
	}
	return len(s.b), escaped, errTruncated
}

func (s *scanner) array(i, depth int) (int, error) {
	if depth > maxDepth {
		return i, errDepth
	}
	i = s.space(i + 1)
	if i >= len(s.b) {
		return i, errTruncated
	}
	if s.b[i] == ']' {
		return i + 1, nil
	}
	for {
		_, end, err := s.value(i, depth)
		if err != nil {
			return end, err
		}
		i = s.space(end)
		if i >= len(s.b) {
			return i, errTruncated
		}
		switch s.b[i] {
		case ',':
			i++
		case ']':
			return i + 1, nil
		default:
			return i, errSyntax
		}
	}
}

// A member is one name/value pair of an object, as offsets into the input.
type member struct {
	keyStart, keyEnd     int // the key without its quotes
	keyEscaped           bool
	valueStart, valueEnd int
}

// object validates the object starting at s.b[i] == '{'. When visit is not
// nil it is called for each member in order; an error from visit stops the
// scan and is returned.
func (s *scanner) object(i, depth int, visit func(m member) error) (int, error) {
	if depth > maxDepth {
		return i, errDepth
	}
	i = s.space(i + 1)
	if i >= len(s.b) {
		return i, errTruncated
	}
	if s.b[i] == '}' {
		return i + 1, nil
	}
	for {
		if s.b[i] != '"' {
			return i, errSyntax
		}
		kend, escaped, err := s.str(i)
		if err != nil {
			return kend, err
		}
		m := member{keyStart: i + 1, keyEnd: kend - 1, keyEscaped: escaped}
		i = s.space(kend)
		if i >= len(s.b) {
			return i, errTruncated
		}
		if s.b[i] != ':' {
			return i, errSyntax
		}
		m.valueStart, m.valueEnd, err = s.value(i+1, depth)
		if err != nil {
			return m.valueEnd, err
		}
		if visit != nil {
			if err := visit(m); err != nil {
				return m.valueEnd, err
			}
		}
		i = s.space(m.valueEnd)
		if i >= len(s.b) {
			return i, errTruncated
		}
		switch s.b[i] {
		case ',':
			i = s.space(i + 1)
			if i >= len(s.b) {
				return i, errTruncated
			}
		case '}':
			return i + 1, nil
		default:
			return i, errSyntax
		}
	}
}

// valid reports whether b is exactly one JSON value with optional white
// space around it.
func valid(b []byte) bool {
	s := scanner{b: b}
	_, end, err := s.value(0, 0)
	return err == nil && s.space(end) == len(b)
}

// key returns the member's name, unescaped.
func (s *scanner) key(m member) (string, error) {
	if !m.keyEscaped {
		return string(s.b[m.keyStart:m.keyEnd]), nil
	}
	var k string
	if err := json.Unmarshal(s.b[m.keyStart-1:m.keyEnd+1], &k); err != nil {
		return "", errSyntax
	}
	return k, nil
}

// Member returns the raw value of the member named key in the JSON object
// obj. Names are matched exactly; an object that names key twice, or holds a
// name that differs from key only in case (which encoding/json would match),
// is refused, so that every conforming parser reads the same value the
// caller does. The returned slice aliases obj. ok is false when the member is
// absent.
func Member(obj []byte, key string) (value []byte, ok bool, err error) {
	start, end, ok, err := MemberSpan(obj, key)
	if !ok || err != nil {
		return nil, ok, err
	}
	return obj[start:end], true, nil
}

// MemberSpan is Member returning the offsets of the value in obj, so that a
// caller can replace it without re-encoding the rest of the object.
func MemberSpan(obj []byte, key string) (start, end int, ok bool, err error) {
	s := scanner{b: obj}
	i := s.space(0)
	if i >= len(obj) || obj[i] != '{' {
		return 0, 0, false, errors.New("not a JSON object")
	}
	last, err := s.object(i, 1, func(m member) error {
		k, err := s.key(m)
		if err != nil {
			return err
		}
		switch {
		case k == key:
			if ok {
				return errors.New("member " + strconvQuote(key) + " appears twice")
			}
			start, end, ok = m.valueStart, m.valueEnd, true
		case strings.EqualFold(k, key):
			return errors.New("member " + strconvQuote(k) + " is ambiguous with " + strconvQuote(key))
		}
		return nil
	})
	if err == nil && s.space(last) != len(obj) {
		err = errSyntax
	}
	if err != nil {
		return 0, 0, false, err
	}
	return start, end, ok, nil
}

// String decodes a raw JSON string value.
func String(raw []byte) (string, error) {
	s := scanner{b: raw}
	if len(raw) == 0 || raw[0] != '"' {
		return "", errors.New("not a JSON string")
	}
	end, escaped, err := s.str(0)
	if err != nil || end != len(raw) {
		return "", errSyntax
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD; refusing it keeps
	// every reader of the string in agreement.
	if !utf8.Valid(raw) {
		return "", errors.New("string is not valid UTF-8")
	}
	if !escaped {
		return string(raw[1 : end-1]), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", errSyntax
	}
	return v, nil
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s) // a Go string always marshals
	return string(b)
}
