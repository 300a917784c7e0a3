package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-preflight/preflight"
)

// MaxPolicyBytes bounds the size of a policy file.
const MaxPolicyBytes = 1 << 20

// Problem is one thing wrong with a policy file, at a position.
// Line and Column are 1-based; Column is 0 when only the line is known, and
// both are 0 when the problem concerns the whole file.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

// String renders the problem as file:line:column: message.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteString(":" + strconv.Itoa(p.Column))
		}
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// ParseError lists every problem Parse found, in file order. It matches
// preflight.ErrConfig (and so preflight.ErrOperational) with errors.Is.
type ParseError struct {
	Problems []Problem
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("invalid policy")
	if len(e.Problems) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, ": %d problems", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}

// Unwrap returns preflight.ErrConfig.
func (e *ParseError) Unwrap() error { return preflight.ErrConfig }

// Parse reads and validates a policy. filename is used in problem
// positions only. The format is YAML; JSON, being YAML, is accepted too.
// Parsing is strict: unknown fields, duplicate keys, wrong types, aliases,
// several documents and invalid values are problems, and every problem found
// is reported in one *ParseError (which matches preflight.ErrConfig).
// On success every default is filled in (see the package documentation).
func Parse(filename string, data []byte) (*Policy, error) {
	p, problems := parse(filename, data)
	if len(problems) > 0 {
		return nil, &ParseError{Problems: problems}
	}
	return p, nil
}

// Lint returns every problem of a policy file, or nil when it is valid.
func Lint(filename string, data []byte) []Problem {
	_, problems := parse(filename, data)
	return problems
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

func parse(filename string, data []byte) (*Policy, []Problem) {
	d := &decoder{file: filename, pos: map[string]position{}, keyPos: map[string]position{}, present: map[string]bool{}, bad: map[string]bool{}}
	if len(data) > MaxPolicyBytes {
		d.problems = append(d.problems, Problem{File: filename, Message: fmt.Sprintf("policy is %d bytes, more than the limit of %d", len(data), MaxPolicyBytes)})
		return nil, d.problems
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.problems = append(d.problems, Problem{File: filename, Message: "policy is empty; it needs at least version: 1 and servers"})
		} else {
			d.problems = append(d.problems, yamlProblem(filename, err))
		}
		return nil, d.problems
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.problems = append(d.problems, Problem{File: filename, Line: extra.Line, Column: extra.Column, Message: "a policy is one YAML document; remove the second document"})
	} else if !errors.Is(err, io.EOF) {
		d.problems = append(d.problems, yamlProblem(filename, err))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var p Policy
	d.decode(root, reflect.ValueOf(&p).Elem(), "")
	if !d.present["version"] {
		d.problemAt(position{root.Line, root.Column}, "version is required: write version: 1")
	}
	if !d.present["servers"] {
		d.problemAt(position{root.Line, root.Column}, "servers is required: name at least one server")
	}
	d.validatePolicy(&p)
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool {
			a, b := d.problems[i], d.problems[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, d.problems
	}
	d.fillDefaults(&p)
	return &p, nil
}

func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Message: "YAML syntax: " + m[2]}
	}
	return Problem{File: file, Message: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

type position struct{ line, col int }

// decoder turns a YAML node tree into Go values by their yaml tags,
// recording positions by path so validation can point at the source.
type decoder struct {
	file     string
	problems []Problem
	pos      map[string]position // value position by path
	keyPos   map[string]position // key position by path
	present  map[string]bool
	bad      map[string]bool // paths whose value did not decode
}

func (d *decoder) problemAt(p position, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: p.line, Column: p.col, Message: fmt.Sprintf(format, args...)})
}

// errorf reports a problem at the value of path, or at the nearest
// enclosing value with a known position. Values that did not decode have
// been reported already, so problems at or below them are not repeated.
func (d *decoder) errorf(path, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if d.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	d.problemAt(d.at(path), "%s: %s", displayPath(path), fmt.Sprintf(format, args...))
}

func (d *decoder) at(path string) position {
	for {
		if p, ok := d.pos[path]; ok {
			return p
		}
		if path == "" {
			return position{}
		}
		path = parentPath(path)
	}
}

func displayPath(path string) string {
	if path == "" {
		return "policy"
	}
	return path
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var simpleKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]+$`) })

func joinKey(path, key string) string {
	if simpleKey().MatchString(key) {
		return joinField(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing (null)"
		case "!!str":
			return "the string " + strconv.Quote(n.Value)
		case "!!int":
			return "the number " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an unexpected node"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) bool {
	ok := d.decodeValue(n, v, path)
	if !ok {
		d.bad[path] = true
	}
	return ok
}

func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, path string) bool {
	d.pos[path] = position{n.Line, n.Column}
	if n.Kind == yaml.AliasNode {
		d.errorf(path, "YAML aliases are not supported; write the value out")
		return false
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if !d.decode(n, elem.Elem(), path) {
			return false
		}
		v.Set(elem)
		return true
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(path, "expected a mapping, found %s", describeNode(n))
			return false
		}
		fields := structFields(v.Type())
		seen := map[string]position{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key, ok := d.key(k, path)
			if !ok {
				continue
			}
			if prev, dup := seen[key]; dup {
				d.problemAt(position{k.Line, k.Column}, "%s: duplicate key %q (first at %d:%d)", displayPath(path), key, prev.line, prev.col)
				continue
			}
			seen[key] = position{k.Line, k.Column}
			idx, ok := fields[key]
			if !ok {
				d.problemAt(position{k.Line, k.Column}, "%s: unknown field %q%s", displayPath(path), key, suggest(key, fieldNames(fields)))
				continue
			}
			fp := joinField(path, key)
			d.keyPos[fp] = position{k.Line, k.Column}
			d.present[fp] = true
			d.decode(val, v.Field(idx), fp)
		}
		return true
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(path, "expected a mapping, found %s", describeNode(n))
			return false
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]position{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key, ok := d.key(k, path)
			if !ok {
				continue
			}
			if prev, dup := seen[key]; dup {
				d.problemAt(position{k.Line, k.Column}, "%s: duplicate key %q (first at %d:%d)", displayPath(path), key, prev.line, prev.col)
				continue
			}
			seen[key] = position{k.Line, k.Column}
			kp := joinKey(path, key)
			d.keyPos[kp] = position{k.Line, k.Column}
			d.present[kp] = true
			elem := reflect.New(v.Type().Elem()).Elem()
			if d.decode(val, elem, kp) {
				v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
			}
		}
		return true
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(path, "expected a list, found %s", describeNode(n))
			return false
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), joinIndex(path, i))
		}
		v.Set(s)
		return true
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			hint := ""
			if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
				hint = "; quote it to make it a string"
			}
			d.errorf(path, "expected a string, found %s%s", describeNode(n), hint)
			return false
		}
		v.Set(reflect.ValueOf(n.Value).Convert(v.Type()))
		return true
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(path, "expected an integer, found %s", describeNode(n))
			return false
		}
		i, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.errorf(path, "expected an integer, found %q", n.Value)
			return false
		}
		v.SetInt(i)
		return true
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(path, "expected true or false, found %s", describeNode(n))
			return false
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
		return true
	}
	d.errorf(path, "internal error: cannot decode into %s", v.Type())
	return false
}

func (d *decoder) key(k *yaml.Node, path string) (string, bool) {
	if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
		d.problemAt(position{k.Line, k.Column}, "%s: keys must be strings, found %s", displayPath(path), describeNode(k))
		return "", false
	}
	return k.Value, true
}

// structFields maps yaml names to field indexes; fields tagged "-" are not
// part of the file format.
func structFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" || !f.IsExported() {
			continue
		}
		out[name] = i
	}
	return out
}

func fieldNames(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// suggest proposes the closest known name, or lists them all.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; known fields: " + strings.Join(known, ", ")
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
