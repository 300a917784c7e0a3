package verify

import (
	"strings"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/gate"
	"github.com/mcp-preflight/preflight/policy"
)

// decider connects the gate to the policy: every complete listing of one
// kind is judged by policy.EvaluateSurface against the pins the server's
// rules select (lockfile, descriptor or none).
func (v *Verifier) decider(c *candidate) gate.Decider {
	mode := v.cfg.Policy.Mode
	return func(kind gate.Kind, items []gate.Item) gate.SurfaceDecision {
		k := string(kind)
		byName := make(map[string]gate.Item, len(items))
		si := make([]policy.SurfaceItem, len(items))
		for i, it := range items {
			si[i] = policy.SurfaceItem{Name: it.Name, Digest: it.Digest}
			byName[it.Name] = it
		}
		verdict := policy.EvaluateSurface(c.server, mode, k, si, v.pins(c, k))
		d := gate.SurfaceDecision{Exposed: verdict.Exposed}
		for _, w := range verdict.Withheld {
			d.Withheld = append(d.Withheld, gate.Withheld{Item: byName[w.Name], Code: w.Finding.Code, Reason: w.Finding.Message})
		}
		for _, f := range verdict.Findings {
			v.log.Warn("preflight surface finding", "server", c.name, "kind", k, "code", f.Code, "subject", f.Subject,
				"expected", f.Expected, "found", f.Found, "message", f.Message)
		}
		if verdict.End {
			e := &preflight.Error{Class: preflight.ErrToolDrift, Subject: "server " + c.name,
				Hint: "the policy ends the session when the " + k + " surface changes; review the change and re-run preflight lock"}
			var msgs []string
			for _, f := range verdict.Findings {
				if f.Severity == policy.SeverityError {
					msgs = append(msgs, f.Code+" "+f.Subject)
				}
			}
			e.Found = strings.Join(msgs, ", ")
			e.Expected = "the pinned " + k + " surface"
			d.End = e
		}
		return d
	}
}

// pins returns the digests an item of kind must match, from the lockfile
// or the descriptor as the server's pin mode says (policy.Server.Pins); nil
// under a pin mode means nothing is pinned, and EvaluateSurface then
// withholds every item: nothing unpinned is exposed by accident.
func (v *Verifier) pins(c *candidate, kind string) map[string]string {
	var lock *policy.LockEntry
	if v.cfg.Lock != nil {
		lock = v.cfg.Lock.Servers[c.name]
	}
	return c.server.Pins(kind, lock)
}
