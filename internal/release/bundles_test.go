package release_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/release"
	"github.com/mcp-preflight/preflight/internal/release/releasetest"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// compact returns JSON on one line, as a JSON Lines file holds it.
func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseBundles(t *testing.T) {
	b1, err := releasetest.Sigstore(t).SignBlob(releasetest.Publisher, []byte("one"), verifytest.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := releasetest.Sigstore(t).SignBlob(releasetest.Publisher, []byte("two"), verifytest.SignOptions{BundleVersion: "v0.1"})
	if err != nil {
		t.Fatal(err)
	}
	one, two := compact(t, b1), compact(t, b2)
	cases := map[string]struct {
		doc  string
		want [][]byte
	}{
		"bundle":            {string(b1), [][]byte{b1}},
		"wrapped":           {`{"bundle":` + string(one) + `}`, [][]byte{one}},
		"github api answer": {`{"attestations":[{"bundle":` + string(one) + `,"repository_id":1},{"bundle":` + string(two) + `}]}`, [][]byte{one, two}},
		"json lines":        {string(one) + "\n" + string(two) + "\n", [][]byte{one, two}},
		"json lines, crlf":  {string(one) + "\r\n" + `{"bundle":` + string(two) + "}\r\n", [][]byte{one, two}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := release.ParseBundles("b", []byte(c.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d bundles, want %d", len(got), len(c.want))
			}
			for i := range got {
				if !bytes.Equal(compact(t, got[i].JSON), compact(t, c.want[i])) {
					t.Errorf("bundle %d differs", i)
				}
				if len(got) > 1 && !strings.HasPrefix(got[i].Name, "b#") {
					t.Errorf("bundle %d named %q", i, got[i].Name)
				}
			}
		})
	}
	for name, doc := range map[string]string{
		"empty":               "",
		"blank lines":         "\n\n",
		"not json":            "<html>",
		"array":               "[" + string(one) + "]",
		"object without type": `{"a":1}`,
		"bundle not a bundle": `{"bundle":{"a":1}}`,
		"attestations scalar": `{"attestations":3}`,
		"trailing garbage":    string(one) + "\nnope",
		"too many":            strings.Repeat(string(one)+"\n", release.MaxBundles+1),
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			_, err := release.ParseBundles("b", []byte(doc))
			wantClass(t, err, preflight.ErrMalformed)
		})
	}
}
