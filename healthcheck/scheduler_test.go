package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// The scheduler's timing is tested inside synctest bubbles: time is fake
// and advances only when every goroutine of the bubble is blocked, so
// time.Sleep and time.Now below are exact and instantaneous.

var errRefused = errors.New("connection refused")

// errHang makes a fake backend block until the probe's context is done.
var errHang = errors.New("hang")

// fakeBackends scripts the result of probes per address.
type fakeBackends struct {
	mu          sync.Mutex
	result      map[netip.AddrPort]error
	delay       map[netip.AddrPort]time.Duration // ignoring ctx
	calls       map[netip.AddrPort]int
	first       map[netip.AddrPort]time.Time
	inflight    map[netip.AddrPort]int
	maxInflight int
	panicking   bool
}

func newFakeBackends() *fakeBackends {
	return &fakeBackends{
		result:   map[netip.AddrPort]error{},
		delay:    map[netip.AddrPort]time.Duration{},
		calls:    map[netip.AddrPort]int{},
		first:    map[netip.AddrPort]time.Time{},
		inflight: map[netip.AddrPort]int{},
	}
}

func (f *fakeBackends) factory(Spec) (Checker, error) { return CheckerFunc(f.check), nil }

func (f *fakeBackends) check(ctx context.Context, addr netip.AddrPort) error {
	f.mu.Lock()
	f.calls[addr]++
	if _, ok := f.first[addr]; !ok {
		f.first[addr] = time.Now()
	}
	f.inflight[addr]++
	f.maxInflight = max(f.maxInflight, f.inflight[addr])
	err, delay, panicking := f.result[addr], f.delay[addr], f.panicking
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[addr]--
		f.mu.Unlock()
	}()
	if panicking {
		panic("checker bug")
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if err == errHang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (f *fakeBackends) set(addr netip.AddrPort, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.result[addr] = err
}

func (f *fakeBackends) callCount(addr netip.AddrPort) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[addr]
}

// testSpec: Interval 2s, Timeout 1s, Rise 2, Fall 3, so Jitter 200ms and
// FastInterval 500ms.
var testSpec = Spec{Type: "tcp", Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3}

func newTestScheduler(t *testing.T, fb *fakeBackends, opts ...Option) *Scheduler {
	t.Helper()
	opts = append([]Option{WithCheckerFactory(fb.factory), WithRand(rand.New(rand.NewPCG(1, 2)))}, opts...)
	s := NewScheduler(opts...)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func tgt(addr string, spec Spec) Target {
	return Target{Spec: spec, Addr: netip.MustParseAddrPort(addr)}
}

// recv returns the next transition, failing the test if none comes within
// d of (fake) time.
func recv(t *testing.T, ch <-chan Transition, d time.Duration) Transition {
	t.Helper()
	select {
	case tr, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return tr
	case <-time.After(d):
		t.Fatalf("no transition within %s", d)
	}
	return Transition{}
}

func mustStatus(t *testing.T, s *Scheduler, key TargetKey) Status {
	t.Helper()
	st, ok := s.Status(key)
	if !ok {
		t.Fatalf("no status for %v", key)
	}
	return st
}

func TestSchedulerFallAndRiseWithFastRecheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		tg := tgt("192.0.2.1:80", testSpec)
		key := tg.Key()
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		ch, cancel := s.Subscribe()
		defer cancel()
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}

		time.Sleep(20 * time.Second)
		st := mustStatus(t, s, key)
		if !st.Up || !st.Checked || st.Successes < 8 || st.Failures != 0 {
			t.Fatalf("healthy target: %+v", st)
		}
		gen := s.Snapshot().Generation
		if !s.Snapshot().Up(key) {
			t.Fatal("snapshot: healthy target down")
		}

		// Down: the first failure comes within Interval+Jitter, then Fall-1
		// confirming re-checks at once (a refused probe takes no time), so
		// the target is down by Interval+Jitter. (Before issue 13 they came
		// at FastInterval, so this waited at least 2 × FastInterval.)
		fb.set(tg.Addr, errRefused)
		failedAt := time.Now()
		tr := recv(t, ch, time.Minute)
		took := time.Since(failedAt)
		const fast, fastJitter = 500 * time.Millisecond, 50 * time.Millisecond
		maxTook := 2*time.Second + 200*time.Millisecond
		if took > maxTook {
			t.Errorf("went down after %s, want within %s", took, maxTook)
		}
		if took >= 3*testSpec.Interval {
			t.Errorf("went down after %s: not faster than fall × interval", took)
		}
		if tr.Key != key || tr.To.Failures != 3 || !errors.Is(tr.Err, errRefused) {
			t.Errorf("transition = %+v", tr)
		}
		if !tr.From.Up || tr.To.Up {
			t.Errorf("transition From.Up=%v To.Up=%v, want true false", tr.From.Up, tr.To.Up)
		}
		if !tr.To.Since.Equal(time.Now()) || tr.To.LastError == "" || tr.Target.Addr != tg.Addr {
			t.Errorf("transition status = %+v target %+v", tr.To, tr.Target)
		}
		snap := s.Snapshot()
		if snap.Up(key) || snap.Generation != gen+1 || tr.Generation != snap.Generation {
			t.Errorf("snapshot after down: up=%v gen=%d (was %d, transition says %d)", snap.Up(key), snap.Generation, gen, tr.Generation)
		}

		// Steadily down: probed at Interval, no new snapshots.
		calls := fb.callCount(tg.Addr)
		time.Sleep(22 * time.Second)
		if n := fb.callCount(tg.Addr) - calls; n < 10 || n > 11 {
			t.Errorf("%d probes in 22s while steadily down, want 10-11 (interval 2s + jitter)", n)
		}
		if g := s.Snapshot().Generation; g != gen+1 {
			t.Errorf("generation moved to %d without a transition", g)
		}
		if st := mustStatus(t, s, key); st.Up || st.Failures < 13 {
			t.Errorf("down target: %+v", st)
		}

		// Up again after Rise=2 successes: Interval+Jitter, then one fast re-check.
		fb.set(tg.Addr, nil)
		recoveredAt := time.Now()
		tr = recv(t, ch, time.Minute)
		took = time.Since(recoveredAt)
		if took < fast || took > 2*time.Second+200*time.Millisecond+fast+fastJitter {
			t.Errorf("went up after %s", took)
		}
		if tr.From.Up || !tr.To.Up || tr.To.Successes != 2 || tr.Err != nil {
			t.Errorf("up transition = %+v", tr)
		}
		if snap := s.Snapshot(); !snap.Up(key) || snap.Generation != gen+2 {
			t.Errorf("snapshot after up: up=%v gen=%d", snap.Up(key), snap.Generation)
		}
		if st, ok := s.Snapshot().Status(key); !ok || !st.Up || !st.Since.Equal(time.Now()) {
			t.Errorf("snapshot status = %+v, %v", st, ok)
		}
	})
}

func TestSchedulerFlapIsDamped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Fail 2 probes out of 3, never Fall=3 in a row: stays up. The
		// script is per probe, since confirming probes follow at once.
		var n atomic.Int64
		flap := CheckerFunc(func(context.Context, netip.AddrPort) error {
			if n.Add(1)%3 == 0 {
				return nil
			}
			return errRefused
		})
		s := NewScheduler(WithCheckerFactory(func(Spec) (Checker, error) { return flap, nil }),
			WithRand(rand.New(rand.NewPCG(1, 2))))
		defer s.Close()
		tg := tgt("192.0.2.1:80", testSpec)
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		gen := s.Snapshot().Generation
		time.Sleep(time.Minute)
		if st := mustStatus(t, s, tg.Key()); !st.Up {
			t.Errorf("flapping target went down: %+v", st)
		}
		if g := s.Snapshot().Generation; g != gen {
			t.Errorf("generation %d, want %d", g, gen)
		}
		// Bounded: each normal probe is followed by at most Fall-1
		// immediate ones, no spinning.
		if got := n.Load(); got < 3*26 || got > 3*31 {
			t.Errorf("%d probes in a minute, want 3 per interval", got)
		}
	})
}

func TestSchedulerColdStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		up := tgt("192.0.2.1:80", testSpec)
		downSpec := testSpec
		downSpec.Initial = "down"
		down := tgt("192.0.2.2:80", downSpec)
		fb.set(up.Addr, errRefused)
		if err := s.Set([]Target{up, down}); err != nil {
			t.Fatal(err)
		}
		ch, cancel := s.Subscribe()
		defer cancel()

		snap := s.Snapshot()
		if !snap.Up(up.Key()) || snap.Up(down.Key()) {
			t.Errorf("before any probe: up=%v down=%v, want true false", snap.Up(up.Key()), snap.Up(down.Key()))
		}
		if st := mustStatus(t, s, up.Key()); st.Checked || !st.Up {
			t.Errorf("unchecked target status %+v", st)
		}
		// Not started: nothing is probed.
		time.Sleep(10 * time.Second)
		if n := fb.callCount(up.Addr) + fb.callCount(down.Addr); n != 0 {
			t.Fatalf("%d probes before Start", n)
		}

		start := time.Now()
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		// The Initial-down target rises after its first probe (within the
		// first interval) and one fast re-check; the failing Initial-up
		// target falls after one probe and two fast re-checks.
		var trs []Transition
		for range 2 {
			trs = append(trs, recv(t, ch, time.Minute))
		}
		for _, tr := range trs {
			took := tr.To.Since.Sub(start)
			switch tr.Key {
			case down.Key():
				if tr.From.Up || !tr.To.Up || tr.To.Successes != 2 || took > 2*time.Second+550*time.Millisecond {
					t.Errorf("initial-down target: %+v after %s", tr, took)
				}
			case up.Key():
				if !tr.From.Up || tr.To.Up || !tr.From.Checked || took > 2*time.Second+1100*time.Millisecond {
					t.Errorf("initial-up target: %+v after %s", tr, took)
				}
			default:
				t.Errorf("transition of unknown key %v", tr.Key)
			}
		}
		if trs[0].Key == trs[1].Key {
			t.Errorf("two transitions of one target: %+v", trs)
		}
	})
}

func TestSchedulerInitialDownStaysDownWhileFailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		spec := testSpec
		spec.Initial = "down"
		tg := tgt("192.0.2.1:80", spec)
		fb.set(tg.Addr, errRefused)
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(21 * time.Second)
		st := mustStatus(t, s, tg.Key())
		if st.Up || !st.Checked || st.LastError != "connection refused" {
			t.Errorf("status %+v", st)
		}
		// Agreeing results: normal interval, no fast re-checks.
		if n := fb.callCount(tg.Addr); n < 9 || n > 11 {
			t.Errorf("%d probes in 21s, want 9-11", n)
		}
	})
}

func TestSchedulerDedupe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		a := netip.MustParseAddr("192.0.2.1")
		withPort := testSpec
		withPort.Port = 80
		explicit := withPort
		explicit.Jitter, explicit.FastInterval, explicit.Initial = 200*time.Millisecond, 500*time.Millisecond, "up"
		targets := []Target{
			{Spec: testSpec, Addr: netip.AddrPortFrom(a, 80)},              // pool www
			{Spec: withPort, Addr: netip.AddrPortFrom(a, 0)},               // pool api: port in the check
			{Spec: explicit, Addr: netip.AddrPortFrom(a, 0)},               // pool img: defaults spelled out
			{Spec: testSpec, Addr: netip.AddrPortFrom(a, 81)},              // another port: another target
			{Spec: withPort, Addr: netip.MustParseAddrPort("192.0.2.2:0")}, // another address
		}
		if err := s.Set(targets); err != nil {
			t.Fatal(err)
		}
		if n := s.Snapshot().Len(); n != 3 {
			t.Fatalf("snapshot has %d targets, want 3", n)
		}
		if n := len(s.Statuses()); n != 3 {
			t.Fatalf("Statuses has %d targets, want 3", n)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(21 * time.Second)
		for _, ap := range []string{"192.0.2.1:80", "192.0.2.1:81", "192.0.2.2:80"} {
			if n := fb.callCount(netip.MustParseAddrPort(ap)); n < 9 || n > 11 {
				t.Errorf("%s probed %d times in 21s, want 9-11 (once per interval)", ap, n)
			}
		}
	})
}

func TestSchedulerSetKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		a := tgt("192.0.2.1:80", testSpec)
		b := tgt("192.0.2.2:80", testSpec)
		if err := s.Set([]Target{a}); err != nil {
			t.Fatal(err)
		}
		ch, cancel := s.Subscribe()
		defer cancel()
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		fb.set(a.Addr, errRefused)
		recv(t, ch, time.Minute)
		before := mustStatus(t, s, a.Key())

		// Reload: a is kept (an equal copy), b is added.
		if err := s.Set([]Target{b, tgt("192.0.2.1:80", testSpec)}); err != nil {
			t.Fatal(err)
		}
		snap := s.Snapshot()
		if snap.Up(a.Key()) || !snap.Up(b.Key()) {
			t.Errorf("after reload: a up=%v b up=%v, want false true", snap.Up(a.Key()), snap.Up(b.Key()))
		}
		after := mustStatus(t, s, a.Key())
		if after.Up || !after.Since.Equal(before.Since) || after.Failures < before.Failures {
			t.Errorf("reload reset state: before %+v after %+v", before, after)
		}
		// A no-op reload publishes nothing.
		gen := s.Snapshot().Generation
		if err := s.Set([]Target{a, b}); err != nil {
			t.Fatal(err)
		}
		if g := s.Snapshot().Generation; g != gen {
			t.Errorf("no-op Set moved generation %d -> %d", gen, g)
		}

		// Remove a: unknown keys are up, and a is no longer probed.
		if err := s.Set([]Target{b}); err != nil {
			t.Fatal(err)
		}
		if snap := s.Snapshot(); !snap.Up(a.Key()) || snap.Generation != gen+1 || snap.Len() != 1 {
			t.Errorf("after removal: up=%v gen=%d len=%d", snap.Up(a.Key()), snap.Generation, snap.Len())
		}
		if _, ok := s.Status(a.Key()); ok {
			t.Error("removed target still has a status")
		}
		synctest.Wait()
		calls := fb.callCount(a.Addr)
		time.Sleep(10 * time.Second)
		if n := fb.callCount(a.Addr); n != calls {
			t.Errorf("removed target probed %d more times", n-calls)
		}
		if n := fb.callCount(b.Addr); n < 4 {
			t.Errorf("kept target probed %d times in 10s", n)
		}

		// Added back: a fresh state.
		if err := s.Set([]Target{a, b}); err != nil {
			t.Fatal(err)
		}
		if st := mustStatus(t, s, a.Key()); !st.Up || st.Checked {
			t.Errorf("re-added target: %+v", st)
		}
	})
}

func TestSchedulerSetInvalidChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		good := tgt("192.0.2.1:80", testSpec)
		if err := s.Set([]Target{good}); err != nil {
			t.Fatal(err)
		}
		gen := s.Snapshot().Generation
		bad := tgt("192.0.2.2:80", Spec{Interval: -time.Second})
		noPort := tgt("192.0.2.3:0", Spec{})
		err := s.Set([]Target{good, bad, noPort})
		if err == nil {
			t.Fatal("Set accepted invalid targets")
		}
		for _, want := range []string{"target 1 (192.0.2.2:80): check.interval: must be > 0", "target 2 (192.0.2.3:0): check.port"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Set() = %q, want it to contain %q", err, want)
			}
		}
		if snap := s.Snapshot(); snap.Generation != gen || snap.Len() != 1 {
			t.Errorf("failed Set changed the snapshot: gen %d len %d", snap.Generation, snap.Len())
		}

		factoryErr := NewScheduler(WithCheckerFactory(func(Spec) (Checker, error) { return nil, errors.New("no such checker") }))
		defer factoryErr.Close()
		if err := factoryErr.Set([]Target{good}); err == nil || !strings.Contains(err.Error(), "no such checker") {
			t.Errorf("Set with failing factory = %v", err)
		}
		if n := factoryErr.Snapshot().Len(); n != 0 {
			t.Errorf("failed Set added %d targets", n)
		}
	})
}

func TestSchedulerTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		hung := tgt("192.0.2.1:80", testSpec)
		slow := tgt("192.0.2.2:80", testSpec)
		fb.set(hung.Addr, errHang)
		fb.mu.Lock()
		fb.delay[slow.Addr] = 1500 * time.Millisecond // ignores ctx, then says "fine"
		fb.mu.Unlock()
		if err := s.Set([]Target{hung, slow}); err != nil {
			t.Fatal(err)
		}
		ch, cancel := s.Subscribe()
		defer cancel()
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			tr := recv(t, ch, time.Minute)
			if tr.To.Up || !errors.Is(tr.Err, ErrTimeout) || !strings.Contains(tr.To.LastError, "timed out after 1s") {
				t.Errorf("transition %+v, want down on timeout", tr)
			}
		}
		if st := mustStatus(t, s, hung.Key()); st.LastLatency != time.Second {
			t.Errorf("hung probe latency %s, want the 1s timeout", st.LastLatency)
		}
		if st := mustStatus(t, s, slow.Key()); st.LastLatency != 1500*time.Millisecond {
			t.Errorf("slow probe latency %s", st.LastLatency)
		}
		fb.mu.Lock()
		defer fb.mu.Unlock()
		if fb.maxInflight != 1 {
			t.Errorf("%d probes of one target in flight at once", fb.maxInflight)
		}
	})
}

func TestSchedulerCheckerPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		fb.panicking = true
		s := newTestScheduler(t, fb)
		tg := tgt("192.0.2.1:80", Spec{Fall: 1})
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if st := mustStatus(t, s, tg.Key()); st.Up || !strings.Contains(st.LastError, "tcp check panicked: checker bug") {
			t.Errorf("status %+v", st)
		}
	})
}

func TestSchedulerJitteredFirstRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		spec := Spec{Interval: time.Second}
		var targets []Target
		for i := range 1000 {
			targets = append(targets, Target{Spec: spec, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80)})
		}
		if err := s.Set(targets); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		perMs := map[time.Duration]int{}
		fb.mu.Lock()
		for _, tg := range targets {
			first, ok := fb.first[tg.Addr]
			if !ok {
				t.Fatalf("%s not probed within its first interval", tg.Addr)
			}
			perMs[first.Sub(start).Truncate(time.Millisecond)]++
		}
		fb.mu.Unlock()
		busiest := 0
		for _, n := range perMs {
			busiest = max(busiest, n)
		}
		// 1000 probes spread uniformly over 1000 ms: ~630 distinct ms, a
		// handful at most in the busiest one.
		if len(perMs) < 500 || busiest > 10 {
			t.Errorf("first runs in %d distinct ms, busiest ms has %d", len(perMs), busiest)
		}
	})
}

func TestSchedulerSubscriberDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb, WithSubscriberBuffer(1))
		var targets []Target
		for _, a := range []string{"192.0.2.1:80", "192.0.2.2:80", "192.0.2.3:80"} {
			tg := tgt(a, testSpec)
			fb.set(tg.Addr, errRefused)
			targets = append(targets, tg)
		}
		if err := s.Set(targets); err != nil {
			t.Fatal(err)
		}
		ch, cancel := s.Subscribe()
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // all three go down; nobody reads
		synctest.Wait()
		if s.Snapshot().Generation != 4 {
			t.Fatalf("generation %d, want 4 (one Set, three transitions)", s.Snapshot().Generation)
		}
		tr := <-ch
		if tr.Dropped != 2 || tr.Generation != 4 {
			t.Errorf("got transition gen %d dropped %d, want the latest (gen 4) with 2 dropped", tr.Generation, tr.Dropped)
		}
		select {
		case tr := <-ch:
			t.Errorf("unexpected second transition %+v", tr)
		default:
		}
		cancel()
		cancel() // idempotent
		if _, ok := <-ch; ok {
			t.Error("channel open after cancel")
		}
		// Transitions after cancel go nowhere and do not block.
		for _, tg := range targets {
			fb.set(tg.Addr, nil)
		}
		time.Sleep(10 * time.Second)
		if !s.Snapshot().Up(targets[0].Key()) {
			t.Error("target did not come back up")
		}
	})
}

func TestSchedulerLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		if err := s.Close(); err != nil { // before Start
			t.Fatal(err)
		}
		if err := s.Close(); err != nil { // twice
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after Close = %v, want ErrClosed", err)
		}
		if err := s.Set([]Target{tgt("192.0.2.1:80", testSpec)}); !errors.Is(err, ErrClosed) {
			t.Errorf("Set after Close = %v, want ErrClosed", err)
		}
		ch, cancel := s.Subscribe()
		if _, ok := <-ch; ok {
			t.Error("Subscribe after Close: channel open")
		}
		cancel()

		s = newTestScheduler(t, fb)
		if err := s.Set([]Target{tgt("192.0.2.1:80", testSpec)}); err != nil {
			t.Fatal(err)
		}
		ch, cancel = s.Subscribe()
		defer cancel()
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); !errors.Is(err, ErrStarted) {
			t.Errorf("second Start = %v, want ErrStarted", err)
		}
		time.Sleep(5 * time.Second)
		var wg sync.WaitGroup
		for range 3 { // concurrent Closes all wait
			wg.Go(func() { _ = s.Close() })
		}
		wg.Wait()
		if _, ok := <-ch; ok {
			t.Error("subscriber channel open after Close")
		}
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}

func TestSchedulerStartContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		tg := tgt("192.0.2.1:80", testSpec)
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		cancel()
		synctest.Wait()
		n := fb.callCount(tg.Addr)
		time.Sleep(10 * time.Second)
		if m := fb.callCount(tg.Addr); m != n {
			t.Errorf("probed %d times after the context was cancelled", m-n)
		}
		_ = s.Close()
	})
}

func TestSchedulerNoneType(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		tg := tgt("192.0.2.1:0", Spec{Type: "none", Initial: "down"})
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		if n := fb.callCount(tg.Addr); n != 0 {
			t.Errorf("type none probed %d times", n)
		}
		if st := mustStatus(t, s, tg.Key()); !st.Up || !st.Checked {
			t.Errorf("type none status %+v", st)
		}
	})
}

// offsetClock is a Clock a day ahead of the real one.
type offsetClock struct{ Clock }

func (c offsetClock) Now() time.Time { return c.Clock.Now().Add(24 * time.Hour) }

func TestSchedulerUsesInjectedClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb, WithClock(offsetClock{RealClock()}))
		tg := tgt("192.0.2.1:80", Spec{Fall: 1})
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		if st := mustStatus(t, s, tg.Key()); !st.Since.Equal(time.Now().Add(24 * time.Hour)) {
			t.Errorf("Since = %v, want a day from now", st.Since)
		}
	})
}

func TestSnapshotNilAndAll(t *testing.T) {
	var nilSnap *Snapshot
	k := tgt("192.0.2.1:80", testSpec).Key()
	if !nilSnap.Up(k) || nilSnap.Len() != 0 {
		t.Error("nil snapshot")
	}
	if _, ok := nilSnap.Status(k); ok {
		t.Error("nil snapshot has a status")
	}
	for range nilSnap.All() {
		t.Error("nil snapshot yields")
	}

	s := NewScheduler()
	defer s.Close()
	if snap := s.Snapshot(); snap == nil || snap.Len() != 0 || !snap.Up(k) {
		t.Fatalf("empty scheduler snapshot %+v", snap)
	}
	spec := Spec{Type: "none"}
	if err := s.Set([]Target{tgt("192.0.2.1:80", spec), tgt("192.0.2.2:80", spec)}); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for key, st := range s.Snapshot().All() {
		if !st.Up || key.Addr.Addr().IsUnspecified() {
			t.Errorf("%v: %+v", key, st)
		}
		seen++
	}
	if seen != 2 {
		t.Errorf("All yielded %d, want 2", seen)
	}
}

// TestSchedulerRealTCP runs the real tcp checker against a real listener:
// closing the listener takes the target down, while readers hammer the
// snapshot (for the race detector).
func TestSchedulerRealTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var acceptWG sync.WaitGroup
	serve := func(l net.Listener) {
		acceptWG.Add(1)
		go func() {
			defer acceptWG.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	serve(l)
	t.Cleanup(acceptWG.Wait)
	addr := addrPort(t, l.Addr())

	s := NewScheduler()
	defer s.Close()
	tg := Target{Spec: Spec{Type: "tcp", Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 2}, Addr: addr}
	key := tg.Key()
	if err := s.Set([]Target{tg}); err != nil {
		t.Fatal(err)
	}
	ch, cancel := s.Subscribe()
	defer cancel()
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	var reads atomic.Int64
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap := s.Snapshot()
				_ = snap.Up(key)
				_, _ = snap.Status(key)
				reads.Add(1)
			}
		})
	}
	defer func() { close(stop); readers.Wait() }()

	dnstest.Eventually(t, 10*time.Second, "a successful probe", func() (bool, string) {
		st := mustStatus(t, s, key)
		return st.Checked && st.LastError == "", fmt.Sprintf("%+v", st)
	})
	l.Close()
	select {
	case tr := <-ch:
		if tr.To.Up || !strings.Contains(tr.To.LastError, "connection refused") {
			t.Errorf("transition %+v", tr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closed port not detected")
	}
	if s.Snapshot().Up(key) {
		t.Error("snapshot still up")
	}

	if l, err = net.Listen("tcp", addr.String()); err != nil {
		t.Logf("port %s taken meanwhile, skipping the way back up: %v", addr, err)
		return
	}
	serve(l)
	defer l.Close()
	select {
	case tr := <-ch:
		if !tr.To.Up {
			t.Errorf("transition %+v", tr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reopened port not detected")
	}
	if reads.Load() == 0 {
		t.Error("readers never ran")
	}
}

func TestSchedulerSeedAndObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		var observed atomic.Int64
		s := newTestScheduler(t, fb, WithObserver(func(TargetKey, time.Duration, error) { observed.Add(1) }))
		down := tgt("192.0.2.1:80", testSpec)
		up := tgt("192.0.2.2:80", testSpec)
		since := time.Now().Add(-time.Hour)
		s.Seed(map[TargetKey]Status{down.Key(): {Up: false, Since: since}})
		if err := s.Set([]Target{down, up}); err != nil {
			t.Fatal(err)
		}
		snap := s.Snapshot()
		if snap.Up(down.Key()) || !snap.Up(up.Key()) {
			t.Fatalf("seeded state not used: down=%v up=%v", snap.Up(down.Key()), snap.Up(up.Key()))
		}
		if st := mustStatus(t, s, down.Key()); !st.Since.Equal(since) || st.Checked {
			t.Errorf("seeded status %+v", st)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Its own probes (succeeding) bring it up after rise.
		time.Sleep(5 * time.Second)
		if !s.Snapshot().Up(down.Key()) {
			t.Error("seeded-down target did not come up on passing probes")
		}
		if observed.Load() < 4 {
			t.Errorf("observer saw %d probes", observed.Load())
		}
	})
}

// TestSnapshotChunksStayIndependent fails targets in different snapshot
// chunks one after another: each snapshot shows exactly the transitions up
// to its own, and older snapshots never change (they share chunks).
func TestSnapshotChunksStayIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackends()
		s := newTestScheduler(t, fb)
		const n = 3*statusChunk + 10
		var targets []Target
		for i := range n {
			targets = append(targets, Target{Spec: testSpec, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80)})
		}
		if err := s.Set(targets); err != nil {
			t.Fatal(err)
		}
		ch, cancel := s.Subscribe()
		defer cancel()
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var snaps []*Snapshot
		down := map[TargetKey]bool{}
		for _, i := range []int{5, statusChunk + 7, 3*statusChunk + 9, 6} {
			fb.set(targets[i].Addr, errRefused)
			tr := recv(t, ch, time.Minute)
			if tr.Key != targets[i].Key() || tr.To.Up {
				t.Fatalf("transition %v, want %v down", tr.Key, targets[i].Key())
			}
			down[tr.Key] = true
			snap := s.Snapshot()
			if snap.Generation != tr.Generation || snap.Len() != n {
				t.Fatalf("snapshot generation %d len %d, want %d and %d", snap.Generation, snap.Len(), tr.Generation, n)
			}
			snaps = append(snaps, snap)
			for _, tg := range targets {
				if k := tg.Key(); snap.Up(k) == down[k] {
					t.Fatalf("after %d transitions %v up=%v", len(snaps), k, snap.Up(k))
				}
			}
		}
		for j, snap := range snaps {
			downs := 0
			for _, st := range snap.All() {
				if !st.Up {
					downs++
				}
			}
			if downs != j+1 {
				t.Errorf("snapshot %d shows %d targets down, want %d", j, downs, j+1)
			}
		}
	})
}
