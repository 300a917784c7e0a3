package mcpb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mcp-preflight/preflight"
)

// Bounds on a manifest, far above real ones.
const (
	MaxManifestBytes = 1 << 20
	maxArgs          = 256
	maxEnv           = 256
	maxUserConfig    = 256
	maxString        = 64 << 10
)

// Manifest is the part of an MCPB manifest.json that decides what runs,
// plus the names that identify the bundle.
type Manifest struct {
	ManifestVersion string
	Name            string
	Version         string
	Server          Server
	// Platforms lists compatibility.platforms; empty means all.
	Platforms []string
	// UserConfig holds the user_config options by key.
	UserConfig map[string]UserConfigOption
}

// Server is the manifest's server member.
type Server struct {
	Type       string // "node", "python", "binary" or "uv"
	EntryPoint string // slash-separated path inside the bundle
	// MCPConfig is how to start the server; nil only for "uv" servers.
	MCPConfig *MCPConfig
}

// MCPConfig is the command that starts the server, with placeholders.
type MCPConfig struct {
	Command           string                    `json:"command"`
	Args              []string                  `json:"args,omitempty"`
	Env               map[string]string         `json:"env,omitempty"`
	PlatformOverrides map[string]PlatformConfig `json:"platform_overrides,omitempty"`
}

// PlatformConfig overrides parts of MCPConfig on one platform: a set
// command or args replaces the base one, env entries are merged over it.
type PlatformConfig struct {
	Command *string           `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
}

// UserConfigOption is one user_config option, as far as substitution
// needs it.
type UserConfigOption struct {
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Required    bool            `json:"required,omitempty"`
	Default     json.RawMessage `json:"default,omitempty"`
	Multiple    bool            `json:"multiple,omitempty"`
	Sensitive   bool            `json:"sensitive,omitempty"`
	Min         *float64        `json:"min,omitempty"`
	Max         *float64        `json:"max,omitempty"`
}

// rawManifest mirrors the MCPB schema's top level (v0.1 to v0.4) so that
// unknown members are refused; members Preflight does not interpret stay
// raw.
type rawManifest struct {
	Schema           json.RawMessage `json:"$schema"`
	DXTVersion       *string         `json:"dxt_version"`
	ManifestVersion  *string         `json:"manifest_version"`
	Name             *string         `json:"name"`
	DisplayName      json.RawMessage `json:"display_name"`
	Version          *string         `json:"version"`
	Description      json.RawMessage `json:"description"`
	LongDescription  json.RawMessage `json:"long_description"`
	Author           json.RawMessage `json:"author"`
	Repository       json.RawMessage `json:"repository"`
	Homepage         json.RawMessage `json:"homepage"`
	Documentation    json.RawMessage `json:"documentation"`
	Support          json.RawMessage `json:"support"`
	Icon             json.RawMessage `json:"icon"`
	Icons            json.RawMessage `json:"icons"`
	Screenshots      json.RawMessage `json:"screenshots"`
	Localization     json.RawMessage `json:"localization"`
	Server           *rawServer      `json:"server"`
	Tools            json.RawMessage `json:"tools"`
	ToolsGenerated   json.RawMessage `json:"tools_generated"`
	Prompts          json.RawMessage `json:"prompts"`
	PromptsGenerated json.RawMessage `json:"prompts_generated"`
	Keywords         json.RawMessage `json:"keywords"`
	License          json.RawMessage `json:"license"`
	PrivacyPolicies  json.RawMessage `json:"privacy_policies"`
	Compatibility    *struct {
		ClaudeDesktop json.RawMessage `json:"claude_desktop"`
		Platforms     []string        `json:"platforms"`
		Runtimes      json.RawMessage `json:"runtimes"`
	} `json:"compatibility"`
	UserConfig map[string]UserConfigOption `json:"user_config"`
	Meta       json.RawMessage             `json:"_meta"`
}

type rawServer struct {
	Type       *string    `json:"type"`
	EntryPoint *string    `json:"entry_point"`
	MCPConfig  *MCPConfig `json:"mcp_config"`
}

var manifestVersions = []string{"0.1", "0.2", "0.3", "0.4"}

// Platforms MCPB names, as Node's process.platform does.
var platforms = []string{"darwin", "linux", "win32"}

// ParseManifest parses and validates manifest.json. Failures are
// ErrMalformed and name the member at fault.
func ParseManifest(data []byte) (*Manifest, error) {
	bad := func(member, expected, found string, err error) error {
		return &preflight.Error{Class: preflight.ErrMalformed, Subject: "bundle manifest " + member, Expected: expected, Found: found, Err: err,
			Hint: "the bundle's manifest.json does not follow the MCPB manifest schema"}
	}
	if len(data) > MaxManifestBytes {
		return nil, bad("", fmt.Sprintf("at most %d bytes", MaxManifestBytes), fmt.Sprintf("%d bytes", len(data)), nil)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw rawManifest
	if err := dec.Decode(&raw); err != nil {
		return nil, bad("", "a JSON object with the MCPB manifest members", "", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("", "one JSON object", "data after it", nil)
	}
	m := &Manifest{}
	switch {
	case raw.ManifestVersion != nil:
		m.ManifestVersion = *raw.ManifestVersion
	case raw.DXTVersion != nil:
		m.ManifestVersion = *raw.DXTVersion
	}
	if !slices.Contains(manifestVersions, m.ManifestVersion) {
		return nil, bad("manifest_version", "one of "+strings.Join(manifestVersions, ", "), orNone(strconv.Quote(m.ManifestVersion)), nil)
	}
	if raw.ManifestVersion != nil && raw.DXTVersion != nil && *raw.ManifestVersion != *raw.DXTVersion {
		return nil, bad("dxt_version", "the same version as manifest_version", *raw.DXTVersion, nil)
	}
	if raw.Name == nil || *raw.Name == "" || len(*raw.Name) > 256 {
		return nil, bad("name", "a name of 1 to 256 bytes", "", nil)
	}
	if raw.Version == nil || *raw.Version == "" || len(*raw.Version) > 256 {
		return nil, bad("version", "a version of 1 to 256 bytes", "", nil)
	}
	m.Name, m.Version = *raw.Name, *raw.Version

	s := raw.Server
	if s == nil || s.Type == nil {
		return nil, bad("server.type", "node, python, binary or uv", "none", nil)
	}
	m.Server.Type = *s.Type
	switch m.Server.Type {
	case "node", "python", "binary", "uv":
	default:
		return nil, bad("server.type", "node, python, binary or uv", strconv.Quote(m.Server.Type), nil)
	}
	if s.EntryPoint == nil {
		return nil, bad("server.entry_point", "a path inside the bundle", "none", nil)
	}
	if !localPath(*s.EntryPoint) {
		return nil, bad("server.entry_point", "a relative path inside the bundle", strconv.Quote(*s.EntryPoint), nil)
	}
	m.Server.EntryPoint = *s.EntryPoint
	if s.MCPConfig == nil && m.Server.Type != "uv" {
		return nil, bad("server.mcp_config", "a command to start the server", "none", nil)
	}
	if c := s.MCPConfig; c != nil {
		if err := checkConfig("server.mcp_config", c.Command != "", c.Args, c.Env, bad); err != nil {
			return nil, err
		}
		if err := checkString("server.mcp_config.command", c.Command, bad); err != nil {
			return nil, err
		}
		if len(c.PlatformOverrides) > len(platforms) {
			return nil, bad("server.mcp_config.platform_overrides", "overrides for darwin, linux or win32", fmt.Sprintf("%d overrides", len(c.PlatformOverrides)), nil)
		}
		for p, o := range c.PlatformOverrides {
			member := "server.mcp_config.platform_overrides." + p
			if !slices.Contains(platforms, p) {
				return nil, bad(member, "a platform among "+strings.Join(platforms, ", "), strconv.Quote(p), nil)
			}
			if err := checkConfig(member, o.Command == nil || *o.Command != "", o.Args, o.Env, bad); err != nil {
				return nil, err
			}
			if o.Command != nil {
				if err := checkString(member+".command", *o.Command, bad); err != nil {
					return nil, err
				}
			}
		}
		m.Server.MCPConfig = c
	}
	if raw.Compatibility != nil {
		for _, p := range raw.Compatibility.Platforms {
			if !slices.Contains(platforms, p) {
				return nil, bad("compatibility.platforms", "platforms among "+strings.Join(platforms, ", "), strconv.Quote(p), nil)
			}
		}
		m.Platforms = raw.Compatibility.Platforms
	}
	if len(raw.UserConfig) > maxUserConfig {
		return nil, bad("user_config", fmt.Sprintf("at most %d options", maxUserConfig), fmt.Sprintf("%d", len(raw.UserConfig)), nil)
	}
	for k, o := range raw.UserConfig {
		switch o.Type {
		case "string", "number", "boolean", "directory", "file":
		default:
			return nil, bad("user_config."+k+".type", "string, number, boolean, directory or file", strconv.Quote(o.Type), nil)
		}
	}
	m.UserConfig = raw.UserConfig
	return m, nil
}

type badFunc func(member, expected, found string, err error) error

func checkConfig(member string, hasCommand bool, args []string, env map[string]string, bad badFunc) error {
	if !hasCommand {
		return bad(member+".command", "a command", "an empty one", nil)
	}
	if len(args) > maxArgs {
		return bad(member+".args", fmt.Sprintf("at most %d arguments", maxArgs), fmt.Sprint(len(args)), nil)
	}
	if len(env) > maxEnv {
		return bad(member+".env", fmt.Sprintf("at most %d variables", maxEnv), fmt.Sprint(len(env)), nil)
	}
	for i, a := range args {
		if err := checkString(fmt.Sprintf("%s.args[%d]", member, i), a, bad); err != nil {
			return err
		}
	}
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return bad(member+".env", "variable names without '=' or NUL", strconv.Quote(k), nil)
		}
		if err := checkString(member+".env."+k, v, bad); err != nil {
			return err
		}
	}
	return nil
}

func checkString(member, s string, bad badFunc) error {
	if len(s) > maxString {
		return bad(member, fmt.Sprintf("at most %d bytes", maxString), fmt.Sprintf("%d bytes", len(s)), nil)
	}
	if strings.ContainsRune(s, 0) {
		return bad(member, "no NUL byte", "one", nil)
	}
	return nil
}

func localPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && !strings.ContainsAny(p, "\\\x00") &&
		!(len(p) >= 2 && p[1] == ':') && filepath.IsLocal(filepath.FromSlash(p))
}

// Launch is how to start a bundle's server: what an exec.Cmd needs.
type Launch struct {
	Command string
	Args    []string
	// Env holds the variables the manifest sets; the host adds its own
	// environment as it sees fit.
	Env map[string]string
	// Dir is the working directory: the unpacked bundle.
	Dir string
}

// LaunchSpec resolves the manifest's mcp_config for platform ("darwin",
// "linux" or "win32") and the bundle unpacked at dir, substituting
// placeholders as the package comment describes. vars holds values for
// "user_config.KEY" and other placeholder names. Failures: ErrNotFound
// (the bundle does not support the platform) and ErrConfig (a
// placeholder without a value, or a "uv" server without mcp_config).
func (m *Manifest) LaunchSpec(dir, platform string, vars map[string]string) (Launch, error) {
	subject := "bundle " + m.Name
	if !slices.Contains(platforms, platform) {
		return Launch{}, &preflight.Error{Class: preflight.ErrConfig, Subject: subject, Expected: "a platform among " + strings.Join(platforms, ", "), Found: strconv.Quote(platform)}
	}
	if len(m.Platforms) > 0 && !slices.Contains(m.Platforms, platform) {
		return Launch{}, &preflight.Error{Class: preflight.ErrNotFound, Subject: subject, Expected: "support for " + platform, Found: strings.Join(m.Platforms, ", "),
			Hint: "the publisher does not ship this bundle for this platform"}
	}
	c := m.Server.MCPConfig
	if c == nil {
		return Launch{}, &preflight.Error{Class: preflight.ErrConfig, Subject: subject, Expected: "an mcp_config", Found: "a uv server without one",
			Hint: "this version launches uv servers only through an explicit mcp_config"}
	}
	command, args, env := c.Command, slices.Clone(c.Args), maps.Clone(c.Env)
	if o, ok := c.PlatformOverrides[platform]; ok {
		if o.Command != nil {
			command = *o.Command
		}
		if o.Args != nil {
			args = slices.Clone(o.Args)
		}
		if len(o.Env) > 0 && env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, o.Env)
	}
	sub := func(member, s string) (string, error) { return m.substitute(subject, member, s, dir, vars) }
	var err error
	l := Launch{Dir: dir}
	if l.Command, err = sub("command", command); err != nil {
		return Launch{}, err
	}
	for i, a := range args {
		v, err := sub(fmt.Sprintf("args[%d]", i), a)
		if err != nil {
			return Launch{}, err
		}
		l.Args = append(l.Args, v)
	}
	if env != nil {
		l.Env = make(map[string]string, len(env))
		for k, v := range env {
			if l.Env[k], err = sub("env."+k, v); err != nil {
				return Launch{}, err
			}
		}
	}
	return l, nil
}

// substitute replaces every ${NAME} in s in one pass.
func (m *Manifest) substitute(subject, member, s, dir string, vars map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			// Not a placeholder: MCPB hosts leave such text as it is.
			b.WriteString(s)
			return b.String(), nil
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		v, err := m.value(subject, member, name, dir, vars)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

func (m *Manifest) value(subject, member, name, dir string, vars map[string]string) (string, error) {
	switch name {
	case "__dirname":
		return dir, nil
	case "/", "pathSeparator":
		return string(filepath.Separator), nil
	}
	if v, ok := vars[name]; ok {
		return v, nil
	}
	if key, ok := strings.CutPrefix(name, "user_config."); ok {
		if o, ok := m.UserConfig[key]; ok && len(o.Default) > 0 {
			var d any
			if err := json.Unmarshal(o.Default, &d); err == nil {
				switch d := d.(type) {
				case string:
					return d, nil
				case bool:
					return strconv.FormatBool(d), nil
				case float64:
					return strconv.FormatFloat(d, 'f', -1, 64), nil
				}
			}
		}
	}
	return "", &preflight.Error{Class: preflight.ErrConfig, Subject: subject + " mcp_config." + member, Expected: "a value for ${" + name + "}", Found: "none",
		Hint: "pass it in the launch variables (user_config.KEY for user settings)"}
}

func orNone(s string) string {
	if s == `""` || s == "" {
		return "none"
	}
	return s
}
