package answer

import (
	"net/netip"

	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/zones"
)

// View is everything the answer path reads for one configuration
// generation: the zones and the pools built over them. The two are swapped
// together, so a query never sees a pool whose members came from another
// version of its zone.
type View struct {
	Zones *zones.Set
	// Pools maps canonical owner names to pools.
	Pools map[string]*pool.Pool
	// Targets are the health-check targets the pools need, deduplicated.
	Targets []healthcheck.Target
	// TargetPools says which pools (and members) a target serves, for logs.
	TargetPools map[healthcheck.TargetKey][]string
	// LoadTargets are the load agents the pools poll (a member of several
	// pools may be listed more than once).
	LoadTargets []healthcheck.LoadTarget
	// LoadHeaders maps the probe address of an http check to the header
	// its responses carry load reports in (load: {type: http-header}).
	LoadHeaders map[netip.AddrPort]string
	// Counters are the query counters of each zone (nil: not counted), and
	// NoZone those of names outside every zone.
	Counters map[*zones.Zone]*ZoneCounters
	NoZone   *ZoneCounters
	// TSIG holds the TSIG keys signed queries may use (nil: none).
	TSIG *Keyring
	// gen is stamped by Authority.SetView; cached replies carry it.
	gen uint64
}

// ZonesOnly is a View without pools.
func ZonesOnly(set *zones.Set) *View {
	return &View{Zones: set, Pools: map[string]*pool.Pool{}, TargetPools: map[healthcheck.TargetKey][]string{}}
}

// PoolsOf returns the names of the pools a health target serves.
func (v *View) PoolsOf(key healthcheck.TargetKey) []string {
	return v.TargetPools[key]
}
