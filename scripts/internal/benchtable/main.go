// Command benchtable turns `go test -bench` output into the table of ratios
// that scripts/bench prints, each ratio taken from benchmarks of the same
// run, so that both sides saw the same machine and the same load.
//
// Usage:
//
//	benchtable < bench.txt          print the ratio table (Markdown)
//	benchtable time NAME -- CMD...  run CMD once and print its wall time as
//	                                a benchmark line named
//	                                BenchmarkProcess/NAME, for commands that
//	                                are not Go benchmarks (cosign)
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "time" {
		os.Exit(timeCommand(os.Args[2:]))
	}
	results, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	render(os.Stdout, results)
}

func timeCommand(args []string) int {
	if len(args) < 3 || args[1] != "--" {
		fmt.Fprintln(os.Stderr, "usage: benchtable time NAME -- CMD [ARGS...]")
		return 2
	}
	cmd := exec.Command(args[2], args[3:]...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	out, err := cmd.Output()
	elapsed := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtable: %s: %v\n%s", args[0], err, out)
		return 1
	}
	fmt.Printf("BenchmarkProcess/%s-%d\t1\t%d ns/op\n", args[0], 1, elapsed.Nanoseconds())
	return 0
}

// results maps "pkg.BenchmarkName/sub" (pkg is the last element of the
// import path, the GOMAXPROCS suffix dropped) to unit → samples.
type results map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader) (results, error) {
	res := results{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = path.Base(strings.TrimSpace(p))
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		if strings.HasPrefix(name, "BenchmarkProcess/") {
			name = "process." + name
		} else {
			name = pkg + "." + name
		}
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res, sc.Err()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// get returns the median of unit for name and the number of samples.
func (r results) get(name, unit string) (float64, int, bool) {
	xs := r[name][unit]
	if len(xs) == 0 {
		return 0, 0, false
	}
	return median(xs), len(xs), true
}

type comparison struct {
	unit   string // compared unit; "" is ns/op
	what   string
	a, b   string // benchmark names, a over b
	target string
	note   string // printed when a side is missing
}

var comparisons = []comparison{
	{"", "warm `Launch` vs plain mcp-go launch", "verify.BenchmarkLaunchWarm", "verify.BenchmarkLaunchPlain",
		"A−B ≤ one hash pass + 2 ms", ""},
	{"", "gated `tools/call` vs direct (verify, subprocess server)", "verify.BenchmarkCallGated", "verify.BenchmarkCallDirect",
		"≤ 1.10", ""},
	{"", "gate relay vs direct, in process", "gate.BenchmarkRelayCall/inprocess/gated", "gate.BenchmarkRelayCall/inprocess/direct",
		"≤ 1.10", ""},
	{"", "gate relay vs direct, subprocess (what `preflight run` relays)", "gate.BenchmarkRelayCall/subprocess/gated", "gate.BenchmarkRelayCall/subprocess/direct",
		"≤ 1.10", ""},
	{"", "`Proxy` (the `preflight run` relay) `tools/call` vs direct", "verify.BenchmarkProxyCall", "verify.BenchmarkDirectCall",
		"≤ 1.10", ""},
	{"calls/s", "`Proxy` throughput vs direct, 16 calls in flight (calls/s)", "verify.BenchmarkProxyThroughput", "verify.BenchmarkDirectThroughput",
		"≥ 0.90", ""},
	{"", "`preflight verify-bundle` process vs cosign", "process.BenchmarkProcess/preflight-verify-bundle", "process.BenchmarkProcess/cosign",
		"< 1 (cosign ~31 ms)", "cosign is not on PATH; skipped"},
	{"", "`verify-bundle` process (Go benchmark)", "preflight.BenchmarkVerifyBundleProcess", "",
		"≤ 15 ms", ""},
	{"", "evidence layer vs sigstore-go alone, in process", "verify.BenchmarkVerifyNPMProvenance", "verify.BenchmarkVerifyNPMProvenanceSigstoreGo",
		"≈ 1", ""},
	{"", "50 cold `Check`s on one Verifier (memory in notes)", "verify.BenchmarkCheck50Servers", "", "", ""},
	{"", "warm `Check` (no launch)", "verify.BenchmarkCheckWarm", "", "", ""},
	{"", "TUF refresh, warm vs cold", "tuf.BenchmarkRefreshWarm", "tuf.BenchmarkRefreshCold", "warm: one small request", ""},
	{"", "TUF delegated target lookup (refreshed client)", "tuf.BenchmarkTargetLookup", "", "no request", ""},
	{"", "store hit (Put of a present entry) vs miss, 4 MiB", "store.BenchmarkPutHit", "store.BenchmarkPutMiss", "hit: no read", ""},
	{"", "store Open (the hash pass at launch) vs miss, 4 MiB", "store.BenchmarkOpenHit", "store.BenchmarkPutMiss", "SHA-256 ~2 GB/s", ""},
}

func dur(ns float64) string {
	if ns < 0 {
		return "−" + dur(-ns)
	}
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d >= time.Microsecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func short(name string) string {
	_, n, _ := strings.Cut(name, ".")
	return strings.TrimPrefix(n, "Benchmark")
}

// extras lists the custom metrics of a benchmark (requests/op, MB/s).
func (r results) extras(name string) string {
	var out []string
	for _, unit := range []string{"requests/op", "MB/s", "calls/s", "retained-MiB", "VmHWM-MiB", "VmRSS-before-MiB"} {
		if v, _, ok := r.get(name, unit); ok {
			out = append(out, fmt.Sprintf("%s %.4g %s", short(name), v, unit))
		}
	}
	return strings.Join(out, ", ")
}

func render(w io.Writer, r results) {
	fmt.Fprintln(w, "| comparison | A | B | A/B | A−B | target | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, c := range comparisons {
		unit, show := c.unit, dur
		if unit == "" {
			unit = "ns/op"
		} else {
			show = func(v float64) string { return fmt.Sprintf("%.4g %s", v, unit) }
		}
		a, na, okA := r.get(c.a, unit)
		b, nb, okB := r.get(c.b, unit)
		switch {
		case c.b == "" && okA:
			fmt.Fprintf(w, "| %s | %s (n=%d) | — | — | — | %s | %s |\n", c.what, show(a), na, c.target, r.extras(c.a))
		case okA && okB:
			notes := strings.Trim(r.extras(c.a)+"; "+r.extras(c.b), "; ")
			fmt.Fprintf(w, "| %s | %s (n=%d) | %s (n=%d) | %.3g | %s | %s | %s |\n",
				c.what, show(a), na, show(b), nb, a/b, show(a-b), c.target, notes)
		default:
			note := c.note
			if note == "" {
				var missing []string
				for _, n := range []string{c.a, c.b} {
					if _, ok := r[n]; n != "" && !ok {
						missing = append(missing, n)
					}
				}
				note = "not measured: " + strings.Join(missing, ", ")
			}
			fmt.Fprintf(w, "| %s | — | — | — | — | %s | %s |\n", c.what, c.target, note)
		}
	}
}
