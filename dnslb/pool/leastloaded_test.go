package pool

import (
	"testing"

	"github.com/miekg/dns"
)

// loaded is a Health with live weights by address (absent: no reports),
// every member eligible.
type loaded map[string]int

func (loaded) Eligible(*Member) bool { return true }
func (loaded) Drained(*Member) bool  { return false }
func (loaded) Failing(*Member) bool  { return false }
func (l loaded) LiveWeight(m *Member) (int, bool) {
	w, ok := l[m.Addr.String()]
	return w, ok
}

// firstShares counts, over every slot of the A plan under h, which
// member each answer starts with.
func firstShares(t *testing.T, p *Pool, h Health, gen uint64) map[string]int {
	t.Helper()
	pl := p.Plan(dns.TypeA, h, gen)
	got := map[string]int{}
	for slot := range pl.Slots() {
		got[addrs(pl.Records(nil, slot, client, 0))[0]]++
	}
	return got
}

func TestLeastLoadedShares(t *testing.T) {
	members := []Member{member("192.0.2.1", 4, false), member("192.0.2.2", 4, false), member("192.0.2.3", 2, false)}
	tests := []struct {
		name string
		h    Health
		want map[string]int // first answers over all slots
	}{
		{"no load source: weighted", downSet{}, map[string]int{"192.0.2.1": 4, "192.0.2.2": 4, "192.0.2.3": 2}},
		{"no reports: weighted", loaded{}, map[string]int{"192.0.2.1": 4, "192.0.2.2": 4, "192.0.2.3": 2}},
		{"free capacity 1:4", loaded{"192.0.2.1": 1, "192.0.2.2": 4}, map[string]int{"192.0.2.1": 1, "192.0.2.2": 4, "192.0.2.3": 2}},
		{"zero while eligible counts as 1", loaded{"192.0.2.1": 0, "192.0.2.2": 3, "192.0.2.3": 3}, map[string]int{"192.0.2.1": 1, "192.0.2.2": 3, "192.0.2.3": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := firstShares(t, newPool(LeastLoaded{}, members...), tt.h, 1)
			if len(got) != len(tt.want) {
				t.Fatalf("first answers %v, want %v", got, tt.want)
			}
			for a, n := range tt.want {
				if got[a] != n {
					t.Errorf("first answers %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
	// Weighted ignores live weights: only least-loaded follows them.
	got := firstShares(t, newPool(Weighted{}, members...), loaded{"192.0.2.1": 1}, 1)
	if got["192.0.2.1"] != 4 {
		t.Errorf("weighted under live weights: %v, want the configured 4:4:2", got)
	}
}

// A plan follows live weights only when the health generation changes:
// answering under the same generation reads the plan built for it.
func TestLeastLoadedPlanPerGeneration(t *testing.T) {
	p := newPool(LeastLoaded{}, member("192.0.2.1", 1, false), member("192.0.2.2", 1, false))
	h := loaded{"192.0.2.1": 1, "192.0.2.2": 4}
	pl := p.Plan(dns.TypeA, h, 7)
	h["192.0.2.1"] = 4
	if p.Plan(dns.TypeA, h, 7) != pl {
		t.Fatal("the same generation built a new plan")
	}
	if got := firstShares(t, p, h, 8); got["192.0.2.1"] != 4 || got["192.0.2.2"] != 4 {
		t.Errorf("a new generation: %v, want 4:4", got)
	}
}
