package policy

import (
	"fmt"
	"strings"
)

// Narrow applies a descriptor's expectations to a server's local rules and
// returns the effective rules as a new Server; s is not modified. The local
// policy stays the final authority: expectations can only narrow it.
//
//   - Signers: a descriptor signer is kept when it lies within one local
//     signer (see the package documentation for the exact test); the kept
//     signers replace the local ones. A descriptor signer that is not within
//     any local signer is dropped with a "descriptor.widen" warning. When
//     the descriptor names signers and none is kept, the effective set is
//     empty, so Evaluate refuses the server ("signer.none"), and Narrow
//     reports "descriptor.conflict". A descriptor without signers leaves the
//     local signers as they are.
//   - Provenance: the descriptor's constraints hold in addition to the
//     local ones (the result's Descriptor field carries them and Evaluate
//     checks both). Obviously incompatible requirements (different source
//     repositories, disjoint builder lists) are reported as
//     "descriptor.conflict".
//   - Pins: the descriptor's tool, prompt and resource digests are the pins
//     for sections with pin: descriptor; a section with pin: none becomes
//     pin: descriptor when the descriptor pins that kind.
func Narrow(s *Server, e *Expectations) (*Server, []Finding) {
	out := cloneServer(s)
	if out == nil || e == nil {
		return out, nil
	}
	var findings []Finding
	desc := cloneExpectations(e)
	out.Descriptor = desc
	if len(e.Signers) > 0 {
		var kept []Signer
		for i, d := range e.Signers {
			if within(d, s.Signers) {
				kept = append(kept, cloneSigner(d))
				continue
			}
			findings = append(findings, Finding{Code: CodeDescriptorWiden, Severity: SeverityWarning,
				Subject:  fmt.Sprintf("descriptor signer %d (%s)", i+1, describeSigner(d)),
				Expected: "a signer within the local signer rules", Found: describeSigner(d),
				Message: "the descriptor names a signer the local policy does not allow; it is ignored"})
		}
		if len(kept) == 0 {
			findings = append(findings, Finding{Code: CodeDescriptorConflict, Severity: SeverityError, Subject: s.Name,
				Message: "no descriptor signer lies within the local signer rules, so no signature can satisfy both"})
		}
		out.Signers = kept
	}
	if lp, dp := s.Provenance, e.Provenance; lp != nil && dp != nil {
		if lp.Repository != "" && dp.Repository != "" && !strings.EqualFold(lp.Repository, dp.Repository) {
			findings = append(findings, Finding{Code: CodeDescriptorConflict, Severity: SeverityError, Subject: s.Name,
				Expected: lp.Repository, Found: dp.Repository,
				Message: "the descriptor requires provenance from another source repository than the local policy"})
		}
		if len(lp.Builders) > 0 && len(dp.Builders) > 0 && !intersects(lp.Builders, dp.Builders) {
			findings = append(findings, Finding{Code: CodeDescriptorConflict, Severity: SeverityError, Subject: s.Name,
				Expected: strings.Join(lp.Builders, " or "), Found: strings.Join(dp.Builders, " or "),
				Message: "the descriptor allows none of the builders the local policy allows"})
		}
	}
	for _, kind := range []string{KindTool, KindPrompt, KindResource} {
		r := out.section(kind + "s")
		if r.Pin == PinNone && len(desc.surface(kind)) > 0 {
			r.Pin = PinDescriptor
		}
	}
	return out, findings
}

// within reports whether every identity descriptor signer d accepts is
// also accepted by one of the local signers.
func within(d Signer, locals []Signer) bool {
	if len(signerIssues(d)) > 0 {
		return false
	}
	for _, l := range locals {
		if len(signerIssues(l)) == 0 && signerWithin(d, l) {
			return true
		}
	}
	return false
}

func signerWithin(d, l Signer) bool {
	if l.PublicKey != "" || d.PublicKey != "" {
		if l.PublicKey == "" || d.PublicKey == "" {
			return false
		}
		a, errA := KeyID(l.PublicKey)
		b, errB := KeyID(d.PublicKey)
		return errA == nil && errB == nil && a == b
	}
	// covered: the local constraint (exact or pattern) admits everything
	// the descriptor's constraint admits. Pattern inclusion is decided only
	// for identical patterns or a descriptor exact value.
	covered := func(lExact, lPat, dExact, dPat string) bool {
		switch {
		case lExact != "":
			return dExact == lExact
		case lPat != "":
			if dExact != "" {
				re, err := compilePattern(lPat)
				return err == nil && re.MatchString(dExact)
			}
			return dPat == lPat
		}
		return true
	}
	if !covered(l.Issuer, l.IssuerPattern, d.Issuer, d.IssuerPattern) ||
		!covered(l.Subject, l.SubjectPattern, d.Subject, d.SubjectPattern) ||
		!covered(l.Ref, l.RefPattern, d.Ref, d.RefPattern) {
		return false
	}
	if l.Repository != "" && !strings.EqualFold(l.Repository, d.Repository) {
		return false
	}
	for _, p := range [][2]string{{l.Workflow, d.Workflow}, {l.Trigger, d.Trigger}, {l.Runner, d.Runner}} {
		if p[0] != "" && p[0] != p[1] {
			return false
		}
	}
	return true
}

func describeSigner(s Signer) string {
	if s.PublicKey != "" {
		if id, err := KeyID(s.PublicKey); err == nil {
			return "key " + id
		}
		return "invalid key"
	}
	var parts []string
	for _, kv := range [][2]string{
		{"issuer", s.Issuer}, {"issuer_pattern", s.IssuerPattern}, {"subject", s.Subject}, {"subject_pattern", s.SubjectPattern},
		{"repository", s.Repository}, {"ref", s.Ref}, {"ref_pattern", s.RefPattern}, {"workflow", s.Workflow},
		{"trigger", s.Trigger}, {"runner", s.Runner},
	} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return "empty signer"
	}
	return strings.Join(parts, " ")
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func cloneServer(s *Server) *Server {
	if s == nil {
		return nil
	}
	c := *s
	c.Args = clone(s.Args)
	c.Env = clone(s.Env)
	c.SetEnv = copyMap(s.SetEnv)
	c.Signers = nil
	for _, sg := range s.Signers {
		c.Signers = append(c.Signers, cloneSigner(sg))
	}
	c.Provenance = cloneProvenance(s.Provenance)
	c.Tools, c.Prompts, c.Resources = cloneRules(s.Tools), cloneRules(s.Prompts), cloneRules(s.Resources)
	c.Descriptor = cloneExpectations(s.Descriptor)
	c.Source = cloneSource(s.Source)
	return &c
}

func cloneSigner(s Signer) Signer { return s } // all fields are strings

func cloneProvenance(p *Provenance) *Provenance {
	if p == nil {
		return nil
	}
	c := *p
	c.PredicateTypes = clone(p.PredicateTypes)
	c.Builders = clone(p.Builders)
	c.RefPatterns = clone(p.RefPatterns)
	return &c
}

func cloneExpectations(e *Expectations) *Expectations {
	if e == nil {
		return nil
	}
	c := Expectations{Provenance: cloneProvenance(e.Provenance), Tools: copyMap(e.Tools), Prompts: copyMap(e.Prompts), Resources: copyMap(e.Resources)}
	for _, sg := range e.Signers {
		c.Signers = append(c.Signers, cloneSigner(sg))
	}
	return &c
}

func cloneSource(s Source) Source {
	c := s
	if s.TUF != nil {
		t := *s.TUF
		c.TUF = &t
	}
	if s.File != nil {
		f := *s.File
		f.Bundles = clone(s.File.Bundles)
		c.File = &f
	}
	if s.NPM != nil {
		n := *s.NPM
		c.NPM = &n
	}
	if s.OCI != nil {
		o := *s.OCI
		c.OCI = &o
	}
	if s.URL != nil {
		u := *s.URL
		c.URL = &u
	}
	if s.ServerJSON != nil {
		j := *s.ServerJSON
		c.ServerJSON = &j
	}
	return c
}
