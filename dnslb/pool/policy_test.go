package pool

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Policy
	}{
		{"", RoundRobin{}},
		{"round-robin", RoundRobin{}},
		{"weighted", Weighted{}},
		{"sticky", Sticky{}},
		{"first-healthy", FirstHealthy{}},
		{"least-loaded", LeastLoaded{}},
	} {
		got, err := ParsePolicy(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, p := range policies() {
		if got, err := ParsePolicy(p.String()); err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v: not its own name", p.String(), got, err)
		}
	}
	_, err := ParsePolicy("fewest-connections")
	if err == nil || !strings.Contains(err.Error(), `"fewest-connections" is not one of round-robin, weighted, sticky, first-healthy, least-loaded`) {
		t.Errorf("ParsePolicy of an unknown name: %v", err)
	}
}

// eligibleOf returns members and the indices of all of them.
func eligibleOf(weights ...int) ([]Member, []int) {
	var members []Member
	var idx []int
	for i, w := range weights {
		members = append(members, member(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}).String(), w, false))
		idx = append(idx, i)
	}
	return members, idx
}

func TestRoundRobinSchedule(t *testing.T) {
	members, idx := eligibleOf(5, 1, 1) // weights do not matter
	s := RoundRobin{}.schedule(members, idx)
	if s.slots != 3 || s.starts != nil || s.limit != 0 || s.rendezvous {
		t.Errorf("schedule %+v, want 3 slots, slot k starting at k, no limit", s)
	}
}

func TestWeightedSchedule(t *testing.T) {
	members, idx := eligibleOf(3, 1, 1)
	s := Weighted{}.schedule(members, idx)
	if want := []uint16{0, 1, 0, 2, 0}; s.slots != 5 || !slices.Equal(s.starts, want) || s.limit != 0 || s.rendezvous {
		t.Errorf("schedule %+v, want 5 slots starting at %v (smooth: a b a c a)", s, want)
	}
	// Past maxSchedule the weights are scaled down; every member keeps a
	// slot.
	members, idx = eligibleOf(10000, 10000, 10000, 10000, 10000, 10000, 10000, 1)
	s = Weighted{}.schedule(members, idx)
	if s.slots > maxSchedule || s.slots != len(s.starts) {
		t.Fatalf("%d slots (%d starts), want at most %d", s.slots, len(s.starts), maxSchedule)
	}
	for k := range idx {
		if !slices.Contains(s.starts, uint16(k)) {
			t.Errorf("member %d has no slot after scaling", k)
		}
	}
}

func TestStickySchedule(t *testing.T) {
	members, idx := eligibleOf(1, 1, 1, 1)
	s := Sticky{}.schedule(members, idx)
	if s.slots != 0 || s.starts != nil || !s.rendezvous {
		t.Fatalf("schedule %+v, want per client (no slots, an order by client)", s)
	}
	order := func(client string) []int {
		buf := slices.Clone(idx)
		subnet, _ := Sticky{}.Subnet(netip.MustParseAddr(client), netip.Prefix{})
		sortRendezvous(buf, members, subnet)
		return buf
	}
	a, b := order("198.51.100.7"), order("198.51.100.200") // one /24
	if !slices.Equal(a, b) {
		t.Errorf("one subnet, two orders: %v and %v", a, b)
	}
	if sorted := slices.Sorted(slices.Values(a)); !slices.Equal(sorted, idx) {
		t.Errorf("order %v is not a permutation of %v", a, idx)
	}
	firsts := map[int]bool{}
	for i := range 64 {
		firsts[order(netip.AddrFrom4([4]byte{203, 0, byte(i), 1}).String())[0]] = true
	}
	if len(firsts) < 2 {
		t.Errorf("64 subnets all lead with member %v", firsts)
	}
}

func TestFirstHealthySchedule(t *testing.T) {
	members, idx := eligibleOf(1, 5, 1)
	s := FirstHealthy{}.schedule(members, idx)
	if s.slots != 1 || s.starts != nil || s.limit != 1 || s.rendezvous {
		t.Errorf("schedule %+v, want one slot and one record", s)
	}
}

// TestNoPolicyRotates: a Pool built without a policy rotates, as
// round-robin does.
func TestNoPolicyRotates(t *testing.T) {
	p := newPool(nil, member("192.0.2.1", 1, false), member("192.0.2.2", 1, false))
	var firsts []string
	for range 4 {
		got, _ := p.Select(nil, dns.TypeA, downSet{}, 1, client)
		firsts = append(firsts, addrs(got)[0])
	}
	if !slices.Equal(firsts, []string{"192.0.2.2", "192.0.2.1", "192.0.2.2", "192.0.2.1"}) &&
		!slices.Equal(firsts, []string{"192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.2"}) {
		t.Errorf("first records %v, want alternating", firsts)
	}
}

// TestSelectAllocatesNothing: no policy allocates on the answer path.
func TestSelectAllocatesNothing(t *testing.T) {
	for _, pol := range policies() {
		p := newPool(pol, member("192.0.2.1", 3, false), member("192.0.2.2", 1, false), member("192.0.2.3", 1, false))
		dst := make([]dns.RR, 0, 8)
		h := downSet{"192.0.2.3": true}
		p.Select(dst, dns.TypeA, h, 1, client) // builds the plan
		if n := testing.AllocsPerRun(100, func() { dst, _ = p.Select(dst[:0], dns.TypeA, h, 1, client) }); n != 0 {
			t.Errorf("%s: %v allocations per answer", pol, n)
		}
	}
}

// TestStickySubnet: the unit of stickiness is the ECS subnet truncated to
// the pool's prefix (never longer than the source), else the resolver's
// address truncated to it.
func TestStickySubnet(t *testing.T) {
	resolver := netip.MustParseAddr("192.0.2.77")
	for _, tc := range []struct {
		name    string
		sticky  Sticky
		ecs     string // "": none
		want    string
		fromECS bool
	}{
		{"no ECS: the resolver's /24", Sticky{}, "", "192.0.2.0/24", false},
		{"ECS /32", Sticky{}, "198.51.100.7/32", "198.51.100.0/24", true},
		{"ECS /24", Sticky{}, "198.51.100.0/24", "198.51.100.0/24", true},
		{"ECS /20: not longer than the source", Sticky{}, "198.51.96.0/20", "198.51.96.0/20", true},
		{"ECS v6 /64", Sticky{}, "2001:db8:1:2::/64", "2001:db8:1::/56", true},
		{"prefix 16", Sticky{IPv4Prefix: 16}, "198.51.100.7/32", "198.51.0.0/16", true},
		{"prefix 16, resolver", Sticky{IPv4Prefix: 16}, "", "192.0.0.0/16", false},
		{"v6 prefix 48", Sticky{IPv6Prefix: 48}, "2001:db8:1:2::/64", "2001:db8:1::/48", true},
		{"ECS ignored", Sticky{IgnoreECS: true}, "198.51.100.7/32", "192.0.2.0/24", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ecs netip.Prefix
			if tc.ecs != "" {
				ecs = netip.MustParsePrefix(tc.ecs)
			}
			got, fromECS := tc.sticky.Subnet(resolver, ecs)
			if got.String() != tc.want || fromECS != tc.fromECS {
				t.Errorf("Subnet = %s, %v; want %s, %v", got, fromECS, tc.want, tc.fromECS)
			}
		})
	}
	if got, _ := (Sticky{}).Subnet(netip.MustParseAddr("::ffff:192.0.2.9"), netip.Prefix{}); got.String() != "192.0.2.0/24" {
		t.Errorf("a v4-mapped resolver: %s, want its IPv4 /24", got)
	}
}
