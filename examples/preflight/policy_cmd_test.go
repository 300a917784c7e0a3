package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPolicyLint: a policy with an unknown field, an unanchored pattern and
// an empty signer gets all three reported with their positions.
func TestPolicyLint(t *testing.T) {
	const file = "../../policy/testdata/invalid/three.yaml"
	code, stdout, stderr := runCLI(t, "policy", "lint", file)
	if code != exitRefused {
		t.Fatalf("exit %d, want %d\n%s", code, exitRefused, stderr)
	}
	for _, want := range []string{file + ":6:5: ", file + ":9:26: ", file + ":10:9: ", "unknown field", "not anchored", "empty signer"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("lint output lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, _ = runCLI(t, "policy", "lint", "--format", "json", file)
	var out struct {
		MediaType string
		Problems  []struct {
			Line, Column int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || code != exitRefused || len(out.Problems) != 3 || out.Problems[1].Column != 26 {
		t.Fatalf("json lint: exit %d, %+v, %v\n%s", code, out, err, stdout)
	}

	if code, _, _ := runCLI(t, "policy", "lint", "../../policy/testdata/valid/tuf.yaml"); code != exitOK {
		t.Fatalf("a valid policy: exit %d", code)
	}
	code, stdout, _ = runCLI(t, "policy", "schema")
	if code != exitOK || !json.Valid([]byte(stdout)) || !strings.Contains(stdout, "allow_unsigned") {
		t.Fatalf("schema: exit %d, valid JSON %v", code, json.Valid([]byte(stdout)))
	}
}
