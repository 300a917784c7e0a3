package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	preflight "github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/safefile"
	"github.com/mcp-preflight/preflight/policy"
	"github.com/mcp-preflight/preflight/tuf"
	"github.com/mcp-preflight/preflight/verify"
)

const vbUsage = `Usage: preflight verify-bundle --bundle FILE
         (--certificate-identity ID | --certificate-identity-regexp RE)
         (--certificate-oidc-issuer URL | --certificate-oidc-issuer-regexp RE)
       | --key PEMFILE
       [--trusted-root FILE | --offline] [flags] ARTIFACT

Verifies Sigstore bundles for ARTIFACT, a file or a digest (sha256:HEX,
sha384:HEX, sha512:HEX), the way the sigstore-conformance client protocol
asks. Exit status: 0 verified, 1 not verified (the reason on stderr), 2 usage
or environment error.

The trust root is the --trusted-root file, else Sigstore's public-good TUF
repository (online), else with --offline the TUF cache (--tuf-cache) or the
embedded public-good snapshot. Regular expressions must be anchored (^...$).

Examples:
  preflight verify-bundle --bundle pkg.sigstore.json \
    --certificate-identity https://github.com/acme/srv/.github/workflows/release.yml@refs/tags/v1.0.0 \
    --certificate-oidc-issuer https://token.actions.githubusercontent.com srv.tgz
  preflight verify-bundle --bundle publish.json --key npm.pub --offline sha512:7617...

Flags:
`

// cmdVerifyBundle implements `preflight verify-bundle`.
func cmdVerifyBundle(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify-bundle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, vbUsage)
		fs.PrintDefaults()
	}
	var (
		bundles, predicates            vbList
		identity, identityRE           string
		issuer, issuerRE               string
		keyFile, trustedRoot, tufCache string
		repository, sourceRef, signWf  string
		digestAlg, format              string
		offline                        bool
	)
	fs.Var(&bundles, "bundle", "Sigstore bundle `FILE` (repeatable; every bundle must verify)")
	fs.StringVar(&identity, "certificate-identity", "", "exact certificate `SAN` (a workflow URI or an email)")
	fs.StringVar(&identityRE, "certificate-identity-regexp", "", "anchored RE2 `pattern` for the certificate SAN")
	fs.StringVar(&issuer, "certificate-oidc-issuer", "", "exact OIDC issuer `URL`")
	fs.StringVar(&issuerRE, "certificate-oidc-issuer-regexp", "", "anchored RE2 `pattern` for the OIDC issuer")
	fs.StringVar(&keyFile, "key", "", "PEM public key `FILE` for key-signed bundles (instead of an identity)")
	fs.StringVar(&repository, "repository", "", "required source repository `OWNER/NAME` (certificate extension)")
	fs.StringVar(&sourceRef, "source-ref", "", "required source `ref`, e.g. refs/tags/v1.0.0")
	fs.StringVar(&signWf, "signer-workflow", "", "required signer workflow `path` (.github/workflows/x.yml, or OWNER/NAME/.github/workflows/x.yml for a reusable one)")
	fs.Var(&predicates, "predicate-type", "in-toto predicate `type` that must be among the verified attestations (repeatable)")
	fs.StringVar(&digestAlg, "digest-algorithm", "", "hash a file ARTIFACT with `alg` sha256|sha384|sha512 (default: what the bundles use)")
	fs.StringVar(&trustedRoot, "trusted-root", "", "pinned Sigstore trusted_root.json `FILE`")
	fs.StringVar(&tufCache, "tuf-cache", "", "`DIR` caching Sigstore's TUF metadata between runs")
	fs.BoolVar(&offline, "offline", false, "make no network request: use the TUF cache or the embedded snapshot")
	fs.StringVar(&format, "format", "text", "output `format`: text or json")

	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "preflight verify-bundle: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'preflight verify-bundle --help' for usage.")
		return exitUsage
	}
	switch {
	case len(positional) != 1:
		return usageErr("want exactly one ARTIFACT (a file or sha256:HEX), got %d", len(positional))
	case len(bundles) == 0:
		return usageErr("--bundle is required")
	case format != "text" && format != "json":
		return usageErr("--format must be text or json, not %q", format)
	case trustedRoot != "" && (offline || tufCache != ""):
		return usageErr("--trusted-root is used as is; drop --offline and --tuf-cache")
	case digestAlg != "" && digestAlg != "sha256" && digestAlg != "sha384" && digestAlg != "sha512":
		return usageErr("--digest-algorithm must be sha256, sha384 or sha512, not %q", digestAlg)
	}
	keyless := identity != "" || identityRE != "" || issuer != "" || issuerRE != ""
	signer := policy.Signer{Issuer: issuer, IssuerPattern: issuerRE, Subject: identity, SubjectPattern: identityRE,
		Repository: repository, Ref: sourceRef, Workflow: signWf}
	switch {
	case keyFile != "" && (keyless || repository != "" || sourceRef != "" || signWf != ""):
		return usageErr("--key excludes the certificate flags")
	case keyFile != "":
		pem, err := os.ReadFile(keyFile)
		if err != nil {
			return usageErr("reading --key: %v", err)
		}
		signer = policy.Signer{PublicKey: string(pem)}
	case (identity == "") == (identityRE == ""):
		return usageErr("give exactly one of --certificate-identity and --certificate-identity-regexp (or --key)")
	case (issuer == "") == (issuerRE == ""):
		return usageErr("give exactly one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp")
	}

	check := verify.EvidenceCheck{Signers: []policy.Signer{signer}, PredicateTypes: predicates}
	for _, name := range bundles {
		data, err := vbReadBounded(name, verify.MaxBundleSize)
		if err != nil {
			return usageErr("reading --bundle: %v", err)
		}
		check.Bundles = append(check.Bundles, verify.Bundle{Name: name, JSON: data})
	}

	artifactName := positional[0]
	digests, isDigest := vbParseDigest(artifactName)
	if isDigest {
		artifactName = ""
	} else {
		algs := []string{digestAlg}
		if digestAlg == "" {
			algs = vbBundleAlgorithms(check.Bundles)
		}
		var err error
		if digests, err = verify.DigestFile(artifactName, algs...); err != nil {
			return usageErr("reading ARTIFACT: %v", err)
		}
	}
	check.Artifact = digests

	cfg := tuf.SigstoreConfig{TrustedRootPath: trustedRoot, CacheDir: tufCache, Offline: offline}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	material, info, err := tuf.LoadSigstoreRoot(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "preflight verify-bundle: loading the Sigstore trust root: %v\n", err)
		return exitUsage
	}
	check.Material = material
	facts, verr := verify.VerifyEvidence(check)

	trust := verify.TrustRootFacts{Source: string(info.Source), Date: info.Date, Digest: info.Digest, Description: info.Description}
	result := verify.NewBundleResult(artifactName, digests, trust, facts, verr)
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(result); err != nil {
			fmt.Fprintf(stderr, "preflight verify-bundle: %v\n", err)
			return exitUsage
		}
	}
	if verr != nil {
		fmt.Fprintf(stderr, "preflight verify-bundle: NOT VERIFIED: %v\n", verr)
		return exitRefused
	}
	if format == "text" {
		vbPrintText(stdout, result, check.Bundles)
	}
	return exitOK
}

// vbList is a repeatable string flag.
type vbList []string

func (l *vbList) String() string     { return strings.Join(*l, ",") }
func (l *vbList) Set(s string) error { *l = append(*l, s); return nil }

// vbParseDigest recognises ALG:HEX with the right length for ALG.
func vbParseDigest(s string) (map[string]string, bool) {
	alg, h, ok := strings.Cut(s, ":")
	size := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64}[alg]
	if !ok || size == 0 {
		return nil, false
	}
	if b, err := hex.DecodeString(h); err != nil || len(b) != size {
		return nil, false
	}
	return map[string]string{alg: strings.ToLower(h)}, true
}

// vbBundleAlgorithms returns every digest algorithm the bundles bind the
// artifact with, so that the file is read once for all of them. A bundle
// that cannot be parsed contributes nothing here; VerifyEvidence reports it.
func vbBundleAlgorithms(bundles []verify.Bundle) []string {
	seen := map[string]bool{}
	var algs []string
	for _, b := range bundles {
		got, err := verify.BundleAlgorithms(b)
		if err != nil {
			continue
		}
		for _, a := range got {
			if !seen[a] {
				seen[a] = true
				algs = append(algs, a)
			}
		}
	}
	if len(algs) == 0 {
		algs = []string{"sha256"}
	}
	return algs
}

func vbReadBounded(name string, limit int64) ([]byte, error) {
	data, err := safefile.ReadLimited(name, limit)
	if errors.Is(err, safefile.ErrTooLarge) {
		return nil, &preflight.Error{Class: preflight.ErrMalformed, Subject: name, Expected: fmt.Sprintf("at most %d bytes", limit), Found: "more"}
	}
	return data, err
}

func vbPrintText(w io.Writer, r verify.BundleResult, bundles []verify.Bundle) {
	var ds []string
	for alg, d := range r.Artifact.Digests {
		ds = append(ds, alg+":"+d)
	}
	name := r.Artifact.Name
	if name == "" {
		name = "artifact"
	}
	fmt.Fprintf(w, "VERIFIED %s (%s)\n", name, strings.Join(ds, ", "))
	for i, s := range r.Signatures {
		fmt.Fprintf(w, "  %s: %s", bundles[i].Name, s.Kind)
		if s.PredicateType != "" {
			fmt.Fprintf(w, " %s", s.PredicateType)
		}
		if s.Certificate != nil {
			fmt.Fprintf(w, ", signed by %s (issuer %s)", s.Certificate.Subject, s.Certificate.Issuer)
		} else {
			fmt.Fprintf(w, ", signed by key %s", s.KeyID)
		}
		fmt.Fprintf(w, " at %s\n", s.SignedAt.Format(time.RFC3339))
		if p := s.Provenance; p != nil {
			fmt.Fprintf(w, "    built from %s@%s (%s) by %s, workflow %s\n", p.SourceRepository, p.SourceRef, p.SourceCommit, p.BuilderID, p.WorkflowPath)
		}
	}
	fmt.Fprintf(w, "  trust root: %s %s", r.TrustRoot.Source, r.TrustRoot.Digest)
	if !r.TrustRoot.Date.IsZero() {
		fmt.Fprintf(w, " of %s", r.TrustRoot.Date.Format("2006-01-02"))
	}
	fmt.Fprintln(w)
}
