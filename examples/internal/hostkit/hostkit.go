// Package hostkit sets up the offline world the example hosts run in: a
// test-kit scenario that publishes the example's own binary as a signed MCP
// server in a loopback TUF repository, and a policy that pins it. A real
// host has a policy file instead; everything after Verifier is the same.
package hostkit

import (
	"context"
	"os"
	"path/filepath"

	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/verify"
	"github.com/mcp-preflight/preflight/verify/verifytest"
)

// Server is the test server the examples publish: two tools, one of which
// the policy denies.
var Server = verifytest.ServerConfig{Name: "weather", Version: "1.0.0", Tools: []verifytest.Tool{
	{Name: "get_forecast", Description: "Forecast for a city."},
	{Name: "delete_everything", Description: "Deletes every file it can."},
}}

// World is a published server and a Verifier whose policy allows it, in a
// temporary directory of its own.
type World struct {
	Verifier *verify.Verifier
	scenario *verifytest.Scenario
	dir      string
}

// Close stops the loopback repository and removes the directory.
func (w *World) Close() {
	w.scenario.Close()
	os.RemoveAll(w.dir)
}

// New publishes this binary (re-executed as the test server) in a fresh
// scenario and returns a Verifier for the policy entry "weather".
func New(ctx context.Context) (w *World, err error) {
	dir, err := os.MkdirTemp("", "preflight-host-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	exe, err := os.ReadFile(self)
	if err != nil {
		return nil, err
	}
	sc, err := verifytest.NewScenario(filepath.Join(dir, "scenario"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			sc.Close()
		}
	}()
	if _, err := sc.PublishServer(ctx, "io.github.acme/weather", exe, Server, nil); err != nil {
		return nil, err
	}
	path, err := sc.Policy("preflight.yaml", verifytest.PolicyServer{Name: "weather", Server: "io.github.acme/weather", Deny: []string{"delete_*"}})
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(path, data)
	if err != nil {
		return nil, err
	}
	v, err := verify.New(verify.Config{Policy: p, PolicyDir: filepath.Dir(path), StoreDir: filepath.Join(dir, "store")})
	if err != nil {
		return nil, err
	}
	return &World{Verifier: v, scenario: sc, dir: dir}, nil
}
