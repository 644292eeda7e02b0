package zones

import (
	"github.com/miekg/dns"
)

// Zone is one loaded, validated zone. It is immutable once built: lookups
// return records the zone owns, and callers must copy before changing any.
type Zone struct {
	// Origin is the zone's apex, canonical (lower case, fully qualified).
	Origin string
	// File is the zone file it was loaded from, as shown in messages.
	File string
	// SOA is the apex SOA record.
	SOA *dns.SOA
	// Warnings lists problems that did not stop the zone from loading.
	Warnings []*Error
	// Files lists the files read: the zone file, then its $INCLUDEs, as
	// shown in messages.
	Files []string
	// Digest is a hash of the files' bytes: equal digests, same content.
	Digest [32]byte

	// A zone of a million names keeps a million of each of the following:
	// they are laid out as few, flat arrays rather than one allocation per
	// name or RRset.
	nodes nodeIndex
	// sets holds the nodes' RRsets: those of node n are
	// sets[n.first:n.first+n.nsets].
	sets []rrset
	// rrs holds the records in file order; an RRset written in one run of
	// lines is a window on it.
	rrs []dns.RR
	// extra holds the records of the other RRsets, and of the apex SOA
	// (which WithSerial replaces).
	extra    [][]dns.RR
	nrecords int
}

// node is one owner name. A node without RRsets is an empty non-terminal:
// it exists, so names below it turn NXDOMAIN into NODATA.
type node struct {
	name  string
	first uint32 // where its RRsets start in Zone.sets
	nsets uint16
	// cut marks a delegation point: a name below the apex that owns NS.
	cut bool
}

// rrset is the records of one type at one name: rrs[at:at+n] of the zone,
// or, with inExtra, extra[at].
type rrset struct {
	typ     uint16
	inExtra bool
	at      uint32
	n       uint32
}

// find returns the node named name (canonical), or nil.
func (z *Zone) find(name string) *node {
	i := z.nodes.find(name)
	if i < 0 {
		return nil
	}
	return z.at(i)
}

// at returns the node at position i of the index. The apex is at 0.
func (z *Zone) at(i int) *node { return &z.nodes.nodes[i] }

// setsOf returns n's RRsets.
func (z *Zone) setsOf(n *node) []rrset {
	return z.sets[n.first : n.first+uint32(n.nsets)]
}

// records returns the records of s.
func (z *Zone) records(s rrset) []dns.RR {
	if s.inExtra {
		e := z.extra[s.at]
		return e[:len(e):len(e)]
	}
	// Capped, so that appending to an answer never writes into the zone.
	return z.rrs[s.at : s.at+s.n : s.at+s.n]
}

// get returns n's records of type t, or nil.
func (z *Zone) get(n *node, t uint16) []dns.RR {
	for _, s := range z.setsOf(n) {
		if s.typ == t {
			return z.records(s)
		}
	}
	return nil
}

// Records returns the number of resource records in the zone.
func (z *Zone) Records() int { return z.nrecords }

// WithSerial returns a copy of the zone whose SOA has another serial; the
// records are shared. For `serial: auto`, before the zone is published.
func (z *Zone) WithSerial(serial uint32) *Zone {
	c := *z
	soa := *z.SOA
	soa.Serial = serial
	c.SOA = &soa
	// Only the SOA's records differ, and they are in extra (see finish):
	// the nodes, RRsets and other records are shared.
	c.extra = append([][]dns.RR(nil), z.extra...)
	for _, s := range z.setsOf(z.at(0)) {
		if s.typ == dns.TypeSOA {
			c.extra[s.at] = []dns.RR{&soa}
		}
	}
	return &c
}

// Serial returns the SOA serial.
func (z *Zone) Serial() uint32 { return z.SOA.Serial }

// NegativeTTL is the TTL of the SOA placed in negative answers:
// min(SOA TTL, SOA minimum), RFC 2308 section 5.
func (z *Zone) NegativeTTL() uint32 {
	return min(z.SOA.Hdr.Ttl, z.SOA.Minttl)
}

// RRset returns the records of the given type at an exact, canonical owner
// name, or nil. It does no wildcard or CNAME processing.
func (z *Zone) RRset(name string, qtype uint16) []dns.RR {
	n := z.find(name)
	if n == nil {
		return nil
	}
	return z.get(n, qtype)
}

// All returns every record of the zone, apex SOA first, in no other
// particular order. The records are the zone's own: do not modify them.
func (z *Zone) All() []dns.RR {
	out := make([]dns.RR, 0, z.nrecords)
	out = append(out, z.SOA)
	for i := range z.nodes.len() {
		n := z.at(i)
		for _, s := range z.setsOf(n) {
			if s.typ == dns.TypeSOA && n.name == z.Origin {
				continue
			}
			out = append(out, z.records(s)...)
		}
	}
	return out
}

// Types returns the types of the RRsets at an exact, canonical owner name
// (none for an empty non-terminal or a name not in the zone), for the
// type bitmap of a denial of existence.
func (z *Zone) Types(name string) []uint16 {
	n := z.find(name)
	if n == nil {
		return nil
	}
	sets := z.setsOf(n)
	out := make([]uint16, 0, len(sets))
	for _, s := range sets {
		out = append(out, s.typ)
	}
	return out
}
