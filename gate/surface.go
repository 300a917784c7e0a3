package gate

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mcp-preflight/preflight"
	"github.com/mcp-preflight/preflight/internal/jsonrpc"
)

var errStopped = errors.New("session ended")

// refresh lists and decides, one kind at a time, whatever was asked for:
// the initial surface, a list_changed, a silent change.
func (s *session) refresh() {
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
		}
		for {
			k := s.nextDirty()
			if k < 0 {
				break
			}
			items, bad, err := s.list(k)
			if errors.Is(err, errStopped) {
				return
			}
			if !s.decide(k, items, bad, err) {
				return
			}
		}
	}
}

func (s *session) nextDirty() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.kinds {
		if st := &s.kinds[k]; st.dirty && !st.busy {
			st.dirty, st.busy = false, true
			return k
		}
	}
	return -1
}

// list reads every page of one kind with the gate's own requests.
func (s *session) list(k int) (items []Item, bad []Withheld, err error) {
	sp := &specs[k]
	seen := map[string]bool{}
	var cursor json.RawMessage
	for page := 0; ; page++ {
		if page == s.cfg.MaxPages {
			return nil, nil, s.listErr(sp, preflight.ErrMalformed, fmt.Sprintf("at most %d pages", s.cfg.MaxPages), "more", nil)
		}
		params := json.RawMessage(`{}`)
		if cursor != nil {
			params = append(append([]byte(`{"cursor":`), cursor...), '}')
		}
		msg, err := s.call(sp.list, params)
		if err != nil {
			return nil, nil, err
		}
		if msg.Kind == jsonrpc.KindError {
			return nil, nil, s.listErr(sp, preflight.ErrUnavailable, "", "",
				fmt.Errorf("the server answered %d %s", msg.Error.Code, msg.Error.Message))
		}
		arr, ok, err := jsonrpc.Member(msg.Result, sp.field)
		var raws []json.RawMessage
		if err == nil && ok {
			err = json.Unmarshal(arr, &raws)
		}
		if err != nil || !ok {
			return nil, nil, s.listErr(sp, preflight.ErrMalformed, "a result with a "+strconv.Quote(sp.field)+" array", "another result", err)
		}
		if n := len(items) + len(bad) + len(raws); n > s.cfg.MaxItems {
			return nil, nil, s.listErr(sp, preflight.ErrMalformed, fmt.Sprintf("at most %d items", s.cfg.MaxItems), "more", nil)
		}
		for _, raw := range raws {
			it := item(sp, raw)
			if it.Digest == "" {
				bad = append(bad, Withheld{Item: it, Code: CodeMalformedItem, Reason: "not a definition of the MCP schema: no name or no canonical form"})
				continue
			}
			items = append(items, it)
		}
		next, ok, err := jsonrpc.Member(msg.Result, "nextCursor")
		if err != nil {
			return nil, nil, s.listErr(sp, preflight.ErrMalformed, "", "", err)
		}
		if !ok || string(next) == "null" || string(next) == `""` {
			return items, bad, nil
		}
		c, err := jsonrpc.String(next)
		if err != nil || seen[c] {
			return nil, nil, s.listErr(sp, preflight.ErrMalformed, "a new string cursor", "a repeated or non-string cursor", err)
		}
		seen[c] = true
		cursor = next
	}
}

func (s *session) listErr(sp *kindSpec, class *preflight.Class, expected, found string, cause error) error {
	return &preflight.Error{Class: class, Subject: "server " + sp.list, Expected: expected, Found: found, Err: cause}
}

// call sends one request of the gate's own and waits for its answer.
func (s *session) call(method string, params json.RawMessage) (*jsonrpc.Message, error) {
	ch := make(chan *jsonrpc.Message, 1)
	s.mu.Lock()
	s.nextServerID++
	id := s.nextServerID
	s.toServer[id] = &outbound{method: method, list: -1, reply: ch}
	s.mu.Unlock()
	if err := s.server.WriteMessage(jsonrpc.NewRequest(strconv.AppendInt(nil, id, 10), method, params)); err != nil {
		s.stop(err)
		return nil, errStopped
	}
	t := time.NewTimer(s.cfg.ListTimeout)
	defer t.Stop()
	select {
	case m := <-ch:
		return m, nil
	case <-s.done:
		return nil, errStopped
	case <-t.C:
		s.mu.Lock()
		delete(s.toServer, id) // a late answer is dropped as unknown
		s.mu.Unlock()
		return nil, &preflight.Error{Class: preflight.ErrTimeout, Subject: "server " + method,
			Expected: "an answer within " + s.cfg.ListTimeout.String(), Found: "none"}
	}
}

// decide asks the Decider about a complete listing, installs the decision
// and releases what waited for it. It returns false when the decision ends
// the session.
func (s *session) decide(k int, items []Item, bad []Withheld, listErr error) bool {
	sp := &specs[k]
	var d SurfaceDecision
	if listErr == nil {
		d = s.callDecider(sp.kind, items)
	} else {
		s.log.Warn("preflight gate: listing failed; nothing of this kind is exposed", "kind", string(sp.kind), "error", listErr.Error())
	}

	count := make(map[string]int, len(items))
	digests := make(map[string]string, len(items))
	for _, it := range items {
		count[it.Name]++
		digests[it.Name] = it.Digest
	}
	exposed := map[string]bool{}
	why := map[string]Withheld{}
	withheld := append([]Withheld(nil), bad...)
	for _, name := range d.Exposed {
		switch count[name] {
		case 0: // the policy named something the server did not list
		case 1:
			exposed[name] = true
		}
	}
	for _, w := range d.Withheld {
		if count[w.Item.Name] > 0 && !exposed[w.Item.Name] {
			if _, dup := why[w.Item.Name]; !dup {
				why[w.Item.Name] = w
				withheld = append(withheld, w)
			}
		}
	}
	for _, it := range items {
		if exposed[it.Name] {
			continue
		}
		if _, ok := why[it.Name]; ok {
			continue
		}
		w := Withheld{Item: it, Code: CodeNotExposed, Reason: "the policy did not expose it"}
		if count[it.Name] > 1 {
			w = Withheld{Item: it, Code: CodeDuplicate, Reason: "the server listed this name more than once"}
		}
		why[it.Name] = w
		withheld = append(withheld, w)
	}
	for _, w := range withheld {
		s.logWithheld(w)
	}
	names := make([]string, 0, len(exposed))
	for n := range exposed {
		names = append(names, n)
	}
	slices.Sort(names)
	s.g.setSurface(sp.kind, Surface{Items: items, Exposed: names, Withheld: withheld, Err: listErr})

	if d.End != nil {
		end := d.End
		if !errors.Is(end, preflight.ErrSecurity) && !errors.Is(end, preflight.ErrOperational) {
			end = &preflight.Error{Class: preflight.ErrPolicy, Subject: string(sp.kind) + " surface", Err: end}
		}
		s.g.setEnd(end)
		s.stop(end)
		return false
	}

	s.mu.Lock()
	st := &s.kinds[k]
	st.decided, st.busy = true, false
	st.digests, st.exposed, st.why = digests, exposed, why
	var held []*jsonrpc.Message
	var notify []byte
	if !st.dirty {
		held, st.held = st.held, nil
		notify, st.notify = st.notify, nil
	}
	s.mu.Unlock()
	for _, m := range held {
		s.hostRequest(m)
	}
	if notify != nil && listErr == nil {
		s.write(s.host, notify)
	}
	return true
}

// callDecider runs the policy; a panic ends the session.
func (s *session) callDecider(kind Kind, items []Item) (d SurfaceDecision) {
	defer func() {
		if r := recover(); r != nil {
			d = SurfaceDecision{End: &preflight.Error{Class: preflight.ErrConfig, Subject: "gate Decider",
				Err: fmt.Errorf("panic deciding the %s surface: %v", kind, r)}}
		}
	}()
	return s.cfg.Decide(kind, slices.Clone(items))
}
