package healthcheck

import (
	"errors"
	"time"
)

// Adaptive timeouts. A probe is timed out at a bound learned from the
// target's own latency rather than always at Spec.Timeout, so that a hung
// backend that normally answers in a millisecond is caught in a few hundred
// milliseconds, not after Fall full timeouts.
//
// The estimator is TCP's retransmission timer (RFC 6298): SRTT and RTTVAR
// are smoothed with alpha 1/8 and beta 1/4, and RTO = SRTT + 4 × RTTVAR.
// The rule:
//
//   - Only successful probes' latencies are samples; a timeout or another
//     failure says nothing about how fast the backend answers, and must not
//     inflate (or shrink) the estimate.
//   - Until AdaptiveMinSamples successes are in, a probe's timeout is
//     Spec.Timeout.
//   - Then it is max(AdaptiveFloor, RTO), at most Spec.Timeout (the ceiling).
//   - A probe that timed out at a bound below the ceiling makes the next
//     probe's bound AdaptiveGrowth times larger (up to the ceiling), and so
//     on for each further such timeout; a success resets the growth. A
//     backend whose latency steps up from 1 ms to 400 ms (timeout 1 s, Fall
//     3) misses the 200 ms bound, then 300 ms, answers within 450 ms, and
//     its new latency is learned: it is not marked down. A backend whose
//     latency rises steadily is followed by the estimator itself (RTTVAR
//     grows with the trend). A hung one fails Fall probes in
//     200 + 300 + 450 ms, under a second.
//   - Refused connections and other fast failures leave the bound alone.
const (
	// AdaptiveFloor is the smallest adaptive timeout: scheduling noise and
	// a GC pause must not look like a hang.
	AdaptiveFloor = 200 * time.Millisecond
	// AdaptiveMinSamples is the number of successful probes after which the
	// adaptive timeout replaces Spec.Timeout.
	AdaptiveMinSamples = 3
	// AdaptiveGrowth is the factor by which the bound grows after each
	// probe that timed out below the ceiling.
	AdaptiveGrowth = 1.5
)

// estimator learns one target's probe latency. The zero value has no
// samples.
type estimator struct {
	srtt, rttvar time.Duration
	samples      int
	// grow is the number of consecutive timeouts below the ceiling.
	grow int
}

// bound returns the timeout of the next probe, at most ceiling.
func (e *estimator) bound(ceiling time.Duration) time.Duration {
	if e.samples < AdaptiveMinSamples {
		return ceiling
	}
	b := max(AdaptiveFloor, e.srtt+4*e.rttvar)
	for range e.grow {
		if b >= ceiling {
			break
		}
		b = time.Duration(float64(b) * AdaptiveGrowth)
	}
	return min(b, ceiling)
}

// record applies one probe's result; bound is the timeout the probe ran
// with and ceiling is Spec.Timeout.
func (e *estimator) record(latency time.Duration, err error, bound, ceiling time.Duration) {
	switch {
	case err == nil:
		e.grow = 0
		if e.samples == 0 {
			e.srtt, e.rttvar = latency, latency/2
		} else {
			d := e.srtt - latency
			if d < 0 {
				d = -d
			}
			e.rttvar = (3*e.rttvar + d) / 4
			e.srtt = (7*e.srtt + latency) / 8
		}
		e.samples++
	case errors.Is(err, ErrTimeout) && bound < ceiling:
		e.grow++
	}
}
