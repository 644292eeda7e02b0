package healthcheck

// Thresholds is the rise/fall hysteresis of one checked thing: Up changes
// only after Rise consecutive successes (down to up) or Fall consecutive
// failures (up to down), so one lost probe does not flap it. The Scheduler
// applies it to every target, and vip to its tracks.
//
// Set Rise, Fall and the initial Up; the counters start at 0. Rise and
// Fall below 1 count as 1. A Thresholds is not safe for concurrent use.
type Thresholds struct {
	Rise, Fall int
	// Up is the state after hysteresis.
	Up bool
	// Successes and Failures count consecutive results; one of them is 0
	// once a result is in.
	Successes, Failures int
}

// Record applies one result (ok: the probe succeeded) and reports whether
// Up changed.
func (t *Thresholds) Record(ok bool) (changed bool) {
	if ok {
		t.Successes++
		t.Failures = 0
	} else {
		t.Failures++
		t.Successes = 0
	}
	switch {
	case !t.Up && t.Successes >= max(t.Rise, 1):
		t.Up = true
		return true
	case t.Up && t.Failures >= max(t.Fall, 1):
		t.Up = false
		return true
	}
	return false
}
