package healthcheck

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// TestLoadMaxStep: with MaxStep a report moves the live weight by at most
// that many points per interval; the first report, and an unbounded
// target, are taken at once.
func TestLoadMaxStep(t *testing.T) {
	tests := []struct {
		name    string
		maxStep int
		first   string
		then    string
		want    []int // live weight of a member configured 100, per interval after then
	}{
		{"down by 25 points", 25, "up 100%", "up 20%", []int{100, 75, 50, 25, 20, 20}},
		{"up by 25 points", 25, "up 10%", "up 90%", []int{10, 35, 60, 85, 90}},
		{"weight:N by 64 (25 % of 256)", 25, "weight:200", "weight:10", []int{200, 136, 72, 10}},
		{"unbounded", 0, "up 100%", "up 20%", []int{100, 20, 20}},
		{"switching to weight:N is at once", 25, "up 100%", "weight:3", []int{100, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				addr := netip.MustParseAddrPort("192.0.2.1:9777")
				sc := &script{}
				sc.set(tt.first)
				w := NewLoadWatcher(WithAgentProbe(sc.probe))
				w.Set([]LoadTarget{{Addr: addr, Interval: 2 * time.Second, MaxStep: tt.maxStep}})
				w.Start(t.Context())
				defer w.Close()
				synctest.Wait()
				live := func() int {
					l, _ := w.Snapshot().Get(addr)
					wt, _ := l.LiveWeight(100)
					return wt
				}
				var got []int
				got = append(got, live())
				sc.set(tt.then)
				for range len(tt.want) - 1 {
					time.Sleep(2 * time.Second)
					synctest.Wait()
					got = append(got, live())
				}
				if len(got) != len(tt.want) {
					t.Fatalf("live weights %v, want %v", got, tt.want)
				}
				for k := range got {
					if got[k] != tt.want[k] {
						t.Fatalf("live weights per interval %v, want %v", got, tt.want)
					}
				}
			})
		})
	}
}
