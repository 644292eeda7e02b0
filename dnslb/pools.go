package dnslb

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// viewCarry is what a view being built takes over from outside its config
// and zones: the number of its build, the overrides in force, and the
// counters that outlive a generation. A view gets them as it is built and
// never changes after.
type viewCarry struct {
	gen uint64
	// prev is the view being replaced: each pool member keeps its lead
	// counter from it, by pool name and address (nil: every counter
	// starts at zero).
	prev *answer.View
	// counters returns the process's query counters of a zone ("": names
	// outside every zone); nil: queries are not counted (dnslb check).
	counters  func(origin string) *answer.ZoneCounters
	overrides *answer.Overrides
	// unavailable are the pulled zones with nothing to serve (expired,
	// or not transferred yet): pools in them wait for their records.
	unavailable []string
	// signers sign the signed zones, by origin.
	signers map[string]answer.ZoneSigner
}

// buildView checks the pools of cfg against the zones and builds them,
// with what c carries in. The zone file is the source of truth for
// membership: a pool's members are the A and AAAA records at its name;
// config members that are not among them are errors. With a zero c the
// view has no overrides and counts nothing but the answers each member
// leads.
func buildView(cfg *Config, set *zones.Set, c viewCarry) (*answer.View, error) {
	v := answer.NewView(c.gen)
	v.Zones, v.Overrides, v.Unavailable, v.Signers = set, c.overrides, c.unavailable, c.signers
	if c.counters != nil {
		v.Counters = make(map[*zones.Zone]*answer.ZoneCounters)
		for _, z := range set.Zones() {
			v.Counters[z] = c.counters(z.Origin)
		}
		v.NoZone = c.counters("")
	}
	var errs Problems
	seen := map[healthcheck.TargetKey]bool{}
	for _, rawName := range sortedKeys(cfg.Pools) {
		pc := cfg.Pools[rawName]
		key := fmt.Sprintf("pools[%s]", rawName)
		name := zones.CanonicalName(rawName)
		z := set.Find(name)
		if v.InUnavailable(name, z) {
			continue // built once its zone has records
		}
		if z == nil {
			errs = append(errs, keyed(key, "%s is in none of the configured zones", name))
			continue
		}
		if res := z.Lookup(name, dns.TypeA); res.Kind == zones.Delegation {
			errs = append(errs, keyed(key, "%s is below the delegation at %s", name, res.Owner))
			continue
		}
		rrs := append(append([]dns.RR(nil), z.RRset(name, dns.TypeA)...), z.RRset(name, dns.TypeAAAA)...)
		if len(rrs) == 0 {
			errs = append(errs, keyed(key, "zone %s (%s) has no A or AAAA records at %s", z.Origin, z.File, name))
			continue
		}
		p, targets, loads, problem := buildPool(name, key, pc, rrs, prevLeads(c.prev, name))
		if problem != nil {
			errs = append(errs, *problem)
			continue
		}
		if c.prev != nil {
			p.KeepRamp(c.prev.Pools[name])
		}
		v.Pools[name] = p
		v.LoadTargets = append(v.LoadTargets, loads...)
		for _, lt := range loads {
			src := answer.LoadReportAt{Header: lt.Header, JSON: lt.JSON}
			if _, ok := v.LoadHeaders[lt.Addr]; src != (answer.LoadReportAt{}) && !ok {
				v.LoadHeaders[lt.Addr] = src // pools in name order: the first one's source
			}
		}
		for _, t := range targets {
			k := t.Key()
			v.TargetPools[k] = append(v.TargetPools[k], name)
			if !seen[k] {
				seen[k] = true
				v.Targets = append(v.Targets, t)
			}
		}
	}
	ring, problems := newKeyring(cfg.TSIG.Keys)
	errs = append(errs, problems...)
	v.TSIG = ring
	if len(errs) > 0 {
		return nil, errs
	}
	return v, nil
}

// prevLeads returns the lead counters of the members of pool name in v, by
// address (nil v or pool: none).
func prevLeads(v *answer.View, name string) map[netip.Addr]*pool.LeadCounter {
	if v == nil || v.Pools[name] == nil {
		return nil
	}
	out := map[netip.Addr]*pool.LeadCounter{}
	for _, m := range v.Pools[name].Members() {
		if m.Leads != nil {
			out[m.Addr] = m.Leads
		}
	}
	return out
}

// buildPool builds pool name from its config and records. Its members
// take their lead counters from leads, by address; a member new to the
// pool gets a counter of its own (one per address).
func buildPool(name, key string, pc PoolConfig, rrs []dns.RR, leads map[netip.Addr]*pool.LeadCounter) (*pool.Pool, []healthcheck.Target, []healthcheck.LoadTarget, *Problem) {
	policy, err := pool.ParsePolicy(pc.Policy)
	if err != nil {
		p := keyed(key+".policy", "%v", err)
		return nil, nil, nil, &p
	}
	if _, ok := policy.(pool.Sticky); ok {
		policy = pc.Sticky.policy()
	}
	allDown, err := pool.ParseAllDown(pc.WhenAllDown)
	if err != nil {
		p := keyed(key+".when_all_down", "%v", err)
		return nil, nil, nil, &p
	}
	t, td := pc.ttls()
	ttl, ttlDegraded := uint32(t), uint32(min(t, td))
	p := &pool.Pool{Name: name, Policy: policy, TTL: ttl, TTLDegraded: ttlDegraded, MaxAnswers: pc.MaxAnswers, WhenAllDown: allDown, SlowStart: pc.SlowStart}

	checks, problem := poolChecks(key, pc, len(rrs))
	if problem != nil {
		return nil, nil, nil, problem
	}
	inZone := map[netip.Addr]bool{}
	var targets []healthcheck.Target
	var loads []healthcheck.LoadTarget
	for _, rr := range rrs {
		var addr netip.Addr
		switch r := rr.(type) {
		case *dns.A:
			addr, _ = netip.AddrFromSlice(r.A.To4())
		case *dns.AAAA:
			addr, _ = netip.AddrFromSlice(r.AAAA)
		}
		inZone[addr] = true
		mkey, mc := lookupMember(pc.Members, addr)
		// The pool owns its copy: the zone's record keeps its TTL, and
		// selection can hand this one out without allocating.
		c, d := dns.Copy(rr), dns.Copy(rr)
		c.Header().Ttl = min(ttl, rr.Header().Ttl)
		d.Header().Ttl = min(ttlDegraded, rr.Header().Ttl)
		lead := leads[addr]
		if lead == nil {
			if leads == nil {
				leads = map[netip.Addr]*pool.LeadCounter{}
			}
			lead = new(pool.LeadCounter)
			leads[addr] = lead
		}
		m := pool.Member{Addr: addr, RR: c, Degraded: d, Weight: max(mc.weight(), 1), Backup: mc.Backup, Checked: len(checks) > 0, Leads: lead}
		var httpCheck netip.AddrPort // the first http(s) check's probe, for load: http-header
		var httpInterval time.Duration
		for i, ch := range checks {
			probe := addr
			switch {
			case ch.addr.IsValid():
				probe = ch.addr
			case ch.own:
				a, err := netip.ParseAddr(mc.CheckAddress)
				if err != nil {
					p := keyed(ch.key+".address", "%s has no members[%s].check_address to probe", addr, addr)
					if mkey != "" {
						p = keyed(key+".members["+mkey+"].check_address", "not set, and %s.address is %s", ch.key, CheckAddressOwn)
					}
					return nil, nil, nil, &p
				}
				probe = a.Unmap()
			}
			t := healthcheck.Target{Spec: ch.spec, Addr: netip.AddrPortFrom(probe, 0)}
			if err := t.Validate(); err != nil {
				p := keyed(ch.key, "%v", err)
				return nil, nil, nil, &p
			}
			k := t.Key()
			if !httpCheck.IsValid() && (ch.spec.Type == healthcheck.TypeHTTP || ch.spec.Type == healthcheck.TypeHTTPS) {
				httpCheck, httpInterval = k.Addr, ch.spec.Interval
			}
			if i == 0 {
				m.Target = k
			} else if k != m.Target && !slices.Contains(m.Also, k) {
				m.Also = append(m.Also, k)
			} else {
				continue // the same probe twice: once is enough
			}
			targets = append(targets, t)
		}
		var step int // validated: a bad max_step never gets here
		if pc.Load != nil {
			step, _ = pc.Load.maxStep()
		}
		if l := pc.Load; l != nil && l.Type == LoadHTTPHeader {
			if !httpCheck.IsValid() {
				p := keyed(key+".load.type", "%s reads a header of the pool's http or https check, and the pool has none", LoadHTTPHeader)
				return nil, nil, nil, &p
			}
			// Stale after 3 of the check's intervals, not of a shorter
			// load interval: the header comes no more often than the check.
			m.Agent = httpCheck
			loads = append(loads, healthcheck.LoadTarget{Addr: m.Agent, Interval: max(l.interval(), httpInterval), Passive: true, Header: l.Header, JSON: l.JSON, MaxStep: step})
		} else if l != nil {
			m.Agent = netip.AddrPortFrom(addr, uint16(l.Port))
			loads = append(loads, healthcheck.LoadTarget{Addr: m.Agent, Interval: l.interval(), MaxStep: step})
		}
		if addr.Is4() {
			p.V4 = append(p.V4, m)
		} else {
			p.V6 = append(p.V6, m)
		}
	}
	var unknown []string
	for a := range pc.Members {
		addr, err := netip.ParseAddr(a)
		if err != nil || !inZone[addr.Unmap()] {
			unknown = append(unknown, a)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		const why = "not among the A/AAAA records of %s in the zone (the zone file lists the members)"
		if len(unknown) == 1 { // at its own line
			p := keyed(key+".members["+unknown[0]+"]", why, name)
			return nil, nil, nil, &p
		}
		p := keyed(key+".members", "%v "+why, unknown, name)
		return nil, nil, nil, &p
	}
	return p, targets, loads, nil
}

// lookupMember returns the config of the member at addr, and the key it
// is written under ("" if none).
func lookupMember(members map[string]MemberConfig, addr netip.Addr) (string, MemberConfig) {
	for a, mc := range members {
		if pa, err := netip.ParseAddr(a); err == nil && pa.Unmap() == addr {
			return a, mc
		}
	}
	return "", MemberConfig{}
}

// poolCheck is one check of every member of a pool.
type poolCheck struct {
	key  string // its key path, for problems
	spec healthcheck.Spec
	addr netip.Addr // probed for every member, if valid
	own  bool       // probes each member's check_address
}

// poolChecks returns the checks of pc (check or checks, without those of
// type none) for a pool of n members. A fixed address on a check would
// probe one backend on behalf of every member, so it takes a pool of one.
func poolChecks(key string, pc PoolConfig, n int) ([]poolCheck, *Problem) {
	var out []poolCheck
	if pc.Check != nil && pc.Check.Type != healthcheck.TypeNone {
		out = append(out, poolCheck{key: key + ".check", spec: pc.Check.Spec()})
	}
	for i := range pc.Checks {
		c := &pc.Checks[i]
		if c.Type == healthcheck.TypeNone {
			continue
		}
		ch := poolCheck{key: fmt.Sprintf("%s.checks[%d]", key, i), spec: c.Spec()}
		switch c.Address {
		case "", CheckAddressMember:
		case CheckAddressOwn:
			ch.own = true
		default:
			a, err := netip.ParseAddr(c.Address)
			if err != nil {
				p := keyed(ch.key+".address", "%q is not an IP address, %s or %s", c.Address, CheckAddressMember, CheckAddressOwn)
				return nil, &p
			}
			if n > 1 {
				p := keyed(ch.key+".address", "a fixed address would be probed for each of the pool's %d members; "+
					"give each member its own with members[ADDR].check_address and address: %s", n, CheckAddressOwn)
				return nil, &p
			}
			ch.addr = a.Unmap()
		}
		out = append(out, ch)
	}
	return out, nil
}
