package npm

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// semver is a parsed semantic version (https://semver.org). Build metadata
// is dropped: it never takes part in ordering.
type semver struct {
	major, minor, patch uint64
	pre                 []string // dot-separated pre-release identifiers
}

const maxVersionLen = 256

// parseSemver parses a full version: MAJOR.MINOR.PATCH, with an optional
// pre-release (-alpha.1) and build (+sha.1). A leading "v" or "=" is not
// accepted here; range parsing strips those.
func parseSemver(s string) (semver, bool) {
	if s == "" || len(s) > maxVersionLen {
		return semver{}, false
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdents(s[i+1:], false) {
			return semver{}, false
		}
		s = s[:i]
	}
	var v semver
	if i := strings.IndexByte(s, '-'); i >= 0 {
		if !validIdents(s[i+1:], true) {
			return semver{}, false
		}
		v.pre = strings.Split(s[i+1:], ".")
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return semver{}, false
	}
	nums := [3]*uint64{&v.major, &v.minor, &v.patch}
	for i, p := range parts {
		n, ok := parseNumber(p)
		if !ok {
			return semver{}, false
		}
		*nums[i] = n
	}
	return v, true
}

// parseNumber parses a numeric identifier: digits without a leading zero.
func parseNumber(s string) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for _, c := range id {
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

func (v semver) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch)
	if len(v.pre) > 0 {
		s += "-" + strings.Join(v.pre, ".")
	}
	return s
}

// compare orders versions by semver precedence.
func (v semver) compare(w semver) int {
	if c := cmp.Compare(v.major, w.major); c != 0 {
		return c
	}
	if c := cmp.Compare(v.minor, w.minor); c != 0 {
		return c
	}
	if c := cmp.Compare(v.patch, w.patch); c != 0 {
		return c
	}
	switch {
	case len(v.pre) == 0 && len(w.pre) == 0:
		return 0
	case len(v.pre) == 0:
		return 1
	case len(w.pre) == 0:
		return -1
	}
	for i := 0; i < len(v.pre) && i < len(w.pre); i++ {
		a, b := v.pre[i], w.pre[i]
		an, aNum := parseNumber(a)
		bn, bNum := parseNumber(b)
		var c int
		switch {
		case aNum && bNum:
			c = cmp.Compare(an, bn)
		case aNum:
			c = -1
		case bNum:
			c = 1
		default:
			c = strings.Compare(a, b)
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(v.pre), len(w.pre))
}

func (v semver) sameTuple(w semver) bool {
	return v.major == w.major && v.minor == w.minor && v.patch == w.patch
}

// A versionRange is a union (||) of comparator sets; a version satisfies it
// when it satisfies every comparator of at least one set. This is the subset
// of node-semver's grammar Preflight supports:
//
//   - exact versions: 1.2.3, =1.2.3, v1.2.3, 1.2.3-beta.1
//   - comparators: >1.2.3, >=1.2.3, <2.0.0, <=1.2.3, combined with spaces
//   - caret ranges: ^1.2.3, ^0.2.3, ^0.0.3, ^1.2, ^1.x
//   - tilde ranges: ~1.2.3, ~1.2, ~1
//   - x-ranges: *, x, "" (any), 1, 1.x, 1.2, 1.2.x
//   - hyphen ranges: 1.2.3 - 2.3.4
//   - unions: ^1.0.0 || ^2.0.0
//
// As in node-semver, a pre-release version satisfies a set only when some
// comparator of that set names a pre-release of the same MAJOR.MINOR.PATCH.
// Loose-mode oddities (spaces after operators other than hyphen ranges, ~>)
// are refused.
type versionRange [][]comparator

type comparator struct {
	op string // "<", "<=", ">", ">=", "="
	v  semver
}

const maxRangeLen = 1024

func parseRange(s string) (versionRange, error) {
	if len(s) > maxRangeLen {
		return nil, fmt.Errorf("range longer than %d bytes", maxRangeLen)
	}
	var r versionRange
	for _, alt := range strings.Split(s, "||") {
		set, err := parseComparatorSet(strings.TrimSpace(alt))
		if err != nil {
			return nil, err
		}
		r = append(r, set)
	}
	return r, nil
}

// joinOperators joins a field that is only an operator ("^", ">=", "<") to
// the version after it: npm allows space between them (">= 2.1.2 < 3").
func joinOperators(fields []string) []string {
	out := fields[:0:0]
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Trim(f, "<>=~^") == "" && i+1 < len(fields) && fields[i+1] != "-" {
			f += fields[i+1]
			i++
		}
		out = append(out, f)
	}
	return out
}

func parseComparatorSet(s string) ([]comparator, error) {
	fields := joinOperators(strings.Fields(s))
	if len(fields) == 0 {
		return []comparator{{op: ">=", v: semver{}}}, nil // any release
	}
	if len(fields) == 3 && fields[1] == "-" {
		lo, err := parsePartial(fields[0])
		if err != nil {
			return nil, err
		}
		hi, err := parsePartial(fields[2])
		if err != nil {
			return nil, err
		}
		set := []comparator{{op: ">=", v: lo.floor()}}
		if c, ok := hi.upperInclusive(); ok {
			set = append(set, c)
		}
		return set, nil
	}
	var set []comparator
	for _, f := range fields {
		cs, err := parseComparator(f)
		if err != nil {
			return nil, err
		}
		set = append(set, cs...)
	}
	return set, nil
}

// partial is a version with possibly missing or wildcard components.
type partial struct {
	nums [3]uint64
	n    int // how many leading components are given (0..3)
	pre  []string
}

func parsePartial(s string) (partial, error) {
	s = strings.TrimPrefix(s, "v")
	var p partial
	if s == "" || s == "*" || s == "x" || s == "X" {
		return p, nil
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	rest, hasPre := "", false
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s, rest, hasPre = s[:i], s[i+1:], true
	}
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return p, fmt.Errorf("version %q has more than three components", s)
	}
	for i, part := range parts {
		if part == "x" || part == "X" || part == "*" {
			break // as in node-semver, what follows a wildcard is ignored
		}
		n, ok := parseNumber(part)
		if !ok {
			return p, fmt.Errorf("invalid version component %q", part)
		}
		p.nums[i] = n
		p.n = i + 1
	}
	if hasPre {
		if p.n != 3 || !validIdents(rest, true) {
			return p, fmt.Errorf("invalid pre-release in %q", s+"-"+rest)
		}
		p.pre = strings.Split(rest, ".")
	}
	return p, nil
}

func (p partial) floor() semver {
	v := semver{major: p.nums[0], minor: p.nums[1], patch: p.nums[2]}
	if p.n == 3 {
		v.pre = p.pre
	}
	return v
}

// bump returns the first version above every version the partial matches,
// with a "-0" pre-release so that pre-releases of it are excluded too.
func (p partial) bump() (semver, bool) {
	switch p.n {
	case 1:
		return semver{major: p.nums[0] + 1, pre: []string{"0"}}, true
	case 2:
		return semver{major: p.nums[0], minor: p.nums[1] + 1, pre: []string{"0"}}, true
	}
	return semver{}, false
}

// upperInclusive is the comparator "<= p" with wildcards widened.
func (p partial) upperInclusive() (comparator, bool) {
	switch p.n {
	case 0:
		return comparator{}, false
	case 3:
		return comparator{op: "<=", v: p.floor()}, true
	}
	b, _ := p.bump()
	return comparator{op: "<", v: b}, true
}

func parseComparator(f string) ([]comparator, error) {
	op := ""
	for _, o := range []string{">=", "<=", ">", "<", "=", "^", "~"} {
		if strings.HasPrefix(f, o) {
			op, f = o, f[len(o):]
			break
		}
	}
	if strings.HasPrefix(f, ">") || strings.HasPrefix(f, "<") || strings.HasPrefix(f, "=") {
		return nil, fmt.Errorf("unsupported operator in %q", op+f)
	}
	p, err := parsePartial(f)
	if err != nil {
		return nil, err
	}
	lo := p.floor()
	switch op {
	case "", "=":
		if p.n == 3 {
			return []comparator{{op: "=", v: lo}}, nil
		}
		set := []comparator{{op: ">=", v: lo}}
		if c, ok := p.upperInclusive(); ok {
			set = append(set, c)
		}
		return set, nil
	case "^":
		var hi semver
		switch {
		case p.n == 0:
			return []comparator{{op: ">=", v: semver{}}}, nil
		case p.nums[0] > 0 || p.n == 1:
			hi = semver{major: p.nums[0] + 1}
		case p.nums[1] > 0 || p.n == 2:
			hi = semver{minor: p.nums[1] + 1}
		default:
			hi = semver{patch: p.nums[2] + 1}
		}
		hi.pre = []string{"0"}
		return []comparator{{op: ">=", v: lo}, {op: "<", v: hi}}, nil
	case "~":
		var hi semver
		switch p.n {
		case 0:
			return []comparator{{op: ">=", v: semver{}}}, nil
		case 1:
			hi = semver{major: p.nums[0] + 1}
		default:
			hi = semver{major: p.nums[0], minor: p.nums[1] + 1}
		}
		hi.pre = []string{"0"}
		return []comparator{{op: ">=", v: lo}, {op: "<", v: hi}}, nil
	case ">":
		if p.n == 0 {
			return []comparator{{op: "<", v: semver{}}}, nil // matches nothing
		}
		if b, ok := p.bump(); ok {
			return []comparator{{op: ">=", v: b}}, nil
		}
		return []comparator{{op: ">", v: lo}}, nil
	case ">=":
		return []comparator{{op: ">=", v: lo}}, nil
	case "<":
		return []comparator{{op: "<", v: lo}}, nil
	case "<=":
		if c, ok := p.upperInclusive(); ok {
			return []comparator{c}, nil
		}
		return []comparator{{op: ">=", v: semver{}}}, nil
	}
	return nil, fmt.Errorf("unsupported operator %q", op)
}

func (c comparator) test(v semver) bool {
	d := v.compare(c.v)
	switch c.op {
	case "=":
		return d == 0
	case "<":
		return d < 0
	case "<=":
		return d <= 0
	case ">":
		return d > 0
	case ">=":
		return d >= 0
	}
	return false
}

func (r versionRange) contains(v semver) bool {
	for _, set := range r {
		if setContains(set, v) {
			return true
		}
	}
	return false
}

func setContains(set []comparator, v semver) bool {
	for _, c := range set {
		if !c.test(v) {
			return false
		}
	}
	if len(v.pre) == 0 {
		return true
	}
	for _, c := range set {
		if len(c.v.pre) > 0 && c.v.sameTuple(v) && !(c.v.pre[0] == "0" && len(c.v.pre) == 1 && c.op == "<") {
			return true
		}
	}
	return false
}
