package healthcheck

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// StaleIntervals is how many intervals without a good report make a
// member's load data stale: it is then ignored (configured weight, no
// agent state) until the agent reports again.
const StaleIntervals = 3

// LoadTarget is one load agent to poll: a member's address with the
// agent's port, at an interval.
type LoadTarget struct {
	Addr     netip.AddrPort
	Interval time.Duration
	// Passive: not asked; reports come from Report (a header of the http
	// check's responses). The interval then only times staleness.
	Passive bool
	// Header names the response header a passive target's reports come
	// in, or JSON the field of its JSON body, for the caller that routes
	// them (see WithHeaderSink).
	Header string
	JSON   string
	// MaxStep bounds how far the live weight answers use moves per
	// interval, in points of N% (for weight:N, of HAProxy's full scale,
	// 256); 0: unbounded. See Load.Live.
	MaxStep int
}

// Load is what a member's agent has said, merged over its reports: each
// field holds the last value any report sent (HAProxy's rule).
type Load struct {
	Op      AgentOp
	Admin   AgentAdmin
	Percent int // -1: never sent
	Weight  int // -1: never sent
	MaxConn int // -1: never sent
	Desc    string
	// Reported is when the last good report came; zero: none yet.
	Reported time.Time
	// Stale: reports stopped for StaleIntervals intervals; the fields
	// above are reset and the member is answered as configured.
	Stale bool
	// Err is the last probe's error, if it failed.
	Err string
	// Live is the figure answers use: Percent (or Weight, if liveWeight),
	// moved towards it by at most the target's MaxStep per interval, so
	// that shares do not swing with every report; -1: none. A first
	// report, or one that switches between N% and weight:N, is taken
	// at once.
	Live       int
	liveWeight bool
	stepped    time.Time // when Live last moved
}

// unsetLoad is a Load before any report.
func unsetLoad() Load { return Load{Percent: -1, Weight: -1, MaxConn: -1, Live: -1} }

// fullWeight is HAProxy's largest weight: MaxStep's scale for weight:N.
const fullWeight = 256

// step moves Live towards what the reports say, by at most t.MaxStep
// once per interval.
func (l Load) step(t LoadTarget, now time.Time) Load {
	target, isWeight := l.Percent, false
	if l.Weight >= 0 {
		target, isWeight = l.Weight, true
	}
	switch {
	case target < 0:
		l.Live = -1
		return l
	case l.Live == target && l.liveWeight == isWeight:
		return l
	case l.Live < 0 || l.liveWeight != isWeight || t.MaxStep <= 0:
		l.Live, l.liveWeight, l.stepped = target, isWeight, now
		return l
	case !l.stepped.IsZero() && now.Sub(l.stepped) < t.Interval*9/10:
		return l // one step per interval (a little early is still this tick)
	}
	lim := t.MaxStep
	if isWeight {
		lim = max(1, t.MaxStep*fullWeight/100)
	}
	l.Live = min(max(target, l.Live-lim), l.Live+lim)
	l.stepped = now
	return l
}

// Merge applies a report to l: what r did not send stays as it was.
func (l Load) Merge(r AgentReport, now time.Time) Load {
	if r.Op != AgentOpUnset {
		l.Op = r.Op
		l.Desc = r.Desc
	}
	if r.Admin != AgentAdminUnset {
		l.Admin = r.Admin
	}
	if r.Percent >= 0 {
		l.Percent, l.Weight = r.Percent, -1
	}
	if r.Weight >= 0 {
		l.Weight, l.Percent = r.Weight, -1
	}
	if r.MaxConn >= 0 {
		l.MaxConn = r.MaxConn
	}
	l.Reported, l.Stale, l.Err = now, false, ""
	return l
}

// Down reports whether the agent holds the member down (down, fail,
// stopped): like a failed check.
func (l Load) Down() bool { return l.Op == AgentDown }

// Drained reports whether the agent takes the member out of the answers
// (drain, maint, or a weight of 0) unless every member is out.
func (l Load) Drained() bool {
	return l.Admin == AgentDrain || l.Admin == AgentMaint || l.Percent == 0 || l.Weight == 0
}

// LiveWeight returns the weight the agent gives a member configured with
// weight: configured × N / 100 for "N%" (at least 1 unless N is 0), N for
// "weight:N", as bounded per interval (Live); ok is false when the agent
// gave none.
func (l Load) LiveWeight(configured int) (w int, ok bool) {
	live, isWeight := l.Live, l.liveWeight
	if live < 0 { // not stepped (a Load made by Merge alone): the report as sent
		live, isWeight = l.Percent, false
		if l.Weight >= 0 {
			live, isWeight = l.Weight, true
		}
	}
	switch {
	case live < 0:
		return configured, false
	case isWeight:
		return live, true
	}
	w = configured * live / 100
	if w == 0 && live > 0 {
		w = 1
	}
	return w, true
}

// same reports whether l and o answer alike: a new report that changes
// nothing an answer depends on publishes no new snapshot.
func (l Load) same(o Load) bool {
	return l.Op == o.Op && l.Admin == o.Admin && l.Percent == o.Percent && l.Weight == o.Weight && l.Stale == o.Stale && l.Live == o.Live && l.liveWeight == o.liveWeight
}

// LoadSnapshot is an immutable view of every agent's load, published only
// when one of them changes what answers depend on.
type LoadSnapshot struct {
	// Generation increases with every published snapshot.
	Generation uint64
	loads      map[netip.AddrPort]Load
}

// Get returns the load at addr, if it is polled (nil: none).
func (s *LoadSnapshot) Get(addr netip.AddrPort) (Load, bool) {
	if s == nil {
		return Load{}, false
	}
	l, ok := s.loads[addr]
	return l, ok
}

// LoadChange is a change of one agent's load that the snapshot published.
type LoadChange struct {
	Addr     netip.AddrPort
	Old, New Load
}

// LoadOption configures a LoadWatcher.
type LoadOption func(*LoadWatcher)

// WithLoadChanges makes the watcher call f for every published change
// (from its goroutines; f must not block). The package logs nothing: the
// caller does, once per change (a member going stale is one change).
func WithLoadChanges(f func(LoadChange)) LoadOption { return func(w *LoadWatcher) { w.changed = f } }

// WithAgentProbe replaces ProbeAgent (for tests).
func WithAgentProbe(p func(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (AgentReport, error)) LoadOption {
	return func(w *LoadWatcher) { w.probe = p }
}

// LoadWatcher polls load agents, one goroutine each, and keeps their
// merged reports in a snapshot readers get without a lock.
type LoadWatcher struct {
	probe   func(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (AgentReport, error)
	changed func(LoadChange)

	mu      sync.Mutex
	targets map[netip.AddrPort]*loadTarget
	loads   map[netip.AddrPort]Load
	gen     uint64
	ctx     context.Context // nil until Start
	cancel  context.CancelFunc
	closed  bool
	wg      sync.WaitGroup
	snap    atomic.Pointer[LoadSnapshot]
}

type loadTarget struct {
	LoadTarget
	stop context.CancelFunc
}

// NewLoadWatcher returns a watcher with no targets.
func NewLoadWatcher(opts ...LoadOption) *LoadWatcher {
	w := &LoadWatcher{probe: ProbeAgent, targets: map[netip.AddrPort]*loadTarget{}, loads: map[netip.AddrPort]Load{}}
	for _, o := range opts {
		o(w)
	}
	w.snap.Store(&LoadSnapshot{})
	return w
}

// Snapshot returns the current snapshot; never nil.
func (w *LoadWatcher) Snapshot() *LoadSnapshot { return w.snap.Load() }

// Set replaces the agents polled. Those that remain with the same
// interval keep their state and goroutine; the rest start afresh.
func (w *LoadWatcher) Set(targets []LoadTarget) {
	w.mu.Lock()
	defer w.mu.Unlock()
	want := map[netip.AddrPort]LoadTarget{}
	for _, t := range targets {
		if old, ok := want[t.Addr]; !ok || t.Interval < old.Interval {
			want[t.Addr] = t // one agent polled by several pools: the most often
		}
	}
	changed := false
	for addr, t := range w.targets {
		if nt, ok := want[addr]; !ok || nt != t.LoadTarget {
			if t.stop != nil {
				t.stop()
			}
			delete(w.targets, addr)
			if !ok {
				delete(w.loads, addr)
				changed = true
			}
		}
	}
	for addr, t := range want {
		if _, ok := w.targets[addr]; ok {
			continue
		}
		lt := &loadTarget{LoadTarget: t}
		w.targets[addr] = lt
		if _, ok := w.loads[addr]; !ok {
			w.loads[addr] = unsetLoad()
			changed = true
		}
		w.startLocked(lt)
	}
	if changed {
		w.publishLocked()
	}
}

// Start polls the agents until ctx ends or Close.
func (w *LoadWatcher) Start(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.ctx != nil {
		return
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	for _, t := range w.targets {
		w.startLocked(t)
	}
}

// Close stops every poll and waits for the goroutines.
func (w *LoadWatcher) Close() {
	w.mu.Lock()
	w.closed = true
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// Loads returns every agent's load (for the admin API).
func (w *LoadWatcher) Loads() map[netip.AddrPort]Load {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.loads)
}

func (w *LoadWatcher) startLocked(t *loadTarget) {
	if w.ctx == nil || w.closed {
		return
	}
	ctx, stop := context.WithCancel(w.ctx)
	t.stop = stop
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.run(ctx, t.LoadTarget)
	}()
}

// run polls one agent every interval; the interval is also the probe's
// timeout (as HAProxy's agent-inter is).
func (w *LoadWatcher) run(ctx context.Context, t LoadTarget) {
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		if t.Passive {
			w.record(t, AgentReport{}, errNoReport, time.Now())
		} else {
			r, err := w.probe(ctx, t.Addr, t.Interval)
			if ctx.Err() != nil {
				return
			}
			w.record(t, r, err, time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// errNoReport is a passive target's tick: it says nothing new, and ages
// the last report.
var errNoReport = errors.New("no report")

// Report merges a report of a passive target at addr (see
// LoadTarget.Passive): line in the agent protocol, or an error when the
// report was missing or unreadable. Reports for addresses not watched
// passively are ignored.
func (w *LoadWatcher) Report(addr netip.AddrPort, line string, err error) {
	w.mu.Lock()
	t, ok := w.targets[addr]
	w.mu.Unlock()
	if !ok || !t.Passive {
		return
	}
	var r AgentReport
	if err == nil {
		r, err = ParseAgentLine([]byte(line))
	}
	w.record(t.LoadTarget, r, err, time.Now())
}

// record merges a probe's result into the agent's load, and publishes a
// snapshot if that changed what answers depend on.
func (w *LoadWatcher) record(t LoadTarget, r AgentReport, err error, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	old, ok := w.loads[t.Addr]
	if !ok {
		return // removed by Set meanwhile
	}
	nl := old
	switch {
	case err == nil:
		nl = old.Merge(r, now)
	default:
		if err != errNoReport {
			nl.Err = err.Error()
		}
		if !old.Stale && !old.Reported.IsZero() && now.Sub(old.Reported) >= StaleIntervals*t.Interval {
			reported, e := old.Reported, nl.Err
			nl = unsetLoad()
			nl.Reported, nl.Stale, nl.Err = reported, true, e
		}
	}
	nl = nl.step(t, now)
	w.loads[t.Addr] = nl
	if !nl.same(old) {
		w.publishLocked()
		if w.changed != nil {
			w.changed(LoadChange{Addr: t.Addr, Old: old, New: nl})
		}
	}
}

func (w *LoadWatcher) publishLocked() {
	w.gen++
	w.snap.Store(&LoadSnapshot{Generation: w.gen, loads: maps.Clone(w.loads)})
}
