package answer

import (
	"sync/atomic"

	"github.com/miekg/dns"
)

// countedTypes are the qtypes with a label of their own; others are "other".
var countedTypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeNS, dns.TypeSOA, dns.TypeMX,
	dns.TypeTXT, dns.TypeSRV, dns.TypePTR, dns.TypeCAA, dns.TypeDS, dns.TypeDNSKEY,
	dns.TypeHTTPS, dns.TypeSVCB, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR,
}

const nTypes = 18  // countedTypes + other
const nRcodes = 18 // 0-16 (16 = BADVERS) + other

func typeIndex(t uint16) int {
	for i, c := range countedTypes {
		if c == t {
			return i
		}
	}
	return nTypes - 1
}

func typeLabel(i int) string {
	if i < len(countedTypes) {
		return dns.TypeToString[countedTypes[i]]
	}
	return "other"
}

func rcodeIndex(rc int) int {
	if rc >= 0 && rc < nRcodes-1 {
		return rc
	}
	return nRcodes - 1
}

func rcodeLabel(i int) string {
	if i < nRcodes-1 {
		if s, ok := dns.RcodeToString[i]; ok {
			return s
		}
	}
	return "other"
}

// counterStripes spreads the counters every answer bumps over separate
// cache lines: cores answering at once would otherwise take turns owning
// one line (answers on two cores ran slower than on one). The stripe is
// picked by the query's ID, which clients randomise.
const counterStripes = 8

// stripeOf returns the stripe for a query with the given ID.
func stripeOf(id uint16) int { return int(id) & (counterStripes - 1) }

// paddedCounter is a counter alone on its cache line.
type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

// ZoneCounters counts queries of one zone by qtype and rcode.
type ZoneCounters struct {
	c [counterStripes][nTypes][nRcodes]atomic.Uint64
}

// Count adds one query, in stripe (see stripeOf).
func (z *ZoneCounters) Count(stripe int, qtype uint16, rcode int) {
	if z != nil {
		z.c[stripe&(counterStripes-1)][typeIndex(qtype)][rcodeIndex(rcode)].Add(1)
	}
}

// total returns the count of type index t and rcode index r.
func (z *ZoneCounters) total(t, r int) uint64 {
	var n uint64
	for i := range z.c {
		n += z.c[i][t][r].Load()
	}
	return n
}

// Each calls fn with every qtype and rcode label counted and its count,
// skipping zeros, in a fixed order: for a metrics collector.
func (z *ZoneCounters) Each(fn func(qtype, rcode string, n uint64)) {
	for t := range nTypes {
		for r := range nRcodes {
			if n := z.total(t, r); n > 0 {
				fn(typeLabel(t), rcodeLabel(r), n)
			}
		}
	}
}
