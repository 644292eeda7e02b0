package answer

import (
	"slices"
	"strings"

	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// ZoneSigner signs one zone's answers as they are made (online signing):
// pool answers change with health, so no signature can be made ahead.
type ZoneSigner interface {
	// Sign returns the RRSIGs of one RRset, whatever the order of its
	// records: a pool's rotations of one set share their signatures.
	Sign(rrset []dns.RR) ([]dns.RR, error)
	// Keys returns the apex's DNSKEY, CDS or CDNSKEY RRset (by qtype),
	// nil for none.
	Keys(qtype uint16) []dns.RR
	// MaxTTL is the longest TTL it signs: key retirement is timed by it.
	// Longer ones are cut to it in signed replies.
	MaxTTL() uint32
}

// flagCO is the EDNS header flag "Compact Answers OK" (RFC 9824): the
// client takes a compact denial with the NXDOMAIN rcode restored.
const flagCO = 0x4000

// TypeNXNAME is the type bit of a compact denial that says the name does
// not exist (RFC 9824).
const TypeNXNAME = 128

// isKeyType reports the apex key RRsets a signed zone serves from its
// keys rather than from its file.
func isKeyType(t uint16) bool {
	return t == dns.TypeDNSKEY || t == dns.TypeCDS || t == dns.TypeCDNSKEY
}

// answerKeys answers DNSKEY, CDS and CDNSKEY at a signed zone's apex.
func (a *Authority) answerKeys(r *reply, q *query, zone *zones.Zone, s ZoneSigner) {
	r.m.Authoritative = q.qclass != dns.ClassANY
	if keys := s.Keys(q.qtype); len(keys) > 0 {
		r.m.Answer = append(r.m.Answer, keys...)
		return
	}
	r.m.Ns = append(r.m.Ns, negativeSOA(zone))
}

// signReply adds the RRSIGs and the denial of existence a DNSSEC client
// (DO) needs to r, for every signed zone r's records are from. Denial is
// compact (RFC 9824): one NSEC at the name, made for the reply ("black
// lies"), so no zone walk is possible and nothing is precomputed; an
// NXDOMAIN is answered NOERROR with the NXNAME bit unless the client set
// CO. A signing failure is SERVFAIL: an unsigned answer from a signed zone
// is bogus anyway.
func (a *Authority) signReply(r *reply, q *query, view *View) {
	if q.co && r.opt != nil {
		r.opt.Hdr.Ttl |= flagCO
	}
	var err error
	if r.m.Answer, err = signSection(r.m.Answer, view); err != nil {
		a.signFailed(r)
		return
	}
	if len(r.m.Ns) == 0 {
		return
	}
	var ns []dns.RR
	switch soa, isSOA := r.m.Ns[0].(*dns.SOA); {
	case isSOA:
		z := view.Zones.Zone(zones.CanonicalName(soa.Hdr.Name))
		s := view.Signers[z]
		if z == nil || s == nil {
			return
		}
		name := zones.CanonicalName(q.name)
		for _, rr := range r.m.Answer {
			if c, ok := rr.(*dns.CNAME); ok {
				name = zones.CanonicalName(c.Target) // the denial is of the chain's end
			}
		}
		var types []uint16
		if r.m.Rcode == dns.RcodeNameError {
			types = []uint16{TypeNXNAME}
			if !q.co {
				r.m.Rcode = dns.RcodeSuccess
			}
		} else {
			// The types the name has, less the one asked (its absence
			// is what is proved; a pool with no member to answer has
			// its A records, not in the answer).
			for _, t := range z.Types(name) {
				if t != q.qtype && t != dns.TypeRRSIG && t != dns.TypeNSEC {
					types = append(types, t)
				}
			}
		}
		nsec := &dns.NSEC{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: soa.Hdr.Ttl},
			NextDomain: "\\000." + name, TypeBitMap: bitmap(append(types, dns.TypeRRSIG, dns.TypeNSEC))}
		ns = append(r.m.Ns, nsec)
	case !r.m.Authoritative && r.m.Ns[0].Header().Rrtype == dns.TypeNS:
		// A referral: the cut's NS is not signed; its DS is, or an NSEC
		// proves there is none (an insecure delegation).
		owner := zones.CanonicalName(r.m.Ns[0].Header().Name)
		z := zoneFor(view.Zones, owner, dns.TypeDS)
		if z == nil || view.Signers[z] == nil {
			return
		}
		ns = r.m.Ns[:len(r.m.Ns):len(r.m.Ns)]
		if ds := z.RRset(owner, dns.TypeDS); len(ds) > 0 {
			ns = append(ns, ds...)
		} else {
			ns = append(ns, &dns.NSEC{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: z.NegativeTTL()},
				NextDomain: "\\000." + owner, TypeBitMap: []uint16{dns.TypeNS, dns.TypeRRSIG, dns.TypeNSEC}})
		}
		if r.m.Ns, err = signSection(ns, view, dns.TypeNS); err != nil {
			a.signFailed(r)
		}
		return
	default:
		ns = r.m.Ns
	}
	if r.m.Ns, err = signSection(ns, view); err != nil {
		a.signFailed(r)
	}
}

// signSection returns rrs with the RRSIGs of each of its RRsets of a
// signed zone after it; types in skip are left unsigned.
func signSection(rrs []dns.RR, view *View, skip ...uint16) ([]dns.RR, error) {
	if len(rrs) == 0 {
		return rrs, nil
	}
	out := make([]dns.RR, 0, 2*len(rrs))
	for i := 0; i < len(rrs); {
		h := rrs[i].Header()
		j := i + 1
		for j < len(rrs) && rrs[j].Header().Rrtype == h.Rrtype && strings.EqualFold(rrs[j].Header().Name, h.Name) {
			j++
		}
		set := rrs[i:j:j]
		i = j
		var s ZoneSigner
		if h.Rrtype != dns.TypeRRSIG && !slices.Contains(skip, h.Rrtype) {
			s = view.Signers[zoneFor(view.Zones, zones.CanonicalName(h.Name), h.Rrtype)]
		}
		if s == nil {
			out = append(out, set...)
			continue
		}
		if max := s.MaxTTL(); h.Ttl > max {
			// Copies: the records are the zone's.
			set = slices.Clone(set)
			for k, rr := range set {
				set[k] = dns.Copy(rr)
				set[k].Header().Ttl = max
			}
		}
		out = append(out, set...)
		sigs, err := s.Sign(set)
		if err != nil {
			return nil, err
		}
		out = append(out, sigs...)
	}
	return out, nil
}

// signFailed turns r into SERVFAIL with EDE DNSSEC Bogus: what it held
// cannot be proven.
func (a *Authority) signFailed(r *reply) {
	r.m.Answer, r.m.Ns, r.m.Extra = nil, nil, nil
	r.m.Rcode = dns.RcodeServerFailure
	r.ede(dns.ExtendedErrorCodeDNSBogus)
	r.fast, r.fill = nil, nil
}

// bitmap sorts and dedupes types for an NSEC type bitmap.
func bitmap(types []uint16) []uint16 {
	slices.Sort(types)
	return slices.Compact(types)
}
