package zones

import (
	"github.com/miekg/dns"
)

// Kind says what a lookup found.
type Kind int

const (
	// Success: Answer holds the RRset asked for (or, for ANY, one RRset).
	Success Kind = iota
	// CNAME: the name is an alias; Answer holds the CNAME and Target the
	// name to continue with.
	CNAME
	// NoData: the name exists but has no records of the type asked for.
	NoData
	// NXDomain: the name does not exist in the zone.
	NXDomain
	// Delegation: the name is at or below a zone cut; Ns holds the
	// delegation's NS RRset and Glue the addresses of in-zone servers.
	Delegation
)

func (k Kind) String() string {
	switch k {
	case Success:
		return "success"
	case CNAME:
		return "cname"
	case NoData:
		return "nodata"
	case NXDomain:
		return "nxdomain"
	case Delegation:
		return "delegation"
	}
	return "unknown"
}

// Result is the outcome of Zone.Lookup. Its slices hold records the zone
// owns, except synthesized wildcard records, which are fresh copies.
type Result struct {
	Kind   Kind
	Answer []dns.RR
	// Owner is the canonical name whose records answered: the query name,
	// or the wildcard ("*.example.") that synthesized the answer.
	Owner string
	// Wildcard is set when the answer was synthesized from a wildcard.
	Wildcard bool
	// Target is the CNAME's target, canonical, when Kind is CNAME.
	Target string
	// Ns is the delegation NS RRset when Kind is Delegation.
	Ns []dns.RR
	// Glue holds A/AAAA records for in-zone name servers of a delegation.
	Glue []dns.RR
}

// Lookup finds qname (canonical, at or below the zone's origin) with qtype.
// qtype ANY returns a single RRset, as RFC 8482 allows.
func (z *Zone) Lookup(qname string, qtype uint16) Result {
	labels := dns.Split(qname)
	originLabels := dns.CountLabel(z.Origin)
	below := len(labels) - originLabels // labels under the apex
	if qname == "." {
		below = 0
	}

	// Walk from just under the apex down towards qname. Every ancestor of
	// every owner is indexed (empty non-terminals included), so the first
	// missing name means nothing deeper exists either: the deepest found is
	// the closest encloser. The topmost cut on the way wins.
	encloser := z.at(0)
	for i := below - 1; i >= 0; i-- {
		name := qname[labels[i]:]
		n := z.find(name)
		if n == nil {
			return z.synthesize(qname, qtype, encloser)
		}
		if n.cut && !(i == 0 && qtype == dns.TypeDS) {
			return z.delegation(n)
		}
		encloser = n
	}
	return z.answerAt(encloser, qname, qtype, false)
}

// answerAt answers from node n, which exists. When wildcard is set, records
// are copied with their owner rewritten to qname.
func (z *Zone) answerAt(n *node, qname string, qtype uint16, wildcard bool) Result {
	res := Result{Owner: n.name, Wildcard: wildcard}
	if cname := z.get(n, dns.TypeCNAME); cname != nil && qtype != dns.TypeCNAME {
		res.Kind = CNAME
		res.Answer = rewriteOwner(cname, qname, wildcard)
		res.Target = CanonicalName(cname[0].(*dns.CNAME).Target)
		return res
	}
	var rrs []dns.RR
	if qtype == dns.TypeANY {
		rrs = z.minimalAny(n)
	} else {
		rrs = z.get(n, qtype)
	}
	if len(rrs) == 0 {
		res.Kind = NoData
		return res
	}
	res.Kind = Success
	res.Answer = rewriteOwner(rrs, qname, wildcard)
	return res
}

// synthesize handles a name that does not exist: a wildcard child of the
// closest encloser answers in its place (RFC 4592), else NXDOMAIN.
func (z *Zone) synthesize(qname string, qtype uint16, encloser *node) Result {
	if w := z.find("*." + encloser.name); w != nil {
		return z.answerAt(w, qname, qtype, true)
	}
	return Result{Kind: NXDomain, Owner: encloser.name}
}

func (z *Zone) delegation(cut *node) Result {
	res := Result{Kind: Delegation, Owner: cut.name, Ns: z.get(cut, dns.TypeNS)}
	res.Glue = z.addresses(res.Ns)
	return res
}

// Additional returns the in-zone A and AAAA records for the names that
// records of type NS, MX and SRV point at, for the additional section.
func (z *Zone) Additional(rrs []dns.RR) []dns.RR {
	return z.addresses(rrs)
}

func (z *Zone) addresses(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for _, rr := range rrs {
		var target string
		switch r := rr.(type) {
		case *dns.NS:
			target = r.Ns
		case *dns.MX:
			target = r.Mx
		case *dns.SRV:
			target = r.Target
		default:
			continue
		}
		target = CanonicalName(target)
		if seen[target] || !isSubdomain(target, z.Origin) {
			continue
		}
		seen[target] = true
		n := z.find(target)
		if n == nil {
			continue
		}
		out = append(out, z.get(n, dns.TypeA)...)
		out = append(out, z.get(n, dns.TypeAAAA)...)
	}
	return out
}

// minimalAny picks the one RRset an ANY query gets (RFC 8482 section 4.2):
// the lowest type number present, so the choice is stable.
func (z *Zone) minimalAny(n *node) []dns.RR {
	var best uint16
	for _, s := range z.setsOf(n) {
		t := s.typ
		if t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3 {
			continue
		}
		if best == 0 || t < best {
			best = t
		}
	}
	if best == 0 {
		return nil
	}
	return z.get(n, best)
}

func rewriteOwner(rrs []dns.RR, owner string, copyAll bool) []dns.RR {
	if !copyAll {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = owner
		out[i] = c
	}
	return out
}
