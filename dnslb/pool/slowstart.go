package pool

import (
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// SlowStartSteps is how many weight levels a member's slow start ramp
// has: 10 %, 20 %, … 100 % of its weight. Each level is one new plan, so
// the ramp costs SlowStartSteps plan builds, not one per query.
const SlowStartSteps = 10

// slowStart is a pool's memory of which members were eligible when its
// last plan was built, and since when those that came back are. Plans
// are built off the cached path (once per generation), so a mutex is
// fine here.
type slowStart struct {
	mu sync.Mutex
	// eligible: the member's eligibility at the last build. A member not
	// in it is seen for the first time (process start, or a reload that
	// added it) and does not ramp.
	eligible map[netip.Addr]bool
	since    map[netip.Addr]time.Time // ramping members: when they came back
	// until is when the last ramp ends (unix nanoseconds; 0: none), read
	// without the lock by Ramping.
	until atomic.Int64
}

// now returns the pool's clock.
func (p *Pool) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Ramping reports whether a member of p is in its slow start at now (or
// has just finished it and the plan showing its full weight is yet to be
// built): whoever owns the clock then starts a new generation every
// SlowStart/SlowStartSteps so that plans follow the ramp.
func (p *Pool) Ramping(now time.Time) bool {
	u := p.ramp.until.Load()
	return u != 0 && now.UnixNano() <= u
}

// rampLevels returns, for each member of idx, its weight level in
// 1..SlowStartSteps (SlowStartSteps: full weight), or nil when none ramps.
// It records who is eligible under h: a member that was not at the last
// build and is now came back (health up after down, undrain, an agent's
// ready) and ramps from now.
func (p *Pool) rampLevels(members []Member, idx []int, h Health) []int {
	if p.SlowStart <= 0 {
		return nil
	}
	now := p.now()
	s := &p.ramp
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eligible == nil {
		s.eligible, s.since = map[netip.Addr]bool{}, map[netip.Addr]time.Time{}
	}
	for i := range members {
		m := &members[i]
		e := h.Eligible(m)
		was, seen := s.eligible[m.Addr]
		switch {
		case !e:
			delete(s.since, m.Addr) // a ramp starts afresh when it comes back
		case seen && !was:
			s.since[m.Addr] = now
			if u := now.Add(p.SlowStart + p.SlowStart/SlowStartSteps).UnixNano(); u > s.until.Load() {
				s.until.Store(u)
			}
		}
		s.eligible[m.Addr] = e
	}
	var levels []int
	for k, i := range idx {
		since, ok := s.since[members[i].Addr]
		if !ok {
			continue
		}
		// Linear from 10 % at the comeback to 100 % at SlowStart, in
		// steps: level 1 in the first tenth, … 10 from SlowStart on.
		lvl := 1 + int(int64(SlowStartSteps-1)*int64(now.Sub(since))/int64(p.SlowStart))
		if lvl >= SlowStartSteps {
			delete(s.since, members[i].Addr)
			continue
		}
		if levels == nil {
			levels = make([]int, len(idx))
			for j := range levels {
				levels[j] = SlowStartSteps
			}
		}
		levels[k] = lvl
	}
	return levels
}

// rampSchedule is pol's schedule with members' weights scaled by their
// slow start levels: smooth weighted round-robin over weight × level,
// the weight being the live one for a policy that takes live weights,
// the configured one for weighted, and 1 for round-robin. ok is false for
// policies a ramp does not apply to (sticky, first-healthy: their answers
// are not shares of a rotation).
func rampSchedule(pol Policy, members []Member, idx []int, h Health, levels []int) (schedule, bool) {
	loads, _ := h.(Loads)
	weights := make([]int, len(idx))
	for k, i := range idx {
		m := &members[i]
		var w int
		switch pol.(type) {
		case RoundRobin:
			w = 1
		case Weighted:
			w = m.Weight
		case LeastLoaded:
			w = m.Weight
			if loads != nil {
				if lw, ok := loads.LiveWeight(m); ok {
					w = lw
				}
			}
		default:
			return schedule{}, false
		}
		weights[k] = max(w, 1) * levels[k]
	}
	seq := smoothSequence(weights)
	return schedule{slots: len(seq), starts: seq}, true
}

// EffectiveWeight returns the weight m is answered by under h at now: 0
// while it is not eligible; else its live weight (least-loaded, with
// reports) or its configured weight, scaled by its slow start level
// while it ramps (at least 1). For metrics: plans compute their own.
func (p *Pool) EffectiveWeight(m *Member, h Health, now time.Time) int {
	if !h.Eligible(m) {
		return 0
	}
	w := m.Weight
	if _, ok := p.policy().(LeastLoaded); ok {
		if loads, ok := h.(Loads); ok {
			if lw, ok := loads.LiveWeight(m); ok {
				w = lw
			}
		}
	}
	if p.SlowStart <= 0 {
		return w
	}
	p.ramp.mu.Lock()
	since, ok := p.ramp.since[m.Addr]
	p.ramp.mu.Unlock()
	if !ok {
		return w
	}
	lvl := 1 + int(int64(SlowStartSteps-1)*int64(now.Sub(since))/int64(p.SlowStart))
	if lvl >= SlowStartSteps {
		return w
	}
	return max(1, w*lvl/SlowStartSteps)
}

// KeepRamp takes over prev's slow start memory (a reload builds a new
// pool for the same name): members ramping go on ramping rather than
// jumping to their full weight, and a member that was out before the
// reload ramps when it comes back after. Members new to the pool do not
// ramp. Call before p answers.
func (p *Pool) KeepRamp(prev *Pool) {
	if prev == nil || p.SlowStart <= 0 {
		return
	}
	prev.ramp.mu.Lock()
	defer prev.ramp.mu.Unlock()
	if prev.ramp.eligible == nil {
		return
	}
	p.ramp.eligible, p.ramp.since = maps.Clone(prev.ramp.eligible), maps.Clone(prev.ramp.since)
	p.ramp.until.Store(prev.ramp.until.Load())
}
