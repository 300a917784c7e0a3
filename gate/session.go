package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/canonical"
	"github.com/mcp-preflight/preflight/internal/jsonrpc"
)

// kindSpec says how one kind travels in MCP.
type kindSpec struct {
	kind       Kind
	list       string // the list method
	field      string // the result member holding the items
	key        string // the item member that names it
	changed    string // the list_changed notification
	capability string // the server capability that advertises the kind
	canon      canonical.Kind
}

var specs = [...]kindSpec{
	{KindTool, "tools/list", "tools", "name", "notifications/tools/list_changed", "tools", canonical.Tool},
	{KindPrompt, "prompts/list", "prompts", "name", "notifications/prompts/list_changed", "prompts", canonical.Prompt},
	{KindResource, "resources/list", "resources", "uri", "notifications/resources/list_changed", "resources", canonical.Resource},
}

// use is a request that uses one item: it passes only for an exposed name.
type use struct {
	kind int    // index into specs
	key  string // the params member naming the item
}

var uses = map[string]use{
	"tools/call":          {0, "name"},
	"prompts/get":         {1, "name"},
	"resources/read":      {2, "uri"},
	"resources/subscribe": {2, "uri"},
}

func listIndex(method string) int {
	for i := range specs {
		if specs[i].list == method {
			return i
		}
	}
	return -1
}

func changedIndex(method string) int {
	for i := range specs {
		if specs[i].changed == method {
			return i
		}
	}
	return -1
}

// maxSilentRedecisions bounds how often one kind is decided again because
// the server changed it without list_changed, so that a server whose
// definitions flap cannot keep the gate and the host busy for ever.
const maxSilentRedecisions = 8

// session is the state of one Run. Its fields under mu are shared by the
// host reader, the server reader and the refresher.
type session struct {
	g      *Gate
	cfg    *Config
	log    *slog.Logger
	host   *jsonrpc.Writer
	server *jsonrpc.Writer

	done     chan struct{}
	stopOnce sync.Once
	cause    error // written once, before done is closed
	kick     chan struct{}

	mu           sync.Mutex
	nextServerID int64
	toServer     map[int64]*outbound       // requests sent to the server, by the id the gate gave them
	nextHostID   int64                     //
	toHost       map[int64]json.RawMessage // server requests relayed to the host: the server's own id
	caps         *[len(specs)]bool         // advertised kinds; nil until the initialize result
	kinds        [len(specs)]kindState
	drained      bool // the session ended: nothing more is held or sent
}

// outbound is a request the gate sent to the server.
type outbound struct {
	hostID     json.RawMessage       // the host's id; nil for the gate's own requests
	method     string                //
	list       int                   // index into specs for a host list request, else -1
	initialize bool                  // the host's initialize: read the capabilities
	reply      chan *jsonrpc.Message // the gate's own requests
}

type kindState struct {
	decided bool
	busy    bool // a listing runs
	dirty   bool // list again as soon as possible
	silent  int  // re-decisions caused by silent changes
	notify  []byte
	held    []*jsonrpc.Message
	digests map[string]string   // every decided item's digest, by name
	exposed map[string]bool     //
	why     map[string]Withheld // why a name is not exposed
}

func (st *kindState) ready() bool { return st.decided && !st.busy && !st.dirty }

// Run relays between the host side (hostIn, hostOut) and the server side
// (serverIn, serverOut) until the host closes its side (Run returns nil),
// the server closes its side (preflight.ErrUnavailable), ctx ends
// (preflight.ErrTimeout or ErrUnavailable, wrapping ctx's error) or a
// decision ends the session (its End error). Host requests still pending
// when the server side or a decision ends the session are answered with
// CodeEnded.
//
// Before it returns, Run closes each of the four streams that is an
// io.Closer, so that the peers see the end of the session, and it waits for
// every goroutine it started. A reader that is not an io.Closer cannot be
// interrupted: its goroutine ends when its next Read returns.
func (g *Gate) Run(ctx context.Context, hostIn io.Reader, hostOut io.Writer, serverIn io.Reader, serverOut io.Writer) error {
	if !g.started.CompareAndSwap(false, true) {
		return &preflight.Error{Class: preflight.ErrConfig, Subject: "gate", Err: errors.New("Run called twice"),
			Hint: "a Gate relays one session; make a new Gate for each"}
	}
	s := &session{
		g: g, cfg: &g.cfg, log: g.log,
		host:     jsonrpc.NewWriter(hostOut),
		server:   jsonrpc.NewWriter(serverOut),
		done:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		toServer: map[int64]*outbound{},
		toHost:   map[int64]json.RawMessage{},
	}
	var wg sync.WaitGroup
	serverDone := make(chan struct{})
	start := func(r io.Reader, handle func(*jsonrpc.Message), side string, done chan struct{}) {
		run := func() {
			s.read(r, handle, side)
			if done != nil {
				close(done)
			}
		}
		if _, ok := r.(io.Closer); ok {
			wg.Go(run)
		} else {
			go run()
		}
	}
	start(hostIn, s.fromHost, "host", nil)
	start(serverIn, s.fromServer, "server", serverDone)
	wg.Go(s.refresh)

	select {
	case <-ctx.Done():
		cls := preflight.ErrUnavailable
		if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			cls = preflight.ErrTimeout
		}
		s.stop(&preflight.Error{Class: cls, Subject: "gate session", Err: context.Cause(ctx), Hint: "the caller's context ended"})
	case <-s.done:
	}
	cause := s.cause
	pending := s.drain()
	if cause != nil && ctx.Err() == nil && len(pending) > 0 {
		// The host is told why its requests will never be answered, unless
		// it is the host that left or the caller gave up.
		msg := "preflight gate: session ended: " + cause.Error()
		answered := make(chan struct{})
		go func() {
			defer close(answered)
			for _, id := range pending {
				if s.host.WriteMessage(jsonrpc.NewError(id, CodeEnded, msg, nil)) != nil {
					return
				}
			}
		}()
		select {
		case <-answered:
		case <-ctx.Done():
		}
		defer func() { <-answered }() // the stream is closed below, so this returns
	}
	// The server's input is closed first, and its output read (and
	// dropped) until it ends or a grace period passes: a server still
	// writing when its output is closed under it dies of a broken pipe.
	if c, ok := serverOut.(io.Closer); ok {
		c.Close()
		if ctx.Err() == nil {
			select {
			case <-serverDone:
			case <-time.After(shutdownGrace):
			case <-ctx.Done():
			}
		}
	}
	for _, c := range []any{serverIn, hostOut, hostIn} {
		if c, ok := c.(io.Closer); ok {
			c.Close()
		}
	}
	wg.Wait()
	if cause != nil {
		s.log.Warn("preflight gate: session ended", "error", cause.Error())
	}
	return cause
}

// shutdownGrace is how long Run keeps reading a server's output after
// closing its input at the end of a session.
const shutdownGrace = 2 * time.Second

func (s *session) stop(err error) {
	s.stopOnce.Do(func() {
		s.cause = err
		close(s.done)
	})
}

func (s *session) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// drain forgets every pending request and returns the host ids still owed
// an answer.
func (s *session) drain() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drained = true
	var ids []json.RawMessage
	for id, ob := range s.toServer {
		if ob.hostID != nil {
			ids = append(ids, ob.hostID)
		}
		delete(s.toServer, id)
	}
	for i := range s.kinds {
		for _, m := range s.kinds[i].held {
			ids = append(ids, m.ID)
		}
		s.kinds[i].held = nil
	}
	return ids
}

func (s *session) read(r io.Reader, handle func(*jsonrpc.Message), side string) {
	rd := jsonrpc.NewReader(r, s.cfg.MaxMessageBytes)
	for {
		msg, err := rd.Read()
		var fe *jsonrpc.FrameError
		if s.stopped() {
			// After the session ends the server's output is drained, not
			// relayed, until it ends or Run closes it (see Run).
			if side == "server" && (err == nil || errors.As(err, &fe)) {
				continue
			}
			return
		}
		switch {
		case err == nil:
			handle(msg)
		case errors.As(err, &fe):
			s.log.Warn("preflight gate: malformed message dropped", "from", side, "reason", fe.Reason, "answered", fe.ID != nil)
			if fe.ID != nil {
				w := s.host
				if side == "server" {
					w = s.server
				}
				s.write(w, jsonrpc.NewError(fe.ID, fe.Code, "preflight gate: "+fe.Reason, nil))
			}
		case err == io.EOF && side == "host":
			s.stop(nil)
			return
		default:
			if err == io.EOF {
				err = errors.New("the server closed its output")
			}
			s.stop(&preflight.Error{Class: preflight.ErrUnavailable, Subject: "MCP " + side, Err: err})
			return
		}
	}
}

// write sends one message; a failed write ends the session.
func (s *session) write(w *jsonrpc.Writer, msg []byte) {
	if err := w.WriteMessage(msg); err != nil {
		s.stop(err)
	}
}

// answerEnded tells the host that a request that raced with the end of the
// session will not be answered.
func (s *session) answerEnded(id json.RawMessage) {
	if s.cause != nil {
		s.answer(id, CodeEnded, "preflight gate: session ended: "+s.cause.Error(), nil)
	}
}

func (s *session) answer(id json.RawMessage, code int64, message string, data json.RawMessage) {
	s.write(s.host, jsonrpc.NewError(id, code, message, data))
}

// forward sends a host request to the server under an id of the gate's.
func (s *session) forward(msg *jsonrpc.Message, ob *outbound) {
	s.mu.Lock()
	if s.drained {
		s.mu.Unlock()
		s.answerEnded(msg.ID)
		return
	}
	s.nextServerID++
	id := s.nextServerID
	s.toServer[id] = ob
	s.mu.Unlock()
	var buf [20]byte
	s.write(s.server, msg.WithID(strconv.AppendInt(buf[:0], id, 10)))
}

func (s *session) fromHost(msg *jsonrpc.Message) {
	switch msg.Kind {
	case jsonrpc.KindRequest:
		s.hostRequest(msg)
	case jsonrpc.KindNotification:
		s.hostNotification(msg)
	default:
		s.hostResponse(msg)
	}
}

func (s *session) hostRequest(msg *jsonrpc.Message) {
	switch msg.Method {
	case "server/discover":
		s.answer(msg.ID, jsonrpc.CodeMethodNotFound,
			"preflight gate: server/discover is not relayed; use the initialize handshake (protocol 2025-11-25 or earlier)", nil)
		return
	case "resources/templates/list":
		s.log.Info("preflight gate: resource templates withheld", "reason", "templates are not part of the decided surface")
		s.write(s.host, jsonrpc.NewResponse(msg.ID, json.RawMessage(`{"resourceTemplates":[]}`)))
		return
	}
	k := listIndex(msg.Method)
	u, isUse := uses[msg.Method]
	if isUse {
		k = u.kind
	}
	ob := &outbound{hostID: msg.ID, method: msg.Method, list: -1, initialize: msg.Method == "initialize"}
	if k < 0 {
		s.forward(msg, ob)
		return
	}
	var name string
	if isUse {
		var err error
		if name, err = useName(msg.Params, u.key); err != nil {
			s.log.Warn("preflight gate: blocked request", "method", msg.Method, "kind", string(specs[k].kind), "reason", err.Error())
			s.answer(msg.ID, jsonrpc.CodeInvalidParams, "preflight gate: "+msg.Method+": "+err.Error(), nil)
			return
		}
	}
	s.mu.Lock()
	st := &s.kinds[k]
	if s.drained {
		s.mu.Unlock()
		s.answerEnded(msg.ID)
		return
	}
	if !st.ready() {
		st.held = append(st.held, msg)
		if !st.decided && !st.busy {
			s.wantListing(k)
		}
		s.mu.Unlock()
		return
	}
	if !isUse {
		s.mu.Unlock()
		ob.list = k
		s.forward(msg, ob)
		return
	}
	exposed := st.exposed[name]
	w, explained := st.why[name]
	s.mu.Unlock()
	if exposed {
		s.forward(msg, ob)
		return
	}
	code, reason := CodeNotExposed, "not listed by the server when the gate decided"
	if explained {
		code, reason = w.Code, w.Reason
	}
	s.log.Warn("preflight gate: blocked request", "method", msg.Method, "kind", string(specs[k].kind), "name", name, "code", code, "reason", reason)
	data, _ := json.Marshal(map[string]string{"code": code, "kind": string(specs[k].kind), "name": name}) // strings always marshal
	s.answer(msg.ID, CodeWithheld, fmt.Sprintf("preflight gate: %s %q is not available: %s (%s)", specs[k].kind, name, reason, code), data)
}

// useName reads the member naming the item a request uses. The params must
// name it exactly once, in exactly that spelling (see jsonrpc.Member).
func useName(params json.RawMessage, key string) (string, error) {
	if params == nil {
		return "", errors.New("no params")
	}
	raw, ok, err := jsonrpc.Member(params, key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("no %q in params", key)
	}
	return jsonrpc.String(raw)
}

// wantListing asks the refresher to list kind k. s.mu must be held.
func (s *session) wantListing(k int) {
	s.kinds[k].dirty = true
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *session) hostNotification(msg *jsonrpc.Message) {
	switch msg.Method {
	case "notifications/cancelled":
		s.hostCancelled(msg)
		return
	case "notifications/initialized":
		s.write(s.server, msg.Raw)
		s.mu.Lock()
		for k := range specs {
			advertised := k == 0 // unknown capabilities: tools at least
			if s.caps != nil {
				advertised = s.caps[k]
			}
			if st := &s.kinds[k]; advertised && !st.decided && !st.busy {
				s.wantListing(k)
			}
		}
		s.mu.Unlock()
		return
	}
	s.write(s.server, msg.Raw)
}

// hostCancelled maps the id a host cancellation names to the gate's id.
func (s *session) hostCancelled(msg *jsonrpc.Message) {
	start, end, ok, err := jsonrpc.MemberSpan(msg.Params, "requestId")
	if msg.Params == nil || err != nil || !ok {
		s.log.Warn("preflight gate: malformed message dropped", "from", "host", "method", msg.Method)
		return
	}
	target := msg.Params[start:end]
	var serverID int64
	s.mu.Lock()
	for id, ob := range s.toServer {
		if ob.hostID != nil && bytes.Equal(ob.hostID, target) {
			serverID = id
			break
		}
	}
	if serverID == 0 {
		// Perhaps still held: then it is simply never sent.
		for k := range s.kinds {
			held := s.kinds[k].held
			for i, m := range held {
				if bytes.Equal(m.ID, target) {
					s.kinds[k].held = append(held[:i:i], held[i+1:]...)
					break
				}
			}
		}
	}
	s.mu.Unlock()
	if serverID == 0 {
		return
	}
	params := splice(msg.Params, start, end, strconv.AppendInt(nil, serverID, 10))
	s.write(s.server, jsonrpc.NewNotification(msg.Method, params))
}

func splice(b []byte, start, end int, v []byte) []byte {
	out := make([]byte, 0, len(b)-(end-start)+len(v))
	out = append(out, b[:start]...)
	out = append(out, v...)
	return append(out, b[end:]...)
}

// hostResponse relays the host's answer to a server request.
func (s *session) hostResponse(msg *jsonrpc.Message) {
	id, err := strconv.ParseInt(string(msg.ID), 10, 64)
	s.mu.Lock()
	serverID, ok := s.toHost[id]
	delete(s.toHost, id)
	s.mu.Unlock()
	if err != nil || !ok {
		s.log.Warn("preflight gate: response with unknown id dropped", "from", "host", "id", string(msg.ID))
		return
	}
	s.write(s.server, msg.WithID(serverID))
}

func (s *session) fromServer(msg *jsonrpc.Message) {
	switch msg.Kind {
	case jsonrpc.KindRequest:
		s.mu.Lock()
		s.nextHostID++
		id := s.nextHostID
		s.toHost[id] = msg.ID
		s.mu.Unlock()
		s.write(s.host, msg.WithID(strconv.AppendInt(nil, id, 10)))
	case jsonrpc.KindNotification:
		s.serverNotification(msg)
	default:
		s.serverResponse(msg)
	}
}

func (s *session) serverNotification(msg *jsonrpc.Message) {
	if k := changedIndex(msg.Method); k >= 0 {
		// Held back until the gate has decided on the new list.
		s.mu.Lock()
		s.kinds[k].notify = msg.Raw
		s.wantListing(k)
		s.mu.Unlock()
		return
	}
	if msg.Method == "notifications/cancelled" {
		start, end, ok, err := jsonrpc.MemberSpan(msg.Params, "requestId")
		if msg.Params == nil || err != nil || !ok {
			s.log.Warn("preflight gate: malformed message dropped", "from", "server", "method", msg.Method)
			return
		}
		var hostID int64
		s.mu.Lock()
		for id, sid := range s.toHost {
			if bytes.Equal(sid, msg.Params[start:end]) {
				hostID = id
				break
			}
		}
		s.mu.Unlock()
		if hostID != 0 {
			s.write(s.host, jsonrpc.NewNotification(msg.Method, splice(msg.Params, start, end, strconv.AppendInt(nil, hostID, 10))))
		}
		return
	}
	s.write(s.host, msg.Raw)
}

func (s *session) serverResponse(msg *jsonrpc.Message) {
	id, err := strconv.ParseInt(string(msg.ID), 10, 64)
	s.mu.Lock()
	ob, ok := s.toServer[id]
	delete(s.toServer, id)
	s.mu.Unlock()
	if err != nil || !ok {
		s.log.Warn("preflight gate: response with unknown id dropped", "from", "server", "id", string(msg.ID))
		return
	}
	switch {
	case ob.reply != nil:
		ob.reply <- msg // buffered; the only send
		return
	case ob.initialize && msg.Kind == jsonrpc.KindResponse:
		s.readCapabilities(msg.Result)
	case ob.list >= 0 && msg.Kind == jsonrpc.KindResponse:
		result, err := s.filter(ob.list, msg.Result)
		if err != nil {
			s.log.Warn("preflight gate: malformed list result", "method", ob.method, "error", err.Error())
			s.answer(ob.hostID, jsonrpc.CodeInternalError, "preflight gate: the server's "+ob.method+" result is malformed", nil)
			return
		}
		s.write(s.host, jsonrpc.NewResponse(ob.hostID, result))
		return
	}
	s.write(s.host, msg.WithID(ob.hostID))
}

func (s *session) readCapabilities(result json.RawMessage) {
	var caps [len(specs)]bool
	if raw, ok, err := jsonrpc.Member(result, "capabilities"); err == nil && ok && len(raw) > 0 && raw[0] == '{' {
		for k := range specs {
			v, ok, err := jsonrpc.Member(raw, specs[k].capability)
			caps[k] = err == nil && ok && string(v) != "null"
		}
	}
	s.mu.Lock()
	s.caps = &caps
	s.mu.Unlock()
}

// filter returns a host list result with every item removed that the
// decision did not expose or that differs from the definition decided on.
// Everything else in the result (nextCursor, _meta) is kept byte for byte.
func (s *session) filter(k int, result json.RawMessage) (json.RawMessage, error) {
	sp := &specs[k]
	start, end, ok, err := jsonrpc.MemberSpan(result, sp.field)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no %q member", sp.field)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(result[start:end], &raws); err != nil {
		return nil, err
	}
	kept := make([]json.RawMessage, 0, len(raws))
	var changed []Withheld
	s.mu.Lock()
	st := &s.kinds[k]
	for _, raw := range raws {
		it := item(sp, raw)
		want, known := st.digests[it.Name]
		switch {
		case it.Digest != "" && known && want == it.Digest:
			if st.exposed[it.Name] {
				kept = append(kept, raw)
			}
		default:
			changed = append(changed, Withheld{Item: it, Code: CodeChanged,
				Reason: "the server changed or added this definition without notifying the client; it is decided again"})
		}
	}
	if len(changed) > 0 && st.silent < maxSilentRedecisions {
		st.silent++
		if st.notify == nil {
			st.notify = jsonrpc.NewNotification(sp.changed, nil)
		}
		s.wantListing(k)
	}
	s.mu.Unlock()
	for _, w := range changed {
		s.logWithheld(w)
		s.g.addWithheld(sp.kind, w)
	}
	if len(kept) == len(raws) {
		return result, nil
	}
	arr, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	return splice(result, start, end, arr), nil
}

// item reads one raw definition. A definition without a readable name or
// digest gets an empty Digest, and never matches a decision.
func item(sp *kindSpec, raw json.RawMessage) Item {
	it := Item{Kind: sp.kind, Raw: raw}
	if v, ok, err := jsonrpc.Member(raw, sp.key); err == nil && ok {
		it.Name, _ = jsonrpc.String(v)
	}
	if it.Name != "" {
		it.Digest, _ = canonical.Digest(sp.canon, raw)
	}
	return it
}

func (s *session) logWithheld(w Withheld) {
	s.log.Warn("preflight gate: withheld", "kind", string(w.Item.Kind), "name", w.Item.Name, "digest", w.Item.Digest,
		"code", w.Code, "reason", w.Reason)
}
