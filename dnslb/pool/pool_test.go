package pool

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/miekg/dns"
)

// downSet is a Health where the listed addresses are down ("ADDR": true),
// by their checks unless an operator took them out ("ADDR drained" or
// "ADDR forced": true, with "ADDR": true too).
type downSet map[string]bool

func (d downSet) Eligible(m *Member) bool { return !d[m.Addr.String()] }
func (d downSet) Drained(m *Member) bool  { return d[m.Addr.String()+" drained"] }
func (d downSet) Failing(m *Member) bool {
	a := m.Addr.String()
	return d[a] && !d[a+" drained"] && !d[a+" forced"]
}

func member(addr string, weight int, backup bool) Member {
	a := netip.MustParseAddr(addr)
	var rr dns.RR
	if a.Is4() {
		rr = &dns.A{Hdr: dns.RR_Header{Name: "www.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: a.AsSlice()}
	} else {
		rr = &dns.AAAA{Hdr: dns.RR_Header{Name: "www.example.test.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 30}, AAAA: a.AsSlice()}
	}
	return Member{Addr: a, RR: rr, Weight: weight, Backup: backup, Checked: true,
		Target: healthcheck.TargetKey{Check: "tcp", Addr: netip.AddrPortFrom(a, 80)}}
}

func addrs(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		switch r := rr.(type) {
		case *dns.A:
			out[i] = r.A.String()
		case *dns.AAAA:
			out[i] = r.AAAA.String()
		}
	}
	return out
}

func newPool(policy Policy, members ...Member) *Pool {
	p := &Pool{Name: "www.example.test.", Policy: policy}
	for _, m := range members {
		if m.Addr.Is4() {
			p.V4 = append(p.V4, m)
		} else {
			p.V6 = append(p.V6, m)
		}
	}
	return p
}

var client = netip.MustParseAddr("198.51.100.7")

func TestFilterAndFallback(t *testing.T) {
	members := []Member{member("192.0.2.1", 1, false), member("192.0.2.2", 1, false), member("192.0.2.9", 1, true)}
	tests := []struct {
		name    string
		mode    AllDown
		down    downSet
		want    []string
		empty   bool
		ordered bool
	}{
		{name: "all healthy: primaries only", down: downSet{}, want: []string{"192.0.2.1", "192.0.2.2"}},
		{name: "one down", down: downSet{"192.0.2.1": true}, want: []string{"192.0.2.2"}},
		{name: "all down, fail open", mode: FailOpen, down: downSet{"192.0.2.1": true, "192.0.2.2": true}, want: []string{"192.0.2.1", "192.0.2.2"}},
		{name: "all down, backup", mode: Backups, down: downSet{"192.0.2.1": true, "192.0.2.2": true}, want: []string{"192.0.2.9"}},
		{name: "all down incl. backup, backup mode fails open", mode: Backups, down: downSet{"192.0.2.1": true, "192.0.2.2": true, "192.0.2.9": true}, want: []string{"192.0.2.1", "192.0.2.2"}},
		{name: "all down, drained stays out when failing open", mode: FailOpen, down: downSet{"192.0.2.1": true, "192.0.2.2": true, "192.0.2.1 drained": true}, want: []string{"192.0.2.2"}},
		{name: "all drained: fail open to all", mode: FailOpen, down: downSet{"192.0.2.1": true, "192.0.2.2": true, "192.0.2.1 drained": true, "192.0.2.2 drained": true}, want: []string{"192.0.2.1", "192.0.2.2"}},
		{name: "all down, empty", mode: Empty, down: downSet{"192.0.2.1": true, "192.0.2.2": true}, empty: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(FirstHealthy{}, members...)
			p.MaxAnswers = 10
			p.WhenAllDown = tc.mode
			got, empty := p.Select(nil, dns.TypeA, tc.down, 1, client)
			if empty != tc.empty {
				t.Fatalf("empty = %v, want %v", empty, tc.empty)
			}
			if fmt.Sprint(addrs(got)) != fmt.Sprint(tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("got %v, want %v", addrs(got), tc.want)
			}
		})
	}
}

// TestFallback: a pool reports its when_all_down fallback exactly when no
// primary member of the family is eligible, whatever the policy and mode,
// and its answers then are the fallback's (the backups, all members, or
// NODATA); otherwise only eligible primaries are answered.
func TestFallback(t *testing.T) {
	members := []Member{member("192.0.2.1", 1, false), member("192.0.2.2", 2, false), member("192.0.2.9", 1, true),
		member("2001:db8::1", 1, false)}
	primaries := []string{"192.0.2.1", "192.0.2.2"}
	tests := []struct {
		name     string
		down     downSet
		fallback bool
	}{
		{name: "all healthy", down: downSet{}},
		{name: "one primary down", down: downSet{"192.0.2.1": true}},
		{name: "backup down, primaries up", down: downSet{"192.0.2.9": true}},
		{name: "every primary down", down: downSet{"192.0.2.1": true, "192.0.2.2": true}, fallback: true},
		{name: "everything down", down: downSet{"192.0.2.1": true, "192.0.2.2": true, "192.0.2.9": true}, fallback: true},
		// Not eligible because drained: the same rule as down.
		{name: "every primary drained", down: downSet{"192.0.2.1": true, "192.0.2.2": true,
			"192.0.2.1 drained": true, "192.0.2.2 drained": true}, fallback: true},
	}
	for _, policy := range []Policy{RoundRobin{}, Weighted{}, Sticky{}, FirstHealthy{}} {
		for _, mode := range []AllDown{FailOpen, Backups, Empty} {
			for _, tc := range tests {
				t.Run(fmt.Sprintf("%s/%s/%s", policy, mode, tc.name), func(t *testing.T) {
					p := newPool(policy, members...)
					p.WhenAllDown = mode
					answers, fallback := p.Fallback(dns.TypeA, tc.down)
					if fallback != tc.fallback {
						t.Errorf("Fallback(A) = %v, want %v", fallback, tc.fallback)
					}
					// What it answers: the mode, except that backup with
					// no backup up fails open.
					wantAnswers := mode
					if mode == Backups && tc.down["192.0.2.9"] {
						wantAnswers = FailOpen
					}
					if fallback && answers != wantAnswers {
						t.Errorf("Fallback(A) answers %s, want %s", answers, wantAnswers)
					}
					// The IPv6 member is up: that family answers normally.
					if _, fb := p.Fallback(dns.TypeAAAA, tc.down); fb {
						t.Error("Fallback(AAAA) with its only member up")
					}
					got, empty := p.Select(nil, dns.TypeA, tc.down, 1, client)
					answered := addrs(got)
					switch {
					case !tc.fallback:
						for _, a := range answered {
							if tc.down[a] || !slices.Contains(primaries, a) {
								t.Errorf("not in fallback, but answered %v (down: %v)", answered, tc.down)
							}
						}
						if empty || len(answered) == 0 {
							t.Errorf("not in fallback, but answered nothing")
						}
					case mode == Empty:
						if !empty {
							t.Errorf("fallback empty answered %v, want NODATA", answered)
						}
					case answers == Backups:
						if fmt.Sprint(answered) != "[192.0.2.9]" {
							t.Errorf("fallback backup answered %v, want the backup", answered)
						}
					default:
						if empty || len(answered) == 0 {
							t.Errorf("fallback %s answered nothing", mode)
						}
					}
				})
			}
		}
	}
}

// TestFallbackPerFamily: each family is judged on its own members; a
// family without members is never in fallback.
func TestFallbackPerFamily(t *testing.T) {
	in := func(p *Pool, qtype uint16, h Health) bool {
		_, ok := p.Fallback(qtype, h)
		return ok
	}
	p := newPool(RoundRobin{}, member("192.0.2.1", 1, false), member("2001:db8::1", 1, false))
	down := downSet{"2001:db8::1": true}
	if in(p, dns.TypeA, down) || !in(p, dns.TypeAAAA, down) {
		t.Errorf("AAAA member down: Fallback(A) = %v, Fallback(AAAA) = %v; want false, true",
			in(p, dns.TypeA, down), in(p, dns.TypeAAAA, down))
	}
	v4 := newPool(RoundRobin{}, member("192.0.2.1", 1, false))
	if in(v4, dns.TypeAAAA, downSet{"192.0.2.1": true}) {
		t.Error("Fallback(AAAA) of a pool without AAAA members")
	}
	if !in(v4, dns.TypeA, downSet{"192.0.2.1": true}) {
		t.Error("Fallback(A) with the only member down")
	}
	// Unchecked members are always up: never in fallback by health.
	m := member("192.0.2.5", 1, false)
	m.Checked = false
	static := newPool(RoundRobin{}, m)
	if in(static, dns.TypeA, Checks{Snapshot: nil}) {
		t.Error("a static pool reports fallback")
	}
}

func TestRoundRobinRotates(t *testing.T) {
	p := newPool(RoundRobin{}, member("192.0.2.1", 1, false), member("192.0.2.2", 1, false), member("192.0.2.3", 1, false))
	first := map[string]int{}
	for range 300 {
		got, _ := p.Select(nil, dns.TypeA, downSet{}, 1, client)
		if len(got) != 3 {
			t.Fatalf("got %d records", len(got))
		}
		first[addrs(got)[0]]++
	}
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if first[a] != 100 {
			t.Errorf("%s first %d times of 300, want 100", a, first[a])
		}
	}
}

func TestWeightedProportionsAndSmoothness(t *testing.T) {
	p := newPool(Weighted{}, member("192.0.2.1", 3, false), member("192.0.2.2", 1, false), member("192.0.2.3", 1, false))
	first := map[string]int{}
	var seq []string
	for i := range 10000 {
		got, _ := p.Select(nil, dns.TypeA, downSet{}, 7, client)
		if len(got) != 3 {
			t.Fatalf("got %d records", len(got))
		}
		first[addrs(got)[0]]++
		if i < 5 {
			seq = append(seq, addrs(got)[0])
		}
	}
	for a, want := range map[string]float64{"192.0.2.1": 0.6, "192.0.2.2": 0.2, "192.0.2.3": 0.2} {
		if share := float64(first[a]) / 10000; math.Abs(share-want) > 0.01 {
			t.Errorf("%s first in %.3f of answers, want %.2f", a, share, want)
		}
	}
	// Smooth: the heavy member never leads three times in a row.
	run := 0
	for _, a := range seq {
		if a == "192.0.2.1" {
			run++
		} else {
			run = 0
		}
		if run >= 3 {
			t.Errorf("bursty sequence %v", seq)
		}
	}
	// A member going down: the schedule follows the new health generation.
	first = map[string]int{}
	for range 1000 {
		got, _ := p.Select(nil, dns.TypeA, downSet{"192.0.2.1": true}, 8, client)
		first[addrs(got)[0]]++
	}
	if first["192.0.2.1"] != 0 || first["192.0.2.2"] != 500 || first["192.0.2.3"] != 500 {
		t.Errorf("after 192.0.2.1 went down: %v", first)
	}
}

func TestStickyIsStableAndMovesMinimally(t *testing.T) {
	p := newPool(Sticky{}, member("192.0.2.1", 1, false), member("192.0.2.2", 1, false), member("192.0.2.3", 1, false), member("192.0.2.4", 1, false))
	p.MaxAnswers = 1
	before := map[netip.Addr]string{}
	counts := map[string]int{}
	for i := range 2000 {
		c := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		got, _ := p.Select(nil, dns.TypeA, downSet{}, 1, c)
		before[c] = addrs(got)[0]
		counts[addrs(got)[0]]++
		again, _ := p.Select(nil, dns.TypeA, downSet{}, 1, c.Next()) // same /24
		if addrs(again)[0] != addrs(got)[0] {
			t.Fatalf("client %v and %v (same /24) got different members", c, c.Next())
		}
	}
	for a, n := range counts {
		if n < 350 || n > 650 {
			t.Errorf("%s got %d of 2000 subnets; want about 500", a, n)
		}
	}
	moved := 0
	for c, was := range before {
		got, _ := p.Select(nil, dns.TypeA, downSet{"192.0.2.2": true}, 2, c)
		now := addrs(got)[0]
		if was != "192.0.2.2" && now != was {
			moved++
		}
		if now == "192.0.2.2" {
			t.Fatal("down member answered")
		}
	}
	if moved != 0 {
		t.Errorf("%d subnets moved although their member stayed up", moved)
	}
}

func TestFirstHealthyAndCap(t *testing.T) {
	p := newPool(FirstHealthy{}, member("192.0.2.1", 1, false), member("192.0.2.2", 1, false), member("192.0.2.3", 1, false))
	got, _ := p.Select(nil, dns.TypeA, downSet{}, 1, client)
	if fmt.Sprint(addrs(got)) != "[192.0.2.1]" {
		t.Errorf("first-healthy = %v", addrs(got))
	}
	got, _ = p.Select(nil, dns.TypeA, downSet{"192.0.2.1": true}, 2, client)
	if fmt.Sprint(addrs(got)) != "[192.0.2.2]" {
		t.Errorf("first-healthy after failure = %v", addrs(got))
	}
	p.Policy, p.MaxAnswers = RoundRobin{}, 2
	got, _ = p.Select(nil, dns.TypeA, downSet{}, 1, client)
	if len(got) != 2 {
		t.Errorf("max_answers 2 gave %d", len(got))
	}
}

func TestFamiliesAreSeparate(t *testing.T) {
	p := newPool(RoundRobin{}, member("192.0.2.1", 1, false), member("2001:db8::1", 1, false))
	got, _ := p.Select(nil, dns.TypeAAAA, downSet{}, 1, client)
	if fmt.Sprint(addrs(got)) != "[2001:db8::1]" {
		t.Errorf("AAAA = %v", addrs(got))
	}
	got, _ = p.Select(nil, dns.TypeAAAA, downSet{"2001:db8::1": true}, 2, client)
	if fmt.Sprint(addrs(got)) != "[2001:db8::1]" { // fail open within the family
		t.Errorf("AAAA all down = %v", addrs(got))
	}
}

func TestSelectNeverReordersMembers(t *testing.T) {
	for _, pol := range []Policy{RoundRobin{}, Weighted{}, Sticky{}, FirstHealthy{}} {
		p := newPool(pol, member("192.0.2.1", 2, false), member("192.0.2.2", 1, false), member("192.0.2.3", 1, false))
		for i := range 50 {
			p.Select(nil, dns.TypeA, downSet{}, 1, netip.AddrFrom4([4]byte{10, 0, byte(i), 1}))
		}
		if got := fmt.Sprint(addrs([]dns.RR{p.V4[0].RR, p.V4[1].RR, p.V4[2].RR})); got != "[192.0.2.1 192.0.2.2 192.0.2.3]" {
			t.Errorf("%v reordered the members: %s", pol, got)
		}
	}
}

func TestUncheckedMembersAreUp(t *testing.T) {
	m := member("192.0.2.1", 1, false)
	m.Checked = false
	p := newPool(RoundRobin{}, m)
	var snap *healthcheck.Snapshot
	got, _ := p.Select(nil, dns.TypeA, Checks{Snapshot: snap}, 1, client)
	if len(got) != 1 {
		t.Fatal("unchecked member filtered")
	}
}

func BenchmarkSelect(b *testing.B) {
	for _, pol := range []Policy{RoundRobin{}, Weighted{}, Sticky{}, FirstHealthy{}} {
		b.Run(pol.String(), func(b *testing.B) {
			p := newPool(pol, member("192.0.2.1", 3, false), member("192.0.2.2", 1, false), member("192.0.2.3", 1, false), member("192.0.2.4", 1, true))
			dst := make([]dns.RR, 0, 8)
			h := Checks{}
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = p.Select(dst[:0], dns.TypeA, h, 1, client)
			}
		})
	}
}

// TestLeadCountsTheFirstRecord checks that the lead a cache hit counts for
// a slot is the member that slot's answer starts with, for every policy
// that caches by slot, with members down and a cap on answers.
func TestLeadCountsTheFirstRecord(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		max    int
		down   downSet
	}{
		{"round-robin", RoundRobin{}, 0, downSet{}},
		{"round-robin, one down, cap 2", RoundRobin{}, 2, downSet{"192.0.2.2": true}},
		{"weighted", Weighted{}, 0, downSet{}},
		{"weighted, one down", Weighted{}, 1, downSet{"192.0.2.1": true}},
		{"first-healthy", FirstHealthy{}, 0, downSet{"192.0.2.1": true}},
		{"all down: fail open", RoundRobin{}, 0, downSet{"192.0.2.1": true, "192.0.2.2": true, "192.0.2.3": true, "192.0.2.4": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(tc.policy, member("192.0.2.1", 3, false), member("192.0.2.2", 1, false),
				member("192.0.2.3", 2, false), member("192.0.2.4", 1, false))
			p.MaxAnswers = tc.max
			var leads [4]LeadCounter
			for i := range p.V4 {
				p.V4[i].Leads = &leads[i]
			}
			pl := p.Plan(dns.TypeA, tc.down, 1)
			if pl.Slots() == 0 {
				t.Fatal("no slots")
			}
			for slot := range pl.Slots() {
				leads = [4]LeadCounter{}
				pl.Lead(slot, slot)
				first := addrs(pl.Records(nil, slot, client, slot+1))[0]
				for i := range leads {
					want := uint64(0)
					if p.V4[i].Addr.String() == first {
						want = 2 // Records counted it too
					}
					if got := leads[i].Load(); got != want {
						t.Errorf("slot %d (answer starts with %s): %s led %d times, want %d", slot, first, p.V4[i].Addr, got, want)
					}
				}
			}
		})
	}
}

// TestRotationPerClientGroup interleaves the queries of many clients. A
// client alone in its rotation group sees the members come first in turn
// whatever the clients of other groups ask in between (with one counter
// for the pool, any other client's query shifts it); over all clients the
// members' shares are even.
func TestRotationPerClientGroup(t *testing.T) {
	p := newPool(RoundRobin{}, member("192.0.2.1", 1, false), member("192.0.2.2", 1, false), member("192.0.2.3", 1, false))
	var clients []netip.Addr
	for i := range 200 {
		clients = append(clients,
			netip.AddrFrom4([4]byte{198, 51, byte(i / 256), byte(i)}),
			netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::53", i)))
	}
	alone := map[int]netip.Addr{} // one client per group: the only one of it that asks
	for _, c := range clients {
		if _, ok := alone[rotationGroup(c)]; !ok {
			alone[rotationGroup(c)] = c
		}
	}
	if len(alone) != rotationGroups {
		t.Fatalf("the clients fill %d of %d groups", len(alone), rotationGroups)
	}
	last := map[netip.Addr]string{}
	for round := range 30 {
		for _, c := range alone {
			got, _ := p.Select(nil, dns.TypeA, downSet{}, 1, c)
			lead := addrs(got)[0]
			if round > 0 && lead == last[c] {
				t.Fatalf("round %d: client %s got %s first twice in a row", round, c, lead)
			}
			last[c] = lead
		}
	}

	first := map[string]int{}
	for range 30 {
		for _, c := range clients {
			got, _ := p.Select(nil, dns.TypeA, downSet{}, 1, c)
			first[addrs(got)[0]]++
		}
	}
	total := 30 * len(clients)
	for a, n := range first {
		if share := float64(n) / float64(total); math.Abs(share-1.0/3) > 0.01 {
			t.Errorf("%s first in %.3f of answers from %d clients, want 1/3", a, share, len(clients))
		}
	}
}

// TestRotationGroupsSpread checks that the clients of one network use
// every rotation counter, and that a query without a client address uses
// the first.
func TestRotationGroupsSpread(t *testing.T) {
	for _, prefix := range []string{"192.0.2.0/24", "2001:db8::/120"} {
		seen := map[int]int{}
		for a := netip.MustParsePrefix(prefix).Addr(); netip.MustParsePrefix(prefix).Contains(a); a = a.Next() {
			seen[rotationGroup(a)]++
		}
		if len(seen) != rotationGroups {
			t.Errorf("%s: %d of %d groups used: %v", prefix, len(seen), rotationGroups, seen)
		}
		for g, n := range seen {
			if n < 256/rotationGroups/2 {
				t.Errorf("%s: group %d has %d of 256 addresses", prefix, g, n)
			}
		}
	}
	if g := rotationGroup(netip.Addr{}); g != 0 {
		t.Errorf("no address: group %d, want 0", g)
	}
}

// TestAnswersDoNotGrowWithWeight: a weighted plan has a slot per unit of
// weight, but only as many distinct answers as eligible members; every
// slot's records are those of its Answer, whatever the policy.
func TestAnswersDoNotGrowWithWeight(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		max    int
		down   downSet
		want   int // distinct answers
	}{
		{"weighted 125 each", Weighted{}, 0, downSet{}, 8},
		{"weighted, cap 2, one down", Weighted{}, 2, downSet{"192.0.2.3": true}, 7},
		{"round-robin", RoundRobin{}, 0, downSet{}, 8},
		{"first-healthy", FirstHealthy{}, 0, downSet{"192.0.2.1": true}, 1},
		{"sticky: per client", Sticky{}, 0, downSet{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ms []Member
			for i := range 8 {
				ms = append(ms, member(fmt.Sprintf("192.0.2.%d", i+1), 125+i, false))
			}
			p := newPool(tc.policy, ms...)
			p.MaxAnswers = tc.max
			pl := p.Plan(dns.TypeA, tc.down, 1)
			if got := pl.Answers(); got != tc.want {
				t.Fatalf("Answers() = %d, want %d (slots %d)", got, tc.want, pl.Slots())
			}
			if tc.want == 0 {
				return
			}
			seen := map[int]string{}
			for slot := range pl.Slots() {
				a := pl.Answer(slot)
				if a < 0 || a >= pl.Answers() {
					t.Fatalf("slot %d: Answer %d outside 0-%d", slot, a, pl.Answers()-1)
				}
				got := strings.Join(addrs(pl.Records(nil, slot, client, 0)), " ")
				if prev, ok := seen[a]; ok && prev != got {
					t.Fatalf("slot %d: answer %d is %q, another slot's was %q", slot, a, got, prev)
				}
				seen[a] = got
			}
			if len(seen) != tc.want {
				t.Errorf("%d distinct answers used, want %d", len(seen), tc.want)
			}
		})
	}
}
