package fleet

import (
	"maps"
	"slices"

	"github.com/hashicorp/memberlist"
)

// outbox is what is still to be sent to one peer. It holds what changed,
// not the messages: the drain sends the current state of it, so a burst
// of changes goes out as one message with the latest.
type outbox struct {
	members map[string]bool // overrides, by member
	obs     bool
	meta    bool
	busy    bool // a drain goroutine is running for the peer
}

func (b *outbox) empty() bool { return len(b.members) == 0 && !b.obs && !b.meta }

func (b *outbox) reset() {
	clear(b.members)
	b.obs, b.meta = false, false
}

// sendOverridesLocked queues the overrides of members to every live peer
// but except.
func (f *Fleet) sendOverridesLocked(except string, members []string) {
	if len(members) == 0 {
		return
	}
	f.enqueueAllLocked(except, func(b *outbox) {
		for _, m := range members {
			b.members[m] = true
		}
	})
}

func (f *Fleet) enqueueAllLocked(except string, add func(*outbox)) {
	for name, p := range f.nodes {
		if name != except && p.live() {
			f.enqueueLocked(name, add)
		}
	}
}

// enqueueLocked adds to the peer's outbox and starts its drain if none
// runs. One drain per peer: a slow or dead peer holds up only itself,
// and each peer gets changes in order.
func (f *Fleet) enqueueLocked(name string, add func(*outbox)) {
	if f.closing {
		return
	}
	b := f.out[name]
	if b == nil {
		b = &outbox{members: map[string]bool{}}
		f.out[name] = b
	}
	add(b)
	if b.busy || b.empty() {
		return
	}
	b.busy = true
	f.wg.Add(1)
	go f.drain(name)
}

// drain sends the peer's outbox until it is empty. A failed send is
// logged and dropped: the peer is likely going, and if it is not, the
// next push-pull brings it up to date.
func (f *Fleet) drain(name string) {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		b, p := f.out[name], f.nodes[name]
		if f.closing || b.empty() || p == nil || !p.live() {
			b.reset()
			b.busy = false
			f.mu.Unlock()
			return
		}
		type msg struct {
			typ string
			buf []byte
		}
		var msgs []msg
		if len(b.members) > 0 {
			var ovs []Override
			for _, m := range slices.Sorted(maps.Keys(b.members)) {
				if o, ok := f.ovs[m]; ok {
					ovs = append(ovs, o)
				}
			}
			if len(ovs) > 0 {
				msgs = append(msgs, msg{typeOverride, f.encodeLocked(&message{Type: typeOverride, Overrides: ovs})})
			}
		}
		if b.meta && f.metaSet {
			msgs = append(msgs, msg{typeMeta, f.encodeLocked(&message{Type: typeMeta, Meta: &meta{Version: f.metaVer, Meta: f.meta}})})
		}
		if b.obs && f.obsSet {
			msgs = append(msgs, msg{typeObservations, f.encodeLocked(&message{Type: typeObservations,
				Observations: &observations{Version: f.obsVer, Set: f.obs}})})
		}
		b.reset()
		to := &memberlist.Node{Name: p.name, Addr: p.addr, Port: p.port}
		ml := f.ml
		f.mu.Unlock()
		if ml == nil {
			// Joined before New had its memberlist: the join's
			// push-pull carries the state.
			continue
		}
		for _, m := range msgs {
			if err := ml.SendReliable(to, m.buf); err != nil {
				f.log.Warn().Err(err).Str("node", name).Str("type", m.typ).Msg("fleet: message not sent; the next push-pull repairs")
				break
			}
			f.count("out", m.typ)
		}
	}
}
