package zones

import (
	"fmt"

	"github.com/miekg/dns"
)

// Set is an immutable collection of zones with distinct origins. A server
// swaps whole sets (in its generation), so readers never lock.
type Set struct {
	zones map[string]*Zone
}

// NewSet collects zones; two zones with one origin are an error.
func NewSet(zs ...*Zone) (*Set, error) {
	s := &Set{zones: make(map[string]*Zone, len(zs))}
	for _, z := range zs {
		if prev, ok := s.zones[z.Origin]; ok {
			return nil, fmt.Errorf("zone %s is loaded twice (%s and %s)", z.Origin, prev.File, z.File)
		}
		s.zones[z.Origin] = z
	}
	return s, nil
}

// Find returns the zone closest enclosing qname (canonical), or nil when
// none of the set's zones holds it.
func (s *Set) Find(qname string) *Zone {
	if s == nil || len(s.zones) == 0 {
		return nil
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(qname, off) {
		if z, ok := s.zones[qname[off:]]; ok {
			return z
		}
		if qname == "." {
			break
		}
	}
	if z, ok := s.zones["."]; ok {
		return z
	}
	return nil
}

// Parent returns the zone of the set closest enclosing the name above z's
// apex: the zone that delegates z when the set holds both, and so the one
// that answers DS at z's apex (RFC 4035 3.1.4.1). Nil when none does.
func (s *Set) Parent(z *Zone) *Zone {
	if z == nil || z.Origin == "." {
		return nil
	}
	parent := "."
	if off, end := dns.NextLabel(z.Origin, 0); !end {
		parent = z.Origin[off:]
	}
	return s.Find(parent)
}

// Zone returns the zone with exactly this origin, or nil.
func (s *Set) Zone(origin string) *Zone {
	if s == nil {
		return nil
	}
	return s.zones[CanonicalName(origin)]
}

// Zones returns the zones in no particular order.
func (s *Set) Zones() []*Zone {
	out := make([]*Zone, 0, len(s.zones))
	for _, z := range s.zones {
		out = append(out, z)
	}
	return out
}
