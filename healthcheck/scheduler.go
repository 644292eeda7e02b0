package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors returned by the Scheduler.
var (
	ErrClosed  = errors.New("healthcheck: scheduler closed")
	ErrStarted = errors.New("healthcheck: scheduler already started")
)

// DefaultSubscriberBuffer is the default capacity of a subscriber's channel.
const DefaultSubscriberBuffer = 256

// Target is one check of one backend: a Spec and the backend's address.
// The port probed is Spec.Port if set, else Addr's port, else the check
// type's standard port (80 http, 443 https, 53 dns).
type Target struct {
	Spec Spec
	Addr netip.AddrPort
}

// TargetKey identifies a distinct probe. It is comparable: targets with equal
// keys are checked once, however many pools register them.
type TargetKey struct {
	// Check is the canonical, readable form of the check with its defaults
	// applied and without the port, e.g. `tcp interval=1s timeout=1s rise=2 …`.
	Check string
	// Addr is the address and port actually probed.
	Addr netip.AddrPort
}

// String returns the address followed by the check.
func (k TargetKey) String() string { return k.Addr.String() + " " + k.Check }

// Key returns t's TargetKey. It allocates; callers on a hot path compute it
// once per configuration.
func (t Target) Key() TargetKey {
	n := t.normalize()
	return TargetKey{Check: n.Spec.canonical(), Addr: n.Addr}
}

// Validate reports whether t can be scheduled: a valid Spec, a valid address
// and a port to probe.
func (t Target) Validate() error {
	if err := t.Spec.Validate(); err != nil {
		return err
	}
	if !t.Addr.Addr().IsValid() {
		return errors.New("address: not set")
	}
	n := t.normalize()
	if n.Addr.Port() == 0 && n.Spec.Type != TypeExec && n.Spec.Type != TypeNone {
		return fmt.Errorf("check.port: a %s check needs a port (neither check.port nor the address has one)", n.Spec.Type)
	}
	return nil
}

// normalize applies the defaults and resolves the port.
func (t Target) normalize() Target {
	s := t.Spec.WithDefaults()
	port := t.Addr.Port()
	if s.Port > 0 && s.Port <= 65535 {
		port = uint16(s.Port)
	}
	if port == 0 {
		port = s.defaultPort()
	}
	s.Port = int(port)
	return Target{Spec: s, Addr: netip.AddrPortFrom(t.Addr.Addr().Unmap(), port)}
}

// Status is the health state of one target.
type Status struct {
	// Up is the target's state after hysteresis.
	Up bool
	// Since is when Up last changed (or when the target was added).
	Since time.Time
	// Successes and Failures count consecutive results; one of them is 0.
	Successes, Failures int
	// LastError is the error of the last probe, "" if it succeeded.
	LastError string
	// LastLatency is how long the last probe took.
	LastLatency time.Duration
	// Checked is true once the first result is in.
	Checked bool
}

// Transition is an up/down change of one target, as told to subscribers.
type Transition struct {
	Key    TargetKey
	Target Target // with defaults applied and the probed port resolved
	From   Status
	To     Status
	// Err is the error of the probe that caused the transition (nil when
	// going up).
	Err     error
	Latency time.Duration
	// Generation is that of the Snapshot that first shows the transition.
	Generation uint64
	// Dropped is how many transitions this subscriber has lost so far
	// because its buffer was full (the oldest are dropped). When it grows,
	// resynchronise from Scheduler.Snapshot.
	Dropped uint64
}

// Snapshot is an immutable view of every target's state, published on each
// up/down transition and on each change of the target set. Its statuses are
// as of the target's last transition; live counters, latency and last error
// are in Scheduler.Statuses. A nil *Snapshot answers "up" for every key.
type Snapshot struct {
	// Generation increases with every published snapshot.
	Generation uint64

	index map[TargetKey]int // shared by snapshots of one target set
	// The statuses in chunks: a transition copies one chunk and the list
	// of chunks, not every status (a mass failure of thousands of
	// targets would otherwise copy all of them for each one).
	chunks [][]Status
	n      int
}

// statusChunk is the number of statuses in a Snapshot chunk.
const statusChunk = 256

func (s *Snapshot) at(i int) *Status { return &s.chunks[i/statusChunk][i%statusChunk] }

// Up reports whether key is up. Unknown keys are up: a target that is not
// (or not yet) checked does not take a member out of the answers.
func (s *Snapshot) Up(key TargetKey) bool {
	if s == nil {
		return true
	}
	i, ok := s.index[key]
	return !ok || s.at(i).Up
}

// Status returns key's status as of its last transition.
func (s *Snapshot) Status(key TargetKey) (Status, bool) {
	if s == nil {
		return Status{}, false
	}
	i, ok := s.index[key]
	if !ok {
		return Status{}, false
	}
	return *s.at(i), true
}

// Len returns the number of targets.
func (s *Snapshot) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// All yields every target's key and status, in no particular order.
func (s *Snapshot) All() iter.Seq2[TargetKey, Status] {
	return func(yield func(TargetKey, Status) bool) {
		if s == nil {
			return
		}
		for k, i := range s.index {
			if !yield(k, *s.at(i)) {
				return
			}
		}
	}
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithClock sets the clock used for scheduling and timestamps (default
// RealClock()).
func WithClock(c Clock) Option { return func(s *Scheduler) { s.clock = c } }

// WithRand sets the random source for jitter (default: math/rand/v2's
// global generator). The scheduler serialises its use.
func WithRand(r *rand.Rand) Option { return func(s *Scheduler) { s.rnd = r } }

// WithCheckerFactory replaces NewChecker, e.g. to add check types or to test
// the scheduler with scripted checkers. The factory gets specs with their
// defaults applied and validated.
//
// Connection watches (Spec.Watch) are off with a factory of one's own: its
// checkers may not probe the addresses they are given.
func WithCheckerFactory(f func(Spec) (Checker, error)) Option {
	return func(s *Scheduler) { s.newChecker, s.ownChecker = f, true }
}

// WithRunner makes exec checks run through r (one Runner per process
// probes its containment once). The checkers are the standard ones, so
// connection watches stay on.
func WithRunner(r *Runner) Option {
	return func(s *Scheduler) { s.newChecker, s.ownChecker = r.NewChecker, false }
}

// WithObserver sets a function called after every probe with its target,
// latency and error (nil: success), e.g. to feed a latency histogram. It
// runs on the probing goroutine and must not block.
func WithObserver(f func(key TargetKey, latency time.Duration, err error)) Option {
	return func(s *Scheduler) { s.observe = f }
}

// WithSubscriberBuffer sets the capacity of each subscriber's channel
// (default DefaultSubscriberBuffer, minimum 1).
func WithSubscriberBuffer(n int) Option { return func(s *Scheduler) { s.subBuf = max(n, 1) } }

// Scheduler runs the checks of a set of targets and keeps their state.
// Its methods are safe for concurrent use.
//
// Each distinct target has one goroutine that sleeps on a timer, runs its
// probe, applies the result and sleeps again: probes of one target never
// overlap. An up target's connection watch (Spec.Watch, watch.go) wakes
// it early when the backend closes or resets the watched connection. The scheduler knows only what the probes say: operators' drains
// and forced-down members are applied by the answer path on top of its
// snapshots (a drained member keeps being checked).
type Scheduler struct {
	clock      Clock
	rnd        *rand.Rand // guarded by mu
	newChecker func(Spec) (Checker, error)
	subBuf     int
	observe    func(TargetKey, time.Duration, error)
	// onLate, if set (by benchmarks), gets how late each probe started
	// against the instant its timer was set for.
	onLate func(late time.Duration, spec *Spec)

	watcher    watcher // nil: no connection watches
	watcherSet bool    // by withWatcher
	ownChecker bool    // by WithCheckerFactory

	snap  atomic.Pointer[Snapshot]
	setMu sync.Mutex // serialises Set
	wg    sync.WaitGroup

	mu        sync.Mutex
	targets   map[TargetKey]*target
	order     []*target // targets by snapshot index
	subs      map[*subscriber]struct{}
	seed      map[TargetKey]Status
	started   bool
	closed    bool
	runCtx    context.Context
	runCancel context.CancelFunc
}

// target is the scheduler's record of one distinct target. All fields but
// the immutable ones (key, t, checker) are guarded by Scheduler.mu.
type target struct {
	key       TargetKey
	t         Target
	checker   Checker
	selfTimed bool // checker enforces the timeout itself

	idx       int
	status    Status // live
	published Status // as of the last transition, what snapshots show
	cancel    context.CancelFunc
	removed   bool

	// The latency estimator, touched only by t's own goroutine (run).
	est estimator
	// The connection watch, touched only by run (watch.go).
	watch watchState
}

type subscriber struct {
	ch      chan Transition
	dropped uint64
}

// NewScheduler returns a Scheduler with no targets. Add them with Set and
// start probing with Start.
func NewScheduler(opts ...Option) *Scheduler {
	s := &Scheduler{
		clock:      RealClock(),
		newChecker: NewChecker,
		subBuf:     DefaultSubscriberBuffer,
		targets:    make(map[TargetKey]*target),
		subs:       make(map[*subscriber]struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if !s.watcherSet && !s.ownChecker {
		s.watcher = newWatcher()
	}
	s.snap.Store(&Snapshot{index: map[TargetKey]int{}})
	return s
}

// Set replaces the set of targets. Targets whose key is already scheduled
// keep their state and their schedule; new ones start in their Spec.Initial
// state (type "none": up for good) with a first probe at a random point of
// their first interval; removed ones stop (an in-flight probe is cancelled
// and its result ignored). Duplicates are checked once.
//
// Set validates every target first and changes nothing if one is invalid.
// A new Snapshot is published if the set changed.
func (s *Scheduler) Set(targets []Target) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()

	wants := make(map[TargetKey]Target, len(targets))
	keys := make([]TargetKey, 0, len(targets))
	var errs []error
	for i, t := range targets {
		if err := t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("healthcheck: target %d (%s): %w", i, t.Addr, err))
			continue
		}
		n := t.normalize()
		k := TargetKey{Check: n.Spec.canonical(), Addr: n.Addr}
		if _, dup := wants[k]; !dup {
			wants[k] = n
			keys = append(keys, k)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// Build checkers for the new targets outside the lock (Set calls are
	// serialised, so the set of existing keys cannot change meanwhile).
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var fresh []TargetKey
	for _, k := range keys {
		if _, ok := s.targets[k]; !ok {
			fresh = append(fresh, k)
		}
	}
	removed := len(s.targets) - (len(keys) - len(fresh))
	s.mu.Unlock()
	if len(fresh) == 0 && removed == 0 {
		return nil
	}
	checkers := make(map[TargetKey]Checker, len(fresh))
	bySpec := make(map[string]Checker) // one checker per distinct check
	for _, k := range fresh {
		c, ok := bySpec[k.Check]
		if !ok {
			var err error
			if c, err = s.newChecker(wants[k].Spec); err != nil {
				return fmt.Errorf("healthcheck: target %s: %w", k.Addr, err)
			}
			bySpec[k.Check] = c
		}
		checkers[k] = c
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	now := s.clock.Now()
	for k, t := range s.targets {
		if _, ok := wants[k]; !ok {
			t.removed = true
			if t.cancel != nil {
				t.cancel()
			}
			delete(s.targets, k)
		}
	}
	s.order = make([]*target, 0, len(keys))
	for i, k := range keys {
		t := s.targets[k]
		if t == nil {
			t = &target{key: k, t: wants[k], checker: checkers[k]}
			_, t.selfTimed = t.checker.(selfTimed)
			t.status = Status{Up: t.t.Spec.Initial != InitialDown, Since: now}
			if st, ok := s.seed[k]; ok {
				t.status = Status{Up: st.Up, Since: st.Since}
				if t.status.Since.IsZero() {
					t.status.Since = now
				}
			}
			if t.t.Spec.Type == TypeNone {
				t.status = Status{Up: true, Since: now, Checked: true}
			}
			t.published = t.status
			s.targets[k] = t
			if s.started {
				s.startLocked(t)
			}
		}
		t.idx = i
		s.order = append(s.order, t)
	}
	s.publishLocked(-1)
	return nil
}

// Seed gives the last known state of targets, e.g. saved by a previous run,
// so a restarted server does not start blind: targets added later by Set
// whose key is in states start Up or down as given (instead of as
// Spec.Initial says) until their own probes decide. Checked stays false.
func (s *Scheduler) Seed(states map[TargetKey]Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seed = make(map[TargetKey]Status, len(states))
	for k, st := range states {
		s.seed[k] = st
	}
}

// Start starts probing, with goroutines bound to ctx: cancelling ctx stops
// probing (Close must still be called to wait for the goroutines).
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return ErrStarted
	}
	s.started = true
	s.runCtx, s.runCancel = context.WithCancel(ctx)
	for _, t := range s.order {
		s.startLocked(t)
	}
	return nil
}

// Close stops all probes, closes subscriber channels and waits for every
// goroutine of the scheduler to return. It is idempotent and always returns
// nil.
func (s *Scheduler) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if s.runCancel != nil {
			s.runCancel()
		}
		for sub := range s.subs {
			close(sub.ch)
		}
		clear(s.subs)
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.watcher != nil {
		s.watcher.close() // every watch is stopped: their run returned
	}
	return nil
}

// Snapshot returns the current snapshot. It never blocks and never returns
// nil.
func (s *Scheduler) Snapshot() *Snapshot { return s.snap.Load() }

// Statuses returns the live status of every target (for the admin API; it
// takes the scheduler's lock).
func (s *Scheduler) Statuses() map[TargetKey]Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[TargetKey]Status, len(s.targets))
	for k, t := range s.targets {
		m[k] = t.status
	}
	return m
}

// Status returns the live status of key.
func (s *Scheduler) Status(key TargetKey) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[key]
	if !ok {
		return Status{}, false
	}
	return t.status, true
}

// Subscribe returns a channel that receives every up/down transition, and a
// function that ends the subscription and closes the channel. The scheduler
// never blocks on a subscriber: when the channel's buffer is full the oldest
// transition is dropped and Transition.Dropped grows. Close closes every
// subscriber's channel. cancel is idempotent.
func (s *Scheduler) Subscribe() (<-chan Transition, func()) {
	sub := &subscriber{ch: make(chan Transition, s.subBuf)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	s.subs[sub] = struct{}{}
	return sub.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}

// startLocked starts t's goroutine. Type "none" targets have none.
func (s *Scheduler) startLocked(t *target) {
	if t.t.Spec.Type == TypeNone {
		return
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	t.cancel = cancel
	first := s.randLocked(t.t.Spec.Interval)
	s.wg.Add(1)
	go s.run(ctx, t, first)
}

// run probes t until ctx is done: after first, then after each delay that
// record returns. Probes are sequential: at most one in flight.
func (s *Scheduler) run(ctx context.Context, t *target, first time.Duration) {
	defer s.wg.Done()
	defer s.unwatch(t)
	timer := s.clock.NewTimer(first)
	defer timer.Stop()
	due := s.clock.Now().Add(first)
	for {
		woken := false
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		case <-t.watch.wake: // nil (never ready) until a watch is opened
			// The watched connection closed: probe now.
			timer.Stop()
			s.watchFired(t)
			woken = true
		}
		if s.onLate != nil && !woken {
			s.onLate(s.clock.Now().Sub(due), &t.t.Spec)
		}
		bound := t.est.bound(t.t.Spec.Timeout)
		latency, err := s.probe(ctx, t, bound)
		if ctx.Err() != nil {
			return // stopped: the result means nothing
		}
		t.est.record(latency, err, bound, t.t.Spec.Timeout)
		if s.observe != nil {
			s.observe(t.key, latency, err)
		}
		next, ok := s.record(t, latency, err)
		if !ok {
			return
		}
		s.rewatch(t, err)
		due = s.clock.Now().Add(next)
		timer.Reset(next)
	}
}

// probe runs one check with the given timeout (t's adaptive bound, at most
// Spec.Timeout). A result that arrives after the timeout counts as a
// timeout, whatever it says.
func (s *Scheduler) probe(ctx context.Context, t *target, timeout time.Duration) (latency time.Duration, err error) {
	// Self-timed checkers enforce Spec.Timeout themselves; a shorter
	// adaptive bound needs a context deadline of its own.
	if !t.selfTimed || timeout < t.t.Spec.Timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := s.clock.Now()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s check panicked: %v", t.t.Spec.Type, r)
		}
		latency = s.clock.Now().Sub(start)
		late := latency > timeout || errors.Is(ctx.Err(), context.DeadlineExceeded)
		if late && !errors.Is(err, ErrTimeout) {
			if err == nil {
				err = fmt.Errorf("%s check: %w after %s", t.t.Spec.Type, ErrTimeout, timeout)
			} else {
				err = fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, err)
			}
		}
	}()
	return 0, t.checker.Check(ctx, t.key.Addr)
}

// record applies one result to t's state, publishes and notifies on a
// transition, and returns the delay before the next probe; ok is false if t
// is no longer scheduled.
func (s *Scheduler) record(t *target, latency time.Duration, err error) (next time.Duration, ok bool) {
	now := s.clock.Now()
	spec := &t.t.Spec
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || t.removed {
		return 0, false
	}
	from := t.status
	st := from
	st.Checked = true
	st.LastLatency = latency
	st.LastError = ""
	if err != nil {
		st.LastError = err.Error()
	}
	th := Thresholds{Rise: spec.Rise, Fall: spec.Fall, Up: st.Up, Successes: st.Successes, Failures: st.Failures}
	if th.Record(err == nil) {
		st.Since = now
	}
	st.Up, st.Successes, st.Failures = th.Up, th.Successes, th.Failures
	t.status = st
	if st.Up != from.Up {
		t.published = st
		gen := s.publishLocked(t.idx)
		s.notifyLocked(Transition{
			Key: t.key, Target: t.t, From: from, To: st,
			Err: err, Latency: latency, Generation: gen,
		})
	}

	// Confirming a failure of an up target: re-check at once rather than
	// after FastInterval, so Fall failures take Fall × (adaptive timeout)
	// and a refused connection is confirmed in milliseconds. This cannot
	// spin: at most Fall-1 immediate probes follow a success, after which
	// the target is down (and back on Interval) or a success has reset the
	// count.
	if st.Up && st.Failures > 0 {
		return 0, true
	}
	// Recovering: the last result disagrees with the state.
	if !st.Up && st.Successes > 0 {
		return s.delayLocked(now, spec.FastInterval, min(spec.Jitter, spec.FastInterval/10)), true
	}
	return s.delayLocked(now, spec.Interval, spec.Jitter), true
}

// probeGrid is the spacing of the instants at which probes start, when the
// jitter allows: targets due within one grid step wake together. Thousands
// of targets then cost a hundred wake-ups a second rather than thousands,
// and each wake-up of the Go scheduler (timers, threads, netpoller) costs
// more than a probe's own work. A probe starts at most one step late,
// within its jitter.
const probeGrid = 10 * time.Millisecond

// delayLocked returns the delay from now to the next probe: interval plus
// a random part of jitter, ending on the probe grid if the grid step is
// within a quarter of jitter (the rounding is part of the jitter, so the
// delay never exceeds interval + jitter).
func (s *Scheduler) delayLocked(now time.Time, interval, jitter time.Duration) time.Duration {
	if probeGrid > jitter/4 {
		return interval + s.randLocked(jitter+1)
	}
	delay := interval + s.randLocked(jitter-probeGrid+1)
	if r := now.Add(delay).UnixNano() % int64(probeGrid); r != 0 {
		delay += probeGrid - time.Duration(r)
	}
	return delay
}

// publishLocked stores a new snapshot of the published statuses and returns
// its generation. changed is the index of the one target whose status
// changed: the new snapshot shares the other chunks and the key index with
// the previous one. changed < 0 (after Set) rebuilds everything.
func (s *Scheduler) publishLocked(changed int) uint64 {
	old := s.snap.Load()
	ns := &Snapshot{Generation: old.Generation + 1, index: old.index, n: len(s.order)}
	if changed < 0 || old.n != len(s.order) {
		ns.index = make(map[TargetKey]int, len(s.order))
		for i, t := range s.order {
			ns.index[t.key] = i
		}
		ns.chunks = make([][]Status, 0, (len(s.order)+statusChunk-1)/statusChunk)
		for i := 0; i < len(s.order); i += statusChunk {
			chunk := make([]Status, min(statusChunk, len(s.order)-i))
			for j := range chunk {
				chunk[j] = s.order[i+j].published
			}
			ns.chunks = append(ns.chunks, chunk)
		}
	} else {
		ns.chunks = append([][]Status(nil), old.chunks...)
		c := changed / statusChunk
		ns.chunks[c] = append([]Status(nil), old.chunks[c]...)
		ns.chunks[c][changed%statusChunk] = s.order[changed].published
	}
	s.snap.Store(ns)
	return ns.Generation
}

// notifyLocked sends tr to every subscriber without blocking.
func (s *Scheduler) notifyLocked(tr Transition) {
	for sub := range s.subs {
		sub.send(tr)
	}
}

// send queues tr, dropping the oldest queued transition while the buffer is
// full. Sends happen under Scheduler.mu only, so once a value has been taken
// out there is room.
func (sub *subscriber) send(tr Transition) {
	for {
		tr.Dropped = sub.dropped
		select {
		case sub.ch <- tr:
			return
		default:
		}
		select {
		case <-sub.ch:
			sub.dropped++
		default:
		}
	}
}

// randLocked returns a random duration in [0, n).
func (s *Scheduler) randLocked(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if s.rnd != nil {
		return time.Duration(s.rnd.Int64N(int64(n)))
	}
	return time.Duration(rand.Int64N(int64(n)))
}

// NewSnapshot builds a snapshot of the given statuses with the given
// generation, for a health source other than a Scheduler: a fleet's
// decision from several nodes' observations, published to the answer
// path in the same shape as a scheduler's own.
func NewSnapshot(gen uint64, statuses map[TargetKey]Status) *Snapshot {
	s := &Snapshot{Generation: gen, index: make(map[TargetKey]int, len(statuses)), n: len(statuses)}
	keys := make([]TargetKey, 0, len(statuses))
	for k := range statuses {
		keys = append(keys, k)
	}
	for i := 0; i < len(keys); i += statusChunk {
		chunk := make([]Status, min(statusChunk, len(keys)-i))
		for j := range chunk {
			k := keys[i+j]
			s.index[k] = i + j
			chunk[j] = statuses[k]
		}
		s.chunks = append(s.chunks, chunk)
	}
	return s
}
