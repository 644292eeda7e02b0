package answer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestZoneCountersEach: Each reports every qtype and rcode counted, summed
// over the stripes, under the labels the queries metric uses (a qtype or
// rcode without one of its own is "other"), and nothing that was not.
func TestZoneCountersEach(t *testing.T) {
	var z ZoneCounters
	z.Count(0, dns.TypeA, dns.RcodeSuccess)
	z.Count(3, dns.TypeA, dns.RcodeSuccess) // another stripe, the same count
	z.Count(counterStripes+1, dns.TypeAAAA, dns.RcodeNameError)
	z.Count(1, dns.TypeNULL, 23) // neither has a label of its own
	var got []string
	z.Each(func(qtype, rcode string, n uint64) { got = append(got, fmt.Sprintf("%s/%s=%d", qtype, rcode, n)) })
	if want := "A/NOERROR=2 AAAA/NXDOMAIN=1 other/other=1"; strings.Join(got, " ") != want {
		t.Errorf("Each: %s, want %s", strings.Join(got, " "), want)
	}
	var none *ZoneCounters
	none.Count(0, dns.TypeA, 0) // a view without counters: not counted, no panic
}
