package verify

import "testing"

func TestImageReference(t *testing.T) {
	cases := []struct {
		pkg  registryPackage
		want string
	}{
		{registryPackage{RegistryBaseURL: "https://docker.io", Identifier: "acme/weather", Version: "1.2.0"}, "docker.io/acme/weather:1.2.0"},
		{registryPackage{Identifier: "ghcr.io/acme/weather:1.2.0", Version: "1.2.0"}, "ghcr.io/acme/weather:1.2.0"},
		{registryPackage{RegistryBaseURL: "https://docker.io", Identifier: "ghcr.io/acme/weather@sha256:ab"}, "ghcr.io/acme/weather@sha256:ab"},
		{registryPackage{RegistryBaseURL: "http://127.0.0.1:5000", Identifier: "acme/weather", Version: "2"}, "127.0.0.1:5000/acme/weather:2"},
		{registryPackage{Identifier: "localhost:5000/weather", Version: "3"}, "localhost:5000/weather:3"},
	}
	for _, c := range cases {
		if got := imageReference(&c.pkg); got != c.want {
			t.Errorf("imageReference(%+v) = %q, want %q", c.pkg, got, c.want)
		}
	}
}
