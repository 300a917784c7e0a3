package gate

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/jsonrpc"
)

// Kind is a sort of definition a server lists.
type Kind string

// The kinds of definition that make up a server's surface.
const (
	KindTool     Kind = "tool"
	KindPrompt   Kind = "prompt"
	KindResource Kind = "resource"
)

// Item is one definition the server listed, raw as received.
type Item struct {
	Kind Kind
	// Name is the tool's or prompt's name, or the resource's URI.
	Name string
	// Raw is the definition exactly as the server sent it.
	Raw json.RawMessage
	// Digest is canonical.Digest of Raw: "sha256:<hex>" of the RFC 8785
	// form of its model-visible members.
	Digest string
}

// Withheld is an item the host will not see, and why.
type Withheld struct {
	Item Item
	// Code is a stable finding code: the policy's, or one of the gate's own
	// (the Code* string constants of this package).
	Code   string
	Reason string
}

// The gate's own finding codes for withheld items.
const (
	// CodeNotExposed: the decision neither exposed nor explained the item.
	CodeNotExposed = "gate.not_exposed"
	// CodeChanged: a host list response carried a definition other than the
	// one decided on, without notifications/*/list_changed.
	CodeChanged = "gate.changed_silently"
	// CodeDuplicate: the server listed the name more than once.
	CodeDuplicate = "gate.duplicate_name"
	// CodeMalformedItem: the definition is not a JSON object of the MCP
	// schema, so it has no digest.
	CodeMalformedItem = "gate.malformed_item"
)

// JSON-RPC error codes of the gate's own answers to the host.
const (
	// CodeWithheld answers a tools/call, prompts/get or resources/read for
	// something the host may not use. It is JSON-RPC's "invalid params",
	// what MCP servers answer for an unknown tool.
	CodeWithheld = jsonrpc.CodeInvalidParams
	// CodeEnded answers every pending host request when the gate ends the
	// session (a server error code, reserved by JSON-RPC for servers).
	CodeEnded = -32001
)

// SurfaceDecision is the policy's answer for one complete surface of one
// kind.
type SurfaceDecision struct {
	// Exposed names (URIs for resources) the host may see and use.
	Exposed []string
	// Withheld explains the items not exposed.
	Withheld []Withheld
	// End, when not nil, ends the session: the policy says this change ends
	// it. It should wrap preflight.ErrToolDrift or preflight.ErrPolicy; an
	// error that wraps no security class is wrapped in ErrPolicy.
	End error
}

// Decider is the policy seam. It is called with the complete list of one
// kind (every page) when the session starts and after every list_changed or
// silent change. It must be pure and safe for concurrent use; a panic is
// treated as a decision to end the session.
type Decider func(kind Kind, items []Item) SurfaceDecision

// Config configures a Gate. The zero value of every field but Decide is a
// safe default.
type Config struct {
	// Decide is required.
	Decide Decider
	// Logger receives a structured event for every withheld item, blocked
	// request, dropped message and the end of the session. Nil discards.
	Logger *slog.Logger
	// MaxMessageBytes bounds one message in either direction; default 4 MiB.
	MaxMessageBytes int
	// MaxItems bounds the items of one kind; default 1000.
	MaxItems int
	// MaxPages bounds the pages of one list; default 100.
	MaxPages int
	// ListTimeout bounds the server's answer to each of the gate's own list
	// requests; default 10s.
	ListTimeout time.Duration
}

// Gate relays one MCP session between a host and a server. Surface is safe
// for concurrent use; Run may be called once.
type Gate struct {
	cfg     Config
	log     *slog.Logger
	started atomic.Bool

	mu   sync.Mutex
	snap Snapshot
}

// New validates cfg and returns a Gate. It copies cfg. Errors are of class
// preflight.ErrConfig.
func New(cfg Config) (*Gate, error) {
	bad := func(format string, args ...any) error {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "gate config", Err: fmt.Errorf(format, args...)}
	}
	if cfg.Decide == nil {
		return nil, bad("Decide is required: without a policy nothing could be exposed")
	}
	if cfg.MaxMessageBytes < 0 || cfg.MaxItems < 0 || cfg.MaxPages < 0 || cfg.ListTimeout < 0 {
		return nil, bad("negative limit (MaxMessageBytes %d, MaxItems %d, MaxPages %d, ListTimeout %v)",
			cfg.MaxMessageBytes, cfg.MaxItems, cfg.MaxPages, cfg.ListTimeout)
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = jsonrpc.DefaultMaxBytes
	}
	if cfg.MaxItems == 0 {
		cfg.MaxItems = 1000
	}
	if cfg.MaxPages == 0 {
		cfg.MaxPages = 100
	}
	if cfg.ListTimeout == 0 {
		cfg.ListTimeout = 10 * time.Second
	}
	if cfg.MaxMessageBytes < 1024 {
		return nil, bad("MaxMessageBytes %d is too small for MCP messages (at least 1024)", cfg.MaxMessageBytes)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gate{cfg: cfg, log: log, snap: Snapshot{Kinds: map[Kind]Surface{}}}, nil
}

// Snapshot is the gate's current view of the server's surface, for reports.
type Snapshot struct {
	// Kinds holds one entry per kind the gate has listed.
	Kinds map[Kind]Surface
	// End is the error that ended the session, if the gate ended it.
	End error
}

// Surface is the gate's view of one kind.
type Surface struct {
	// Items is the complete listing the current decision was made on.
	Items []Item
	// Exposed names the items the host may see and use.
	Exposed []string
	// Withheld lists every item the host will not see, including those
	// withheld later because they changed without list_changed.
	Withheld []Withheld
	// Err is why the last listing failed; nothing of this kind is exposed
	// while it is set.
	Err error
}

// Surface returns the current exposed and withheld items of every kind. It
// is safe for concurrent use; the result is a copy.
func (g *Gate) Surface() Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := Snapshot{Kinds: make(map[Kind]Surface, len(g.snap.Kinds)), End: g.snap.End}
	for k, s := range g.snap.Kinds {
		out.Kinds[k] = Surface{
			Items:    append([]Item(nil), s.Items...),
			Exposed:  append([]string(nil), s.Exposed...),
			Withheld: append([]Withheld(nil), s.Withheld...),
			Err:      s.Err,
		}
	}
	return out
}

func (g *Gate) setSurface(k Kind, s Surface) {
	g.mu.Lock()
	g.snap.Kinds[k] = s
	g.mu.Unlock()
}

func (g *Gate) addWithheld(k Kind, w Withheld) {
	g.mu.Lock()
	s := g.snap.Kinds[k]
	s.Withheld = append(s.Withheld, w)
	g.snap.Kinds[k] = s
	g.mu.Unlock()
}

func (g *Gate) setEnd(err error) {
	g.mu.Lock()
	g.snap.End = err
	g.mu.Unlock()
}
