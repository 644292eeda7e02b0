package integration

// Slow start end to end (issue 15): a member its agent brings back from
// drain ramps its share over slow_start instead of taking it at once.

import (
	"fmt"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

func TestSlowStartRamp(t *testing.T) {
	const a1, a2 = "127.0.0.23", "127.0.0.24"
	port := freePort(t)
	ag1 := startLoadAgent(t, fmt.Sprintf("%s:%d", a1, port), "up")
	startLoadAgent(t, fmt.Sprintf("%s:%d", a2, port), "up")
	const interval = 200 * time.Millisecond
	addr := startPoolDNSLB(t, fmt.Sprintf(`www IN A %s
www IN A %s
`, a1, a2), fmt.Sprintf(`  www.example.test.:
    policy: weighted
    ttl: 5
    slow_start: 6s
    load: {type: agent, port: %d, interval: %s}
`, port, interval))

	const n = 1000
	// Not at start: both lead half.
	dnstest.Eventually(t, 10*time.Second, "equal shares at start", func() (bool, string) {
		got := firstShares(t, addr, "www.example.test.", n)
		return sharesNear(got, map[string]float64{a1: 50, a2: 50}, 3), fmt.Sprint(got)
	})
	ag1.set("drain")
	waitAnswerSet(t, addr, "www.example.test.", dns.TypeA, 10*time.Second, a2)
	ag1.set("ready")
	// The first answers a1 leads after it is back: about 1/11 (10 % of an
	// equal weight), then more, up to half.
	var samples []float64
	dnstest.Eventually(t, 30*time.Second, "a1 back to half the first answers", func() (bool, string) {
		s := firstShares(t, addr, "www.example.test.", n)[a1]
		samples = append(samples, s)
		return s >= 47, fmt.Sprintf("a1's shares so far %v", samples)
	})
	t.Logf("a1's shares after ready: %v", samples)
	between := false
	for _, s := range samples {
		between = between || (s > 15 && s < 40)
	}
	if k := firstBack(samples); k < 0 || samples[k] > 15 || !between {
		t.Errorf("a1's shares after ready %v: want a start near 9 %%, then steps between 15 and 40 %%, not a jump", samples)
	}
}

// firstBack is the index of the first sample in which the member led any
// answer (-1: none).
func firstBack(samples []float64) int {
	for k, s := range samples {
		if s > 0 {
			return k
		}
	}
	return -1
}
