package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// TestPoolWatchCrashedBackendLeavesAtOnce: on the default check settings
// (only type and port: interval 2 s), a backend whose process dies (its
// listener and connections closed) leaves the answers within 1 s, well
// under the interval: the connection watch wakes an immediate probe.
// With watch: false most kills wait for the next probe (seen: 4 of 6 over
// 1 s, median 1.8 s).
func TestPoolWatchCrashedBackendLeavesAtOnce(t *testing.T) {
	be := startBackends(t, ip11, ip12, ip13)
	check := fmt.Sprintf("{type: http, port: %d}", be.Port) // watch: false fails it
	addr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
www IN A 127.0.0.13
`, fmt.Sprintf(`  www.example.test.:
    check: %s
`, check))
	const (
		interval = 2 * time.Second // the default
		bound    = time.Second
		kills    = 6
	)
	// Two checks each: the first one's watch is open.
	be.waitHits(t, 2, 3*interval+5*time.Second)
	h := startHammer(addr, "www.example.test.", dns.TypeA)
	defer func() {
		n, bad, sample := h.stop()
		t.Logf("background queries: %d, bad: %d", n, bad)
		if bad > 0 {
			t.Errorf("%d of %d background queries failed or were empty; e.g. %s", bad, n, sample)
		}
	}()

	var took []time.Duration
	for i := range kills {
		b := be.Backends[i%len(be.Backends)]
		t0 := time.Now()
		b.Stop()
		dnstest.Eventually(t, 3*interval+5*time.Second, b.ip+" leaves the answers", func() (bool, string) {
			got := poolAddrs(t, addr, "www.example.test", dns.TypeA)
			return !slices.Contains(got, b.ip), fmt.Sprint(got)
		})
		d := time.Since(t0)
		took = append(took, d)
		if d > bound {
			t.Errorf("kill %d: %s left the answers after %v, want within %v (interval %v)", i+1, b.ip, d, bound, interval)
		}
		b.Start(t)
		dnstest.Eventually(t, 3*interval+5*time.Second, b.ip+" returns", func() (bool, string) {
			got := poolAddrs(t, addr, "www.example.test", dns.TypeA)
			return slices.Contains(got, b.ip), fmt.Sprint(got)
		})
		// One more check after the return: the watch reopened after
		// the success that brought it back is in place.
		hits := b.Hits()
		dnstest.Eventually(t, interval+5*time.Second, b.ip+" checked again", func() (bool, string) {
			return b.Hits() > hits, fmt.Sprint(b.Hits())
		})
	}
	slices.Sort(took)
	t.Logf("crashed backend out of the answers after %d kills (interval %v): min %v, median %v, max %v",
		kills, interval, took[0].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond),
		took[len(took)-1].Round(time.Millisecond))
}
