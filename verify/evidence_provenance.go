package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/policy"
)

// evClaims are what a provenance predicate says about its build, before
// they are checked against the certificate.
type evClaims struct {
	builderID, buildType string
	repository           string // https://github.com/OWNER/NAME
	ref, commit          string
	workflowPath         string
	invocation           string // run URI (v1) or "RUNID-ATTEMPT" (v0.2)
	runner               string // github-hosted / self-hosted, when claimed
}

// evProvenance interprets a verified statement. SLSA provenance yields
// ProvenanceFacts cross-checked against the certificate; the npm publish
// attestation is checked for consistency; other predicate types are
// recorded by type only. Fields the certificate states are taken from the
// certificate: the predicate is the signer's own claim, the certificate is
// Fulcio's.
func evProvenance(st *evStatement, cert *policy.CertificateFacts, subject string) (*policy.ProvenanceFacts, error) {
	bad := func(expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrProvenance, Subject: subject, Expected: expected, Found: found, Err: err,
			Hint: "the attestation does not describe this build; do not run the artifact"}
	}
	switch st.Type {
	case "https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1":
	default:
		return nil, bad("an in-toto statement v0.1 or v1", fmt.Sprintf("_type %q", st.Type), nil)
	}
	var c evClaims
	switch st.PredicateType {
	case PredicateSLSAProvenanceV1:
		if err := evParseSLSAv1(st.Predicate, &c); err != nil {
			return nil, bad("a SLSA provenance v1 predicate", "a malformed predicate", err)
		}
	case PredicateSLSAProvenanceV02:
		if err := evParseSLSAv02(st.Predicate, &c); err != nil {
			return nil, bad("a SLSA provenance v0.2 predicate", "a malformed predicate", err)
		}
	case PredicateNPMPublishV01:
		return nil, evCheckNPMPublish(st, bad)
	default:
		return nil, nil
	}
	if cert != nil {
		if e := evCrossCheck(c, cert); e != nil {
			e.Subject = subject
			return nil, e
		}
	}
	f := &policy.ProvenanceFacts{
		PredicateType:    st.PredicateType,
		BuilderID:        c.builderID,
		BuildType:        c.buildType,
		SourceRepository: c.repository,
		SourceRef:        c.ref,
		SourceCommit:     c.commit,
		WorkflowPath:     c.workflowPath,
		InvocationID:     c.invocation,
	}
	if cert != nil {
		f.SourceRepository = evOr(cert.SourceRepositoryURI, f.SourceRepository)
		f.SourceRef = evOr(cert.SourceRepositoryRef, f.SourceRef)
		f.SourceCommit = evOr(cert.SourceRepositoryDigest, f.SourceCommit)
		if _, path, _, ok := evGitHubURI(cert.BuildConfigURI); ok {
			f.WorkflowPath = path
		}
		f.InvocationID = evOr(cert.RunInvocationURI, f.InvocationID)
	}
	return f, nil
}

// evCrossCheck compares every claim the predicate and the certificate both
// make. A disagreement means the predicate describes another build than the
// one Fulcio vouched for.
func evCrossCheck(c evClaims, cert *policy.CertificateFacts) *preflight.Error {
	mismatch := func(what, cert, claim string) *preflight.Error {
		return &preflight.Error{Class: preflight.ErrProvenance,
			Expected: fmt.Sprintf("%s %s (from the signing certificate)", what, cert),
			Found:    fmt.Sprintf("%s %s (claimed by the provenance)", what, claim),
			Hint:     "the provenance contradicts the certificate that signed it; do not run the artifact and tell the publisher"}
	}
	if c.repository != "" && cert.SourceRepositoryURI != "" && !strings.EqualFold(strings.TrimSuffix(c.repository, ".git"), cert.SourceRepositoryURI) {
		return mismatch("source repository", cert.SourceRepositoryURI, c.repository)
	}
	if c.ref != "" && cert.SourceRepositoryRef != "" && c.ref != cert.SourceRepositoryRef {
		return mismatch("source ref", cert.SourceRepositoryRef, c.ref)
	}
	if c.commit != "" && cert.SourceRepositoryDigest != "" && !strings.EqualFold(c.commit, cert.SourceRepositoryDigest) {
		return mismatch("source commit", cert.SourceRepositoryDigest, c.commit)
	}
	if _, path, _, ok := evGitHubURI(cert.BuildConfigURI); ok && c.workflowPath != "" && c.workflowPath != path {
		return mismatch("workflow", path, c.workflowPath)
	}
	if c.runner != "" && cert.RunnerEnvironment != "" && c.runner != cert.RunnerEnvironment {
		return mismatch("runner environment", cert.RunnerEnvironment, c.runner+" (builder "+c.builderID+")")
	}
	// A builder named by a workflow URI (for example slsa-github-generator's
	// reusable workflows) must be the workflow that signed.
	if strings.Contains(c.builderID, "/.github/workflows/") && cert.BuildSignerURI != "" && c.builderID != cert.BuildSignerURI {
		return mismatch("builder", cert.BuildSignerURI, c.builderID)
	}
	if c.invocation != "" && cert.RunInvocationURI != "" {
		certInv := cert.RunInvocationURI
		if !strings.HasPrefix(c.invocation, "https://") {
			certInv = evRunAttempt(cert.RunInvocationURI)
		}
		if certInv != "" && c.invocation != certInv {
			return mismatch("build invocation", cert.RunInvocationURI, c.invocation)
		}
	}
	return nil
}

// evRunAttempt turns https://github.com/O/N/actions/runs/ID/attempts/N into
// "ID-N", the form of SLSA v0.2's buildInvocationId on GitHub.
func evRunAttempt(uri string) string {
	_, path, _, ok := evGitHubURI(uri)
	if !ok {
		return ""
	}
	parts := strings.Split(path, "/")
	if len(parts) == 5 && parts[0] == "actions" && parts[1] == "runs" && parts[3] == "attempts" {
		return parts[2] + "-" + parts[4]
	}
	return ""
}

// evRunnerFromBuilder reads the runner environment GitHub's builder IDs
// state: https://github.com/actions/runner/github-hosted or .../self-hosted.
func evRunnerFromBuilder(id string) string {
	switch id {
	case "https://github.com/actions/runner/github-hosted":
		return "github-hosted"
	case "https://github.com/actions/runner/self-hosted":
		return "self-hosted"
	}
	return ""
}

func evParseSLSAv1(raw json.RawMessage, c *evClaims) error {
	var p struct {
		BuildDefinition struct {
			BuildType          string `json:"buildType"`
			ExternalParameters struct {
				Workflow struct {
					Ref        string `json:"ref"`
					Repository string `json:"repository"`
					Path       string `json:"path"`
				} `json:"workflow"`
			} `json:"externalParameters"`
			InternalParameters struct {
				GitHub struct {
					RunnerEnvironment string `json:"runner_environment"`
				} `json:"github"`
			} `json:"internalParameters"`
			ResolvedDependencies []struct {
				URI    string            `json:"uri"`
				Digest map[string]string `json:"digest"`
			} `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Metadata struct {
				InvocationID string `json:"invocationId"`
			} `json:"metadata"`
		} `json:"runDetails"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return evJSONError(err)
	}
	bd := p.BuildDefinition
	if bd.BuildType == "" || p.RunDetails.Builder.ID == "" {
		return fmt.Errorf("buildDefinition.buildType and runDetails.builder.id are required")
	}
	c.buildType = bd.BuildType
	c.builderID = p.RunDetails.Builder.ID
	w := bd.ExternalParameters.Workflow
	c.repository, c.ref, c.workflowPath = w.Repository, w.Ref, w.Path
	if c.repository != "" && !strings.Contains(c.repository, "://") {
		// Some builders write OWNER/NAME.
		c.repository = "https://github.com/" + c.repository
	}
	c.invocation = p.RunDetails.Metadata.InvocationID
	c.runner = bd.InternalParameters.GitHub.RunnerEnvironment
	if r := evRunnerFromBuilder(c.builderID); r != "" {
		if c.runner != "" && c.runner != r {
			return fmt.Errorf("builder %s contradicts runner_environment %s", c.builderID, c.runner)
		}
		c.runner = r
	}
	for _, d := range bd.ResolvedDependencies {
		repo, ref := evGitURI(d.URI)
		if repo == "" || (c.repository != "" && !strings.EqualFold(repo, c.repository)) {
			continue
		}
		if c.repository == "" {
			c.repository = repo
		}
		if c.ref == "" {
			c.ref = ref
		}
		c.commit = evOr(d.Digest["gitCommit"], d.Digest["sha1"])
		break
	}
	return nil
}

func evParseSLSAv02(raw json.RawMessage, c *evClaims) error {
	var p struct {
		BuildType string `json:"buildType"`
		Builder   struct {
			ID string `json:"id"`
		} `json:"builder"`
		Invocation struct {
			ConfigSource struct {
				URI        string            `json:"uri"`
				Digest     map[string]string `json:"digest"`
				EntryPoint string            `json:"entryPoint"`
			} `json:"configSource"`
		} `json:"invocation"`
		Metadata struct {
			BuildInvocationID string `json:"buildInvocationId"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return evJSONError(err)
	}
	if p.BuildType == "" || p.Builder.ID == "" {
		return fmt.Errorf("buildType and builder.id are required")
	}
	c.buildType, c.builderID = p.BuildType, p.Builder.ID
	cs := p.Invocation.ConfigSource
	c.repository, c.ref = evGitURI(cs.URI)
	c.commit = evOr(cs.Digest["sha1"], cs.Digest["gitCommit"])
	c.workflowPath = cs.EntryPoint
	c.invocation = p.Metadata.BuildInvocationID
	c.runner = evRunnerFromBuilder(c.builderID)
	return nil
}

// evJSONError says where a predicate has the wrong shape without dumping
// Go types into a message meant for people.
func evJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q holds a JSON %s", te.Field, te.Value)
	}
	return err
}

// evGitURI splits git+https://github.com/OWNER/NAME@REF.
func evGitURI(uri string) (repo, ref string) {
	rest, ok := strings.CutPrefix(uri, "git+")
	if !ok {
		return "", ""
	}
	repo, ref, _ = strings.Cut(rest, "@")
	return strings.TrimSuffix(repo, ".git"), ref
}

// evCheckNPMPublish checks that npm's publish attestation names the package
// its subject names: subject pkg:npm/NAME@VERSION with predicate name and
// version equal (scoped names are percent-encoded in the purl).
func evCheckNPMPublish(st *evStatement, bad func(string, string, error) error) error {
	var p struct {
		Name     string `json:"name"`
		Version  string `json:"version"`
		Registry string `json:"registry"`
	}
	if err := json.Unmarshal(st.Predicate, &p); err != nil || p.Name == "" || p.Version == "" {
		return bad("an npm publish attestation with name and version", "a malformed predicate", err)
	}
	want := "pkg:npm/" + strings.Replace(url.PathEscape(p.Name), "%2F", "/", 1) + "@" + p.Version
	for _, s := range st.Subject {
		if s.Name == want || strings.EqualFold(strings.Replace(s.Name, "%40", "@", 1), "pkg:npm/"+p.Name+"@"+p.Version) {
			return nil
		}
	}
	var names []string
	for _, s := range st.Subject {
		names = append(names, s.Name)
	}
	return bad("subject "+want+" (from the publish predicate)", strings.Join(names, ", "), nil)
}
