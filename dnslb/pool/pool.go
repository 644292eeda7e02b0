package pool

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/miekg/dns"
)

// AllDown says what to answer when no primary member is healthy.
type AllDown int

// The when_all_down modes.
const (
	// FailOpen answers every primary member, healthy or not.
	FailOpen AllDown = iota
	// Backups answers the healthy backup members (all of them if none is).
	Backups
	// Empty answers NODATA.
	Empty
)

// ParseAllDown reads a when_all_down value.
func ParseAllDown(s string) (AllDown, error) {
	switch s {
	case "", "all":
		return FailOpen, nil
	case "backup":
		return Backups, nil
	case "empty":
		return Empty, nil
	}
	return 0, fmt.Errorf("%q is not one of all, backup, empty", s)
}

func (a AllDown) String() string { return [...]string{"all", "backup", "empty"}[a] }

// Member is one address of a pool.
type Member struct {
	Addr netip.Addr
	// RR is the record answered for this member: a copy of the zone's, with
	// the pool TTL.
	RR dns.RR
	// Degraded is RR at the pool's degraded TTL, answered while the plan is
	// degraded (see Plan.Degraded); nil answers RR then too. A copy made
	// when the pool is built, so that a degraded answer allocates nothing.
	Degraded dns.RR
	Weight   int
	Backup   bool
	// Checked is false for members without a health check: always up.
	Checked bool
	// Target is the member's (first) check; Also its further checks, if
	// the pool has several: the member is up only while all are.
	Target healthcheck.TargetKey
	Also   []healthcheck.TargetKey
	// Agent is the member's load agent (the pool's load:); invalid:
	// none.
	Agent netip.AddrPort
	// Leads counts answers that carried this member first, for the share
	// of answers the admin API shows. Optional.
	Leads *LeadCounter
}

// LeadCounter counts the answers a member led. Every core answering the
// pool bumps it, so it is kept in stripes on cache lines of their own (one
// shared counter made a pool answer 2.5 times slower on two cores than on
// one); the caller picks the stripe, from something that differs between
// concurrent queries.
type LeadCounter struct {
	stripes [LeadStripes]paddedCounter
}

// paddedCounter is a counter alone on its cache line.
type paddedCounter struct {
	n atomic.Uint64
	_ [56]byte // the rest of the cache line
}

// LeadStripes is the number of stripes of a LeadCounter.
const LeadStripes = 8

// Add counts one answer in stripe (taken modulo LeadStripes).
func (c *LeadCounter) Add(stripe int) { c.stripes[stripe&(LeadStripes-1)].n.Add(1) }

// Load returns the answers counted in all stripes.
func (c *LeadCounter) Load() uint64 {
	var sum uint64
	for i := range c.stripes {
		sum += c.stripes[i].n.Load()
	}
	return sum
}

// Up reports whether every check of m is up in snap (nil: all up; so is a
// member without checks).
func (m *Member) Up(snap *healthcheck.Snapshot) bool {
	if !m.Checked {
		return true
	}
	if !snap.Up(m.Target) {
		return false
	}
	for _, k := range m.Also {
		if !snap.Up(k) {
			return false
		}
	}
	return true
}

// Health decides which members may be answered.
type Health interface {
	// Eligible: healthy and not taken out by an operator.
	Eligible(m *Member) bool
	// Drained: an operator took it out; not answered even when failing
	// open, unless every member is drained.
	Drained(m *Member) bool
	// Failing: its checks hold it down, and no operator override (drain,
	// force-down) does. Its recovery would change the answers by itself,
	// so the pool is degraded (see Plan.Degraded).
	Failing(m *Member) bool
}

// Pool is the load-balancing state of one owner name. It is built once per
// configuration and shared by all queries; its only mutable state is the
// rotation counter and the cached plans, all atomic.
type Pool struct {
	Name   string
	Policy Policy
	// TTL is the pool TTL (answers carry at most it; so does the NODATA of
	// when_all_down: empty).
	TTL uint32
	// TTLDegraded is the TTL while a family is degraded (see
	// Plan.Degraded); answers then carry at most min(TTL, TTLDegraded).
	// 0: TTL.
	TTLDegraded uint32
	MaxAnswers  int
	WhenAllDown AllDown
	// V4 and V6 hold the A and AAAA members in zone file order.
	V4, V6 []Member
	// SlowStart is how long a member that comes back ramps its weight
	// from 10 % to 100 % (0: it does not). See Ramping.
	SlowStart time.Duration
	// Now is the clock of slow start (nil: time.Now).
	Now  func() time.Time
	ramp slowStart

	// rotation holds the rotation counters, one per group of clients (see
	// NextSlot), each on a cache line of its own, with padding on both
	// sides: the fields around them are read on every answer, and sharing
	// a line with a counter would make every core's reads miss.
	_        [64]byte
	rotation [rotationGroups]paddedCounter
	_        [64]byte
	plans    [2]atomic.Pointer[Plan] // per family, for the latest generation
}

// rotationGroups is the number of rotation counters of a pool.
const rotationGroups = 8

// rotationGroup returns the rotation counter a client uses: a hash of its
// address (the zero Addr, for callers without one, is group 0).
func rotationGroup(client netip.Addr) int {
	if !client.IsValid() {
		return 0
	}
	b := client.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	// A finaliser that makes every address bit count in the top bits
	// (MurmurHash3's): neighbouring addresses land in different groups.
	h := lo ^ hi*0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return int(h >> 61) // the top 3 bits: 0..7
}

// family returns the members answering qtype, and the index of its plan.
func (p *Pool) family(qtype uint16) ([]Member, int) {
	if qtype == dns.TypeAAAA {
		return p.V6, 1
	}
	return p.V4, 0
}

// Members returns every member, A then AAAA.
func (p *Pool) Members() []Member {
	return append(append([]Member(nil), p.V4...), p.V6...)
}

// maxStack is the member count up to which selection needs no allocation.
const maxStack = 64

// Select appends the records to answer for qtype (A or AAAA) to dst. gen
// identifies the state h reflects (it keys the cached plan). client is the
// resolver's (or ECS) address, for sticky. empty is set when the pool
// answers NODATA (when_all_down: empty).
func (p *Pool) Select(dst []dns.RR, qtype uint16, h Health, gen uint64, client netip.Addr) (out []dns.RR, empty bool) {
	pl := p.Plan(qtype, h, gen)
	if pl.Empty() {
		return dst, true
	}
	return pl.Records(dst, pl.NextSlot(client), client, 0), false
}

// Plan is how a pool answers one family while health stays the same: the
// eligible members and the policy's schedule. Each query takes the next
// slot; a slot always yields the same answer, so answers can be packed once
// per slot and cached.
type Plan struct {
	pool    *Pool
	gen     uint64
	members []Member
	idx     []int // members to answer, in base order
	empty   bool
	limit   int
	sched   schedule // the policy's, over idx
	// degraded: answers carry the degraded TTL (see Degraded).
	degraded bool
}

// Plan returns the plan for qtype's family under health h at generation
// gen, building it when gen changed. Plans of one generation are shared.
func (p *Pool) Plan(qtype uint16, h Health, gen uint64) *Plan {
	members, fam := p.family(qtype)
	if pl := p.plans[fam].Load(); pl != nil && pl.gen == gen {
		return pl
	}
	pl := p.buildPlan(members, h, gen)
	p.plans[fam].Store(pl) // racing builders store equal plans
	return pl
}

func (p *Pool) buildPlan(members []Member, h Health, gen uint64) *Plan {
	pl := &Plan{pool: p, gen: gen, members: members, limit: p.MaxAnswers, sched: schedule{slots: 1}}
	if len(members) == 0 {
		return pl
	}
	idx, answers, fallback := p.eligible(members, h)
	levels := p.rampLevels(members, idx, h) // also while all are down: it records who is out
	pl.degraded = fallback || failing(members, h)
	if fallback && answers == Empty {
		pl.empty = true
		return pl
	}
	pl.idx = idx
	ramped := false
	if levels != nil && !fallback {
		pl.sched, ramped = rampSchedule(p.policy(), members, idx, h, levels)
	}
	if !ramped {
		pl.sched = scheduleFor(p.policy(), members, idx, h)
	}
	if pl.limit == 0 {
		pl.limit = pl.sched.limit
	}
	return pl
}

// policy returns the pool's policy; a Pool built without one rotates.
func (p *Pool) policy() Policy {
	if p.Policy == nil {
		return RoundRobin{}
	}
	return p.Policy
}

// failing reports whether a primary member of a family is down by its
// checks alone (Health.Failing). Backups do not count: while a primary is
// answered their recovery changes nothing, and in fallback the plan is
// degraded anyway.
func failing(members []Member, h Health) bool {
	for i := range members {
		if m := &members[i]; !m.Backup && m.Checked && h.Failing(m) {
			return true
		}
	}
	return false
}

// eligible returns the members of one family to answer under h (indices,
// in base order), and whether they are the when_all_down fallback: the
// family has members and none of its primaries is eligible. In fallback,
// answers says what is answered: Backups (the eligible backups), FailOpen
// (also when_all_down: backup with no backup eligible), or Empty (none:
// NODATA). This is the one statement of who is answered: plans are built
// from it, and Fallback reports it to operators.
func (p *Pool) eligible(members []Member, h Health) (idx []int, answers AllDown, fallback bool) {
	for i := range members {
		m := &members[i]
		if !m.Backup && h.Eligible(m) {
			idx = append(idx, i)
		}
	}
	if len(idx) > 0 || len(members) == 0 {
		return idx, 0, false
	}
	switch p.WhenAllDown {
	case Empty:
		return nil, Empty, true
	case Backups:
		for i := range members {
			m := &members[i]
			if m.Backup && h.Eligible(m) {
				idx = append(idx, i)
			}
		}
		if len(idx) > 0 {
			return idx, Backups, true
		}
	}
	// Fail open: a possibly dead address beats no address. What an
	// operator drained stays out while anything else is left.
	for pass := 0; len(idx) == 0 && pass < 3; pass++ {
		for i := range members {
			m := &members[i]
			if pass == 2 || (!m.Backup && (pass == 1 || !h.Drained(m))) {
				idx = append(idx, i)
			}
		}
	}
	return idx, FailOpen, true
}

// Fallback reports whether the pool answers qtype's family (A or AAAA) by
// its when_all_down fallback under h (the family has members and none of
// its primary members is eligible), and what it answers then: Backups,
// FailOpen (when_all_down: all, or backup with no backup eligible either)
// or Empty. Answers are chosen by the same rule (see eligible), so this is
// what queries get while h holds.
func (p *Pool) Fallback(qtype uint16, h Health) (answers AllDown, ok bool) {
	members, _ := p.family(qtype)
	_, answers, ok = p.eligible(members, h)
	return answers, ok
}

// Empty reports whether the pool answers NODATA (when_all_down: empty).
func (pl *Plan) Empty() bool { return pl.empty }

// Degraded reports whether the plan's answers carry the degraded TTL: the
// family answers by its when_all_down fallback, or one of its primary
// members is down by its checks (not merely drained or forced down: an
// operator's override is intended and lasts). Then a recovery can change
// the answers at any moment, and resolvers should ask again soon.
func (pl *Plan) Degraded() bool { return pl.degraded }

// TTL is the most a TTL in the plan's answers may be: the pool TTL, or
// min(TTL, TTLDegraded) while the plan is degraded. The NODATA of
// when_all_down: empty caps its SOA at it.
func (pl *Plan) TTL() uint32 {
	if pl.degraded && pl.pool.TTLDegraded > 0 {
		return min(pl.pool.TTL, pl.pool.TTLDegraded)
	}
	return pl.pool.TTL
}

// Slots is the number of distinct answers, or 0 when the answer depends on
// the client (sticky) and cannot be cached by slot.
func (pl *Plan) Slots() int { return pl.sched.slots }

// Answers is the number of distinct answers the plan's slots give, or 0
// when the answer depends on the client (sticky). A weighted plan has a
// slot per unit of weight, but its slot's answer is one rotation of the
// eligible members, so there are at most as many distinct answers as
// members: a cache keeps one packed reply per answer, not per slot.
func (pl *Plan) Answers() int {
	switch {
	case pl.sched.slots == 0:
		return 0
	case pl.sched.starts != nil && len(pl.idx) > 0:
		return len(pl.idx)
	}
	return pl.sched.slots
}

// Answer returns which of the plan's distinct answers (0 to Answers()-1)
// slot gives: slots with the same Answer yield the same records.
func (pl *Plan) Answer(slot int) int {
	// Slots come from NextSlot, below Slots(): no division on a cache hit.
	if seq := pl.sched.starts; len(seq) > 0 {
		if uint(slot) >= uint(len(seq)) {
			slot %= len(seq)
		}
		return int(seq[slot])
	}
	if uint(slot) < uint(pl.sched.slots) {
		return slot
	}
	return slot % max(pl.sched.slots, 1)
}

// NextSlot advances the rotation of client's group and returns the slot
// to answer. A client alone in its group (a test, an operator's dig, a
// resolver among few) sees every member come first in turn whichever
// socket or core its queries reach, undisturbed by other groups; clients
// answered on different cores mostly use different counters, where one
// would move between the cores on every pool answer. Over many clients
// the groups add up to the policy's shares.
func (pl *Plan) NextSlot(client netip.Addr) int {
	if pl.sched.slots <= 1 {
		return 0
	}
	return int(pl.pool.rotation[rotationGroup(client)].n.Add(1) % uint64(pl.sched.slots))
}

// order writes slot's member order (indices into members) into buf;
// subnet is the client's, for a sticky plan (see Subnet).
func (pl *Plan) order(buf []int, slot int, subnet netip.Prefix) []int {
	buf = append(buf[:0], pl.idx...)
	if pl.sched.rendezvous {
		sortRendezvous(buf, pl.members, subnet)
	} else {
		rotate(buf, pl.Answer(slot))
	}
	if pl.limit > 0 && len(buf) > pl.limit {
		buf = buf[:pl.limit]
	}
	return buf
}

// Sticky reports whether the plan's answers depend on the client's
// subnet (the sticky policy); Subnet then says which.
func (pl *Plan) Sticky() bool { return pl.sched.rendezvous }

// Subnet returns the subnet a sticky plan answers a query from resolver
// by, with the query's EDNS client subnet ecs (the zero Prefix: none);
// fromECS: it is ecs's (see Sticky.Subnet). Queries with one subnet get
// one answer while the plan holds, so an answer can be cached by it.
// Zero for a plan that is not sticky.
func (pl *Plan) Subnet(resolver netip.Addr, ecs netip.Prefix) (subnet netip.Prefix, fromECS bool) {
	if !pl.sched.rendezvous {
		return netip.Prefix{}, false
	}
	return pl.sched.sticky.Subnet(resolver, ecs)
}

// Records appends slot's answer to dst and counts the answer for the
// member it leads with, in that counter's stripe. A sticky plan answers
// by the resolver's subnet (client); RecordsFor takes one.
func (pl *Plan) Records(dst []dns.RR, slot int, client netip.Addr, stripe int) []dns.RR {
	subnet, _ := pl.Subnet(client, netip.Prefix{})
	return pl.RecordsFor(dst, slot, subnet, stripe)
}

// RecordsFor is Records for the client subnet of a sticky plan (see
// Subnet); other plans ignore it.
func (pl *Plan) RecordsFor(dst []dns.RR, slot int, subnet netip.Prefix, stripe int) []dns.RR {
	var stack [maxStack]int
	idx := pl.order(stack[:0], slot, subnet)
	for _, i := range idx {
		m := &pl.members[i]
		if pl.degraded && m.Degraded != nil {
			dst = append(dst, m.Degraded)
		} else {
			dst = append(dst, m.RR)
		}
	}
	if len(idx) > 0 && pl.members[idx[0]].Leads != nil {
		pl.members[idx[0]].Leads.Add(stripe)
	}
	return dst
}

// Leads returns the lead counter of the member subnet's answer starts
// with (nil: none, or not counted), so that a cache serving the answer
// counts it as Records does.
func (pl *Plan) Leads(slot int, subnet netip.Prefix) *LeadCounter {
	var stack [maxStack]int
	idx := pl.order(stack[:0], slot, subnet)
	if len(idx) == 0 {
		return nil
	}
	return pl.members[idx[0]].Leads
}

// Lead counts an answer for slot served from a cache, in the lead
// counter's stripe.
func (pl *Plan) Lead(slot, stripe int) {
	if i := pl.lead(slot); i >= 0 && pl.members[i].Leads != nil {
		pl.members[i].Leads.Add(stripe)
	}
}

// lead returns the member slot's answer starts with (the first of order,
// without building the order: a cache hit needs only this), or -1.
func (pl *Plan) lead(slot int) int {
	if len(pl.idx) == 0 {
		return -1
	}
	if pl.sched.rendezvous {
		return pl.idx[0] // not known without the client; not cached either
	}
	return pl.idx[pl.Answer(slot)]
}

// rotate moves idx[k:] to the front.
func rotate(idx []int, k int) {
	if k <= 0 || k >= len(idx) {
		return
	}
	var tmp [maxStack]int
	var buf []int
	if len(idx) <= maxStack {
		buf = tmp[:len(idx)]
	} else {
		buf = make([]int, len(idx))
	}
	n := copy(buf, idx[k:])
	copy(buf[n:], idx[:k])
	copy(idx, buf)
}

// Published returns the records of qtype's family (A or AAAA) that a copy
// of the zone served without dnslb (a secondary's) holds under h: every
// member the pool answers (the eligible ones, or its when_all_down
// fallback), in base order, at the pool TTL; none for when_all_down:
// empty. Rotation, weights, stickiness and max_answers happen only where
// dnslb answers. It builds no plan: the answer path's stay cached.
func (p *Pool) Published(qtype uint16, h Health) []dns.RR {
	members, _ := p.family(qtype)
	idx, answers, fallback := p.eligible(members, h)
	if fallback && answers == Empty {
		return nil
	}
	out := make([]dns.RR, 0, len(idx))
	for _, i := range idx {
		out = append(out, members[i].RR)
	}
	return out
}
