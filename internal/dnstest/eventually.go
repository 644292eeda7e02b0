package dnstest

import (
	"testing"
	"time"
)

// PollStep is how often Eventually re-evaluates its condition.
const PollStep = 10 * time.Millisecond

// Eventually evaluates cond every PollStep until it holds, and returns how
// long that took. When it still does not hold after within, the test fails
// with what and cond's last description of the state it saw.
func Eventually(t testing.TB, within time.Duration, what string, cond func() (ok bool, state string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			if state != "" {
				t.Fatalf("%s: not within %v; last: %s", what, within, state)
			}
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(PollStep) // a poll interval, not synchronisation
	}
}

// Until is Eventually for a condition with nothing to say about its state.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Eventually(t, within, what, func() (bool, string) { return cond(), "" })
}
