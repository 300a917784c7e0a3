package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
)

// writeReport prints a report as a short verdict line followed by the facts
// and findings, or as JSON.
func writeReport(w io.Writer, rep *verify.Report, format string) {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	writeReportText(w, rep, "")
}

// reportVerdict is the first word(s) of a report's text form.
func reportVerdict(rep *verify.Report) string {
	switch {
	case !rep.Decision.Allow:
		return "REFUSED"
	case rep.Decision.Mode == policy.ModeAudit && len(rep.Decision.Findings) > 0:
		return "ALLOWED IN AUDIT MODE DESPITE FINDINGS"
	}
	return "ALLOWED"
}

// writeReportText prints the text form with verdict, or the report's own
// verdict when it is empty.
func writeReportText(w io.Writer, rep *verify.Report, verdict string) {
	if verdict == "" {
		verdict = reportVerdict(rep)
	}
	c := colorOK
	if verdict != "ALLOWED" {
		c = colorBad
	}
	fmt.Fprintf(w, "%s  %s\n", colorize(w, c, verdict), rep.Server)
	f := rep.Facts
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-18s %s\n", k, v)
		}
	}
	field("artifact", f.Artifact.Name)
	field("version", f.Artifact.Version)
	field("source", f.Artifact.Source)
	algs := make([]string, 0, len(f.Artifact.Digests))
	for a := range f.Artifact.Digests {
		algs = append(algs, a)
	}
	sort.Strings(algs)
	for _, a := range algs {
		field("digest", a+":"+f.Artifact.Digests[a])
	}
	for _, s := range f.Signatures {
		if c := s.Certificate; c != nil {
			field("signer", c.Subject)
			field("issuer", c.Issuer)
			field("source repo", c.SourceRepositoryURI)
			field("source ref", c.SourceRepositoryRef)
			field("source commit", c.SourceRepositoryDigest)
			field("runner", c.RunnerEnvironment)
		}
		if s.KeyID != "" {
			field("signing key", s.KeyID)
		}
		if s.PredicateType != "" {
			field("attestation", s.PredicateType)
		}
		if p := s.Provenance; p != nil {
			field("builder", p.BuilderID)
		}
		if !s.SignedAt.IsZero() {
			field("signed at", s.SignedAt.UTC().Format("2006-01-02 15:04:05Z")+" ("+strings.Join(s.Timestamps, ", ")+")")
		}
	}
	if d := f.Descriptor; d != nil {
		field("tuf repository", d.Repository)
		field("tuf target", d.Target)
		field("tuf version", fmt.Sprintf("targets v%d signed by %s, expires %s", d.TargetsVersion, d.SignedBy, d.Expires.UTC().Format("2006-01-02 15:04Z")))
	}
	tr := rep.TrustRoot
	field("trust root", strings.TrimSpace(string(tr.Source)+" "+tr.Description))
	field("decision", fmt.Sprintf("allow=%v mode=%s", rep.Decision.Allow, modeName(rep.Decision.Mode)))
	if s := rep.Surface; s != nil {
		field("tools exposed", strings.Join(s.Tools.Exposed, ", "))
		for _, wh := range s.Tools.Withheld {
			field("tool withheld", wh.Name+" ("+wh.Code+": "+wh.Reason+")")
		}
	}
	for _, fd := range rep.Decision.Findings {
		line := fmt.Sprintf("[%s] %s", fd.Severity, fd.Code)
		if fd.Subject != "" {
			line += " " + fd.Subject
		}
		if fd.Expected != "" || fd.Found != "" {
			line += fmt.Sprintf(": expected %s, found %s", orNone(fd.Expected), orNone(fd.Found))
		} else if fd.Message != "" {
			line += ": " + fd.Message
		}
		field("finding", line)
	}
}

func modeName(m policy.Mode) string {
	if m == "" {
		return string(policy.ModeEnforce)
	}
	return string(m)
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// writeDrift prints the differences between a lockfile entry and what was
// observed, one per line, in the layout of the report's facts.
func writeDrift(w io.Writer, items []policy.DriftItem) {
	for _, d := range items {
		line := string(d.Kind) + " " + d.Subject
		if d.Expected != "" || d.Found != "" {
			line += fmt.Sprintf(": locked %s, found %s", orNone(d.Expected), orNone(d.Found))
		}
		fmt.Fprintf(w, "  %-18s %s\n", "drift", line)
	}
}

// ANSI colours for verdicts, used only on a terminal and never when
// NO_COLOR is set (https://no-color.org).
const (
	colorOK   = "\x1b[32m"
	colorBad  = "\x1b[1;31m"
	colorWarn = "\x1b[1;33m"
)

func colorize(w io.Writer, color, s string) string {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || !term.IsTerminal(int(f.Fd())) {
		return s
	}
	return color + s + "\x1b[0m"
}
