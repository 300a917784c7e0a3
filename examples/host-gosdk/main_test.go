package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/mcp-preflight/preflight/verify/verifytest"
)

func TestMain(m *testing.M) {
	if verifytest.ServerMain(os.Args[1:]) {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestHostRunsAgainstTestKit(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"tool: get_forecast", "get_forecast: echo: Faro", "delete_everything: refused by the gate"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "tool: delete_everything") {
		t.Errorf("the denied tool was listed:\n%s", got)
	}
}
