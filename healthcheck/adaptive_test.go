package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestEstimatorBound(t *testing.T) {
	const ms = time.Millisecond
	timeout := fmt.Errorf("x: %w", ErrTimeout)
	type res struct {
		latency time.Duration
		err     error
	}
	ok := func(d time.Duration) res { return res{d, nil} }
	tests := []struct {
		name    string
		ceiling time.Duration
		results []res
		want    time.Duration
	}{
		{"no samples: the ceiling", time.Second, nil, time.Second},
		{"too few samples: the ceiling", time.Second, []res{ok(ms), ok(ms)}, time.Second},
		{"fast backend: the floor", time.Second, []res{ok(ms), ok(ms), ok(ms)}, AdaptiveFloor},
		// 100ms ×3: srtt 100ms; rttvar 50, 37.5, 28.125 → RTO 212.5ms.
		{"learned: SRTT + 4 RTTVAR", time.Second, []res{ok(100 * ms), ok(100 * ms), ok(100 * ms)}, 212500 * time.Microsecond},
		// Then 500ms: srtt 150ms, rttvar 121.09375ms → RTO 634.375ms.
		{"a jump in latency raises it", 2 * time.Second, []res{ok(100 * ms), ok(100 * ms), ok(100 * ms), ok(500 * ms)}, 634375 * time.Microsecond},
		{"slow backend: the ceiling", time.Second, []res{ok(900 * ms), ok(900 * ms), ok(900 * ms)}, time.Second},
		{"small ceiling wins over the floor", 100 * ms, []res{ok(ms), ok(ms), ok(ms)}, 100 * ms},
		{"timeouts grow the bound", time.Second, []res{ok(ms), ok(ms), ok(ms), {200 * ms, timeout}, {300 * ms, timeout}}, 450 * ms},
		{"growth stops at the ceiling", time.Second, []res{ok(ms), ok(ms), ok(ms), {200 * ms, timeout}, {300 * ms, timeout}, {450 * ms, timeout}, {675 * ms, timeout}, {time.Second, timeout}}, time.Second},
		{"refusals leave it alone", time.Second, []res{ok(ms), ok(ms), ok(ms), {0, errRefused}, {0, errRefused}}, AdaptiveFloor},
		{"a success resets the growth", time.Second, []res{ok(ms), ok(ms), ok(ms), {200 * ms, timeout}, ok(ms)}, AdaptiveFloor},
		{"timeouts are no samples", time.Second, []res{ok(ms), ok(ms), {time.Second, timeout}, {time.Second, timeout}}, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e estimator
			for _, r := range tc.results {
				e.record(r.latency, r.err, e.bound(tc.ceiling), tc.ceiling)
			}
			if got := e.bound(tc.ceiling); got != tc.want {
				t.Errorf("bound = %s, want %s (srtt %s rttvar %s)", got, tc.want, e.srtt, e.rttvar)
			}
		})
	}
}

// probeLog is a checker whose latency and result are scripted and which
// logs when each probe started and how it ended. It honours ctx, like the
// real checkers.
type probeLog struct {
	mu     sync.Mutex
	delay  func(n int) time.Duration // latency of the n-th probe (from 0)
	result error                     // errHang: block until ctx is done
	starts []time.Time
	errs   []error
}

func (p *probeLog) check(ctx context.Context, _ netip.AddrPort) error {
	p.mu.Lock()
	n := len(p.starts)
	p.starts = append(p.starts, time.Now())
	delay, result := time.Duration(0), p.result
	if p.delay != nil {
		delay = p.delay(n)
	}
	p.mu.Unlock()
	err := result
	if result == errHang {
		<-ctx.Done()
		err = ctx.Err()
	} else if result == nil && delay > 0 { // failures are immediate
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
	return err
}

func (p *probeLog) set(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.result = err
}

func startLogged(t *testing.T, p *probeLog) (*Scheduler, <-chan Transition) {
	t.Helper()
	s := NewScheduler(WithCheckerFactory(func(Spec) (Checker, error) { return CheckerFunc(p.check), nil }))
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Set([]Target{tgt("192.0.2.1:80", testSpec)}); err != nil {
		t.Fatal(err)
	}
	ch, cancel := s.Subscribe()
	t.Cleanup(cancel)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, ch
}

// TestSchedulerFailureConfirmed: a hung target (fast until it hangs) goes
// down after Fall probes at the growing adaptive bound, well under Fall ×
// Timeout; a refusing one within milliseconds. Either way the confirming
// probes start as the previous one ends.
func TestSchedulerFailureConfirmed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		result  error
		min     time.Duration
		max     time.Duration
		latency []time.Duration
	}{
		// 200 + 300 + 450 ms: about Fall × floor, not 3 × 1s.
		{"hung", errHang, 3 * AdaptiveFloor, time.Second,
			[]time.Duration{AdaptiveFloor, 300 * time.Millisecond, 450 * time.Millisecond}},
		{"refused", errRefused, 0, 5 * time.Millisecond, []time.Duration{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &probeLog{delay: func(int) time.Duration { return time.Millisecond }}
				_, ch := startLogged(t, p)
				time.Sleep(20 * time.Second) // learn: 1ms
				p.set(tc.result)
				p.mu.Lock()
				first := len(p.starts)
				p.mu.Unlock()
				tr := recv(t, ch, time.Minute)
				if tr.To.Up || tr.To.Failures != testSpec.Fall {
					t.Fatalf("transition %+v", tr)
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				starts := p.starts[first:]
				if len(starts) != testSpec.Fall {
					t.Fatalf("%d probes to go down, want %d", len(starts), testSpec.Fall)
				}
				took := tr.To.Since.Sub(starts[0])
				if took < tc.min || took > tc.max {
					t.Errorf("down %s after the first failing probe started, want within [%s, %s]", took, tc.min, tc.max)
				}
				for i := 1; i < len(starts); i++ {
					if gap := starts[i].Sub(starts[i-1]); gap != tc.latency[i-1] {
						t.Errorf("probe %d started %s after the previous, want %s (back to back)", i, gap, tc.latency[i-1])
					}
				}
				if end := starts[len(starts)-1].Add(tc.latency[len(starts)-1]); !tr.To.Since.Equal(end) {
					t.Errorf("down at %s, want when the last probe ended (%s)", tr.To.Since, end)
				}
			})
		})
	}
}

// TestSchedulerSlowingBackendStaysUp: a backend that slows from 1ms to
// 400ms (Timeout 1s), suddenly or gradually, is never marked down by the
// adaptive timeout, and its new latency is learned.
func TestSchedulerSlowingBackendStaysUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay func(n int) time.Duration
	}{
		{"step", func(n int) time.Duration {
			if n < 10 {
				return time.Millisecond
			}
			return 400 * time.Millisecond
		}},
		{"ramp", func(n int) time.Duration {
			return min(400*time.Millisecond, time.Millisecond+time.Duration(max(n-5, 0))*10*time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &probeLog{delay: tc.delay}
				s, ch := startLogged(t, p)
				time.Sleep(3 * time.Minute)
				select {
				case tr := <-ch:
					t.Fatalf("slow but healthy backend changed state: %+v", tr)
				default:
				}
				st := mustStatus(t, s, tgt("192.0.2.1:80", testSpec).Key())
				if !st.Up || st.Failures != 0 || st.LastLatency != 400*time.Millisecond {
					t.Errorf("status %+v", st)
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				var timeouts int
				for _, err := range p.errs {
					if errors.Is(err, context.DeadlineExceeded) {
						timeouts++
					}
				}
				if timeouts >= testSpec.Fall {
					t.Errorf("%d probes timed out", timeouts)
				}
			})
		})
	}
}
