package verifytest

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	preflight "github.com/mcp-preflight/preflight"
)

// Provenance is what a SLSA provenance predicate states about a build.
type Provenance struct {
	BuilderID, BuildType                  string
	Repository, Ref, Commit, WorkflowPath string // Repository as "https://github.com/owner/name"
	InvocationID                          string
}

// ProvenanceFor returns Provenance matching a GitHubActions identity (builder https://github.com/actions/runner/github-hosted, build type https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1).
// The workflow path is taken from the identity's BuildConfigURI
// (https://github.com/OWNER/NAME/PATH@REF), and the invocation is its run.
func ProvenanceFor(id Identity) Provenance {
	path := strings.TrimPrefix(id.BuildConfigURI, id.SourceRepositoryURI+"/")
	if i := strings.LastIndex(path, "@"); i >= 0 {
		path = path[:i]
	}
	return Provenance{
		BuilderID:    "https://github.com/actions/runner/github-hosted",
		BuildType:    "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
		Repository:   id.SourceRepositoryURI,
		Ref:          id.SourceRepositoryRef,
		Commit:       id.SourceRepositoryDigest,
		WorkflowPath: path,
		InvocationID: id.RunInvocationURI,
	}
}

// In-toto statement layout shared by both predicate versions.
type ssStatement struct {
	Type          string      `json:"_type"`
	Subject       []ssSubject `json:"subject"`
	PredicateType string      `json:"predicateType"`
	Predicate     any         `json:"predicate"`
}

type ssSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// ssSLSAv1 is a https://slsa.dev/provenance/v1 predicate as GitHub's
// generator (actions/attest-build-provenance) lays it out.
type ssSLSAv1 struct {
	BuildDefinition struct {
		BuildType          string `json:"buildType"`
		ExternalParameters struct {
			Workflow struct {
				Ref        string `json:"ref"`
				Repository string `json:"repository"`
				Path       string `json:"path"`
			} `json:"workflow"`
		} `json:"externalParameters"`
		ResolvedDependencies []ssResource `json:"resolvedDependencies"`
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

type ssResource struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

// ssSLSAv02 is a https://slsa.dev/provenance/v0.2 predicate as the SLSA
// GitHub generator and npm lay it out.
type ssSLSAv02 struct {
	Builder struct {
		ID string `json:"id"`
	} `json:"builder"`
	BuildType  string `json:"buildType"`
	Invocation struct {
		ConfigSource struct {
			URI        string            `json:"uri"`
			Digest     map[string]string `json:"digest"`
			EntryPoint string            `json:"entryPoint"`
		} `json:"configSource"`
		Parameters  map[string]any `json:"parameters"`
		Environment map[string]any `json:"environment"`
	} `json:"invocation"`
	Metadata struct {
		BuildInvocationID string `json:"buildInvocationId"`
		Completeness      struct {
			Parameters  bool `json:"parameters"`
			Environment bool `json:"environment"`
			Materials   bool `json:"materials"`
		} `json:"completeness"`
		Reproducible bool `json:"reproducible"`
	} `json:"metadata"`
	Materials []ssResource `json:"materials"`
}

// SLSAProvenanceV1 returns an in-toto v1 statement (https://in-toto.io/Statement/v1) with one subject (name, digests alg->hex e.g. {"sha256": "..."}) and a https://slsa.dev/provenance/v1 predicate laid out as GitHub's generator lays it out (buildDefinition.externalParameters.workflow{repository,ref,path}, resolvedDependencies with gitCommit, runDetails.builder.id, runDetails.metadata.invocationId).
func SLSAProvenanceV1(subjectName string, digests map[string]string, p Provenance) ([]byte, error) {
	subject, err := ssNewSubject(subjectName, digests)
	if err != nil {
		return nil, err
	}
	var pred ssSLSAv1
	pred.BuildDefinition.BuildType = p.BuildType
	w := &pred.BuildDefinition.ExternalParameters.Workflow
	w.Ref, w.Repository, w.Path = p.Ref, p.Repository, p.WorkflowPath
	pred.BuildDefinition.ResolvedDependencies = []ssResource{{
		URI:    ssGitURI(p),
		Digest: map[string]string{"gitCommit": p.Commit},
	}}
	pred.RunDetails.Builder.ID = p.BuilderID
	pred.RunDetails.Metadata.InvocationID = p.InvocationID
	return ssMarshalStatement(ssStatement{
		Type:          "https://in-toto.io/Statement/v1",
		Subject:       []ssSubject{subject},
		PredicateType: "https://slsa.dev/provenance/v1",
		Predicate:     pred,
	})
}

// SLSAProvenanceV02 likewise for https://slsa.dev/provenance/v0.2.
// The statement type is https://in-toto.io/Statement/v0.1, which is what
// producers of v0.2 provenance (the SLSA GitHub generator, npm) write; the
// commit goes in invocation.configSource and materials as "sha1".
func SLSAProvenanceV02(subjectName string, digests map[string]string, p Provenance) ([]byte, error) {
	subject, err := ssNewSubject(subjectName, digests)
	if err != nil {
		return nil, err
	}
	var pred ssSLSAv02
	pred.Builder.ID = p.BuilderID
	pred.BuildType = p.BuildType
	cs := &pred.Invocation.ConfigSource
	cs.URI, cs.Digest, cs.EntryPoint = ssGitURI(p), map[string]string{"sha1": p.Commit}, p.WorkflowPath
	pred.Invocation.Parameters = map[string]any{}
	pred.Invocation.Environment = map[string]any{}
	pred.Metadata.BuildInvocationID = p.InvocationID
	pred.Materials = []ssResource{{URI: ssGitURI(p), Digest: map[string]string{"sha1": p.Commit}}}
	return ssMarshalStatement(ssStatement{
		Type:          "https://in-toto.io/Statement/v0.1",
		Subject:       []ssSubject{subject},
		PredicateType: "https://slsa.dev/provenance/v0.2",
		Predicate:     pred,
	})
}

func ssNewSubject(name string, digests map[string]string) (ssSubject, error) {
	if name == "" || len(digests) == 0 {
		return ssSubject{}, ssConfigError("statement subject", "a name and at least one digest",
			fmt.Sprintf("name %q with %d digests", name, len(digests)))
	}
	for alg, hex := range digests {
		if alg == "" || hex == "" {
			return ssSubject{}, ssConfigError("statement subject digest", "an algorithm and a hex value", fmt.Sprintf("%q: %q", alg, hex))
		}
	}
	return ssSubject{Name: name, Digest: maps.Clone(digests)}, nil
}

// ssGitURI is the source as SLSA provenance names it: git+REPO@REF.
func ssGitURI(p Provenance) string {
	return "git+" + p.Repository + "@" + p.Ref
}

func ssMarshalStatement(st ssStatement) ([]byte, error) {
	out, err := json.Marshal(st)
	if err != nil {
		return nil, &preflight.Error{Class: preflight.ErrConfig, Subject: "verifytest: statement", Err: err}
	}
	return out, nil
}
