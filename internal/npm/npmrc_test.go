package npm

import "testing"

func TestRegistryFromNPMRC(t *testing.T) {
	rc := []byte(`# comment
; another
registry=https://mirror.example.com/npm/
@acme:registry = "https://npm.acme.example"
@ACME:always-auth=true
//npm.acme.example/:_authToken=${NPM_TOKEN}
@env:registry=${REGISTRY}
@bad:registry=file:///etc
`)
	tests := []struct {
		pkg, want string
		ok        bool
	}{
		{"left-pad", "https://mirror.example.com/npm/", true},
		{"@acme/weather-mcp", "https://npm.acme.example", true},
		{"@other/x", "https://mirror.example.com/npm/", true},
		{"@env/x", "https://mirror.example.com/npm/", true},
		{"@bad/x", "https://mirror.example.com/npm/", true},
	}
	for _, tt := range tests {
		got, ok := RegistryFromNPMRC(rc, tt.pkg)
		if got != tt.want || ok != tt.ok {
			t.Errorf("RegistryFromNPMRC(%s) = %q, %v; want %q, %v", tt.pkg, got, ok, tt.want, tt.ok)
		}
	}
	if got, ok := RegistryFromNPMRC([]byte("registry=https://a\nregistry=https://b\n"), "x"); got != "https://b" || !ok {
		t.Errorf("the later line should win, got %q", got)
	}
	if got, ok := RegistryFromNPMRC([]byte("@acme:registry=https://a\n"), "left-pad"); ok {
		t.Errorf("an unscoped package took the scope's registry %q", got)
	}
}

func FuzzRegistryFromNPMRC(f *testing.F) {
	f.Add([]byte("registry=https://r.example\n@s:registry='http://127.0.0.1:4873'\n"), "@s/p")
	f.Add([]byte("registry = https://u:p@x\n"), "x")
	f.Add([]byte("\xff=\n=\n"), "@")
	f.Fuzz(func(t *testing.T, data []byte, pkg string) {
		got, ok := RegistryFromNPMRC(data, pkg)
		if ok != (got != "") {
			t.Fatalf("ok=%v with %q", ok, got)
		}
		if ok && !httpURL(got) {
			t.Fatalf("returned %q, not an http(s) URL without credentials", got)
		}
	})
}
