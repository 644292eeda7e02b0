// Package xfr serves zone transfers out of dnslb: what each zone's
// transfer holds, who may have it, and the counting of transfers. The
// answer path (answer.Authority) parses, verifies and signs; it asks a
// Server, through the answer.Transfers interface, for the records.
package xfr

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// Rule is one entry of a zone's transfer ACL: a client in Prefix (any
// address when Prefix is not valid) whose request is signed with Key (a
// canonical key name; "" allows unsigned requests). A signed request
// matches a rule without a key too: the signature was verified, and the
// prefix alone allows the client.
type Rule struct {
	Prefix netip.Prefix
	Key    string
}

// Zone says how one zone is transferred.
type Zone struct {
	// Origin is the zone's apex, canonical.
	Origin string
	// Allow lists who may transfer the zone; empty refuses everyone.
	Allow []Rule
}

// Allowed reports whether a client at addr, signed with key ("" unsigned),
// may transfer the zone.
func (z *Zone) Allowed(addr netip.Addr, key string) bool {
	for _, r := range z.Allow {
		if r.Prefix.IsValid() && !r.Prefix.Contains(addr.Unmap()) {
			continue
		}
		if r.Key == "" || r.Key == key {
			return true
		}
	}
	return false
}

// Counter counts a finished or refused transfer: zone, type ("AXFR",
// "IXFR") and result ("ok", "refused", "failed").
type Counter func(zone, typ, result string)

// Server implements answer.Transfers for the zones being served. It is
// safe for concurrent use; Set swaps the zones in.
type Server struct {
	cur   atomic.Pointer[snapshot]
	count Counter
}

// snapshot is the zones being transferred, with their transfer settings.
type snapshot struct {
	zones map[string]*entry
}

type entry struct {
	cfg  Zone
	zone *zones.Zone
}

var _ answer.Transfers = (*Server)(nil)

// NewServer returns a server that transfers nothing until Set. count may
// be nil.
func NewServer(count Counter) *Server {
	if count == nil {
		count = func(string, string, string) {}
	}
	s := &Server{count: count}
	s.cur.Store(&snapshot{zones: map[string]*entry{}})
	return s
}

// Set makes the server transfer the zones of cfgs found in set (a zone
// without an entry in cfgs is refused to everyone).
func (s *Server) Set(set *zones.Set, cfgs []Zone) {
	snap := &snapshot{zones: map[string]*entry{}}
	for _, c := range cfgs {
		z := set.Zone(c.Origin)
		if z == nil {
			continue // failed to load at start: nothing to transfer
		}
		snap.zones[c.Origin] = &entry{cfg: c, zone: z}
	}
	s.cur.Store(snap)
}

// Transfer implements answer.Transfers.
func (s *Server) Transfer(r *answer.TransferRequest) ([]dns.RR, bool) {
	typ := dns.TypeToString[r.Type]
	e := s.cur.Load().zones[r.Zone]
	if e == nil || !e.cfg.Allowed(r.Remote, r.Key) {
		s.count(r.Zone, typ, "refused")
		return nil, false
	}
	z := e.zone
	if r.Type == dns.TypeIXFR && (!r.TCP || !serialLess(r.Serial, z.Serial())) {
		// Up to date (or newer), or over UDP: the current SOA alone.
		return []dns.RR{z.SOA}, true
	}
	return axfr(z), true
}

// Finished implements answer.Transfers.
func (s *Server) Finished(r *answer.TransferRequest, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	s.count(r.Zone, dns.TypeToString[r.Type], result)
}

// axfr is the records of a full transfer: the SOA, every other record, the
// SOA again (RFC 5936 2.2).
func axfr(z *zones.Zone) []dns.RR {
	all := z.All() // SOA first
	return append(all, z.SOA)
}

// serialLess compares serials with RFC 1982 arithmetic.
func serialLess(a, b uint32) bool { return a != b && (b-a) < 1<<31 }

// ParseRule reads the prefix of an allow entry: an address or a prefix;
// "" is any address.
func ParseRule(prefix, key string) (Rule, error) {
	r := Rule{Key: key}
	if key != "" {
		r.Key = dns.CanonicalName(key)
	}
	if prefix == "" {
		return r, nil
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		a, aerr := netip.ParseAddr(prefix)
		if aerr != nil {
			return r, fmt.Errorf("%q is not an address or prefix", prefix)
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	r.Prefix = p.Masked()
	return r, nil
}
