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

func (r *Runtime) sampleShares() {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := shareSample{}
	for pool, byAddr := range r.leads {
		m := map[netip.Addr]uint64{}
		for a, c := range byAddr {
			m[a] = c.Load()
		}
		s[pool] = m
	}
	r.shares.samples = append(r.shares.samples, s)
	if len(r.shares.samples) > shareSamples {
		r.shares.samples = r.shares.samples[1:]
	}
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
			d := n - first[pool][a]
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
