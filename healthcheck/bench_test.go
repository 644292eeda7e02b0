//go:build unix

package healthcheck

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the CPU time (user + system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runProbes schedules targets, waits until b.N probes have run (counted by
// the probe hook) and reports the CPU cost per probe and what it means for
// 10,000 targets at a 1s interval.
func runProbes(b *testing.B, targets []Target, factory func(Spec) (Checker, error), probes *atomic.Int64, done <-chan struct{}) {
	b.Helper()
	s := NewScheduler(WithCheckerFactory(factory))
	defer s.Close()
	var late lateness
	s.onLate = late.add
	if err := s.Set(targets); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime(b)
	b.ResetTimer()
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	<-done
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	n := probes.Load()
	_ = s.Close()
	perProbe := float64(cpu.Nanoseconds()) / float64(n)
	b.ReportMetric(perProbe, "cpu-ns/probe")
	b.ReportMetric(perProbe*10000/1e9, "cores@10k/s")
	late.report(b)
}

// lateness collects how late probes start against the instant their timer
// was set for (the jittered schedule).
type lateness struct {
	mu      sync.Mutex
	all     []time.Duration
	overJit int // later than the target's jitter
}

func (l *lateness) add(late time.Duration, spec *Spec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, late)
	if late > spec.Jitter {
		l.overJit++
	}
}

// report adds the 99th percentile and worst lateness and how many probes
// were later than their jitter.
func (l *lateness) report(b *testing.B) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	b.ReportMetric(float64(l.all[len(l.all)*99/100].Microseconds())/1000, "p99-late-ms")
	b.ReportMetric(float64(l.all[len(l.all)-1].Microseconds())/1000, "worst-late-ms")
	b.ReportMetric(float64(l.overJit), "later-than-jitter")
}

// countingFactory wraps checkers so that done is closed after n probes.
func countingFactory(inner func(Spec) (Checker, error), n int, probes *atomic.Int64, done chan struct{}) func(Spec) (Checker, error) {
	var once sync.Once
	return func(s Spec) (Checker, error) {
		c, err := inner(s)
		if err != nil {
			return nil, err
		}
		cc := &countingChecker{inner: c, n: int64(n), probes: probes, done: func() { once.Do(func() { close(done) }) }}
		if _, ok := c.(selfTimed); ok {
			return selfTimedCounting{cc}, nil // keep the scheduler's fast path
		}
		return cc, nil
	}
}

type countingChecker struct {
	inner  Checker
	n      int64
	probes *atomic.Int64
	done   func()
}

func (c *countingChecker) Check(ctx context.Context, addr netip.AddrPort) error {
	err := c.inner.Check(ctx, addr)
	if c.probes.Add(1) == c.n {
		c.done()
	}
	return err
}

type selfTimedCounting struct{ *countingChecker }

func (selfTimedCounting) selfTimed() {}

// BenchmarkScheduler10kTargets measures the scheduler's own cost per probe
// (timers, timeout context, state machine, locking) with 10,000 targets and
// a probe that does nothing. The interval is 100ms so that the benchmark is
// short; cores@10k/s is the projected cost at the 1s interval.
func BenchmarkScheduler10kTargets(b *testing.B) {
	const n = 10000
	var targets []Target
	spec := Spec{Type: "tcp", Interval: 100 * time.Millisecond}
	for i := range n {
		targets = append(targets, Target{Spec: spec, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 80)})
	}
	var probes atomic.Int64
	done := make(chan struct{})
	noop := func(Spec) (Checker, error) { return noneChecker{}, nil } // self-timed, like the real checkers
	runProbes(b, targets, countingFactory(noop, b.N, &probes, done), &probes, done)
}

// BenchmarkScheduler10kTCP runs the real tcp checker for 10,000 targets at a
// 1s interval against local listeners (100 ports; the timeout varies by a
// microsecond to make 100 distinct checks per port). The CPU includes the
// accepting side.
func BenchmarkScheduler10kTCP(b *testing.B) {
	if testing.Short() {
		b.Skip("opens 10,000 connections a second")
	}
	const ports, perPort = 100, 100
	var targets []Target
	var wg sync.WaitGroup
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
		wg.Wait()
	}()
	// Plain TCP, as a web server's listeners (Go's default is MPTCP, whose
	// fallback costs the connecting side work a real backend would not).
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	for range ports {
		l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		listeners = append(listeners, l)
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		})
		ap, err := netip.ParseAddrPort(l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		for j := range perPort {
			spec := Spec{Type: "tcp", Interval: time.Second, Timeout: 500*time.Millisecond + time.Duration(j)*time.Microsecond}
			targets = append(targets, Target{Spec: spec, Addr: ap})
		}
	}
	var probes atomic.Int64
	done := make(chan struct{})
	runProbes(b, targets, countingFactory(NewChecker, b.N, &probes, done), &probes, done)
}
