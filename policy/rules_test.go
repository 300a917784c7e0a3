package policy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
)

const (
	ghIssuer    = "https://token.actions.githubusercontent.com"
	ghSubject   = "https://github.com/acme/weather/.github/workflows/release.yml@refs/tags/v1.4.0"
	slsaV1      = "https://slsa.dev/provenance/v1"
	hostedBuild = "https://github.com/actions/runner/github-hosted"
	testKeyPEM  = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEV/LqXT6k/+odpXbz9akgprZHFwaz
kQMRIt0mC64KAHarls8TPRpfjOeSeGZft22gtGblfwz2Co6GqeprEL9Knw==
-----END PUBLIC KEY-----`
	otherKeyPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEvb2oje+1ZVW+yaJCUrcW0UVdmFc7
rm+44BXdSqSzZFEomEEvHgeFADNYOkTANwt3WbDyVxeUpbFOKad6ZTuX4Q==
-----END PUBLIC KEY-----`
)

var artifactSHA = strings.Repeat("ab", 32)

func dg(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// baseServer is a server with a keyless signer, a key signer and strict
// provenance, as Parse would produce it.
func baseServer() *Server {
	return &Server{
		Name:   "weather",
		Source: Source{URL: &URLSource{URL: "https://example.com/weather", Digest: "sha256:" + artifactSHA}},
		Signers: []Signer{
			{Issuer: ghIssuer, Subject: ghSubject, Repository: "acme/weather", RefPattern: `^refs/tags/v[0-9.]+$`,
				Workflow: ".github/workflows/release.yml", Trigger: "push", Runner: "github-hosted"},
			{PublicKey: testKeyPEM},
		},
		Provenance: &Provenance{Required: true, PredicateTypes: []string{slsaV1}, Builders: []string{hostedBuild},
			Repository: "acme/weather", RefPatterns: []string{`^refs/tags/v[0-9]+\.[0-9]+\.[0-9]+$`}, HostedRunners: true},
		Tools:     SurfaceRules{Pin: PinLockfile, OnChange: ChangeBlock},
		Prompts:   SurfaceRules{Pin: PinLockfile, OnChange: ChangeBlock},
		Resources: SurfaceRules{Pin: PinNone, Allow: []string{"file:///docs/*"}, OnChange: ChangeBlock},
	}
}

func goodCert() *CertificateFacts {
	return &CertificateFacts{
		Issuer: ghIssuer, Subject: ghSubject,
		SourceRepositoryURI: "https://github.com/acme/weather", SourceRepositoryRef: "refs/tags/v1.4.0",
		SourceRepositoryDigest: "c0ffee", BuildSignerURI: ghSubject, BuildTrigger: "push", RunnerEnvironment: "github-hosted",
		RunInvocationURI: "https://github.com/acme/weather/actions/runs/1/attempts/1",
	}
}

func goodFacts() Facts {
	return Facts{
		Server:   "weather",
		Artifact: ArtifactFacts{Name: "weather", Version: "1.4.0", Source: "url", Size: 10, Digests: map[string]string{"sha256": artifactSHA}},
		Signatures: []SignatureFacts{{
			Kind: "dsse", Certificate: goodCert(), PredicateType: slsaV1,
			Provenance: &ProvenanceFacts{PredicateType: slsaV1, BuilderID: hostedBuild, SourceRepository: "https://github.com/acme/weather",
				SourceRef: "refs/tags/v1.4.0", SourceCommit: "c0ffee", WorkflowPath: ".github/workflows/release.yml"},
		}},
		Surface: &SurfaceFacts{Instructions: dg("instr"), Tools: map[string]string{"get_weather": dg("get_weather")}},
	}
}

type ruleCase struct {
	name  string
	run   func(t *testing.T) ([]Finding, error)
	codes []string         // every finding code, in order
	class *preflight.Class // class of the error; nil means no error
}

func evalCase(name string, mode Mode, mutS func(*Server), mutF func(*Facts), lock func(*LockEntry), codes []string, class *preflight.Class) ruleCase {
	return ruleCase{name: name, codes: codes, class: class, run: func(t *testing.T) ([]Finding, error) {
		s, f := baseServer(), goodFacts()
		if mutS != nil {
			mutS(s)
		}
		if mutF != nil {
			mutF(&f)
		}
		var le *LockEntry
		if lock != nil {
			le = EntryFromFacts(goodFacts())
			lock(le)
		}
		d := Evaluate(s, mode, f, le)
		return d.Findings, d.Err("weather")
	}}
}

func surfaceCase(name string, mode Mode, mutS func(*Server), items []SurfaceItem, pins map[string]string, codes []string, class *preflight.Class, check func(*testing.T, SurfaceVerdict)) ruleCase {
	return ruleCase{name: name, codes: codes, class: class, run: func(t *testing.T) ([]Finding, error) {
		s := baseServer()
		if mutS != nil {
			mutS(s)
		}
		v := EvaluateSurface(s, mode, KindTool, items, pins)
		if check != nil {
			check(t, v)
		}
		if mode != ModeAudit && len(v.Exposed)+len(v.Withheld) != len(items) {
			t.Errorf("exposed %d + withheld %d != %d items", len(v.Exposed), len(v.Withheld), len(items))
		}
		return v.Findings, decide(mode, v.Findings).Err("weather")
	}}
}

func items(pairs ...string) []SurfaceItem {
	var out []SurfaceItem
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, SurfaceItem{Name: pairs[i], Digest: pairs[i+1]})
	}
	return out
}

func withheld(names ...string) func(*testing.T, SurfaceVerdict) {
	return func(t *testing.T, v SurfaceVerdict) {
		t.Helper()
		var got []string
		for _, w := range v.Withheld {
			got = append(got, w.Name)
		}
		if !reflect.DeepEqual(got, names) {
			t.Errorf("withheld %q, want %q", got, names)
		}
	}
}

func TestRules(t *testing.T) {
	pins := map[string]string{"get_weather": dg("get_weather"), "get_forecast": dg("get_forecast")}
	pin1 := map[string]string{"get_weather": dg("get_weather")}
	wrongCert := func(mut func(c *CertificateFacts)) func(*Facts) {
		return func(f *Facts) { mut(f.Signatures[0].Certificate) }
	}
	keySig := func(id string) func(*Facts) {
		return func(f *Facts) {
			f.Signatures = append(f.Signatures, SignatureFacts{Kind: "message-signature", KeyID: id})
		}
	}
	allowAll := func(s *Server) { s.Tools = SurfaceRules{Pin: PinNone, Allow: []string{"*"}} }
	cases := []ruleCase{
		// Evaluate: signatures and signers.
		evalCase("all good", "", nil, nil, nil, nil, nil),
		evalCase("unsigned and pinned is allowed with a warning", "", func(s *Server) {
			s.AllowUnsigned, s.Signers, s.Provenance = true, nil, nil
		}, func(f *Facts) { f.Signatures = nil }, nil, []string{"signature.unsigned"}, nil),
		evalCase("unsigned with other bytes than pinned", "", func(s *Server) {
			s.AllowUnsigned, s.Signers, s.Provenance = true, nil, nil
		}, func(f *Facts) {
			f.Signatures, f.Artifact.Digests = nil, map[string]string{"sha256": dg("other")[len("sha256:"):]}
		},
			nil, []string{"signature.unsigned", "artifact.digest"}, preflight.ErrTampered),
		evalCase("no signatures", "", nil, func(f *Facts) { f.Signatures = nil },
			nil, []string{"signature.missing", "provenance.predicate", "provenance.missing"}, preflight.ErrSignature),
		evalCase("no signer rules", "", func(s *Server) { s.Signers = nil }, nil, nil, []string{"signer.none"}, preflight.ErrPolicy),
		evalCase("wrong issuer", "", nil, wrongCert(func(c *CertificateFacts) { c.Issuer = "https://accounts.google.com" }),
			nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("wrong subject", "", nil, wrongCert(func(c *CertificateFacts) { c.Subject = "https://github.com/evil/weather/x@y" }),
			nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("wrong certificate repository", "", nil, wrongCert(func(c *CertificateFacts) { c.SourceRepositoryURI = "https://github.com/evil/weather" }),
			nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("certificate repository case-insensitive", "", nil, wrongCert(func(c *CertificateFacts) { c.SourceRepositoryURI = "https://github.com/Acme/Weather" }),
			nil, nil, nil),
		evalCase("branch ref where tags are required", "", nil, wrongCert(func(c *CertificateFacts) { c.SourceRepositoryRef = "refs/heads/main" }),
			nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("other workflow", "", nil, wrongCert(func(c *CertificateFacts) {
			c.BuildSignerURI = "https://github.com/acme/weather/.github/workflows/test.yml@refs/tags/v1.4.0"
		}), nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("other trigger", "", nil, wrongCert(func(c *CertificateFacts) { c.BuildTrigger = "workflow_dispatch" }),
			nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("self-hosted signer runner", "", func(s *Server) { s.Provenance.HostedRunners = false },
			wrongCert(func(c *CertificateFacts) { c.RunnerEnvironment = "self-hosted" }), nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("subject pattern matches", "", func(s *Server) {
			s.Signers[0].Subject, s.Signers[0].SubjectPattern = "", `^https://github\.com/acme/weather/\.github/workflows/release\.yml@refs/tags/v[0-9.]+$`
		}, nil, nil, nil, nil),
		evalCase("unanchored pattern built in code never matches", "", func(s *Server) {
			s.Signers[0].Subject, s.Signers[0].SubjectPattern = "", `github\.com/acme`
		}, nil, nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("signer rule without subject never matches", "", func(s *Server) { s.Signers[0].Subject = "" },
			nil, nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("key signature by the pinned key", "", nil, keySig(mustKeyID(testKeyPEM)), nil, nil, nil),
		evalCase("key signature in npm key id form", "", nil, func(f *Facts) {
			raw, _ := hex.DecodeString(strings.TrimPrefix(mustKeyID(testKeyPEM), "sha256:"))
			keySig("SHA256:" + base64.RawStdEncoding.EncodeToString(raw))(f)
		}, nil, nil, nil),
		evalCase("key signature by another key", "", nil, keySig(mustKeyID(otherKeyPEM)), nil, []string{"signer.identity"}, preflight.ErrIdentity),
		evalCase("one good and one unknown signature", "", nil, func(f *Facts) {
			f.Signatures = append(f.Signatures, SignatureFacts{Kind: "message-signature", Certificate: &CertificateFacts{Issuer: ghIssuer, Subject: "https://github.com/evil/x"}})
		}, nil, []string{"signer.identity"}, preflight.ErrIdentity),
		// Provenance.
		evalCase("provenance missing", "", nil, func(f *Facts) { f.Signatures[0].Provenance, f.Signatures[0].PredicateType = nil, "" },
			nil, []string{"provenance.predicate", "provenance.missing"}, preflight.ErrProvenance),
		evalCase("provenance optional and missing", "", func(s *Server) { s.Provenance.Required = false },
			func(f *Facts) { f.Signatures[0].Provenance, f.Signatures[0].PredicateType = nil, "" },
			nil, []string{"provenance.predicate", "provenance.missing"}, nil),
		evalCase("builder not allowed", "", nil, func(f *Facts) { f.Signatures[0].Provenance.BuilderID = "https://evil.example/builder" },
			nil, []string{"provenance.builder"}, preflight.ErrProvenance),
		evalCase("provenance repository", "", nil, func(f *Facts) { f.Signatures[0].Provenance.SourceRepository = "https://github.com/fork/weather" },
			nil, []string{"provenance.repository"}, preflight.ErrProvenance),
		evalCase("provenance repository in git+ form", "", nil, func(f *Facts) {
			f.Signatures[0].Provenance.SourceRepository = "git+https://github.com/acme/weather@refs/tags/v1.4.0"
		}, nil, nil, nil),
		evalCase("provenance ref", "", nil, func(f *Facts) { f.Signatures[0].Provenance.SourceRef = "refs/heads/feature" },
			nil, []string{"provenance.ref"}, preflight.ErrProvenance),
		evalCase("self-hosted runner in provenance", "", func(s *Server) { s.Signers[0].Runner = "" },
			wrongCert(func(c *CertificateFacts) { c.RunnerEnvironment = "self-hosted" }), nil, []string{"provenance.runner"}, preflight.ErrProvenance),
		evalCase("disagreeing provenance refused even when optional", "", func(s *Server) { s.Provenance.Required = false },
			func(f *Facts) { f.Signatures[0].Provenance.BuilderID = "x" }, nil, []string{"provenance.builder"}, preflight.ErrProvenance),
		// Artifact pins.
		evalCase("digest differs from policy", "", nil, func(f *Facts) { f.Artifact.Digests["sha256"] = strings.Repeat("cd", 32) },
			nil, []string{"artifact.digest"}, preflight.ErrTampered),
		evalCase("pinned algorithm not computed", "", nil, func(f *Facts) { f.Artifact.Digests = map[string]string{"sha512": "00"} },
			nil, []string{"artifact.digest"}, preflight.ErrTampered),
		evalCase("npm integrity matches", "", func(s *Server) {
			s.Source = Source{NPM: &NPMSource{Package: "w", Version: "1.4.0", Integrity: "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 64))}}
		}, func(f *Facts) { f.Artifact.Digests = map[string]string{"sha512": strings.Repeat("00", 64)} }, nil, nil, nil),
		evalCase("npm integrity differs", "", func(s *Server) {
			s.Source = Source{NPM: &NPMSource{Package: "w", Version: "1.4.0", Integrity: "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 64))}}
		}, func(f *Facts) { f.Artifact.Digests = map[string]string{"sha512": strings.Repeat("01", 64)} }, nil, []string{"artifact.digest"}, preflight.ErrTampered),
		evalCase("npm version differs", "", func(s *Server) { s.Source = Source{NPM: &NPMSource{Package: "w", Version: "1.3.0"}} },
			nil, nil, []string{"artifact.version"}, preflight.ErrPolicy),
		evalCase("oci digest differs", "", func(s *Server) {
			s.Source = Source{OCI: &OCISource{Image: "ghcr.io/a/b", Digest: "sha256:" + strings.Repeat("ef", 32)}}
		},
			nil, nil, []string{"artifact.digest"}, preflight.ErrTampered),
		// Lockfile drift.
		evalCase("lock matches", "", nil, nil, func(*LockEntry) {}, nil, nil),
		evalCase("lock digest drift", "", func(s *Server) { s.Source.URL.Digest = "" },
			func(f *Facts) { f.Artifact.Digests["sha256"] = strings.Repeat("cd", 32) }, func(*LockEntry) {}, []string{"artifact.digest"}, preflight.ErrTampered),
		evalCase("lock version drift", "", nil, func(f *Facts) { f.Artifact.Version = "1.5.0" }, func(*LockEntry) {}, []string{"version"}, preflight.ErrPolicy),
		evalCase("lock signer drift", "", func(s *Server) { s.Signers[0].Subject, s.Signers[0].Workflow = "", "" },
			func(f *Facts) { f.Signatures[0].Certificate.Subject = "x" }, func(*LockEntry) {}, []string{"signer.identity", "signer"}, preflight.ErrIdentity),
		evalCase("lock source commit drift", "", nil, func(f *Facts) { f.Signatures[0].Provenance.SourceCommit = "bad" }, func(*LockEntry) {},
			[]string{"source.commit"}, preflight.ErrProvenance),
		evalCase("lock tool description drift warns under block", "", nil, nil, func(l *LockEntry) {
			l.Tools["get_weather"] = dg("old")
			l.ToolParts = map[string]PartDigests{"get_weather": {"description": dg("old"), "name": dg("n")}}
		}, []string{"tool.changed"}, nil),
		evalCase("lock tool drift blocks under end", "", func(s *Server) { s.Tools.OnChange = ChangeEnd }, nil, func(l *LockEntry) {
			l.Tools["get_weather"] = dg("old")
		}, []string{"tool.changed"}, preflight.ErrToolDrift),
		evalCase("lock tool drift ignored when pins come from the descriptor", "", func(s *Server) { s.Tools.Pin = PinDescriptor }, nil,
			func(l *LockEntry) { l.Tools["get_weather"] = dg("old") }, nil, nil),
		evalCase("instructions changed", "", nil, nil, func(l *LockEntry) { l.Instructions = dg("other") },
			[]string{"instructions.changed"}, preflight.ErrToolDrift),
		evalCase("audit mode keeps findings and allows", ModeAudit, nil, wrongCert(func(c *CertificateFacts) { c.Issuer = "x" }),
			nil, []string{"signer.identity"}, nil),
		{name: "nil server", codes: []string{"server.unknown"}, class: preflight.ErrPolicy, run: func(t *testing.T) ([]Finding, error) {
			d := Evaluate(nil, "", goodFacts(), nil)
			return d.Findings, d.Err("weather")
		}},
		// Composition.
		{name: "narrow keeps descriptor signer within local pattern", codes: nil, run: func(t *testing.T) ([]Finding, error) {
			s := baseServer()
			s.Signers = []Signer{{Issuer: ghIssuer, SubjectPattern: `^https://github\.com/acme/.*$`}}
			d := Signer{Issuer: ghIssuer, Subject: ghSubject, Ref: "refs/tags/v1.4.0"}
			n, fs := Narrow(s, &Expectations{Signers: []Signer{d}})
			if !reflect.DeepEqual(n.Signers, []Signer{d}) {
				t.Errorf("effective signers %+v", n.Signers)
			}
			if s.Signers[0].SubjectPattern == "" || len(s.Signers) != 1 {
				t.Error("Narrow modified its argument")
			}
			dec := Evaluate(n, "", goodFacts(), nil)
			return append(fs, dec.Findings...), dec.Err("weather")
		}},
		{name: "narrow refuses a wider descriptor signer", codes: []string{"descriptor.widen", "descriptor.conflict", "signer.none"}, class: preflight.ErrPolicy,
			run: func(t *testing.T) ([]Finding, error) {
				s := baseServer()
				n, fs := Narrow(s, &Expectations{Signers: []Signer{{Issuer: ghIssuer, SubjectPattern: `^.*$`}}})
				dec := Evaluate(n, "", goodFacts(), nil)
				return append(fs, dec.Findings...), dec.Err("weather")
			}},
		{name: "narrow adds descriptor provenance constraints", codes: []string{"provenance.ref"}, class: preflight.ErrProvenance,
			run: func(t *testing.T) ([]Finding, error) {
				n, fs := Narrow(baseServer(), &Expectations{Provenance: &Provenance{Required: true, Repository: "acme/weather", RefPatterns: []string{`^refs/tags/v2\..*$`}}})
				dec := Evaluate(n, "", goodFacts(), nil)
				return append(fs, dec.Findings...), dec.Err("weather")
			}},
		{name: "narrow reports conflicting provenance repository", codes: []string{"descriptor.conflict", "provenance.repository"}, class: preflight.ErrPolicy,
			run: func(t *testing.T) ([]Finding, error) {
				n, fs := Narrow(baseServer(), &Expectations{Provenance: &Provenance{Required: true, Repository: "other/repo"}})
				dec := Evaluate(n, "", goodFacts(), nil)
				all := append(fs, dec.Findings...)
				return all, decide("", all).Err("weather")
			}},
		{name: "narrow keeps the same key", codes: nil, run: func(t *testing.T) ([]Finding, error) {
			n, fs := Narrow(baseServer(), &Expectations{Signers: []Signer{{PublicKey: testKeyPEM}}})
			if len(n.Signers) != 1 || n.Signers[0].PublicKey == "" {
				t.Errorf("effective signers %+v", n.Signers)
			}
			return fs, nil
		}},
		{name: "narrow turns pin none into descriptor pins", codes: []string{"tool.drift"}, class: preflight.ErrToolDrift,
			run: func(t *testing.T) ([]Finding, error) {
				s := baseServer()
				allowAll(s)
				n, fs := Narrow(s, &Expectations{Tools: map[string]string{"get_weather": dg("pinned")}})
				if n.Tools.Pin != PinDescriptor || s.Tools.Pin != PinNone {
					t.Errorf("pin %q (original %q)", n.Tools.Pin, s.Tools.Pin)
				}
				v := EvaluateSurface(n, "", KindTool, items("get_weather", dg("get_weather")), n.Pins(KindTool, nil))
				all := append(fs, v.Findings...)
				return all, decide("", all).Err("weather")
			}},
		// Surface gate.
		surfaceCase("pinned tools exposed", "", nil, items("get_weather", dg("get_weather"), "get_forecast", dg("get_forecast")), pins, nil, nil, withheld()),
		surfaceCase("tool drift withheld", "", nil, items("get_weather", dg("changed"), "get_forecast", dg("get_forecast")), pins,
			[]string{"tool.drift"}, preflight.ErrToolDrift, withheld("get_weather")),
		surfaceCase("tool added withheld", "", nil, items("get_weather", dg("get_weather"), "get_forecast", dg("get_forecast"), "exfiltrate", dg("x")), pins,
			[]string{"tool.added"}, preflight.ErrToolDrift, withheld("exfiltrate")),
		surfaceCase("on_change end ends the session", "", func(s *Server) { s.Tools.OnChange = ChangeEnd },
			items("get_weather", dg("changed"), "get_forecast", dg("get_forecast")), pins, []string{"tool.drift"}, preflight.ErrToolDrift,
			func(t *testing.T, v SurfaceVerdict) {
				if !v.End {
					t.Error("End not set")
				}
			}),
		surfaceCase("nothing pinned yet", "", nil, items("get_weather", dg("get_weather")), nil, []string{"tool.unpinned"}, preflight.ErrPolicy, withheld("get_weather")),
		surfaceCase("deny beats allow", "", func(s *Server) {
			s.Tools = SurfaceRules{Pin: PinNone, Allow: []string{"*"}, Deny: []string{"delete_*"}}
		},
			items("get_weather", dg("a"), "delete_all", dg("b")), nil, []string{"tool.denied"}, preflight.ErrPolicy, withheld("delete_all")),
		surfaceCase("not in allow list", "", func(s *Server) { s.Tools.Allow = []string{"get_*"} },
			items("get_weather", dg("get_weather"), "get_forecast", dg("get_forecast"), "run_shell", dg("r")), pins,
			[]string{"tool.not-allowed"}, preflight.ErrPolicy, withheld("run_shell")),
		surfaceCase("nonstandard name", "", allowAll, items("get weather", dg("a"), "wetter/heute", dg("b")), nil,
			[]string{"tool.name", "tool.name"}, preflight.ErrPolicy, withheld("get weather", "wetter/heute")),
		surfaceCase("nonstandard name allowed", "", func(s *Server) { allowAll(s); s.Tools.AllowNonstandardNames = true },
			items("wetter/heute", dg("b")), nil, nil, nil, withheld()),
		surfaceCase("bidi control refused even when nonstandard names are allowed", "", func(s *Server) { allowAll(s); s.Tools.AllowNonstandardNames = true },
			items("get_weather\u202e", dg("b")), nil, []string{"tool.name"}, preflight.ErrPolicy, nil),
		surfaceCase("over-long name", "", allowAll, items(strings.Repeat("a", 129), dg("a")), nil, []string{"tool.name"}, preflight.ErrPolicy, nil),
		surfaceCase("cyrillic look-alike of a pinned tool", "", func(s *Server) { s.Tools.AllowNonstandardNames = true },
			items("get_weather", dg("get_weather"), "get_wеather", dg("x")), pin1, []string{"tool.lookalike"}, preflight.ErrToolDrift, withheld("get_wеather")),
		surfaceCase("case look-alike of a pinned tool", "", nil, items("get_weather", dg("get_weather"), "Get_Weather", dg("x")), pin1, []string{"tool.lookalike"}, preflight.ErrToolDrift, nil),
		surfaceCase("separator look-alike of a pinned tool", "", nil, items("get_weather", dg("get_weather"), "get-weather", dg("x")), pin1, []string{"tool.lookalike"}, preflight.ErrToolDrift, nil),
		surfaceCase("digit look-alike of an allowed tool", "", func(s *Server) { s.Tools = SurfaceRules{Pin: PinNone, Allow: []string{"list_files", "*"}} },
			items("1ist_fi1es", dg("x")), nil, []string{"tool.lookalike"}, preflight.ErrToolDrift, nil),
		surfaceCase("full-width look-alike", "", func(s *Server) { s.Tools.AllowNonstandardNames = true },
			items("get_weather", dg("get_weather"), "ｇｅｔ_weather", dg("x")), pin1, []string{"tool.lookalike"}, preflight.ErrToolDrift, nil),
		surfaceCase("full-width name refused by the name rule first", "", nil,
			items("get_weather", dg("get_weather"), "ｇｅｔ_weather", dg("x")), pin1, []string{"tool.name"}, preflight.ErrPolicy, nil),
		surfaceCase("look-alikes within one listing", "", allowAll, items("read_file", dg("a"), "read-file", dg("b"), "ok", dg("c")), nil,
			[]string{"tool.lookalike", "tool.lookalike"}, preflight.ErrToolDrift, withheld("read_file", "read-file")),
		surfaceCase("duplicate name", "", nil, items("get_weather", dg("get_weather"), "get_weather", dg("evil")), pins,
			[]string{"tool.duplicate", "tool.duplicate", "tool.removed"}, preflight.ErrToolDrift, nil),
		surfaceCase("pinned tool removed", "", nil, items("get_weather", dg("get_weather")), pins, []string{"tool.removed"}, nil, withheld()),
		surfaceCase("audit exposes everything", ModeAudit, nil, items("get_weather", dg("changed"), "evil", dg("e")), pins,
			[]string{"tool.drift", "tool.added", "tool.removed"}, nil, func(t *testing.T, v SurfaceVerdict) {
				if len(v.Exposed) != 2 || len(v.Withheld) != 0 || v.End {
					t.Errorf("audit verdict %+v", v)
				}
			}),
		surfaceCase("listing over the limit", "", allowAll, make([]SurfaceItem, MaxSurfaceItems+1), nil, []string{"tool.limit"}, preflight.ErrPolicy,
			func(t *testing.T, v SurfaceVerdict) {
				if !v.End || len(v.Exposed) != 0 {
					t.Error("an over-long listing must end the session")
				}
			}),
		{name: "resources gated by uri globs", codes: []string{"resource.not-allowed"}, class: preflight.ErrPolicy, run: func(t *testing.T) ([]Finding, error) {
			v := EvaluateSurface(baseServer(), "", KindResource, items("file:///docs/a.md", dg("a"), "file:///etc/passwd", dg("b")), nil)
			if !reflect.DeepEqual(v.Exposed, []string{"file:///docs/a.md"}) {
				t.Errorf("exposed %q", v.Exposed)
			}
			return v.Findings, decide("", v.Findings).Err("weather")
		}},
		{name: "prompt drift", codes: []string{"prompt.drift"}, class: preflight.ErrToolDrift, run: func(t *testing.T) ([]Finding, error) {
			v := EvaluateSurface(baseServer(), "", KindPrompt, items("summarise", dg("new")), map[string]string{"summarise": dg("old")})
			return v.Findings, decide("", v.Findings).Err("weather")
		}},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := tc.run(t)
			var codes []string
			for _, f := range fs {
				codes = append(codes, f.Code)
			}
			if !reflect.DeepEqual(codes, tc.codes) {
				t.Errorf("codes %q, want %q\nfindings: %v", codes, tc.codes, fs)
			}
			switch {
			case tc.class == nil && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.class != nil && !errors.Is(err, tc.class):
				t.Errorf("error %v, want class %v", err, tc.class)
			case tc.class != nil:
				var pe *preflight.Error
				if !errors.As(err, &pe) || pe.Class != tc.class {
					t.Errorf("error %#v is not a *preflight.Error of class %v", err, tc.class)
				}
				var all Findings
				if !errors.As(err, &all) || len(all) == 0 {
					t.Errorf("error %v does not carry its findings", err)
				}
				if !errors.Is(err, preflight.ErrSecurity) {
					t.Errorf("a refusal must be a security error: %v", err)
				}
			}
		})
	}
}

func mustKeyID(pem string) string {
	id, err := KeyID(pem)
	if err != nil {
		panic(err)
	}
	return id
}

func TestDecisionErrListsAllBlocking(t *testing.T) {
	f := goodFacts()
	f.Signatures[0].Certificate.Issuer = "x"
	f.Artifact.Digests["sha256"] = strings.Repeat("00", 32)
	d := Evaluate(baseServer(), "", f, nil)
	err := d.Err("weather")
	if !errors.Is(err, preflight.ErrIdentity) {
		t.Fatalf("class of the first blocking finding: %v", err)
	}
	var all Findings
	if !errors.As(err, &all) || len(all) != 2 || all[1].Code != CodeArtifactDigest {
		t.Fatalf("findings %v", all)
	}
	if !strings.Contains(err.Error(), "weather: signer identity not allowed") {
		t.Errorf("message %q", err)
	}
	if (Decision{Mode: ModeEnforce}).Err("x") == nil {
		t.Error("a refusing decision without findings must still fail closed")
	}
	_ = fmt.Sprint(d)
}
