package fleet

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// wireVersion is the version of the messages' format. A node drops (as
// malformed) a message of another version: nodes of one fleet run one
// release, and a mixed fleet during an upgrade then falls back on each
// node's own view rather than misreading.
const wireVersion = 1

// The message types, as Stats.Messages names them.
const (
	typeOverride     = "override"
	typeObservations = "observations"
	typeMeta         = "meta"
	typeState        = "state"
	typeLeave        = "leave"
)

// version orders one node's observation and meta changes: Inc is the
// start of its incarnation, so that a restarted node's counter, begun
// again at one, still wins over its previous life's.
type version struct {
	Inc int64  `json:"inc"`
	Seq uint64 `json:"seq"`
}

func (v version) less(w version) bool {
	if v.Inc != w.Inc {
		return v.Inc < w.Inc
	}
	return v.Seq < w.Seq
}

// message is what nodes send each other: directly (SendReliable) for a
// change, and as the push-pull state of memberlist.
type message struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	From string `json:"from"`
	// Overrides: "override" (the changed ones), "state" (all, with
	// tombstones).
	Overrides []Override `json:"overrides,omitempty"`
	// Observations: "observations", "state": the sender's full set.
	Observations *observations `json:"observations,omitempty"`
	// Meta: "meta", "state".
	Meta *meta `json:"meta,omitempty"`
}

type observations struct {
	Version version                `json:"version"`
	Set     map[string]Observation `json:"set"`
}

type meta struct {
	Version version `json:"version"`
	Meta    Meta    `json:"meta"`
}

func (m *message) valid() bool {
	if m.V != wireVersion || m.From == "" {
		return false
	}
	switch m.Type {
	case typeOverride:
		return len(m.Overrides) > 0
	case typeObservations:
		return m.Observations != nil
	case typeMeta:
		return m.Meta != nil
	case typeState, typeLeave:
		return true
	}
	return false
}

// The bounds of what a node takes from another: a fleet's messages are
// far below them (a member override is ~200 bytes, an observation ~150),
// and a peer beyond them is broken, not big.
const (
	maxMessageBytes = 32 << 20
	maxEntries      = 1 << 18
	maxNameBytes    = 256
)

// oversized reports a message beyond the bounds.
func (m *message) oversized() bool {
	if len(m.From) > maxNameBytes || len(m.Overrides) > maxEntries {
		return true
	}
	if m.Observations != nil && len(m.Observations.Set) > maxEntries {
		return true
	}
	if m.Meta != nil && len(m.Meta.Meta.Serials) > maxEntries {
		return true
	}
	for _, o := range m.Overrides {
		if o.Member == "" || len(o.Member) > maxNameBytes || len(o.Reason) > 4096 {
			return true
		}
	}
	return false
}

// encodeLocked stamps m as this node's and encodes it. Marshalling these
// types cannot fail.
func (f *Fleet) encodeLocked(m *message) []byte {
	m.V, m.From = wireVersion, f.name
	b, err := json.Marshal(m)
	if err != nil {
		panic("fleet: encoding a message: " + err.Error())
	}
	return b
}

// stateLocked is this node's full state for a push-pull.
func (f *Fleet) stateLocked() *message {
	m := &message{Type: typeState, Overrides: f.sortedOverridesLocked(func(Override) bool { return true })}
	if f.obsSet {
		m.Observations = &observations{Version: f.obsVer, Set: f.obs}
	}
	if f.metaSet {
		m.Meta = &meta{Version: f.metaVer, Meta: f.meta}
	}
	return m
}

// receive applies a message from another node; state is a push-pull's.
func (f *Fleet) receive(buf []byte, state bool) {
	if len(buf) > maxMessageBytes {
		f.reject("malformed")
		f.log.Debug().Int("bytes", len(buf)).Msg("fleet: oversized message dropped")
		return
	}
	var m message
	if err := json.Unmarshal(buf, &m); err != nil || !m.valid() || (state != (m.Type == typeState)) || m.oversized() {
		f.reject("malformed")
		f.log.Debug().Err(err).Int("bytes", len(buf)).Msg("fleet: malformed message dropped")
		return
	}
	f.mu.Lock()
	f.msgs[[2]string{"in", m.Type}]++
	if m.From == f.name {
		// Another node with this node's name: memberlist logs the
		// conflict; taking its state as ours would only hide it.
		f.mu.Unlock()
		return
	}
	p := f.peerLocked(m.From)
	p.lastContact = f.now()
	changed := false
	var merged []string
	for _, o := range m.Overrides {
		if f.mergeLocked(o) {
			changed = true
			merged = append(merged, o.Member)
		}
	}
	if state {
		// A push-pull reaches one node: pass on what it taught this one.
		// Direct messages are not passed on, their sender sent them to
		// every node.
		f.sendOverridesLocked(m.From, merged)
	}
	if o := m.Observations; o != nil && p.obsVer.less(o.Version) {
		if !obsEqual(p.obs, o.Set) {
			changed = changed || p.live()
		}
		p.obs, p.obsVer = copyObs(o.Set), o.Version
	}
	if mm := m.Meta; mm != nil && p.metaVer.less(mm.Version) {
		if !p.metaSet || !metaEqual(p.meta, mm.Meta) {
			changed = changed || p.live()
		}
		p.meta, p.metaVer, p.metaSet = copyMeta(mm.Meta), mm.Version, true
	}
	if m.Type == typeLeave {
		p.bye = true
		if p.known && p.state != stateLeft {
			p.state = stateLeft
			changed = true
		}
	}
	f.mu.Unlock()
	if changed {
		f.poke()
	}
}

// peerLocked returns the peer named name, creating it unknown.
func (f *Fleet) peerLocked(name string) *peer {
	p := f.nodes[name]
	if p == nil {
		p = &peer{name: name, state: stateDead}
		f.nodes[name] = p
	}
	return p
}

// delegate is memberlist's view of a Fleet; it keeps the callbacks out of
// the Fleet's API. memberlist calls the event callbacks with its node
// lock held: they take the Fleet's lock, so the Fleet never calls
// memberlist with its own lock held.
type delegate struct{ f *Fleet }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.PingDelegate  = (*delegate)(nil)
)

// NodeMeta is empty: memberlist's node meta is limited to 512 bytes, too
// few for a node's zone serials, which go as messages of their own.
func (d *delegate) NodeMeta(int) []byte { return nil }

// NotifyMsg takes a message sent to this node; buf is memberlist's and
// reused after the call.
func (d *delegate) NotifyMsg(buf []byte) { d.f.receive(bytes.Clone(buf), false) }

// GetBroadcasts is empty: changes go to each node directly, and
// push-pull repairs what was missed.
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }

func (d *delegate) LocalState(bool) []byte {
	f := d.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs[[2]string{"out", typeState}]++
	return f.encodeLocked(f.stateLocked())
}

func (d *delegate) MergeRemoteState(buf []byte, _ bool) {
	if len(buf) == 0 {
		return
	}
	d.f.receive(bytes.Clone(buf), true)
}

func (d *delegate) NotifyJoin(n *memberlist.Node) { d.f.event(n, false) }

func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.f.event(n, false) }

func (d *delegate) NotifyLeave(n *memberlist.Node) { d.f.event(n, true) }

func (d *delegate) AckPayload() []byte { return nil }

func (d *delegate) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	f := d.f
	if n.Name == f.name {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.nodes[n.Name]; p != nil && p.known {
		p.lastContact = f.now()
	}
}

// event takes a membership change of n.
func (f *Fleet) event(n *memberlist.Node, gone bool) {
	if n.Name == f.name {
		return
	}
	f.mu.Lock()
	p := f.peerLocked(n.Name)
	was, wasLive := p.state, p.live()
	p.addr, p.port = slices.Clone(n.Addr), n.Port
	p.known = true
	f.seenPeer = true
	switch {
	case gone && (p.bye || n.State == memberlist.StateLeft):
		p.state = stateLeft
	case gone:
		p.state = stateDead
	default:
		p.lastContact = f.now()
		p.bye = false
		p.state = stateAlive
		if n.State == memberlist.StateSuspect {
			p.state = stateSuspect
		}
	}
	if !wasLive && p.live() {
		// A node (back) in the fleet: tell it everything this node
		// knows now instead of waiting for a push-pull with it.
		f.enqueueLocked(p.name, func(b *outbox) {
			for m := range f.ovs {
				b.members[m] = true
			}
			b.obs, b.meta = true, true
		})
	}
	changed := was != p.state || wasLive != p.live()
	f.pruneLocked()
	f.mu.Unlock()
	if changed {
		f.poke()
	}
}

// pruneLocked forgets the nodes not heard from for longer than retention
// and not live: a fleet whose nodes are renamed or replaced would
// otherwise list them forever.
func (f *Fleet) pruneLocked() {
	cut := f.now().Add(-retention)
	for name, p := range f.nodes {
		if p.live() || !p.lastContact.Before(cut) {
			continue
		}
		if b := f.out[name]; b != nil && b.busy {
			continue
		}
		delete(f.nodes, name)
		delete(f.out, name)
	}
}
