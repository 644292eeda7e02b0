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

	nodes   map[string]*node
	records int
}

// node holds the RRsets of one owner name. A node without RRsets is an
// empty non-terminal: it exists, so names below it turn NXDOMAIN into NODATA.
type node struct {
	name   string
	rrsets rrsetList
	// cut marks a delegation point: a name below the apex that owns NS.
	cut bool
}

// Records returns the number of resource records in the zone.
func (z *Zone) Records() int { return z.records }

// WithSerial returns a copy of the zone whose SOA has another serial; the
// records are shared. For `serial: auto`, before the zone is published.
func (z *Zone) WithSerial(serial uint32) *Zone {
	c := *z
	soa := *z.SOA
	soa.Serial = serial
	c.SOA = &soa
	apex := *c.nodes[z.Origin]
	apex.rrsets = append(rrsetList(nil), z.nodes[z.Origin].rrsets...)
	apex.rrsets.put(dns.TypeSOA, []dns.RR{&soa})
	c.nodes = make(map[string]*node, len(z.nodes))
	for k, n := range z.nodes {
		c.nodes[k] = n
	}
	c.nodes[z.Origin] = &apex
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
	n := z.nodes[name]
	if n == nil {
		return nil
	}
	return n.rrsets.get(qtype)
}

// All returns every record of the zone, apex SOA first, in no other
// particular order. The records are the zone's own: do not modify them.
func (z *Zone) All() []dns.RR {
	out := make([]dns.RR, 0, z.records)
	out = append(out, z.SOA)
	for _, n := range z.nodes {
		for _, s := range n.rrsets {
			if s.typ == dns.TypeSOA && n.name == z.Origin {
				continue
			}
			out = append(out, s.rrs...)
		}
	}
	return out
}

// rrset is the records of one type at one name.
type rrset struct {
	typ uint16
	rrs []dns.RR
}

// rrsetList holds a node's RRsets. Most names own one or two types: a
// short slice is smaller and faster than a map (a zone of a million names
// has a million of these).
type rrsetList []rrset

func (l rrsetList) get(t uint16) []dns.RR {
	for i := range l {
		if l[i].typ == t {
			return l[i].rrs
		}
	}
	return nil
}

func (l *rrsetList) put(t uint16, rrs []dns.RR) {
	for i := range *l {
		if (*l)[i].typ == t {
			(*l)[i].rrs = rrs
			return
		}
	}
	*l = append(*l, rrset{typ: t, rrs: rrs})
}
