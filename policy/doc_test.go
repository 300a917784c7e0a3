package policy

import (
	"strings"
	"testing"
)

// TestFindingCodesDocumented keeps docs/policy.md and the package
// documentation in step with the codes the package can produce.
func TestFindingCodesDocumented(t *testing.T) {
	docs := string(readFile(t, "../docs/policy.md"))
	pkg := string(readFile(t, "doc.go"))
	codes := []string{CodeServerUnknown, CodeSignatureMissing, CodeSignerNone, CodeSignerIdentity, CodeProvenanceMissing,
		CodeProvenancePredicate, CodeProvenanceBuilder, CodeProvenanceRepo, CodeProvenanceRef, CodeProvenanceRunner,
		CodeArtifactDigest, CodeArtifactVersion, CodePolicyInvalid, CodeDescriptorWiden, CodeDescriptorConflict,
		CodeInstructionsChanged, CodeSigner, CodeVersion, CodeSource, CodeSourceCommit}
	for _, s := range []string{SurfaceDenied, SurfaceNotAllowed, SurfaceName, SurfaceLookalike, SurfaceDrift, SurfaceAdded,
		SurfaceRemoved, SurfaceUnpinned, SurfaceLimit, SurfaceDuplicate, SurfaceDescription, SurfaceSchema, SurfaceChanged} {
		codes = append(codes, "KIND."+s)
	}
	for _, c := range codes {
		if !strings.Contains(docs, "`"+c+"`") {
			t.Errorf("docs/policy.md does not document %s", c)
		}
		if !strings.Contains(pkg, "//\t"+c+" ") {
			t.Errorf("doc.go does not list %s", c)
		}
		if (Finding{Code: strings.Replace(c, "KIND", KindTool, 1)}).Class() == nil {
			t.Errorf("%s has no class", c)
		}
	}
}
