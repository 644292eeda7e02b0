package pool

import (
	"fmt"
	"math"
	"net/netip"
	"sync/atomic"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/miekg/dns"
)

// Policy orders the healthy members of a pool.
type Policy int

// The policies.
const (
	RoundRobin Policy = iota
	Weighted
	Sticky
	FirstHealthy
)

// ParsePolicy reads a policy name as written in the config.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "round-robin":
		return RoundRobin, nil
	case "weighted":
		return Weighted, nil
	case "sticky":
		return Sticky, nil
	case "first-healthy":
		return FirstHealthy, nil
	}
	return 0, fmt.Errorf("%q is not one of round-robin, weighted, sticky, first-healthy", s)
}

func (p Policy) String() string {
	return [...]string{"round-robin", "weighted", "sticky", "first-healthy"}[p]
}

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
	RR     dns.RR
	Weight int
	Backup bool
	// Checked is false for members without a health check: always up.
	Checked bool
	Target  healthcheck.TargetKey
	// Leads counts answers that carried this member first, for the share
	// of answers the admin API shows. Optional.
	Leads *atomic.Uint64
}

// Health decides which members may be answered.
type Health interface {
	// Eligible: healthy and not taken out by an operator.
	Eligible(m *Member) bool
	// Drained: an operator took it out; not answered even when failing
	// open, unless every member is drained.
	Drained(m *Member) bool
}

// Checks is the Health of health checks alone: members are eligible when
// their target is up in the snapshot (nil: all up), and none is drained.
type Checks struct{ Snapshot *healthcheck.Snapshot }

// Eligible implements Health.
func (c Checks) Eligible(m *Member) bool { return !m.Checked || c.Snapshot.Up(m.Target) }

// Drained implements Health.
func (c Checks) Drained(*Member) bool { return false }

// Pool is the load-balancing state of one owner name. It is built once per
// configuration and shared by all queries; its only mutable state is the
// rotation counter and the cached weighted schedule, both atomic.
type Pool struct {
	Name   string
	Policy Policy
	// TTL is the pool TTL (answers carry at most it; so does the NODATA of
	// when_all_down: empty).
	TTL         uint32
	MaxAnswers  int
	WhenAllDown AllDown
	// V4 and V6 hold the A and AAAA members in zone file order.
	V4, V6 []Member

	counter atomic.Uint64
	sched   [2]atomic.Pointer[schedule] // weighted schedules per family
}

// family returns the members answering qtype, and the index of its schedule.
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
// identifies the health state h reflects; it keys the cached weighted
// schedule. client is the resolver's (or ECS) address, for sticky. empty
// is set when the pool answers NODATA (when_all_down: empty).
func (p *Pool) Select(dst []dns.RR, qtype uint16, h Health, gen uint64, client netip.Addr) (out []dns.RR, empty bool) {
	members, fam := p.family(qtype)
	if len(members) == 0 {
		return dst, false
	}
	var stack [maxStack]int
	idx := stack[:0]
	for i := range members {
		m := &members[i]
		if !m.Backup && h.Eligible(m) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		switch p.WhenAllDown {
		case Empty:
			return dst, true
		case Backups:
			for i := range members {
				m := &members[i]
				if m.Backup && h.Eligible(m) {
					idx = append(idx, i)
				}
			}
		}
		if len(idx) == 0 {
			// Fail open: a possibly dead address beats no address. What an
			// operator drained stays out while anything else is left.
			for i := range members {
				if !members[i].Backup && !h.Drained(&members[i]) {
					idx = append(idx, i)
				}
			}
			for pass := 0; len(idx) == 0 && pass < 2; pass++ {
				for i := range members {
					if pass == 1 || !members[i].Backup {
						idx = append(idx, i)
					}
				}
			}
		}
	}

	limit := p.MaxAnswers
	switch p.Policy {
	case RoundRobin:
		rotate(idx, int(p.counter.Add(1)%uint64(len(idx))))
	case Weighted:
		first := p.schedule(fam, gen, members, idx).next(&p.counter)
		rotate(idx, first)
	case Sticky:
		sortRendezvous(idx, members, client)
	case FirstHealthy:
		if limit == 0 {
			limit = 1
		}
	}
	if limit > 0 && len(idx) > limit {
		idx = idx[:limit]
	}
	for _, i := range idx {
		dst = append(dst, members[i].RR)
	}
	if len(idx) > 0 && members[idx[0]].Leads != nil {
		members[idx[0]].Leads.Add(1)
	}
	return dst, false
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

// schedule is a precomputed smooth weighted round-robin sequence over one
// set of eligible members: positions into that set, length = sum of weights.
// Walking it with an atomic counter gives the same spread as the classic
// stateful algorithm without a lock on the query path.
type schedule struct {
	gen uint64
	key uint64 // hash of the eligible set, guarding against gen reuse
	seq []uint16
}

func (s *schedule) next(counter *atomic.Uint64) int {
	if len(s.seq) == 0 {
		return 0
	}
	return int(s.seq[counter.Add(1)%uint64(len(s.seq))])
}

func setKey(idx []int) uint64 {
	h := uint64(1469598103934665603)
	for _, i := range idx {
		h ^= uint64(i) + 1
		h *= 1099511628211
	}
	return h
}

func (p *Pool) schedule(fam int, gen uint64, members []Member, idx []int) *schedule {
	key := setKey(idx)
	if s := p.sched[fam].Load(); s != nil && s.gen == gen && s.key == key {
		return s
	}
	s := buildSchedule(members, idx)
	s.gen, s.key = gen, key
	p.sched[fam].Store(s) // racing builders store equal schedules
	return s
}

// maxSchedule bounds a schedule's length; weights are scaled down past it.
const maxSchedule = 1 << 16

func buildSchedule(members []Member, idx []int) *schedule {
	weights := make([]int, len(idx))
	total := 0
	for k, i := range idx {
		w := members[i].Weight
		if w <= 0 {
			w = 1
		}
		weights[k] = w
		total += w
	}
	if total > maxSchedule {
		scale := float64(maxSchedule) / float64(total)
		total = 0
		for k, w := range weights {
			weights[k] = max(1, int(float64(w)*scale))
			total += weights[k]
		}
	}
	// Smooth weighted round-robin: each step every member gains its weight;
	// the richest is picked and pays the total. Interleaves picks instead
	// of bursting (3:1:1 gives a b a c a, not a a a b c).
	current := make([]int, len(weights))
	seq := make([]uint16, total)
	for step := range seq {
		best := 0
		for k, w := range weights {
			current[k] += w
			if current[k] > current[best] {
				best = k
			}
		}
		current[best] -= total
		seq[step] = uint16(best)
	}
	return &schedule{seq: seq}
}

// sortRendezvous orders idx by weighted rendezvous (highest random weight)
// hashing of the client's subnet: each subnet sees a stable order, and when
// a member leaves only the subnets that had it first move.
func sortRendezvous(idx []int, members []Member, client netip.Addr) {
	subnet := clientSubnet(client)
	var scores [maxStack]float64
	var sc []float64
	if len(idx) <= maxStack {
		sc = scores[:len(idx)]
	} else {
		sc = make([]float64, len(idx))
	}
	for k, i := range idx {
		sc[k] = rendezvousScore(subnet, members[i])
	}
	// Insertion sort, highest score first: pools are small, and it keeps
	// the query path free of allocations.
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && sc[j] > sc[j-1]; j-- {
			sc[j], sc[j-1] = sc[j-1], sc[j]
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}

// clientSubnet is the unit of stickiness: a /24 for IPv4, a /56 for IPv6
// (the prefixes EDNS Client Subnet conventionally carries).
func clientSubnet(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 56
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// rendezvousScore is weight / -ln(u) for u uniform in (0,1) drawn from a
// hash of subnet and member: the weighted rendezvous hashing of Schindelhauer
// and Schomaker. The hash is fixed (FNV-1a), so every dnslb host agrees.
func rendezvousScore(subnet netip.Prefix, m Member) float64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	sub := subnet.Addr().As16()
	for _, b := range sub {
		h = (h ^ uint64(b)) * prime
	}
	h = (h ^ uint64(subnet.Bits()&0xff)) * prime
	addr := m.Addr.As16()
	for _, b := range addr {
		h = (h ^ uint64(b)) * prime
	}
	x := mix64(h)
	u := (float64(x>>11) + 0.5) / (1 << 53) // in (0,1)
	w := m.Weight
	if w <= 0 {
		w = 1
	}
	return float64(w) / -math.Log(u)
}

// mix64 is the splitmix64 finalizer: FNV's low bits are weak on short keys.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
