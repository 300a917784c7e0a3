package verifytest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight/verify/verifytest"
)

func npmGet(t *testing.T, url string) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func npmNewRegistry(t *testing.T) *verifytest.NPMRegistry {
	t.Helper()
	r, err := verifytest.NewNPMRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func TestNPMRegistryServesWhatItPublished(t *testing.T) {
	r := npmNewRegistry(t)
	tgz, integrity, err := r.Publish(verifytest.NPMPackage{Name: "@acme/srv", Version: "1.0.0",
		Bin: map[string]string{"srv": "cli.js"}, Dependencies: map[string]string{"dep": "^1.0.0"},
		Files: map[string][]byte{"cli.js": []byte("console.log(1)\n")}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(tgz)
	if integrity != "sha512-"+base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("integrity %q does not match the tarball", integrity)
	}

	// The tarball: package/ prefix, generated package.json, executable bin.
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	modes := map[string]int64{}
	var pj map[string]any
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = h.Mode
		if h.Name == "package/package.json" {
			if err := json.NewDecoder(tr).Decode(&pj); err != nil {
				t.Fatal(err)
			}
		}
	}
	if modes["package/cli.js"] != 0o755 || modes["package/package.json"] != 0o644 || pj["name"] != "@acme/srv" || pj["version"] != "1.0.0" {
		t.Errorf("tarball modes %v, package.json %v", modes, pj)
	}

	for _, path := range []string{"/@acme%2fsrv", "/@acme%2Fsrv", "/@acme/srv"} {
		resp, body, err := npmGet(t, r.URL()+path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		var doc struct {
			Name     string            `json:"name"`
			DistTags map[string]string `json:"dist-tags"`
			Versions map[string]struct {
				Bin  map[string]string `json:"bin"`
				Dist struct {
					Tarball, Integrity, Shasum string
				} `json:"dist"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		v := doc.Versions["1.0.0"]
		if doc.Name != "@acme/srv" || doc.DistTags["latest"] != "1.0.0" || v.Dist.Integrity != integrity || v.Bin["srv"] != "cli.js" || len(v.Dist.Shasum) != 40 {
			t.Fatalf("packument %s", body)
		}
		if v.Dist.Tarball != r.URL()+"/@acme/srv/-/srv-1.0.0.tgz" {
			t.Errorf("tarball URL %s", v.Dist.Tarball)
		}
		_, got, err := npmGet(t, v.Dist.Tarball)
		if err != nil || !bytes.Equal(got, tgz) {
			t.Fatalf("tarball differs (%v)", err)
		}
	}
	if resp, _, err := npmGet(t, r.URL()+"/nope"); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown package: %v %v", resp, err)
	}
	if got := r.Requests(); got.Packuments != 4 || got.Tarballs != 3 || got.Attestations != 0 {
		t.Errorf("Requests = %+v", got)
	}
}

func TestNPMRegistryAttestationsAndTampering(t *testing.T) {
	r := npmNewRegistry(t)
	tgz, _, err := r.Publish(verifytest.NPMPackage{Name: "@acme/srv", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _, err := npmGet(t, r.URL()+"/-/npm/v1/attestations/@acme%2fsrv@1.0.0"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("attestations before any were added: %v %v", resp, err)
	}
	s, err := verifytest.NewSigstore()
	if err != nil {
		t.Fatal(err)
	}
	k, err := verifytest.NewKeySigner()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(tgz)
	st, err := verifytest.NPMPublishStatement("@acme/srv", "1.0.0", hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AttestWithKey(k, st, verifytest.SignOptions{TlogEntryKind: "intoto", NoTimestamp: true})
	if err != nil {
		t.Fatal(err)
	}
	r.AddAttestations("@acme/srv", "1.0.0", b)
	_, body, err := npmGet(t, r.URL()+"/-/npm/v1/attestations/@acme%2fsrv@1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Attestations []struct {
			PredicateType string          `json:"predicateType"`
			Bundle        json.RawMessage `json:"bundle"`
		} `json:"attestations"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Attestations) != 1 {
		t.Fatalf("attestations %s (%v)", body, err)
	}
	if doc.Attestations[0].PredicateType != "https://github.com/npm/attestation/tree/main/specs/publish/v0.1" {
		t.Errorf("predicateType %q", doc.Attestations[0].PredicateType)
	}
	var bundle, orig any
	json.Unmarshal(doc.Attestations[0].Bundle, &bundle)
	json.Unmarshal(b, &orig)
	if !jsonEqual(bundle, orig) {
		t.Error("the served bundle differs from the added one")
	}
	_, pk, _ := npmGet(t, r.URL()+"/@acme%2fsrv")
	if !bytes.Contains(pk, []byte(`"url":"`+r.URL()+`/-/npm/v1/attestations/@acme/srv@1.0.0"`)) {
		t.Errorf("packument does not point to the attestations: %s", pk)
	}

	r.TamperTarball("@acme/srv", "1.0.0", []byte("evil"))
	if _, got, _ := npmGet(t, r.URL()+"/@acme/srv/-/srv-1.0.0.tgz"); string(got) != "evil" {
		t.Errorf("tampered tarball = %q", got)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestNPMRegistryFaults(t *testing.T) {
	r := npmNewRegistry(t)
	if _, _, err := r.Publish(verifytest.NPMPackage{Name: "p", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	url := r.URL() + "/p"

	r.Status(503)
	if resp, _, err := npmGet(t, url); err != nil || resp.StatusCode != 503 {
		t.Errorf("Status(503): %v %v", resp, err)
	}
	r.Status(0)

	r.Truncate(true)
	if _, _, err := npmGet(t, url); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Truncate: read error %v, want unexpected EOF", err)
	}
	r.Truncate(false)

	r.Oversize(1 << 16)
	if resp, body, err := npmGet(t, url); err != nil || len(body) != 1<<16 || resp.ContentLength != 1<<16 || !json.Valid(body) {
		t.Errorf("Oversize: %d bytes, %v", len(body), err)
	}
	r.Chunked(true)
	if resp, body, err := npmGet(t, url); err != nil || len(body) != 1<<16 || resp.ContentLength != -1 {
		t.Errorf("Chunked: %d bytes, length %d, %v", len(body), resp.ContentLength, err)
	}
	r.Oversize(0)
	r.Chunked(false)

	r.SetDelay(time.Hour)
	c := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := c.Get(url); err == nil {
		t.Error("SetDelay: the answer came at once")
	}
	r.SetDelay(0)

	other := npmNewRegistry(t)
	r.RedirectTarballs(other.URL())
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(r.URL() + "/p/-/p-1.0.0.tgz")
	if err != nil || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != other.URL()+"/p/-/p-1.0.0.tgz" {
		t.Errorf("RedirectTarballs: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}

	r.SetPackument("p", []byte(`{"name":"q"}`))
	if _, body, _ := npmGet(t, url); string(body) != `{"name":"q"}` {
		t.Errorf("SetPackument: %s", body)
	}
}

func TestNPMRegistryShrinkwrap(t *testing.T) {
	r := npmNewRegistry(t)
	_, depIntegrity, err := r.Publish(verifytest.NPMPackage{Name: "dep", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Publish(verifytest.NPMPackage{Name: "bad", Version: "1.0.0", Dependencies: map[string]string{"dep": "^1"}, Shrinkwrap: true}); err == nil {
		t.Error("a shrinkwrap over a range was generated")
	}
	tgz, _, err := r.Publish(verifytest.NPMPackage{Name: "srv", Version: "1.0.0", Dependencies: map[string]string{"dep": "latest"}, Shrinkwrap: true})
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no npm-shrinkwrap.json in the tarball: %v", err)
		}
		if h.Name != "package/npm-shrinkwrap.json" {
			continue
		}
		var sw struct {
			LockfileVersion int `json:"lockfileVersion"`
			Packages        map[string]struct {
				Version, Resolved, Integrity string
			} `json:"packages"`
		}
		if err := json.NewDecoder(tr).Decode(&sw); err != nil {
			t.Fatal(err)
		}
		d := sw.Packages["node_modules/dep"]
		if sw.LockfileVersion != 3 || d.Version != "1.0.0" || d.Integrity != depIntegrity || d.Resolved != r.URL()+"/dep/-/dep-1.0.0.tgz" {
			t.Errorf("shrinkwrap %+v", sw)
		}
		return
	}
}
