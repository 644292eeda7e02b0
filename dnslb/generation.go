package dnslb

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/xfr"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// Loaded is a config as read from its file, with what it takes to place
// the problems found in it later (a pool member missing from its zone is
// only found once the zones are loaded).
type Loaded struct {
	Config *Config
	Root   ZoneRoot
	// File names the config file in messages ("" is not allowed: the
	// embedded example has a name of its own).
	File string
	// Locate returns the line of a key path ("pools[www.example.test.].policy")
	// in the file, or 0 when it is not known. Nil: no lines.
	Locate func(key string) int
}

// Loader reads the configuration anew. The CLI supplies it, so that config
// parsing (viper) stays in the CLI; it is called at start, on every reload,
// and by `dnslb check`. Its error lists every problem (Problems), each with
// its file and line.
type Loader func() (*Loaded, error)

// Generation is a complete configuration built to the side, in one phase
// (build): the config, every zone, the pools over them with their
// counters, the overrides in force and the managed serials. Nothing in it
// changes once built; a Runtime swaps whole generations in, and its
// readers load the one being served without a lock (docs/design.md,
// Where state lives).
type Generation struct {
	Loaded *Loaded
	// View is what the answer path serves: zones, pools, counters and
	// the overrides in force (View.Overrides), one value.
	View *answer.View
	// zones holds each configured zone's state, by canonical origin.
	zones map[string]*zoneState
	// serials are the managed serials in force, by origin, for the state
	// file: those the build started from (the state file's at start, then
	// the replaced generation's), with the serial and digest of every
	// zone this generation loaded. A zone dropped from the config keeps
	// its entry, so that re-adding it keeps its serial growing.
	serials map[string]serialState
	// Failed lists the problems of zones that did not load (a zone that
	// served before keeps its previous version, in zones); the
	// generation is still whole without them.
	Failed Problems
	// Warnings are problems that did not stop anything from loading.
	Warnings Problems
	// Notes are what building decided that an operator should know
	// (a serial raised by serial: auto).
	Notes []Note
}

// Overrides returns the operator overrides in force with g (nil: none).
// A build takes those in force when it starts (buildBase); an override
// change swaps in a copy of the generation being served with new ones
// (withOverrides).
func (g *Generation) Overrides() *answer.Overrides { return g.View.Overrides }

// withOverrides returns a copy of g with the overrides o, sharing
// everything else (g itself does not change).
func (g *Generation) withOverrides(o *answer.Overrides) *Generation {
	ng := *g
	ng.View = g.View.WithOverrides(o)
	return &ng
}

// Note is something a build decided, for the log.
type Note struct {
	Warn   bool
	Zone   string
	Msg    string
	Serial uint32
	From   uint32
}

type zoneState struct {
	cfg      ZoneConfig
	zone     *zones.Zone // being served; nil if it never loaded
	loadedAt time.Time
	err      error // last load's problems; nil when the file is what is served
	// expired: a zone pulled from a primary that did not refresh within
	// its SOA expire. Its copy is kept in zone but not served.
	expired bool
	// primary is where a pulled zone comes from (zero for a file zone).
	primary xfr.Primary
}

// buildBase is what a build carries over from the generation being served
// (or, at start, from the state file), and the process's counters.
type buildBase struct {
	prev *Generation // nil at start and for `check`
	// serials are the managed serials: the state file's at start, prev's
	// on a reload. The build does not change the map.
	serials map[string]serialState
	// overrides are the overrides in force (at start: the state file's).
	// Ignored when prev is set: a reload keeps prev's.
	overrides *answer.Overrides
	// counters gives the zones' query counters (Metrics.ZoneCounters);
	// nil: queries are not counted (`check`).
	counters func(origin string) *answer.ZoneCounters
	now      time.Time
	// kept are the copies of pulled zones read from the state directory
	// at start (loadKept).
	kept map[string]keptZone
	// pull, when set, is a pulled zone's news: only that zone changes,
	// every other keeps prev's state and no file is read.
	pull *pullUpdate
	// sign makes the signed zones' keys and signers (nil: none, as for
	// `check`, which never writes keys).
	sign *signing
}

// Check builds a generation from the config a Loader reads, as `dnslb
// check` does: the same build that serve and reload do, with nothing
// served before it.
func Check(load Loader) (*Generation, error) {
	l, err := load()
	if err != nil {
		return nil, err
	}
	return build(l, buildBase{now: time.Now()})
}

// build loads every zone of l and the pools over them. A zone that fails
// to load keeps its previous version from base.prev, if any; its problems
// are in Failed. The error (Problems) is returned when nothing can be
// served: the config is invalid, or pools cannot be built.
func build(l *Loaded, base buildBase) (*Generation, error) {
	cfg := l.Config
	if err := cfg.Validate(); err != nil {
		return nil, l.place(ProblemsOf(err))
	}
	cfg.ApplyDefaults() // this load's own copy
	g := &Generation{Loaded: l, zones: map[string]*zoneState{}, serials: maps.Clone(base.serials)}
	if g.serials == nil {
		g.serials = map[string]serialState{}
	}
	if cfg.CacheSize != 0 {
		what := "no cache"
		if n := cfg.CacheBytes(); n > 0 {
			what = fmt.Sprintf("cache.max_bytes: %s (1 KiB per entry)", ByteSize(n))
		}
		g.Warnings = append(g.Warnings, l.place(Problems{keyed("cache_size", "deprecated: taken as %s; write cache.max_bytes instead", what)})...)
	}
	var loaded []*zones.Zone
	var unavailable []string
	failedZones := map[string]bool{}
	for _, zc := range cfg.Zones {
		origin := zones.CanonicalName(zc.Origin)
		var old *zoneState
		if base.prev != nil {
			old = base.prev.zones[origin]
		}
		if base.pull != nil && origin != base.pull.origin && old != nil {
			// Another zone's refresh: this one stays as it is served.
			g.zones[origin] = old
			switch {
			case old.zone != nil && !old.expired:
				loaded = append(loaded, old.zone)
			case zc.Primary != nil:
				unavailable = append(unavailable, origin)
			default:
				failedZones[origin] = true
			}
			continue
		}
		if zc.Primary != nil {
			st := pulledState(zc, origin, old, base, cfg.TSIG.Keys)
			g.zones[origin] = st
			if st.zone == nil || st.expired {
				unavailable = append(unavailable, origin)
				continue
			}
			if u := base.pull; u != nil && u.origin == origin && u.zone != nil {
				g.Warnings = append(g.Warnings, fromZoneErrors(st.zone.Warnings)...)
			}
			loaded = append(loaded, st.zone)
			continue
		}
		z, err := zones.Load(zoneSource(zc, l.Root))
		if err != nil {
			g.Failed = append(g.Failed, fromZoneErrors(zones.Errors(err))...)
			st := &zoneState{cfg: zc, err: err}
			if old != nil && old.zone != nil {
				st.zone, st.loadedAt = old.zone, old.loadedAt
				loaded = append(loaded, old.zone)
			} else {
				failedZones[origin] = true
			}
			g.zones[origin] = st
			continue
		}
		z, note := serialPolicy(zc, z, old, base.serials)
		if note != nil {
			g.Notes = append(g.Notes, *note)
		}
		g.Warnings = append(g.Warnings, fromZoneErrors(z.Warnings)...)
		st := &zoneState{cfg: zc, zone: z, loadedAt: base.now}
		if old != nil && old.zone != nil && old.zone.Digest == z.Digest && old.zone.Serial() == z.Serial() {
			st.loadedAt = old.loadedAt
		}
		g.zones[origin] = st
		g.serials[origin] = serialState{Serial: z.Serial(), Digest: fmt.Sprintf("%x", z.Digest)}
		loaded = append(loaded, z)
	}
	if cfg.Catalog != nil {
		z, err := buildCatalog(cfg, loaded, g.serials, base.now)
		if err != nil {
			return nil, append(g.Failed, l.place(Problems{keyed("catalog", "%v", err)})...)
		}
		// Kept with the managed serials: the state file carries the
		// catalog's serial across restarts.
		g.serials[z.Origin] = serialState{Serial: z.Serial(), Digest: fmt.Sprintf("%x", z.Digest)}
		loaded = append(loaded, z)
	}
	set, err := zones.NewSet(loaded...)
	if err != nil {
		return nil, append(g.Failed, l.place(Problems{keyed("zones", "%v", err)})...)
	}
	carry := viewCarry{gen: 1, counters: base.counters, overrides: base.overrides, unavailable: unavailable}
	if base.prev != nil {
		carry.gen, carry.prev, carry.overrides = base.prev.View.Gen()+1, base.prev.View, base.prev.Overrides()
	}
	if base.sign != nil {
		if carry.signers, err = base.sign.prepare(l); err != nil {
			return nil, append(append(Problems(nil), g.Failed...), l.place(ProblemsOf(err))...)
		}
	}
	view, err := buildView(cfg, set, carry)
	if err != nil {
		// A pool in a zone that did not load is a consequence of the
		// zone's problems, not a problem of its own: the zone's lines
		// say what to fix.
		var ps Problems
		for _, p := range ProblemsOf(err) {
			if zoneOfPool(p.Key, failedZones) == "" {
				ps = append(ps, p)
			}
		}
		return nil, append(append(Problems(nil), g.Failed...), l.place(ps)...)
	}
	g.View = view
	return g, nil
}

// zoneOfPool returns the failed zone a pool problem's key ("pools[NAME]…")
// lies in, or "".
func zoneOfPool(key string, failed map[string]bool) string {
	if len(failed) == 0 || !strings.HasPrefix(key, "pools[") {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(key, "pools["), "]")
	name = zones.CanonicalName(name)
	best := ""
	for origin := range failed {
		if dns.IsSubDomain(origin, name) && len(origin) > len(best) {
			best = origin
		}
	}
	return best
}

// serialPolicy keeps a zone's serial growing: it notes when a zone's
// content changed but its serial did not grow, or, with serial: auto,
// makes the serial grow.
func serialPolicy(zc ZoneConfig, z *zones.Zone, old *zoneState, serials map[string]serialState) (*zones.Zone, *Note) {
	digest := fmt.Sprintf("%x", z.Digest)
	prev, known := serials[z.Origin]
	if old != nil && old.zone != nil {
		prev, known = serialState{Serial: old.zone.Serial(), Digest: fmt.Sprintf("%x", old.zone.Digest)}, true
	}
	if !known {
		return z, nil
	}
	changed := prev.Digest != digest
	if zc.Serial == "auto" {
		want := prev.Serial
		if changed {
			want++
		}
		if serialLess(z.Serial(), want) {
			return z.WithSerial(want), &Note{Zone: z.Origin, Msg: "serial: auto", Serial: want, From: z.Serial()}
		}
		return z, nil
	}
	if changed && !serialLess(prev.Serial, z.Serial()) {
		return z, &Note{Warn: true, Zone: z.Origin, Serial: z.Serial(), From: prev.Serial,
			Msg: "zone content changed but its SOA serial did not grow: secondaries will not pick up the change"}
	}
	return z, nil
}

// errReloadBusy says a reload was refused because an earlier one is
// still stuck reading files.
var errReloadBusy = errors.New("an earlier reload is still blocked reading files")
