package dnssec

import (
	"slices"

	"github.com/miekg/dns"
)

// Compact denial of existence (RFC 9824) answers a query for a name that
// does not exist as if the name existed with no data: one NSEC record at
// the query name whose next name is the name's immediate successor
// ("\000.qname"), so that it covers no other name, needs no zone walk to
// build and reveals nothing of the zone. Its type bitmap holds the
// NXNAME meta-type to tell a nonexistent name apart from an empty one.
//
// What this package implements, and what the caller does:
//   - CompactNXDOMAIN builds the NSEC for a nonexistent name, CompactNoData
//     the one for a name that exists without the queried type (and, with
//     no types, for an empty non-terminal).
//   - The response code is NOERROR by default, as RFC 9824 specifies.
//     When the query asks for it with the CO ("Compact Answers OK") EDNS
//     flag and DO (WantsCompactRcode), the caller answers NXDOMAIN instead
//     and sets CO in the response's OPT record.
//   - A query for type NXNAME itself is answered with FORMERR
//     (RFC 9824 3.5); that is the caller's.
//   - The NSEC TTL should be the minimum of the SOA TTL and SOA MINIMUM
//     field (RFC 9077); the caller passes it.

// TypeNXNAME is the meta-type of RFC 9824 that marks a nonexistent name
// in a compact NSEC bitmap.
const TypeNXNAME uint16 = 128

// COFlag is the "Compact Answers OK" bit of the EDNS header flags
// (RFC 9824), next to DO (0x8000), in the low 16 bits of the OPT TTL.
const COFlag = 0x4000

// WantsCompactRcode reports whether the query asks for NXDOMAIN to be
// restored in compact answers: CO and DO both set (CO means nothing
// without DNSSEC records).
func WantsCompactRcode(opt *dns.OPT) bool {
	return opt != nil && opt.Do() && opt.Hdr.Ttl&COFlag != 0
}

// immediateSuccessor is the next name in canonical order (RFC 4034 6.1):
// the name with a zero-octet label prepended.
func immediateSuccessor(name string) string {
	return `\000.` + dns.Fqdn(name)
}

func compactNSEC(qname string, ttl uint32, types []uint16) *dns.NSEC {
	bm := append([]uint16{dns.TypeNSEC, dns.TypeRRSIG}, types...)
	slices.Sort(bm)
	bm = slices.Compact(bm)
	return &dns.NSEC{
		Hdr:        dns.RR_Header{Name: dns.Fqdn(qname), Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
		NextDomain: immediateSuccessor(qname),
		TypeBitMap: bm,
	}
}

// CompactNXDOMAIN is the NSEC denying that qname exists: bitmap
// {RRSIG, NSEC, NXNAME}. Sign it like any RRset.
func CompactNXDOMAIN(qname string, ttl uint32) *dns.NSEC {
	return compactNSEC(qname, ttl, []uint16{TypeNXNAME})
}

// CompactNoData is the NSEC denying that qname has the queried type: the
// bitmap lists types, those that qname has (the queried type must not be
// among them), plus RRSIG and NSEC. With no types it is the answer for an
// empty non-terminal.
func CompactNoData(qname string, types []uint16, ttl uint32) *dns.NSEC {
	ts := slices.DeleteFunc(slices.Clone(types), func(t uint16) bool { return t == TypeNXNAME })
	return compactNSEC(qname, ttl, ts)
}
