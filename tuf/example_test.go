package tuf_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// A host pins the repository's root.json, resolves a publisher's server
// descriptor through its delegation and reads the verified bytes.
func Example() {
	repo, err := verifytest.NewTUFRepository(verifytest.TUFOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer repo.Close()
	// TUF path patterns match one segment per "*": acme's servers live
	// one level below its prefix.
	if err := repo.Delegate("acme", []string{"acme/*/*"}, 1, 1, true); err != nil {
		log.Fatal(err)
	}
	if err := repo.AddDelegatedTarget("acme", "acme/weather/server.json", []byte(`{"name":"io.acme/weather"}`)); err != nil {
		log.Fatal(err)
	}
	if err := repo.Publish(); err != nil {
		log.Fatal(err)
	}
	base, err := repo.Serve()
	if err != nil {
		log.Fatal(err)
	}
	cache, err := os.MkdirTemp("", "tuf-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(cache)

	client, err := tuf.New(tuf.Config{
		MetadataURL: base + "/metadata",
		TargetsURL:  base + "/targets",
		Root:        repo.RootJSON(), // in production: the root pinned in the policy
		CacheDir:    cache,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	target, err := client.Target(ctx, "acme/weather/server.json")
	if err != nil {
		log.Fatal(err)
	}
	descriptor, err := client.ReadTarget(ctx, target)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s signed by %s: %s\n", target.Name, target.SignedBy, descriptor)
	// Output: acme/weather/server.json signed by acme: {"name":"io.acme/weather"}
}
