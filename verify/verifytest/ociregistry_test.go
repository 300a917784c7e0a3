package verifytest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mcp-preflight/preflight/verify/verifytest"
)

func ociNewRegistry(t *testing.T) *verifytest.OCIRegistry {
	t.Helper()
	reg, err := verifytest.NewOCIRegistry()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return reg
}

func ociReferrers(t *testing.T, reg *verifytest.OCIRegistry, repo, digest string) []v1.Descriptor {
	t.Helper()
	d, err := name.NewDigest(reg.Host() + "/" + repo + "@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Manifests
}

func TestOCIRegistryPushRetagAttach(t *testing.T) {
	for _, referrersAPI := range []bool{true, false} {
		reg := ociNewRegistry(t)
		reg.SetReferrersAPI(referrersAPI)
		a, err := reg.PushImage("mcp/x", "v1", map[string][]byte{"bin/server": []byte("a")})
		if err != nil {
			t.Fatal(err)
		}
		b, err := reg.PushImage("mcp/x", "v2", map[string][]byte{"bin/server": []byte("a")})
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			t.Fatal("two pushes of the same files made the same image; they must differ")
		}
		raw, err := reg.Manifest("mcp/x", "v1")
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != a {
			t.Fatalf("manifest does not hash to the pushed digest %s", a)
		}
		if err := reg.Retag("mcp/x", "v1", b); err != nil {
			t.Fatal(err)
		}
		if raw, err := reg.Manifest("mcp/x", "v1"); err != nil || !strings.Contains(string(raw), "layers") {
			t.Fatalf("after retag: %v", err)
		} else if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != b {
			t.Error("v1 still names the first image after Retag")
		}

		bundle := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{}}`)
		ref, err := reg.AttachBundle("mcp/x", a, bundle)
		if err != nil {
			t.Fatal(err)
		}
		got := ociReferrers(t, reg, "mcp/x", a)
		if len(got) != 1 || got[0].Digest.String() != ref || got[0].ArtifactType != verifytest.OCIBundleArtifactType {
			t.Fatalf("referrers API %v: referrers of %s = %+v, want %s with the bundle artifact type", referrersAPI, a, got, ref)
		}
		if n := len(ociReferrers(t, reg, "mcp/x", b)); n != 0 {
			t.Errorf("the other image has %d referrers", n)
		}
		// The referrer manifest is cosign's layout, and its layer is the bundle.
		rm, err := reg.Manifest("mcp/x", ref)
		if err != nil {
			t.Fatal(err)
		}
		var m v1.Manifest
		if err := json.Unmarshal(rm, &m); err != nil {
			t.Fatal(err)
		}
		if m.Subject == nil || m.Subject.Digest.String() != a || len(m.Layers) != 1 || m.Layers[0].MediaType != verifytest.OCIBundleArtifactType ||
			m.Config.MediaType != "application/vnd.oci.empty.v1+json" || m.Annotations["dev.sigstore.bundle.content"] != "dsse-envelope" {
			t.Errorf("referrer manifest = %s", rm)
		}
		l, err := remote.Layer(mustDigest(t, reg.Host()+"/mcp/x@"+m.Layers[0].Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(data) != string(bundle) {
			t.Errorf("bundle layer = %q, %v", data, err)
		}

		if err := reg.AttachLegacyCosignSignature("mcp/x", a); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Manifest("mcp/x", strings.Replace(a, ":", "-", 1)+".sig"); err != nil {
			t.Errorf("legacy signature tag: %v", err)
		}
	}
}

func mustDigest(t *testing.T, s string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOCIRegistryFaults(t *testing.T) {
	reg := ociNewRegistry(t)
	if _, err := reg.PushImage("mcp/x", "v1", nil); err != nil {
		t.Fatal(err)
	}
	url := "http://" + reg.Host() + "/v2/mcp/x/manifests/v1"
	get := func() (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	reg.SetFault(verifytest.OCIFault{Path: "/manifests/", Status: http.StatusTeapot})
	if resp, _ := get(); resp.StatusCode != http.StatusTeapot {
		t.Errorf("status = %d", resp.StatusCode)
	}
	reg.SetFault(verifytest.OCIFault{Path: "/blobs/", Status: http.StatusTeapot})
	if resp, _ := get(); resp.StatusCode != http.StatusOK {
		t.Errorf("a fault for another path changed the answer: %d", resp.StatusCode)
	}
	reg.SetFault(verifytest.OCIFault{Body: []byte("other")})
	if resp, body := get(); string(body) != "other" || resp.ContentLength != 5 {
		t.Errorf("body = %q, length %d", body, resp.ContentLength)
	}
	reg.SetFault(verifytest.OCIFault{Chunked: true})
	if resp, body := get(); resp.ContentLength != -1 || !strings.Contains(string(body), "schemaVersion") {
		t.Errorf("chunked answer: length %d, body %q", resp.ContentLength, body)
	}

	// A hanging request is released by Close.
	reg.SetFault(verifytest.OCIFault{Hang: true})
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the request did not hang")
	default:
	}
	reg.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the hanging request")
	}
}
