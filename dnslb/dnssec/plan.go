package dnssec

import (
	"fmt"
	"slices"
	"time"
)

// ActionKind is what an Action does to the key directory.
type ActionKind uint8

// The kinds of Action.
const (
	// ActionGenerate makes a new key with the Action's Timing.
	ActionGenerate ActionKind = iota + 1
	// ActionSetTiming rewrites the timing of Action.Key.
	ActionSetTiming
	// ActionRemove moves Action.Key's files to the removed/ directory.
	ActionRemove
)

// String names the kind for logs.
func (k ActionKind) String() string {
	switch k {
	case ActionGenerate:
		return "generate"
	case ActionSetTiming:
		return "set-timing"
	case ActionRemove:
		return "remove"
	}
	return fmt.Sprintf("action %d", uint8(k))
}

// Action is one step Plan asks for. Plans are data so that they can be
// logged, reviewed (a dry run) and tested without touching files.
type Action struct {
	Kind      ActionKind
	Zone      string
	Role      Role
	Algorithm Algorithm
	// Key is the existing key (SetTiming, Remove).
	Key *Key
	// Timing is the new key's timing (Generate) or the key's new timing
	// (SetTiming).
	Timing Timing
	// Reason says why, for the log.
	Reason string
}

// String describes the action for the log.
func (a Action) String() string {
	k := "new " + a.Role.String()
	if a.Key != nil {
		k = a.Key.String()
	}
	return fmt.Sprintf("%s %s: %s (publish %s, activate %s, inactive %s, delete %s)", a.Kind, k, a.Reason,
		fmtTime(a.Timing.Publish), fmtTime(a.Timing.Activate), fmtTime(a.Timing.Inactive), fmtTime(a.Timing.Delete))
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// slot is a key as Plan sees it: its timing being revised, or a key to
// be generated.
type slot struct {
	key    *Key // nil for a new key
	role   Role
	alg    Algorithm
	t      Timing
	reason string
}

func (s *slot) active(now time.Time) bool    { return inWindow(s.t.Activate, s.t.Inactive, now) }
func (s *slot) published(now time.Time) bool { return inWindow(s.t.Publish, s.t.Delete, now) }

func (s *slot) why(r string) {
	if s.reason == "" {
		s.reason = r
	} else {
		s.reason += "; " + r
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Plan says what the zone's keys need at now; it only reads, so calling
// it again after Apply returns nothing until the next event is due. Run
// it often (every few minutes): a late run delays a rollover but never
// makes it unsafe, as every time it sets is computed from now.
//
// ZSKs roll by pre-publication (RFC 6781 4.1.1.1): the successor is
// published DNSKEYTTL+PublishSafety before it starts signing, and the old
// key stays published MaxTTL+RetireSafety after it stopped. KSKs roll by
// double-KSK with CDS/CDNSKEY (RFC 7344): the successor signs the DNSKEY
// RRset from its publication, CDS/CDNSKEY point to it once it has been
// published DNSKEYTTL+PublishSafety, and the old KSK goes ParentDSWait
// later. A KSK signs for as long as it is published, so whichever DS the
// parent holds matches a key that signs the DNSKEY RRset. Adding a KSK by
// hand therefore rolls the KSK: the older one is retired on that schedule.
func Plan(zone string, keys []*Key, p Policy, now time.Time) ([]Action, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.withDefaults()
	z, err := canonicalZone(zone)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	var removes []Action
	var zsks, ksks []*slot
	for _, k := range keys {
		if k == nil || k.DNSKEY == nil {
			return nil, fmt.Errorf("dnssec: plan %s: nil key", z)
		}
		if k.Zone != z {
			return nil, fmt.Errorf("dnssec: plan %s: key %s belongs to another zone", z, k)
		}
		if !k.Delete.IsZero() && !now.Before(k.Delete) {
			removes = append(removes, Action{Kind: ActionRemove, Zone: z, Role: k.Role, Algorithm: k.Algorithm, Key: k, Timing: k.Timing(), Reason: "deleted from the DNSKEY RRset"})
			continue
		}
		s := &slot{key: k, role: k.Role, alg: k.Algorithm, t: truncTiming(k.Timing())}
		if k.Role == KSK {
			ksks = append(ksks, s)
		} else {
			zsks = append(zsks, s)
		}
	}
	zsks = planZSK(zsks, p, now)
	ksks = planKSK(ksks, p, now)

	// Extensions before generations before removals: after a crash part
	// way, the keys on disk err on the side of keeping keys longer.
	var sets, gens []Action
	for _, s := range append(zsks, ksks...) {
		switch {
		case s.key == nil:
			gens = append(gens, Action{Kind: ActionGenerate, Zone: z, Role: s.role, Algorithm: s.alg, Timing: s.t, Reason: s.reason})
		case s.t != truncTiming(s.key.Timing()):
			sets = append(sets, Action{Kind: ActionSetTiming, Zone: z, Role: s.role, Algorithm: s.alg, Key: s.key, Timing: s.t, Reason: s.reason})
		}
	}
	return append(append(sets, gens...), removes...), nil
}

func planZSK(zsks []*slot, p Policy, now time.Time) []*slot {
	prepub := p.DNSKEYTTL + p.PublishSafety
	retire := p.MaxTTL + p.RetireSafety
	life := p.ZSKLifetime
	newZSK := func(alg Algorithm, publish, activate time.Time, why string) *slot {
		s := &slot{role: ZSK, alg: alg, t: Timing{Publish: publish, Activate: activate}, reason: why}
		if life > 0 {
			s.t.Inactive = activate.Add(life)
		}
		zsks = append(zsks, s)
		return s
	}
	for _, s := range zsks {
		// A key deleted while it still signs would leave signatures no
		// resolver can check: it stops signing first.
		if !s.t.Delete.IsZero() && s.t.Inactive.IsZero() && !s.t.Activate.IsZero() {
			s.t.Inactive = maxTime(s.t.Delete.Add(-retire), now.Add(prepub))
			s.why("delete without inactive: stop signing first")
		}
		// A key signing now but not published is published at once.
		if s.active(now) && !s.published(now) {
			s.t.Publish = now
			s.why("signing but unpublished")
		}
	}
	var cur, next *slot
	for _, s := range zsks {
		if s.active(now) && (cur == nil || s.t.Activate.After(cur.t.Activate)) {
			cur = s
		}
	}
	for _, s := range zsks {
		if !s.t.Activate.IsZero() && s.t.Activate.After(now) && (next == nil || s.t.Activate.Before(next.t.Activate)) {
			next = s
		}
	}
	if cur == nil {
		if next != nil && next.published(now) {
			next.t.Activate = now
			next.why("no ZSK signs: activate the published successor now")
			cur, next = next, nil
		} else {
			cur = newZSK(p.Algorithm, now, now, "no ZSK signs")
		}
	}
	if cur.t.Inactive.IsZero() && life > 0 {
		cur.t.Inactive = maxTime(cur.t.Activate.Add(life), now.Add(prepub))
		cur.why("lifetime")
	}
	// The successor is made as soon as the current key's end is known,
	// with its future timing: the rollover then happens on time even if
	// Plan does not run again before it.
	if !cur.t.Inactive.IsZero() && next == nil {
		pub := maxTime(now, cur.t.Inactive.Add(-prepub))
		next = newZSK(cur.alg, pub, pub.Add(prepub), "pre-publish successor of "+cur.name())
	}
	if next != nil {
		if next.t.Publish.IsZero() || next.t.Publish.After(next.t.Activate.Add(-prepub)) {
			if next.t.Publish.IsZero() || next.t.Publish.After(now) {
				next.t.Publish = maxTime(now, next.t.Activate.Add(-prepub))
			}
			if next.t.Activate.Before(next.t.Publish.Add(prepub)) {
				next.t.Activate = next.t.Publish.Add(prepub)
				if !next.t.Inactive.IsZero() && !next.t.Inactive.After(next.t.Activate) {
					next.t.Inactive = next.t.Activate.Add(max(life, prepub))
				}
			}
			next.why("publish DNSKEYTTL+PublishSafety before activation")
		}
		if !cur.t.Inactive.IsZero() && cur.t.Inactive.Before(next.t.Activate) {
			cur.t.Inactive = next.t.Activate
			cur.why("sign until the successor signs")
		}
	}
	for _, s := range zsks {
		if !s.t.Inactive.IsZero() && (s.t.Delete.IsZero() || s.t.Delete.Before(s.t.Inactive.Add(retire))) {
			s.t.Delete = s.t.Inactive.Add(retire)
			s.why("stay published MaxTTL+RetireSafety after signing")
		}
	}
	return zsks
}

func (s *slot) name() string {
	if s.key != nil {
		return s.key.String()
	}
	return "new " + s.role.String()
}

// newerKSK orders KSKs by publication: the newest is the one the
// parent should end up holding.
func newerKSK(a, b *slot) bool {
	if !a.t.Publish.Equal(b.t.Publish) {
		return a.t.Publish.After(b.t.Publish)
	}
	if !a.t.Activate.Equal(b.t.Activate) {
		return a.t.Activate.After(b.t.Activate)
	}
	if a.key != nil && b.key != nil {
		return a.key.Tag > b.key.Tag
	}
	return a.key == nil
}

func planKSK(ksks []*slot, p Policy, now time.Time) []*slot {
	prepub := p.DNSKEYTTL + p.PublishSafety
	wait := p.ParentDSWait
	life := p.KSKLifetime
	newKSK := func(alg Algorithm, at time.Time, why string) *slot {
		s := &slot{role: KSK, alg: alg, t: Timing{Publish: at, Activate: at}, reason: why}
		if life > 0 {
			s.t.Inactive = at.Add(life)
			s.t.Delete = s.t.Inactive
		}
		ksks = append(ksks, s)
		return s
	}
	setEnd := func(s *slot, end time.Time, why string) {
		if s.t.Inactive.Equal(end) && s.t.Delete.Equal(end) {
			return
		}
		s.t.Inactive, s.t.Delete = end, end
		s.why(why)
	}
	for _, s := range ksks {
		// A KSK signs whenever it is published.
		if !s.t.Publish.IsZero() && (s.t.Activate.IsZero() || s.t.Activate.After(s.t.Publish)) {
			s.t.Activate = s.t.Publish
			s.why("a KSK signs while published")
		}
		if !s.t.Activate.IsZero() && (s.t.Publish.IsZero() || s.t.Publish.After(s.t.Activate)) {
			s.t.Publish = maxTime(now, s.t.Activate)
			if !s.t.Activate.After(now) {
				s.t.Activate = s.t.Publish
			}
			s.why("a KSK is published while it signs")
		}
		switch {
		case s.t.Inactive.IsZero() && !s.t.Delete.IsZero():
			setEnd(s, s.t.Delete, "a KSK signs until deleted")
		case !s.t.Inactive.IsZero() && !s.t.Inactive.Equal(s.t.Delete):
			end := s.t.Inactive
			if !s.t.Delete.IsZero() {
				end = maxTime(end, s.t.Delete)
			}
			setEnd(s, end, "a KSK signs until deleted")
		}
	}
	var newest *slot
	var pending bool
	for _, s := range ksks {
		if s.active(now) && s.published(now) && (newest == nil || newerKSK(s, newest)) {
			newest = s
		}
		if !s.t.Publish.IsZero() && s.t.Publish.After(now) {
			pending = true
		}
	}
	if newest == nil {
		newest = newKSK(p.Algorithm, now, "no KSK signs")
	}
	if newest.t.Inactive.IsZero() && life > 0 {
		setEnd(newest, maxTime(newest.t.Activate.Add(life), now.Add(prepub+wait)), "lifetime")
	}
	// As for ZSKs, the successor is made in advance with future timing.
	if !pending && !newest.t.Inactive.IsZero() {
		newKSK(newest.alg, maxTime(now, newest.t.Inactive.Add(-wait-prepub)), "successor of "+newest.name())
	}
	// Each KSK stays until the parent can have switched to the next newer
	// one: CDS points to it until that one is ready, and the parent takes
	// up to ParentDSWait to follow.
	chain := slices.DeleteFunc(slices.Clone(ksks), func(s *slot) bool { return s.t.Publish.IsZero() })
	slices.SortFunc(chain, func(a, b *slot) int {
		if a == b {
			return 0
		}
		if newerKSK(a, b) {
			return 1
		}
		return -1
	})
	for i, s := range chain[:max(len(chain)-1, 0)] {
		need := chain[i+1].t.Publish.Add(prepub + wait)
		if !s.t.Inactive.IsZero() && !now.Before(s.t.Inactive) {
			continue // already gone; not brought back
		}
		if s.t.Inactive.IsZero() || s.t.Inactive.Before(need) {
			setEnd(s, need, "retire after the parent switched to "+chain[i+1].name())
		}
	}
	return ksks
}

// Apply carries out a plan in dir and returns keys as they are
// afterwards (keys minus removed ones, with new timing, plus new keys).
// It stops at the first error; what was done stays done, and the next
// Plan starts from the files.
func Apply(dir string, keys []*Key, actions []Action, now time.Time) ([]*Key, error) {
	out := append([]*Key(nil), keys...)
	replace := func(old, nk *Key) {
		for i, k := range out {
			if k == old {
				if nk == nil {
					out = append(out[:i], out[i+1:]...)
				} else {
					out[i] = nk
				}
				return
			}
		}
		if nk != nil {
			out = append(out, nk)
		}
	}
	for _, a := range actions {
		switch a.Kind {
		case ActionGenerate:
			k, err := generate(dir, a.Zone, a.Algorithm, a.Role, now, a.Timing)
			if err != nil {
				return out, err
			}
			out = append(out, k)
		case ActionSetTiming:
			if a.Key == nil {
				return out, fmt.Errorf("dnssec: apply: set-timing without a key")
			}
			nk := a.Key.withTiming(truncTiming(a.Timing))
			if err := SaveTiming(nk); err != nil {
				return out, err
			}
			replace(a.Key, nk)
		case ActionRemove:
			if a.Key == nil {
				return out, fmt.Errorf("dnssec: apply: remove without a key")
			}
			if err := removeKey(dir, a.Key, now); err != nil {
				return out, err
			}
			replace(a.Key, nil)
		default:
			return out, fmt.Errorf("dnssec: apply: unknown action kind %d", a.Kind)
		}
	}
	return out, nil
}
