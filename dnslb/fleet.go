package dnslb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/fleet"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// fleetNode is the Runtime's membership of a fleet: it publishes this
// node's observations, takes the fleet's overrides into the served
// generation, decides each target's health under the fleet's policy and
// serves that decision to the answer path as a health snapshot of its own
// (docs/design.md, Fleet).
type fleetNode struct {
	r   *Runtime
	f   *fleet.Fleet
	log zerolog.Logger
	cfg FleetConfig // as started: name, bind, join and key need a restart

	// merged is the fleet's health decision, the answer path's
	// HealthSource; rebuilt by the loop only.
	merged atomic.Pointer[healthcheck.Snapshot]
	// poke wakes the loop: a local transition, a reload.
	poke chan struct{}

	// targetsMu serialises setting the scheduler's targets (a reload's
	// install and the loop's reassignment of probes) and guards all,
	// the targets of the generation served, and owned.
	targetsMu sync.Mutex
	all       []healthcheck.Target
	owned     map[healthcheck.TargetKey]bool // nil: every target

	// The loop's own.
	metaGen     *Generation
	divergences map[string]bool // "node what zone" last logged
	isolated    bool
}

// fleetTick is how often the loop republishes this node's observations
// and rechecks the fleet's decision without being poked: a first result
// that agrees with the initial state is not a transition, and a target
// moved to this node by a membership change needs its first probe seen.
const fleetTick = time.Second

// newFleetNode creates the fleet membership for cfg (it listens on the
// gossip address; Start joins).
func newFleetNode(r *Runtime, cfg FleetConfig) (*fleetNode, error) {
	n := &fleetNode{r: r, cfg: cfg, log: r.opts.Log.With().Str("component", "fleet").Logger(),
		poke: make(chan struct{}, 1), divergences: map[string]bool{}}
	f, err := fleet.New(fleet.Config{
		Cluster:   cfg.Name,
		NodeName:  cfg.Node,
		Bind:      cfg.Bind,
		Advertise: cfg.Advertise,
		Join:      cfg.Join,
		Keys:      cfg.keys(),
		Log:       n.log,
		Now:       r.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	n.f = f
	return n, nil
}

// Snapshot implements answer.HealthSource: the fleet's decision, or the
// scheduler's own until the first decision is made.
func (n *fleetNode) Snapshot() *healthcheck.Snapshot {
	if s := n.merged.Load(); s != nil {
		return s
	}
	return n.r.sched.Snapshot()
}

func (n *fleetNode) wake() {
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

// settings are the policy and probe sharing in force: the served
// config's, which a reload may change, else the ones started with.
func (n *fleetNode) settings() (fleet.HealthPolicy, int) {
	fc := &n.cfg
	if g := n.r.cur.Load(); g != nil && g.Loaded.Config.Fleet != nil {
		fc = g.Loaded.Config.Fleet
	}
	return fc.policy(), fc.ProbesPerTarget
}

// setTargets hands the scheduler the targets of a generation, only those
// this node probes when probes are shared: all is kept so that a change
// of the membership can reassign them.
func (n *fleetNode) setTargets(all []healthcheck.Target) error {
	n.targetsMu.Lock()
	defer n.targetsMu.Unlock()
	n.all = all
	return n.applyTargetsLocked(true)
}

// applyTargetsLocked gives the scheduler the targets this node owns now;
// force sets them even when the owned set is unchanged (new targets).
func (n *fleetNode) applyTargetsLocked(force bool) error {
	_, k := n.settings()
	if k <= 0 {
		if n.owned == nil && !force {
			return nil
		}
		n.owned = nil
		return n.r.sched.Set(n.all)
	}
	owned := make(map[healthcheck.TargetKey]bool, len(n.all))
	var mine []healthcheck.Target
	for _, t := range n.all {
		key := t.Key()
		if n.f.Owns(key.String(), k) {
			owned[key] = true
			mine = append(mine, t)
		}
	}
	if !force && n.owned != nil && maps.Equal(owned, n.owned) {
		return nil
	}
	// Targets this node takes over start from the fleet's view of them,
	// not from their initial state.
	if s := n.merged.Load(); s != nil {
		seed := map[healthcheck.TargetKey]healthcheck.Status{}
		for key, st := range s.All() {
			if owned[key] && !n.owned[key] {
				seed[key] = st
			}
		}
		n.r.sched.Seed(seed)
	}
	n.owned = owned
	n.log.Info().Int("probed_here", len(mine)).Int("targets", len(n.all)).Int("probes_per_target", k).
		Int("nodes", len(n.f.Alive())).Msg("probes assigned")
	return n.r.sched.Set(mine)
}

// start restores the kept overrides and joins.
func (n *fleetNode) start(ctx context.Context, kept []fleet.Override) error {
	n.f.Restore(kept)
	if err := n.f.Start(ctx); err != nil {
		return err
	}
	n.r.run(func() { n.loop(ctx) })
	return nil
}

// loop follows the fleet and this node's probes: on each change it
// reassigns probes, publishes this node's observations and meta, takes in
// the fleet's overrides and decides every target's health.
func (n *fleetNode) loop(ctx context.Context) {
	tick := time.NewTicker(fleetTick)
	defer tick.Stop()
	for {
		n.step()
		select {
		case <-ctx.Done():
			return
		case <-n.poke:
		case <-n.f.Changes():
		case <-tick.C:
		}
	}
}

func (n *fleetNode) step() {
	n.targetsMu.Lock()
	if err := n.applyTargetsLocked(false); err != nil {
		n.log.Warn().Err(err).Msg("probes not reassigned")
	}
	n.targetsMu.Unlock()
	n.publishMeta()
	n.r.syncFleetOverrides()
	n.decide()
	n.watchFleet()
}

// publishMeta tells the fleet this node's pool config and zone serials,
// once per generation.
func (n *fleetNode) publishMeta() {
	g := n.r.cur.Load()
	if g == n.metaGen {
		return
	}
	n.metaGen = g
	m := fleet.Meta{ConfigHash: poolsDigest(g.Loaded.Config), Serials: map[string]uint32{}}
	for _, z := range g.View.Zones.Zones() {
		m.Serials[z.Origin] = z.Serial()
	}
	n.f.SetMeta(m)
}

// poolsDigest digests what must agree across the fleet for its nodes to
// answer alike: the pools with their members, policies and checks.
func poolsDigest(cfg *Config) string {
	b, err := json.Marshal(cfg.Pools) // map keys sorted: one digest per content
	if err != nil {
		return "unhashable: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// decide publishes this node's observations and the fleet's decision for
// every target of the served generation, as a new snapshot if any target
// changed.
func (n *fleetNode) decide() {
	policy, _ := n.settings()
	local := n.r.sched.Statuses()
	obs := make(map[string]fleet.Observation, len(local))
	for k, st := range local {
		obs[k.String()] = fleet.Observation{Up: st.Up, Checked: st.Checked, Since: st.Since}
	}
	n.f.Publish(obs)

	prev := n.merged.Load()
	now := n.r.opts.Now()
	targets := n.r.cur.Load().View.Targets
	next := make(map[healthcheck.TargetKey]healthcheck.Status, len(targets))
	changed := prev == nil
	var moved []healthcheck.TargetKey
	for _, t := range targets {
		key := t.Key()
		if _, dup := next[key]; dup {
			continue
		}
		own, probed := local[key]
		before, known := prev.Status(key)
		if !known {
			before = healthcheck.Status{Up: !probed || own.Up, Since: now}
			if probed {
				before.Since = own.Since
			}
		}
		views := slices.Collect(maps.Values(n.f.PeerObservations(key.String())))
		var up bool
		switch {
		case policy == fleet.Local && probed:
			up = own.Up
		case policy == fleet.Local:
			up = fleet.Decide(fleet.Majority, views, before.Up)
		default:
			if probed {
				views = append(views, fleet.Observation{Up: own.Up, Checked: own.Checked, Since: own.Since})
			}
			up = fleet.Decide(policy, views, before.Up)
		}
		st := healthcheck.Status{Up: up, Since: before.Since, Checked: own.Checked}
		for _, o := range views {
			st.Checked = st.Checked || o.Checked
		}
		if probed {
			st.LastError, st.LastLatency, st.Successes, st.Failures = own.LastError, own.LastLatency, own.Successes, own.Failures
		}
		if known && up != before.Up {
			st.Since = now
			moved = append(moved, key)
		}
		if !known || st.Checked != before.Checked {
			changed = true
		}
		next[key] = st
	}
	if !changed && len(moved) == 0 && prev.Len() == len(next) {
		return
	}
	var gen uint64 = 1
	if prev != nil {
		gen = prev.Generation + 1
	}
	n.merged.Store(healthcheck.NewSnapshot(gen, next))
	for _, key := range moved {
		st := next[key]
		own, probed := local[key]
		ev := n.log.Warn()
		if st.Up {
			ev = n.log.Info()
		}
		ev = ev.Str("member", key.Addr.Addr().String()).Uint16("port", key.Addr.Port()).
			Str("to", upDown(st.Up)).Str("policy", string(policy))
		if probed {
			ev = ev.Str("here", upDown(own.Up))
		}
		ev.Msg("fleet health transition")
	}
	if len(moved) > 0 {
		n.r.stateDirty.Store(true)
		n.r.xfr.Poke()
		n.r.pokeFallback()
	}
}

// watchFleet logs isolation and divergences as they begin and end.
func (n *fleetNode) watchFleet() {
	if iso := n.f.Isolated(); iso != n.isolated {
		n.isolated = iso
		if iso {
			n.log.Warn().Msg("cut off from the fleet: answering from this node's own health checks")
		} else {
			n.log.Info().Strs("nodes", n.f.Alive()).Msg("in touch with the fleet again")
		}
	}
	seen := map[string]bool{}
	for _, d := range n.f.Divergences() {
		id := d.Node + " " + d.What + " " + d.Zone
		seen[id] = true
		if n.divergences[id] {
			continue
		}
		n.divergences[id] = true
		ev := n.log.Warn().Str("node", d.Node).Str("what", d.What).Str("theirs", d.Theirs).Str("ours", d.Ours)
		if d.Zone != "" {
			ev = ev.Str("zone", d.Zone)
		}
		ev.Msg("fleet node disagrees with this one")
	}
	for id := range n.divergences {
		if !seen[id] {
			delete(n.divergences, id)
			n.log.Info().Str("divergence", id).Msg("fleet node agrees again")
		}
	}
}

// fleetMode and overrideModeOfFleet map override modes to and from the
// fleet's words, the API's.
func fleetMode(m answer.OverrideMode) string { return string(adminOverrideMode(m)) }

func overrideModeOfFleet(s string) (answer.OverrideMode, bool) {
	return overrideModeFromAdmin(admin.OverrideMode(s))
}

// syncFleetOverrides makes the fleet's overrides the ones served (and
// kept in the state file), when they differ.
func (r *Runtime) syncFleetOverrides() {
	n := r.fleet
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[netip.Addr]answer.Override{}
	for _, o := range n.f.Overrides() {
		if !keepableFleetOverride(o) {
			continue // no node of ours makes it: a member as dnslb writes it, a mode it knows
		}
		mode, _ := overrideModeOfFleet(o.Mode)
		if mode == answer.OverrideNone {
			continue
		}
		want[netip.MustParseAddr(o.Member)] = answer.Override{Mode: mode, Reason: o.Reason, Since: o.Since, Until: o.Until}
	}
	cur := r.cur.Load().Overrides().Clone()
	if sameOverrides(cur, want) {
		return
	}
	for a, ov := range want {
		if old, ok := cur[a]; !ok || old != ov {
			n.log.Info().Str("member", a.String()).Str("mode", ov.Mode.String()).Str("reason", ov.Reason).Msg("override set by the fleet")
		}
	}
	for a, old := range cur {
		if _, ok := want[a]; !ok {
			n.log.Info().Str("member", a.String()).Str("was", old.Mode.String()).Msg("override lifted by the fleet")
		}
	}
	// Best effort: the change is the fleet's, held by the node that made
	// it, and the next write (each second while dirty) retries.
	if err := r.writeStateLocked(want); err != nil {
		r.log.Warn().Err(err).Msg("state file not written after a fleet override; retrying")
	}
	r.publishOverridesLocked(want)
}

func sameOverrides(a, b map[netip.Addr]answer.Override) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.Since.Equal(v.Since) || !w.Until.Equal(v.Until) || w.Mode != v.Mode || w.Reason != v.Reason {
			return false
		}
	}
	return true
}

// setFleetOverrideLocked is setOverride for a fleet: the change is
// stamped, written to the state file with the stamp, then sent to every
// node and served here. r.mu is held.
func (r *Runtime) setFleetOverrideLocked(addr netip.Addr, mode answer.OverrideMode, until time.Time, reason string, next map[netip.Addr]answer.Override) error {
	o := r.fleet.f.Stamped(fleet.Override{Member: addr.String(), Mode: fleetMode(mode), Reason: reason,
		Since: r.opts.Now(), Until: until})
	if err := r.writeStateLocked(next, o); err != nil {
		return fmt.Errorf("%s: %w: %w", addr, admin.ErrNotPersisted, err)
	}
	r.fleet.f.SetOverride(o)
	return nil
}

// keptFleetOverrides are the overrides a node restarts with: the fleet's
// as the state file kept them, or, the first time a node joins a fleet,
// its own overrides stamped at the time they were set.
func keptFleetOverrides(rs restored, node string) []fleet.Override {
	if len(rs.fleetOverrides) > 0 {
		return rs.fleetOverrides
	}
	var out []fleet.Override
	for a, ov := range rs.overrides {
		out = append(out, fleet.Override{Member: a.String(), Mode: fleetMode(ov.Mode), Reason: ov.Reason,
			Since: ov.Since, Until: ov.Until, Stamp: fleet.Stamp{Wall: ov.Since.UnixNano(), Node: node}})
	}
	slices.SortFunc(out, func(a, b fleet.Override) int { return strings.Compare(a.Member, b.Member) })
	return out
}

// setTargets gives the scheduler a generation's targets: through the
// fleet, which keeps those this node probes, or all of them.
func (r *Runtime) setTargets(all []healthcheck.Target) error {
	if r.fleet != nil {
		return r.fleet.setTargets(all)
	}
	return r.sched.Set(all)
}

// closeFleet leaves the fleet (telling the others at once, so that they
// stop counting this node) and waits for the membership to stop.
func (r *Runtime) closeFleet() {
	if r.fleet == nil {
		return
	}
	if err := r.fleet.f.Close(); err != nil {
		r.fleet.log.Warn().Err(err).Msg("leaving the fleet")
	}
}

// targetStatus is a target's live status as the API shows it: this
// node's probe (its error and latency) with, in a fleet, the fleet's
// decision for up and since, and the fleet's view alone for a target that
// another node probes.
func (r *Runtime) targetStatus(k healthcheck.TargetKey) (healthcheck.Status, bool) {
	st, ok := r.sched.Status(k)
	if r.fleet == nil {
		return st, ok
	}
	fs, fok := r.fleet.Snapshot().Status(k)
	switch {
	case !fok:
		return st, ok
	case !ok:
		return fs, true
	}
	st.Up, st.Since = fs.Up, fs.Since
	return st, true
}

// fleetReloaded applies a reload's fleet: block: its health policy and
// probe sharing now (the loop reads them from the generation), the rest
// at the next start.
func (r *Runtime) fleetReloaded(fc *FleetConfig) {
	switch {
	case r.fleet == nil:
		r.log.Warn().Msg("reload: a fleet: block takes effect after a restart")
		return
	case fc == nil:
		r.log.Warn().Msg("reload: leaving the fleet takes a restart; it keeps its health policy and probe sharing until then")
	default:
		was, now := r.fleet.cfg, *fc
		was.Health, was.ProbesPerTarget, now.Health, now.ProbesPerTarget = "", 0, "", 0
		if !reflect.DeepEqual(was, now) {
			r.log.Warn().Msg("reload: fleet name, node, bind, advertise, join and key changes take effect after a restart; health and probes_per_target apply now")
		}
	}
	r.fleet.wake()
}

// Fleet implements admin.FleetBackend.
func (r *Runtime) Fleet() (admin.FleetStatus, bool) {
	n := r.fleet
	if n == nil {
		return admin.FleetStatus{}, false
	}
	policy, k := n.settings()
	fs := admin.FleetStatus{Name: n.cfg.Name, Node: n.f.Name(), Health: string(policy), ProbesPerTarget: k,
		Isolated: n.f.Isolated(), Nodes: []admin.FleetNode{}, Divergences: []admin.Divergence{}}
	for _, nd := range n.f.Nodes() {
		an := admin.FleetNode{Name: nd.Name, Address: nd.Addr, State: nd.State, Self: nd.Self,
			LastContact: nd.LastContact, ConfigHash: nd.Meta.ConfigHash, Observations: map[string]admin.FleetObservation{}}
		for key, o := range nd.Observations {
			an.Observations[key] = admin.FleetObservation{Up: o.Up, Checked: o.Checked, Since: o.Since}
			if o.Checked && !o.Up {
				an.Down++
			}
		}
		fs.Nodes = append(fs.Nodes, an)
	}
	for _, d := range n.f.Divergences() {
		fs.Divergences = append(fs.Divergences, admin.Divergence{Node: d.Node, What: d.What, Zone: d.Zone, Theirs: d.Theirs, Ours: d.Ours})
	}
	return fs, true
}

// fleetCollector exports the fleet's counters at scrape time.
type fleetCollector struct {
	r                                          *Runtime
	members, messages, rejected, isolated, div *prometheus.Desc
}

func newFleetCollector(r *Runtime) *fleetCollector {
	return &fleetCollector{r: r,
		members: prometheus.NewDesc("dnslb_fleet_members",
			"Nodes of the fleet as this node sees them, by state (alive, suspect, dead, left); this node included.", []string{"state"}, nil),
		messages: prometheus.NewDesc("dnslb_fleet_messages_total",
			"Fleet messages sent and received, by direction (in, out) and type.", []string{"direction", "type"}, nil),
		rejected: prometheus.NewDesc("dnslb_fleet_rejected_total",
			"Gossip packets and messages refused: decrypt (wrong or no key), label (another fleet's name), malformed.", []string{"reason"}, nil),
		isolated: prometheus.NewDesc("dnslb_fleet_isolated",
			"1 while this node sees no other node of the fleet alive and answers from its own health checks alone.", nil, nil),
		div: prometheus.NewDesc("dnslb_fleet_divergent_nodes",
			"Live nodes whose pool config or zone serials differ from this node's.", nil, nil),
	}
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.members, c.messages, c.rejected, c.isolated, c.div} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.r.fleet
	if n == nil {
		return
	}
	st := n.f.Stats()
	for _, state := range []string{"alive", "suspect", "dead", "left"} {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(st.Members[state]), state)
	}
	for k, v := range st.Messages {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(v), k[0], k[1])
	}
	for _, reason := range []string{"decrypt", "label", "malformed"} {
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(st.Rejected[reason]), reason)
	}
	iso := 0.0
	if n.f.Isolated() {
		iso = 1
	}
	ch <- prometheus.MustNewConstMetric(c.isolated, prometheus.GaugeValue, iso)
	nodes := map[string]bool{}
	for _, d := range n.f.Divergences() {
		nodes[d.Node] = true
	}
	ch <- prometheus.MustNewConstMetric(c.div, prometheus.GaugeValue, float64(len(nodes)))
}

// fleetViews are the nodes' observations by target key, for the API's
// per-member view; nil outside a fleet.
type fleetViews map[string]map[string]fleet.Observation // node → target key → view

func (r *Runtime) fleetViews() fleetViews {
	if r.fleet == nil {
		return nil
	}
	v := fleetViews{}
	for _, nd := range r.fleet.f.Nodes() {
		if nd.State == "alive" || nd.State == "suspect" {
			v[nd.Name] = nd.Observations
		}
	}
	return v
}

// of is each live node's view of m: down if one of m's checks is down
// there, unchecked while one has no result yet, else up; a node that
// probes none of m's checks is left out.
func (v fleetViews) of(m *pool.Member) map[string]string {
	if v == nil || !m.Checked {
		return nil
	}
	keys := append([]healthcheck.TargetKey{m.Target}, m.Also...)
	out := map[string]string{}
	for node, obs := range v {
		state := ""
		for _, k := range keys {
			o, ok := obs[k.String()]
			switch {
			case !ok:
			case o.Checked && !o.Up:
				state = "down"
			case !o.Checked && state != "down":
				state = "unchecked"
			case state == "":
				state = "up"
			}
		}
		if state != "" {
			out[node] = state
		}
	}
	return out
}
