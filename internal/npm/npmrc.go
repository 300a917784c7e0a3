package npm

import (
	"bufio"
	"bytes"
	"net/url"
	"strings"
)

// maxNPMRCBytes bounds the .npmrc RegistryFromNPMRC reads.
const maxNPMRCBytes = 1 << 20

// RegistryFromNPMRC returns the registry that an .npmrc file's bytes name
// for package pkg: the "@scope:registry" line for pkg's scope when there is
// one, else the "registry" line. It reports false when neither is set or the
// value is not an http(s) URL (the caller then uses the default). It is
// pure parsing; the caller reads the file.
//
// Like npm, later lines override earlier ones, keys are case-insensitive,
// lines starting with # or ; are comments, and values may be quoted. npm's
// ${ENV} substitution is not performed: a value containing "${" is
// ignored, since library code reads no environment variables.
func RegistryFromNPMRC(data []byte, pkg string) (string, bool) {
	if len(data) > maxNPMRCBytes {
		return "", false
	}
	scopeKey := ""
	if strings.HasPrefix(pkg, "@") {
		if scope, _, ok := strings.Cut(pkg, "/"); ok {
			scopeKey = strings.ToLower(scope) + ":registry"
		}
	}
	var general, scoped string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxNPMRCBytes+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = unquote(strings.TrimSpace(v))
		if strings.Contains(v, "${") || !httpURL(v) {
			continue
		}
		switch {
		case k == "registry":
			general = v
		case scopeKey != "" && k == scopeKey:
			scoped = v
		}
	}
	if scoped != "" {
		return scoped, true
	}
	return general, general != ""
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

func httpURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}
