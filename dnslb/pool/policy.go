package pool

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// Policy orders the eligible members of a pool. Each policy is a type of
// its own (RoundRobin, Weighted, Sticky, FirstHealthy); a plan asks its
// policy for a schedule once, when the plan is built, and answering then
// reads only the schedule: a cached answer makes no call through this
// interface. The set is closed (the method is unexported): a new policy
// is a new type here, with its tests.
type Policy interface {
	// String is the policy's name in the config.
	String() string
	// schedule returns how a plan walks members[i] for i in idx: the
	// family's eligible members in zone order, at least one.
	schedule(members []Member, idx []int) schedule
}

// schedule is a plan's walk over its eligible members. Slot k of slots
// answers them starting at position starts[k] (k itself without starts),
// the rest following in zone order and wrapping around, capped at limit;
// or, with rendezvous, in the client's rendezvous order.
type schedule struct {
	// slots is the number of slots the rotation walks; 0: the answer
	// depends on the client (rendezvous) and cannot be cached by slot.
	slots int
	// starts maps a slot to the position, among the eligible members, of
	// the one its answer starts with (nil: slot k starts at k). There are
	// at most as many distinct answers as eligible members however many
	// slots there are.
	starts []uint16
	// limit caps the records per answer when the pool sets no max_answers
	// (0: none).
	limit int
	// rendezvous orders the eligible members for each client by weighted
	// rendezvous hashing of its subnet (sortRendezvous) instead of
	// rotating them. A flag, not a func: a call through a func value would
	// make the answer path's stack buffer escape to the heap. sticky is
	// the policy that says what a client's subnet is.
	rendezvous bool
	sticky     Sticky
}

// policies are the policies in the order the config documents them, the
// default first. A function, not a table: no package state.
func policies() []Policy {
	return []Policy{RoundRobin{}, Weighted{}, Sticky{}, FirstHealthy{}, LeastLoaded{}}
}

// ParsePolicy reads a policy name as written in the config ("" is
// round-robin).
func ParsePolicy(s string) (Policy, error) {
	all := policies()
	if s == "" {
		return all[0], nil
	}
	names := make([]string, len(all))
	for i, p := range all {
		if p.String() == s {
			return p, nil
		}
		names[i] = p.String()
	}
	return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
}

// RoundRobin rotates the eligible members on every answer: slot k starts
// with the k-th.
type RoundRobin struct{}

func (RoundRobin) String() string { return "round-robin" }

func (RoundRobin) schedule(_ []Member, idx []int) schedule { return schedule{slots: len(idx)} }

// Weighted picks the first record by smooth weighted round-robin, the
// rest following: one slot per unit of weight (scaled down past
// maxSchedule), interleaved (3:1:1 gives a b a c a).
type Weighted struct{}

func (Weighted) String() string { return "weighted" }

func (Weighted) schedule(members []Member, idx []int) schedule {
	seq := smoothWeighted(members, idx)
	return schedule{slots: len(seq), starts: seq}
}

// Sticky orders the eligible members by weighted rendezvous hashing of the
// client's subnet, so a client network keeps its member while it is
// eligible. The subnet is the EDNS Client Subnet (RFC 7871) of the query
// when it carries one, truncated to the prefix, else the resolver's
// address truncated to it. Its answers depend on the client: not cached
// by slot (the answer path caches them by subnet; see Subnet).
type Sticky struct {
	// IPv4Prefix and IPv6Prefix are the prefix lengths of a subnet (0:
	// DefaultStickyIPv4Prefix, DefaultStickyIPv6Prefix).
	IPv4Prefix, IPv6Prefix int
	// IgnoreECS hashes the resolver's address even when the query
	// carries a client subnet (the config's sticky.ecs: false).
	IgnoreECS bool
}

// The prefixes of a sticky subnet unless the pool sets them: what ECS
// conventionally carries (RFC 7871 section 11.1).
const (
	DefaultStickyIPv4Prefix = 24
	DefaultStickyIPv6Prefix = 56
)

func (Sticky) String() string { return "sticky" }

func (s Sticky) schedule([]Member, []int) schedule { return schedule{rendezvous: true, sticky: s} }

// Subnet is the unit of stickiness for a query from resolver that
// carries the client subnet ecs (the zero Prefix: none, or a source
// prefix of 0, which asks for no tailoring): ecs truncated to the
// family's prefix, unless the policy ignores ECS; else the resolver's
// address truncated to it. fromECS says the answer depends on the ECS
// subnet: its length is then the reply's SCOPE PREFIX-LENGTH, never
// longer than the source prefix.
func (s Sticky) Subnet(resolver netip.Addr, ecs netip.Prefix) (subnet netip.Prefix, fromECS bool) {
	if ecs.IsValid() && ecs.Bits() > 0 && !s.IgnoreECS {
		p, err := ecs.Addr().Prefix(min(ecs.Bits(), s.bits(ecs.Addr().Is4())))
		if err == nil {
			return p, true
		}
	}
	a := resolver.Unmap()
	p, err := a.Prefix(s.bits(a.Is4()))
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, false
}

// bits is the prefix length of a subnet of the family.
func (s Sticky) bits(v4 bool) int {
	switch {
	case v4 && s.IPv4Prefix > 0:
		return s.IPv4Prefix
	case v4:
		return DefaultStickyIPv4Prefix
	case s.IPv6Prefix > 0:
		return s.IPv6Prefix
	}
	return DefaultStickyIPv6Prefix
}

// FirstHealthy answers the first eligible member in zone order (ordered
// failover): one slot, one record unless the pool sets max_answers.
type FirstHealthy struct{}

func (FirstHealthy) String() string { return "first-healthy" }

func (FirstHealthy) schedule([]Member, []int) schedule { return schedule{slots: 1, limit: 1} }

// maxSchedule bounds a weighted schedule's length; weights are scaled
// down past it.
const maxSchedule = 1 << 16

// smoothWeighted returns a precomputed smooth weighted round-robin sequence
// over the eligible members idx: positions into idx, length = sum of
// weights. Walking it with an atomic counter gives the same spread as the
// classic stateful algorithm without a lock on the query path.
func smoothWeighted(members []Member, idx []int) []uint16 {
	weights := make([]int, len(idx))
	for k, i := range idx {
		weights[k] = members[i].Weight
	}
	return smoothSequence(weights)
}

// smoothSequence is smoothWeighted over weights (one per eligible member;
// below 1 counts as 1). It scales weights in place.
func smoothSequence(weights []int) []uint16 {
	total := 0
	for k, w := range weights {
		w = max(w, 1)
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
	return seq
}

// sortRendezvous orders idx by weighted rendezvous (highest random weight)
// hashing of the client's subnet: each subnet sees a stable order, and when
// a member leaves only the subnets that had it first move.
func sortRendezvous(idx []int, members []Member, subnet netip.Prefix) {
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
