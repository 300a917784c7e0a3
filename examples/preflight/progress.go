package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mcp-preflight/preflight/internal/safefile"
	"github.com/mcp-preflight/preflight/verify"
)

// progressPrinter shows downloads that take more than a moment on a
// terminal: one line per download, rewritten in place at most ten times a
// second, and finished with the total.
type progressPrinter struct {
	w     io.Writer
	now   func() time.Time
	mu    sync.Mutex
	start map[uint64]time.Time
	shown map[uint64]bool
	last  time.Time
}

// progressDelay is how long a download runs before it is shown.
const progressDelay = time.Second

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, now: time.Now, start: map[uint64]time.Time{}, shown: map[uint64]bool{}}
}

func (p *progressPrinter) report(pr verify.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	started, ok := p.start[pr.ID]
	if !ok {
		started = now
		p.start[pr.ID] = now
	}
	if pr.Final {
		if p.shown[pr.ID] {
			fmt.Fprintf(p.w, "\r  downloaded %s in %s\x1b[K\n", byteSize(pr.Done), now.Sub(started).Round(100*time.Millisecond))
		}
		delete(p.start, pr.ID)
		delete(p.shown, pr.ID)
		return
	}
	if now.Sub(started) < progressDelay || now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	p.shown[pr.ID] = true
	if pr.Total > 0 {
		fmt.Fprintf(p.w, "\r  downloading %s of %s (%d%%)\x1b[K", byteSize(pr.Done), byteSize(pr.Total), pr.Done*100/pr.Total)
	} else {
		fmt.Fprintf(p.w, "\r  downloading %s\x1b[K", byteSize(pr.Done))
	}
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// userNPMRC returns the user's ~/.npmrc, whose registry settings apply to
// npm servers whose policy names no registry; nil when there is none.
func userNPMRC() []byte {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	data, err := safefile.ReadLimited(filepath.Join(home, ".npmrc"), 1<<20)
	if err != nil {
		return nil
	}
	return data
}
