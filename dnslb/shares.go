package dnslb

import "net/netip"

// Answer shares: each pool member counts the answers it led; every
// shareSampleEvery seconds the counts are sampled, and the share is the
// difference over the last minute.
const (
	shareSampleEvery = 10 // seconds
	shareSamples     = 7  // six intervals: one minute
)

type shareSample map[string]map[netip.Addr]uint64

type shareRing struct {
	samples []shareSample // oldest first
}

// sampleShares samples the lead counters of the generation being served
// and publishes the shares over the window. The ring is housekeeping's
// alone (it is the only caller); readers load the published shares.
func (r *Runtime) sampleShares() {
	s := shareSample{}
	for pool, p := range r.cur.Load().View.Pools {
		m := map[netip.Addr]uint64{}
		for _, mb := range p.Members() {
			if mb.Leads != nil {
				m[mb.Addr] = mb.Leads.Load()
			}
		}
		s[pool] = m
	}
	r.ring.samples = append(r.ring.samples, s)
	if len(r.ring.samples) > shareSamples {
		r.ring.samples = r.ring.samples[1:]
	}
	shares := r.ring.shares()
	r.shares.Store(&shares)
}

// shares returns, per pool and member, the fraction of the pool's answers
// over the sampled window that the member led.
func (s *shareRing) shares() map[string]map[netip.Addr]float64 {
	out := map[string]map[netip.Addr]float64{}
	if len(s.samples) < 2 {
		return out
	}
	first, last := s.samples[0], s.samples[len(s.samples)-1]
	for pool, now := range last {
		var total uint64
		delta := map[netip.Addr]uint64{}
		for a, n := range now {
			d := n
			if was := first[pool][a]; was <= n {
				d -= was
			} // else a counter started afresh: its member left the pool and came back
			delta[a] = d
			total += d
		}
		m := map[netip.Addr]float64{}
		for a, d := range delta {
			if total > 0 {
				m[a] = float64(d) / float64(total)
			}
		}
		out[pool] = m
	}
	return out
}
