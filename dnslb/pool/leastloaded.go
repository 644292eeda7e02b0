package pool

// Loads is the optional part of a Health that knows members' live
// weights, from the load their backends report (the pool's load:). A
// LeastLoaded plan asks it once, when the plan is built.
type Loads interface {
	// LiveWeight returns m's weight as its reports say (configured
	// weight scaled by the reported free capacity), and whether there
	// are reports: false for a member without load feedback, or whose
	// data went stale.
	LiveWeight(m *Member) (w int, ok bool)
}

// LeastLoaded orders members by their reported load relative to their
// capacity: smooth weighted round-robin over live weights (Loads), so
// that across resolvers the share of first answers follows each member's
// free capacity, DNS's translation of "fewest connections". Without
// reports it is Weighted. Live weights change the plan only when the
// Health's generation changes: answering reads the schedule alone.
type LeastLoaded struct{}

func (LeastLoaded) String() string { return "least-loaded" }

// schedule is the schedule without load data: Weighted's.
func (LeastLoaded) schedule(members []Member, idx []int) schedule {
	return Weighted{}.schedule(members, idx)
}

// scheduleLoads is the schedule over live weights. A member whose live
// weight is 0 is drained by its Health and not in idx, unless every
// member is out: then they share equally.
func (LeastLoaded) scheduleLoads(members []Member, idx []int, loads Loads) schedule {
	weights := make([]int, len(idx))
	for k, i := range idx {
		weights[k] = members[i].Weight
		if w, ok := loads.LiveWeight(&members[i]); ok {
			weights[k] = w
		}
	}
	seq := smoothSequence(weights)
	return schedule{slots: len(seq), starts: seq}
}

// loadPolicy is a Policy whose schedule follows live weights when the
// Health has them.
type loadPolicy interface {
	scheduleLoads(members []Member, idx []int, loads Loads) schedule
}

// scheduleFor asks pol for its schedule under h: by live weights when
// both the policy and h take them.
func scheduleFor(pol Policy, members []Member, idx []int, h Health) schedule {
	if lp, ok := pol.(loadPolicy); ok {
		if loads, ok := h.(Loads); ok {
			return lp.scheduleLoads(members, idx, loads)
		}
	}
	return pol.schedule(members, idx)
}
