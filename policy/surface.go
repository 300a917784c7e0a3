package policy

import (
	"path"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MaxSurfaceItems bounds the items of one kind a server may list. A longer
// listing is refused as a whole.
const MaxSurfaceItems = 4096

// SurfaceItem is one tool, prompt or resource as the server lists it:
// its name (the uri for resources) and its canonical digest.
type SurfaceItem struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// WithheldItem is an item kept from the model, with the reason.
type WithheldItem struct {
	Name    string  `json:"name"`
	Finding Finding `json:"finding"`
}

// SurfaceVerdict is the outcome of EvaluateSurface.
type SurfaceVerdict struct {
	// Exposed lists the names that may reach the model, in listing order.
	Exposed []string `json:"exposed"`
	// Withheld lists the names kept back (always empty in audit mode).
	Withheld []WithheldItem `json:"withheld,omitempty"`
	// End is true when the rules say the session must end (on_change: end
	// and an item changed or appeared, or an over-long listing). Never
	// true in audit mode.
	End bool `json:"end,omitempty"`
	// Findings lists every finding, blocking or not.
	Findings []Finding `json:"findings,omitempty"`
}

var standardName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`) })

// EvaluateSurface decides which items of one kind ("tool", "prompt" or
// "resource") reach the model. pins are the pinned digests by name (see
// Server.Pins); nil means nothing is pinned. Each item gets at most one
// finding, from the first rule it breaks, in this order:
//
//  1. "KIND.duplicate": the name appears more than once in the listing;
//  2. "KIND.denied": a deny glob matches (deny beats allow);
//  3. "KIND.name": tool and prompt names must follow the MCP tool-name
//     rules (1-128 of A-Z a-z 0-9 _ - .) unless allow_nonstandard_names;
//     no name (nor resource uri) may be empty, over-long, invalid UTF-8 or
//     hold control, format or space characters;
//  4. "KIND.lookalike": the name is not itself allowed by exact name or
//     pinned, but looks like one that is, or like another listed name
//     (same skeleton: confusable letters folded, case and the separators
//     _ - . ignored);
//  5. "KIND.not-allowed": allow globs are set and none matches;
//  6. with pin lockfile or descriptor: "KIND.unpinned" (nothing is
//     pinned), "KIND.added" (the name is not pinned) or "KIND.drift" (the
//     digest differs).
//
// Pinned names missing from the listing give "KIND.removed" warnings.
// In enforce mode items with a finding are withheld, and End is set when
// on_change is end and an item was added or drifted. In audit mode every
// item is exposed and the findings are kept.
func EvaluateSurface(s *Server, mode Mode, kind string, items []SurfaceItem, pins map[string]string) SurfaceVerdict {
	mode = mode.effective()
	var v SurfaceVerdict
	fail := func(code, msg string) SurfaceVerdict {
		f := Finding{Code: code, Severity: SeverityError, Subject: kind + "s", Message: msg}
		v.Findings = append(v.Findings, f)
		for _, it := range items {
			if mode == ModeAudit {
				v.Exposed = append(v.Exposed, it.Name)
			} else {
				v.Withheld = append(v.Withheld, WithheldItem{Name: it.Name, Finding: f})
			}
		}
		v.End = mode != ModeAudit
		return v
	}
	switch {
	case s == nil:
		return fail(CodeServerUnknown, "no policy for this server")
	case kind != KindTool && kind != KindPrompt && kind != KindResource:
		return fail(CodePolicyInvalid, "unknown surface kind "+quote(kind))
	case len(items) > MaxSurfaceItems:
		return fail(kind+"."+SurfaceLimit, "the server lists more items than the limit; refusing the listing")
	}
	rules := s.Rules(kind)
	pinMode := rules.Pin.effective()
	if pinMode == PinNone {
		pins = nil
	}

	// Reference names: allowed by exact name or pinned.
	reference := map[string]bool{}
	for _, g := range rules.Allow {
		if isLiteral(g) {
			reference[g] = true
		}
	}
	for n := range pins {
		reference[n] = true
	}
	refSkeletons := map[string]string{}
	for n := range reference {
		sk := skeleton(n)
		if prev, ok := refSkeletons[sk]; !ok || n < prev {
			refSkeletons[sk] = n
		}
	}
	count := map[string]int{}
	listedSkeletons := map[string][]string{}
	for _, it := range items {
		count[it.Name]++
		sk := skeleton(it.Name)
		listedSkeletons[sk] = append(listedSkeletons[sk], it.Name)
	}

	changed := false
	for _, it := range items {
		f, ok := judgeItem(kind, rules, pinMode, it, pins, reference, refSkeletons, listedSkeletons, count)
		if ok {
			v.Exposed = append(v.Exposed, it.Name)
			continue
		}
		v.Findings = append(v.Findings, f)
		if strings.HasSuffix(f.Code, "."+SurfaceAdded) || strings.HasSuffix(f.Code, "."+SurfaceDrift) {
			changed = true
		}
		if mode == ModeAudit {
			v.Exposed = append(v.Exposed, it.Name)
		} else {
			v.Withheld = append(v.Withheld, WithheldItem{Name: it.Name, Finding: f})
		}
	}
	for _, n := range sortedKeys(pins) {
		if count[n] == 0 {
			v.Findings = append(v.Findings, Finding{Code: kind + "." + SurfaceRemoved, Severity: SeverityWarning,
				Subject: kind + " " + quote(n), Expected: pins[n], Message: "a pinned " + kind + " is no longer listed"})
		}
	}
	v.End = changed && mode != ModeAudit && rules.OnChange.effective() == ChangeEnd
	return v
}

func judgeItem(kind string, rules SurfaceRules, pinMode PinMode, it SurfaceItem, pins map[string]string,
	reference map[string]bool, refSkeletons map[string]string, listed map[string][]string, count map[string]int) (Finding, bool) {
	subject := kind + " " + quote(it.Name)
	finding := func(suffix, expected, found, msg string) (Finding, bool) {
		return Finding{Code: kind + "." + suffix, Severity: SeverityError, Subject: subject, Expected: expected, Found: found, Message: msg}, false
	}
	if count[it.Name] > 1 {
		return finding(SurfaceDuplicate, "one definition per name", "several", "the server lists the name more than once")
	}
	for _, g := range rules.Deny {
		if globMatch(g, it.Name) {
			return finding(SurfaceDenied, "", g, "denied by the pattern "+quote(g))
		}
	}
	if msg := checkItemName(kind, it.Name, rules.AllowNonstandardNames); msg != "" {
		return finding(SurfaceName, "", "", msg)
	}
	if !reference[it.Name] {
		sk := skeleton(it.Name)
		if ref, ok := refSkeletons[sk]; ok {
			return finding(SurfaceLookalike, ref, it.Name, "looks like the "+kind+" "+quote(ref)+" without being it")
		}
		for _, other := range listed[sk] {
			if other != it.Name {
				return finding(SurfaceLookalike, "", other, "looks like another listed "+kind+", "+quote(other))
			}
		}
	}
	if len(rules.Allow) > 0 {
		allowed := false
		for _, g := range rules.Allow {
			if globMatch(g, it.Name) {
				allowed = true
				break
			}
		}
		if !allowed {
			return finding(SurfaceNotAllowed, strings.Join(rules.Allow, " or "), it.Name, "no allow pattern matches")
		}
	} else if pinMode == PinNone {
		return finding(SurfaceNotAllowed, "an allow list", "none", "pin: none without an allow list exposes nothing")
	}
	if pinMode != PinNone {
		if pins == nil {
			return finding(SurfaceUnpinned, "pinned digests", "none", "nothing is pinned for this server; run preflight lock after reviewing it")
		}
		want, ok := pins[it.Name]
		if !ok {
			return finding(SurfaceAdded, "", it.Digest, "the "+kind+" is not pinned")
		}
		if want != it.Digest {
			return finding(SurfaceDrift, want, orNone(it.Digest), "the "+kind+"'s definition differs from the pinned one")
		}
	}
	return Finding{}, true
}

// globMatch matches path.Match globs, in which * does not cross "/"; the
// pattern "*" alone matches every name.
func globMatch(g, name string) bool {
	if g == "*" {
		return true
	}
	ok, err := path.Match(g, name)
	return err == nil && ok
}

func checkItemName(kind, name string, nonstandard bool) string {
	limit := 128
	if kind == KindResource {
		limit = 2048
	}
	switch {
	case name == "":
		return "empty name"
	case !utf8.ValidString(name):
		return "the name is not valid UTF-8"
	case len(name) > 4*limit || utf8.RuneCountInString(name) > limit:
		return "the name is longer than the limit"
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) || r == utf8.RuneError {
			return "the name holds control, format or space characters"
		}
	}
	if kind != KindResource && !nonstandard && !standardName().MatchString(name) {
		return "the name does not follow the MCP tool-name rules (1 to 128 of A-Z a-z 0-9 _ - .)"
	}
	return ""
}

// confusable folds common homoglyphs to the Latin letters they imitate.
var confusable = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'і': 'i', 'ј': 'j', 'ѕ': 's',
	'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'һ': 'h', 'ӏ': 'l', 'ɡ': 'g', 'ь': 'b', 'к': 'k', 'м': 'm', 'н': 'h', 'т': 't',
	'А': 'a', 'В': 'b', 'Е': 'e', 'К': 'k', 'М': 'm', 'Н': 'h', 'О': 'o', 'Р': 'p', 'С': 'c', 'Т': 't',
	'Х': 'x', 'І': 'l', 'Ј': 'j', 'Ѕ': 's', 'У': 'y', 'Ԛ': 'q', 'Ԝ': 'w', 'Ӏ': 'l',
	// Greek
	'α': 'a', 'β': 'b', 'γ': 'y', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u',
	'χ': 'x', 'ω': 'w', 'Α': 'a', 'Β': 'b', 'Ε': 'e', 'Ζ': 'z', 'Η': 'h', 'Ι': 'l', 'Κ': 'k', 'Μ': 'm',
	'Ν': 'n', 'Ο': 'o', 'Ρ': 'p', 'Τ': 't', 'Υ': 'y', 'Χ': 'x',
	// Latin look-alikes and digits
	'ı': 'i', 'ɑ': 'a', 'ℓ': 'l', 'ſ': 'f', 'ɩ': 'i', 'ǀ': 'l', '|': 'l',
	'I': 'l', '1': 'l', '0': 'o',
}

// skeleton maps a name to a form in which look-alikes coincide: full-width
// and mathematical letters become ASCII, confusable letters fold to Latin,
// case and the separators _ - . are dropped, as are format characters and
// combining marks, and "rn" reads as "m" and "vv" as "w".
func skeleton(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
			r -= 0xFEE0
		case r >= 0x1D400 && r <= 0x1D6A3: // mathematical alphanumeric letters
			off := (r - 0x1D400) % 52
			if off < 26 {
				r = 'A' + off
			} else {
				r = 'a' + off - 26
			}
		case r >= 0x1D7CE && r <= 0x1D7FF: // mathematical digits
			r = '0' + (r-0x1D7CE)%10
		}
		if c, ok := confusable[r]; ok {
			r = c
		}
		r = unicode.ToLower(r)
		if c, ok := confusable[r]; ok {
			r = c
		}
		if r == '_' || r == '-' || r == '.' || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Mn, r) || unicode.IsSpace(r) {
			continue
		}
		b.WriteRune(r)
	}
	s := strings.ReplaceAll(b.String(), "rn", "m")
	return strings.ReplaceAll(s, "vv", "w")
}
