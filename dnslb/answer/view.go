package answer

import (
	"net/netip"

	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// View is everything the answer path reads for one generation: the zones,
// the pools built over them, their counters and the operator overrides in
// force. It is one immutable value: the Authority serves it through one
// atomic pointer (Serve), so a query never sees a pool whose members came
// from another version of its zone, nor the overrides of another
// generation. Nothing in it changes once it is served; a change of
// overrides serves a copy (WithOverrides).
type View struct {
	Zones *zones.Set
	// Pools maps canonical owner names to pools. Their members' lead
	// counters are set when the pools are built (taken from the view
	// replaced, so they survive reloads).
	Pools map[string]*pool.Pool
	// Targets are the health-check targets the pools need, deduplicated.
	Targets []healthcheck.Target
	// TargetPools says which pools (and members) a target serves, for logs.
	TargetPools map[healthcheck.TargetKey][]string
	// LoadTargets are the load agents the pools poll (a member of several
	// pools may be listed more than once).
	LoadTargets []healthcheck.LoadTarget
	// LoadHeaders maps the probe address of an http check to where its
	// responses carry load reports (load: {type: http-header}).
	LoadHeaders map[netip.AddrPort]LoadReportAt
	// Counters are the query counters of each zone (nil: not counted), and
	// NoZone those of names outside every zone. They are the process's
	// (they outlive a view), handed to each view when it is built.
	Counters map[*zones.Zone]*ZoneCounters
	NoZone   *ZoneCounters
	// TSIG holds the TSIG keys signed queries may use (nil: none).
	TSIG *Keyring
	// Overrides are the operator overrides (drains, force-downs) in force
	// with this view; nil for none.
	Overrides *Overrides
	// Signers sign the answers of the zones with DNSSEC, by canonical
	// origin (nil: none): by name, as a zone's new serial (a filtered
	// transfer view) is a new *zones.Zone of the same zone. A key change
	// or a signature refresh is a new view: its Gen keeps cached replies
	// with older signatures from being served.
	Signers map[string]ZoneSigner
	// Unavailable lists the canonical origins of zones that are
	// configured but have nothing to serve: pulled from a primary and
	// expired, or not transferred yet. Names in them (and not in a zone
	// below, of Zones) are answered SERVFAIL.
	Unavailable []string
	// gen numbers the builds of zones and pools that one Authority
	// serves (NewView): replies cached from a view are served only from a
	// view with the same gen. A copy with other overrides keeps it: the
	// overrides' own generation invalidates the pool answers they affect.
	gen uint64
}

// NewView returns an empty view, to be filled in by its builder before it
// is served, numbered gen: each build that one Authority serves needs a
// number of its own, so that it never answers from replies cached from
// another (the builder counts them).
func NewView(gen uint64) *View {
	return &View{Pools: map[string]*pool.Pool{}, TargetPools: map[healthcheck.TargetKey][]string{},
		LoadHeaders: map[netip.AddrPort]LoadReportAt{}, gen: gen}
}

// Gen returns the number of v's build.
func (v *View) Gen() uint64 { return v.gen }

// ZonesOnly is a View without pools.
func ZonesOnly(set *zones.Set) *View {
	return &View{Zones: set, Pools: map[string]*pool.Pool{}, TargetPools: map[healthcheck.TargetKey][]string{}}
}

// Renumbered returns a copy of v numbered gen, for a view whose zones or
// pools differ from those of the view numbered like it (see NewView).
func (v *View) Renumbered(gen uint64) *View {
	c := *v
	c.gen = gen
	return &c
}

// WithOverrides returns a copy of v with the overrides o, sharing
// everything else (v itself does not change).
func (v *View) WithOverrides(o *Overrides) *View {
	c := *v
	c.Overrides = o
	return &c
}

// PoolsOf returns the names of the pools a health target serves.
func (v *View) PoolsOf(key healthcheck.TargetKey) []string {
	return v.TargetPools[key]
}

// LoadReportAt is where an http check's responses carry a load report: a
// header, or a dotted path to a field of a JSON body.
type LoadReportAt struct {
	Header string
	JSON   string
}

// InUnavailable reports whether qname, found in zone (nil: in none), is
// in an unavailable zone closer to it than zone: answered SERVFAIL, and
// its pools wait for the zone's records.
func (v *View) InUnavailable(qname string, zone *zones.Zone) bool {
	for _, o := range v.Unavailable {
		if dns.IsSubDomain(o, qname) && (zone == nil || len(o) > len(zone.Origin)) {
			return true
		}
	}
	return false
}

// WithSigners returns a copy of v whose zones are signed by signers. It
// keeps v's number: the caller renumbers it (replies cached with other
// signatures must not answer for it).
func (v *View) WithSigners(signers map[string]ZoneSigner) *View {
	c := *v
	c.Signers = signers
	return &c
}

// SignerOf returns z's signer, nil when z is not signed (or nil).
func (v *View) SignerOf(z *zones.Zone) ZoneSigner {
	if z == nil || len(v.Signers) == 0 {
		return nil
	}
	return v.Signers[z.Origin]
}
