package dnssec

import (
	"encoding/base32"
	"slices"
	"strings"

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

// nsec3Hash is the NSEC3 hash of the white lies: SHA-1, no salt, no
// extra iterations (RFC 9276).
func nsec3Hash(name string) []byte {
	b, _ := nsec3Encoding.DecodeString(dns.HashName(name, dns.SHA1, 0, ""))
	return b
}

var nsec3Encoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// nsec3Record is an NSEC3 from owner hash to next hash.
func nsec3Record(origin string, owner, next []byte, ttl uint32, types []uint16) *dns.NSEC3 {
	return &dns.NSEC3{Hdr: dns.RR_Header{Name: strings.ToLower(nsec3Encoding.EncodeToString(owner)) + "." + origin, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: ttl},
		Hash: dns.SHA1, HashLength: uint8(len(next)), NextDomain: nsec3Encoding.EncodeToString(next), TypeBitMap: sortedTypes(types)}
}

// NSEC3Match is the NSEC3 white lie matching name: its hash to the hash after it, listing types
// (RRSIG added).
func NSEC3Match(origin, name string, ttl uint32, types []uint16) *dns.NSEC3 {
	h := nsec3Hash(name)
	return nsec3Record(origin, h, addOne(h, 1), ttl, append(slices.Clone(types), dns.TypeRRSIG))
}

// NSEC3Cover is the white lie covering name's hash and nothing else: from the hash before
// it to the one after (a white lie).
func NSEC3Cover(origin, name string, ttl uint32) *dns.NSEC3 {
	h := nsec3Hash(name)
	return nsec3Record(origin, addOne(h, -1), addOne(h, 1), ttl, nil)
}

// addOne returns b plus or minus one, as a big-endian number (wrapping).
func addOne(b []byte, delta int) []byte {
	out := slices.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		if delta > 0 {
			out[i]++
			if out[i] != 0 {
				break
			}
		} else {
			out[i]--
			if out[i] != 0xff {
				break
			}
		}
	}
	return out
}

// sortedTypes is types sorted and without repeats, as a bitmap lists them.
func sortedTypes(types []uint16) []uint16 {
	out := slices.Clone(types)
	slices.Sort(out)
	return slices.Compact(out)
}
