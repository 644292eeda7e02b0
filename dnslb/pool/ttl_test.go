package pool

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// withDegraded gives m a degraded copy of its record at ttl, as the pool
// builder does.
func withDegraded(m Member, ttl uint32) Member {
	m.Degraded = dns.Copy(m.RR)
	m.Degraded.Header().Ttl = ttl
	return m
}

// TestDegradedTTL: a family is degraded while one of its primary members
// is down by its checks, or it answers by its when_all_down fallback; its
// answers (and the NODATA of empty) then carry the degraded TTL. Drains and
// force-downs alone, and backups down behind healthy primaries, are not
// degraded.
func TestDegradedTTL(t *testing.T) {
	const ttl, degraded = 30, 5
	members := []Member{member("192.0.2.1", 1, false), member("192.0.2.2", 1, false), member("192.0.2.9", 1, true),
		member("2001:db8::1", 1, false), member("2001:db8::2", 1, false)}
	tests := []struct {
		name     string
		mode     AllDown
		down     downSet
		qtype    uint16
		degraded bool
		empty    bool
	}{
		{name: "healthy", down: downSet{}},
		{name: "one member down", down: downSet{"192.0.2.1": true}, degraded: true},
		{name: "drained only", down: downSet{"192.0.2.1": true, "192.0.2.1 drained": true}},
		{name: "forced down only", down: downSet{"192.0.2.1": true, "192.0.2.1 forced": true}},
		{name: "backup down behind healthy primaries", down: downSet{"192.0.2.9": true}},
		{name: "one drained, the other down", down: downSet{"192.0.2.1": true, "192.0.2.1 drained": true, "192.0.2.2": true}, degraded: true},
		{name: "all down, when_all_down all", mode: FailOpen, down: downSet{"192.0.2.1": true, "192.0.2.2": true}, degraded: true},
		{name: "all down, when_all_down backup", mode: Backups, down: downSet{"192.0.2.1": true, "192.0.2.2": true}, degraded: true},
		{name: "all down, when_all_down backup, backup down too", mode: Backups,
			down: downSet{"192.0.2.1": true, "192.0.2.2": true, "192.0.2.9": true}, degraded: true},
		{name: "all down, when_all_down empty", mode: Empty, down: downSet{"192.0.2.1": true, "192.0.2.2": true}, degraded: true, empty: true},
		// Every primary drained: in fallback, so degraded even though no
		// check failed (the operator will bring them back).
		{name: "all drained", mode: Backups, down: downSet{"192.0.2.1": true, "192.0.2.1 drained": true,
			"192.0.2.2": true, "192.0.2.2 drained": true}, degraded: true},
		{name: "AAAA down: A is not degraded", down: downSet{"2001:db8::1": true}, qtype: dns.TypeA},
		{name: "AAAA down: AAAA is degraded", down: downSet{"2001:db8::1": true}, qtype: dns.TypeAAAA, degraded: true},
		{name: "A down: AAAA is not degraded", down: downSet{"192.0.2.1": true}, qtype: dns.TypeAAAA},
	}
	for _, pol := range []Policy{RoundRobin{}, Weighted{}, Sticky{}, FirstHealthy{}} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/%s", pol, tc.name), func(t *testing.T) {
				p := newPool(pol)
				for _, m := range members {
					m = withDegraded(m, degraded)
					if m.Addr.Is4() {
						p.V4 = append(p.V4, m)
					} else {
						p.V6 = append(p.V6, m)
					}
				}
				p.TTL, p.TTLDegraded, p.WhenAllDown = ttl, degraded, tc.mode
				qtype := tc.qtype
				if qtype == 0 {
					qtype = dns.TypeA
				}
				pl := p.Plan(qtype, tc.down, 1)
				want := uint32(ttl)
				if tc.degraded {
					want = degraded
				}
				if pl.Degraded() != tc.degraded || pl.TTL() != want {
					t.Errorf("Degraded() = %v, TTL() = %d; want %v, %d", pl.Degraded(), pl.TTL(), tc.degraded, want)
				}
				if pl.Empty() != tc.empty {
					t.Fatalf("Empty() = %v, want %v", pl.Empty(), tc.empty)
				}
				if tc.empty {
					return // NODATA: the caller caps the SOA at TTL()
				}
				// Every slot's records carry the plan's TTL.
				for slot := range max(pl.Slots(), 3) {
					rrs := pl.Records(nil, slot, client, 0)
					if len(rrs) == 0 {
						t.Fatalf("slot %d: no records", slot)
					}
					for _, rr := range rrs {
						if rr.Header().Ttl != want {
							t.Errorf("slot %d: %s has TTL %d, want %d", slot, rr.Header().Name, rr.Header().Ttl, want)
						}
					}
				}
			})
		}
	}
}

// TestDegradedTTLBounds: the degraded TTL never exceeds the pool TTL, and a
// pool without one (0) keeps its TTL while degraded.
func TestDegradedTTLBounds(t *testing.T) {
	for _, tc := range []struct {
		ttl, degraded, want uint32
	}{
		{ttl: 30, degraded: 5, want: 5},
		{ttl: 3, degraded: 5, want: 3},
		{ttl: 30, degraded: 0, want: 30},
	} {
		p := newPool(RoundRobin{}, member("192.0.2.1", 1, false), member("192.0.2.2", 1, false))
		p.TTL, p.TTLDegraded = tc.ttl, tc.degraded
		if got := p.Plan(dns.TypeA, downSet{"192.0.2.1": true}, 1).TTL(); got != tc.want {
			t.Errorf("ttl %d, ttl_degraded %d: TTL() = %d, want %d", tc.ttl, tc.degraded, got, tc.want)
		}
		if got := p.Plan(dns.TypeA, downSet{}, 2).TTL(); got != tc.ttl {
			t.Errorf("ttl %d, ttl_degraded %d, healthy: TTL() = %d, want %d", tc.ttl, tc.degraded, got, tc.ttl)
		}
	}
}

// TestDegradedChecks: Checks (health checks alone) calls a member whose
// target is down failing, and one without checks never.
func TestDegradedChecks(t *testing.T) {
	m := member("192.0.2.1", 1, false)
	if (Checks{}).Failing(&m) {
		t.Error("failing with no snapshot (all up)")
	}
	m.Checked = false
	p := newPool(RoundRobin{}, m)
	if p.Plan(dns.TypeA, Checks{}, 1).Degraded() {
		t.Error("a pool without checks is degraded")
	}
}
