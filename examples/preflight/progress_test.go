package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight/verify"
)

func TestProgressPrinterShowsOnlySlowDownloads(t *testing.T) {
	var out bytes.Buffer
	p := newProgressPrinter(&out)
	clock := time.Unix(1000, 0)
	p.now = func() time.Time { return clock }

	// A quick download is never shown.
	p.report(verify.Progress{ID: 1, Done: 1 << 20, Total: 2 << 20})
	p.report(verify.Progress{ID: 1, Done: 2 << 20, Total: 2 << 20, Final: true})
	if out.Len() != 0 {
		t.Fatalf("a quick download was shown: %q", out.String())
	}

	// A slow one is shown after the delay and finished with its total.
	p.report(verify.Progress{ID: 2, Done: 1 << 20, Total: 4 << 20})
	clock = clock.Add(2 * progressDelay)
	p.report(verify.Progress{ID: 2, Done: 2 << 20, Total: 4 << 20})
	p.report(verify.Progress{ID: 2, Done: 4 << 20, Total: 4 << 20, Final: true})
	got := out.String()
	for _, want := range []string{"downloading 2.0 MiB of 4.0 MiB (50%)", "downloaded 4.0 MiB in 2s\x1b[K\n"} {
		if !strings.Contains(got, want) {
			t.Fatalf("output %q lacks %q", got, want)
		}
	}
}
