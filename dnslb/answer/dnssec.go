package answer

import (
	"maps"
	"slices"
	"strings"

	"github.com/dnslb/dnslb/dnslb/dnssec"
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
	// NSEC3 says denial is by NSEC3 white lies (RFC 7129 appendix B)
	// instead of compact NSEC.
	NSEC3() bool
}

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
		r.opt.Hdr.Ttl |= dnssec.COFlag
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
		s := view.SignerOf(z)
		if z == nil || s == nil {
			return
		}
		name := zones.CanonicalName(q.name)
		for _, rr := range r.m.Answer {
			if c, ok := rr.(*dns.CNAME); ok {
				name = zones.CanonicalName(c.Target) // the denial is of the chain's end
			}
		}
		if s.NSEC3() {
			ns = append(r.m.Ns, nsec3Denial(z, name, q.qtype, r.m.Rcode == dns.RcodeNameError, soa.Hdr.Ttl)...)
			break
		}
		var nsec *dns.NSEC
		if r.m.Rcode == dns.RcodeNameError {
			nsec = dnssec.CompactNXDOMAIN(name, soa.Hdr.Ttl)
			if !q.co {
				r.m.Rcode = dns.RcodeSuccess
			}
		} else {
			// The types the name has, less the one asked (its absence
			// is what is proved; a pool with no member to answer has
			// its A records, not in the answer).
			nsec = dnssec.CompactNoData(name, typesBut(z, name, q.qtype), soa.Hdr.Ttl)
		}
		ns = append(r.m.Ns, nsec)
	case !r.m.Authoritative && r.m.Ns[0].Header().Rrtype == dns.TypeNS:
		// A referral: the cut's NS is not signed; its DS is, or an NSEC
		// proves there is none (an insecure delegation).
		owner := zones.CanonicalName(r.m.Ns[0].Header().Name)
		z := zoneFor(view.Zones, owner, dns.TypeDS)
		if view.SignerOf(z) == nil {
			return
		}
		ns = r.m.Ns[:len(r.m.Ns):len(r.m.Ns)]
		if ds := z.RRset(owner, dns.TypeDS); len(ds) > 0 {
			ns = append(ns, ds...)
		} else if view.SignerOf(z).NSEC3() {
			ns = append(ns, dnssec.NSEC3Match(z.Origin, owner, z.NegativeTTL(), []uint16{dns.TypeNS}))
		} else {
			ns = append(ns, dnssec.CompactNoData(owner, []uint16{dns.TypeNS}, z.NegativeTTL()))
		}
		if r.m.Ns, err = signSection(ns, view); err != nil {
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
// signed zone after it.
func signSection(rrs []dns.RR, view *View) ([]dns.RR, error) {
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
		if h.Rrtype != dns.TypeRRSIG {
			owner := zones.CanonicalName(h.Name)
			z := zoneFor(view.Zones, owner, h.Rrtype)
			// NS is signed at a zone's apex only: at a cut it is the
			// child's (a CNAME into a delegation carries it too).
			if z != nil && (h.Rrtype != dns.TypeNS || owner == z.Origin) {
				s = view.SignerOf(z)
			}
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

// signZone turns the records of a full zone transfer (SOA, the zone, SOA)
// into the signed zone a secondary can serve as it is: the apex keys
// added, an NSEC chain over the names in canonical order (RFC 4034 6.1),
// and every authoritative RRset signed, delegation NS and glue excepted.
// Online answers prove denial with compact NSECs; a secondary has only
// what it is given, so it gets a real chain.
func signZone(rrs []dns.RR, origin string, s ZoneSigner) ([]dns.RR, error) {
	if len(rrs) < 2 || rrs[0].Header().Rrtype != dns.TypeSOA {
		return rrs, nil
	}
	soa := rrs[0].(*dns.SOA)
	body := rrs[1 : len(rrs)-1]
	maxTTL := s.MaxTTL()
	sets := map[string]map[uint16][]dns.RR{}
	add := func(rr dns.RR) {
		if rr.Header().Rrtype == dns.TypeRRSIG || rr.Header().Rrtype == dns.TypeNSEC {
			return // the zone's own, if any: made here instead
		}
		if rr.Header().Ttl > maxTTL {
			rr = dns.Copy(rr)
			rr.Header().Ttl = maxTTL
		}
		name := zones.CanonicalName(rr.Header().Name)
		if sets[name] == nil {
			sets[name] = map[uint16][]dns.RR{}
		}
		sets[name][rr.Header().Rrtype] = append(sets[name][rr.Header().Rrtype], rr)
	}
	add(soa)
	for _, rr := range body {
		add(rr)
	}
	// The apex keys are the signer's, as online answers give them.
	for _, t := range []uint16{dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY} {
		if keys := s.Keys(t); keys != nil {
			sets[origin][t] = keys
		} else {
			delete(sets[origin], t)
		}
	}
	cut := func(name string) bool { return name != origin && sets[name][dns.TypeNS] != nil }
	occluded := func(name string) bool {
		for n := name; n != origin; {
			i := strings.IndexByte(n, '.')
			if i < 0 || i == len(n)-1 {
				return false
			}
			n = n[i+1:]
			if cut(n) {
				return true
			}
		}
		return false
	}
	var names []string
	for name := range sets {
		if !occluded(name) {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, canonicalCompare)
	negTTL := min(soa.Hdr.Ttl, soa.Minttl)
	out := make([]dns.RR, 0, 3*len(body)+4)
	var apexSOA []dns.RR
	for i, name := range names {
		types := []uint16{dns.TypeRRSIG, dns.TypeNSEC}
		for t := range sets[name] {
			types = append(types, t)
		}
		// Each type is there once: the name's, and RRSIG and NSEC, which
		// add drops from the zone's records.
		nsec := &dns.NSEC{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: negTTL},
			NextDomain: names[(i+1)%len(names)], TypeBitMap: slices.Sorted(slices.Values(types))}
		sets[name][dns.TypeNSEC] = []dns.RR{nsec}
		for _, t := range slices.Sorted(maps.Keys(sets[name])) {
			set := sets[name][t]
			if name == origin && t == dns.TypeSOA {
				sigs, err := s.Sign(set)
				if err != nil {
					return nil, err
				}
				apexSOA = append(set, sigs...)
				continue
			}
			out = append(out, set...)
			if cut(name) && t == dns.TypeNS {
				continue // the child's to sign
			}
			sigs, err := s.Sign(set)
			if err != nil {
				return nil, err
			}
			out = append(out, sigs...)
		}
	}
	// Glue under the cuts, unsigned, after the chain.
	for name, byType := range sets {
		if occluded(name) {
			for _, t := range slices.Sorted(maps.Keys(byType)) {
				out = append(out, byType[t]...)
			}
		}
	}
	return append(append(apexSOA, out...), rrs[len(rrs)-1]), nil
}

// canonicalCompare orders names as RFC 4034 6.1 does: by their labels
// from the right, each compared as lower-case bytes.
func canonicalCompare(a, b string) int {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

// nsec3Denial proves that name has no qtype (NODATA: an NSEC3 matching
// it) or does not exist (NXDOMAIN: the closest encloser proof of RFC 5155
// 7.2.2: a match of the closest encloser, and covers of the next closer
// name and of the wildcard at the encloser), with white lies: each cover
// spans one hash, so nothing about the zone's other names is told.
func nsec3Denial(z *zones.Zone, name string, qtype uint16, nx bool, ttl uint32) []dns.RR {
	origin := z.Origin
	if !nx {
		return []dns.RR{dnssec.NSEC3Match(origin, name, ttl, typesBut(z, name, qtype))}
	}
	ce, next := origin, name
	for n := name; n != origin; {
		i := strings.IndexByte(n, '.')
		if i < 0 || i == len(n)-1 {
			break
		}
		parent := n[i+1:]
		if parent == origin || z.Lookup(parent, dns.TypeA).Kind != zones.NXDomain {
			ce, next = parent, n
			break
		}
		n = parent
	}
	return []dns.RR{
		dnssec.NSEC3Match(origin, ce, ttl, typesAt(z, ce)),
		dnssec.NSEC3Cover(origin, next, ttl),
		dnssec.NSEC3Cover(origin, "*."+ce, ttl),
	}
}

// typesBut is typesAt without qtype: the types a NODATA for qtype lists.
func typesBut(z *zones.Zone, name string, qtype uint16) []uint16 {
	return slices.DeleteFunc(typesAt(z, name), func(t uint16) bool {
		return t == qtype || t == dns.TypeRRSIG || t == dns.TypeNSEC
	})
}

// typesAt is the types at name for a denial's bitmap: the zone's, and at
// the apex the DNSKEY set, which the signer serves.
func typesAt(z *zones.Zone, name string) []uint16 {
	types := slices.Clone(z.Types(name))
	if name == z.Origin {
		types = append(types, dns.TypeDNSKEY)
	}
	return types
}
