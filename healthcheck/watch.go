package healthcheck

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// A connection watch is one idle TCP connection to an up target of a tcp,
// http or https check (Spec.Watch). Nothing is ever sent on it: when the
// backend's process dies, its kernel closes or resets the connection at
// once, and the watch wakes the target's goroutine for an immediate probe.
// The probe, not the watch, decides the state; the watch is reopened after
// a successful probe of an up target, at most once per Interval, so a
// server that closes idle connections costs one extra probe per close.
// One that closes them within an Interval (where a watch is of little use)
// has its watch reopened ever more rarely, down to once per
// maxWatchBackoff Intervals, until a watch lives an Interval or the target
// goes down.

// maxWatchBackoff bounds the growth of the reopening delay, in Intervals.
const maxWatchBackoff = 32

// watcher opens connection watches. The Scheduler's goroutines call watch
// and the stop functions; close is called once all watches are stopped.
type watcher interface {
	// watch connects to addr and calls fire, at most once and without
	// blocking, when the connection cannot be opened or is closed or reset
	// by the peer. stop closes the connection; once stop has returned,
	// fire is not called. An error means there is no watch.
	watch(addr netip.AddrPort, fire func()) (stop func(), err error)
	// close releases the watcher's resources and waits for its
	// goroutines.
	close()
}

// withWatcher replaces the watcher (tests). A nil w turns watches off.
func withWatcher(w watcher) Option {
	return func(s *Scheduler) { s.watcher, s.watcherSet = w, true }
}

// watchState is a target's watch. It is touched only by the target's own
// goroutine (Scheduler.run), apart from wake.
type watchState struct {
	stop   func()        // the open watch; nil if none
	opened time.Time     // when the last one was opened (or tried)
	wake   chan struct{} // signalled by the watch; capacity 1
	// backoff is the least delay before the next open, in Intervals (0
	// counts as 1): doubled each time a watch closes within an Interval
	// while the target stays up.
	backoff int
}

// rewatch opens or closes t's watch after a probe whose error was err: a
// success of an up target opens one (if none is open and the last was
// opened at least backoff Intervals ago); a down target has none. The lock
// is taken only when one of these may change.
func (s *Scheduler) rewatch(t *target, err error) {
	w := &t.watch
	if s.watcher == nil || !t.t.Spec.watches() {
		return
	}
	switch {
	case err == nil && w.stop == nil:
		now := s.clock.Now()
		if !w.opened.IsZero() && now.Sub(w.opened) < time.Duration(max(w.backoff, 1))*t.t.Spec.Interval {
			return
		}
		if !s.targetUp(t) {
			return
		}
		if w.wake == nil {
			w.wake = make(chan struct{}, 1)
		}
		wake := w.wake
		w.opened = now
		// An error leaves the target without a watch until the next
		// success an Interval later: the probes still run on schedule.
		w.stop, _ = s.watcher.watch(t.key.Addr, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	case err != nil:
		if (w.stop != nil || w.backoff > 1) && !s.targetUp(t) {
			s.unwatch(t)
			w.backoff = 1 // a real failure: watch again as soon as it is up
		}
	}
}

// watchFired is called when t's watch has woken its goroutine: the watch is
// spent.
func (s *Scheduler) watchFired(t *target) {
	w := &t.watch
	if w.stop == nil {
		return
	}
	w.stop()
	w.stop = nil
	// A short-lived watch backs off (if the target turns out down,
	// rewatch resets it); one that lived an Interval does not.
	if s.clock.Now().Sub(w.opened) < t.t.Spec.Interval {
		w.backoff = min(max(w.backoff, 1)*2, maxWatchBackoff)
	} else {
		w.backoff = 1
	}
}

// unwatch closes t's watch, if any, and forgets a wake-up it may have sent.
func (s *Scheduler) unwatch(t *target) {
	w := &t.watch
	if w.stop == nil {
		return
	}
	w.stop()
	w.stop = nil
	select {
	case <-w.wake:
	default:
	}
}

// targetUp reports t's live state.
func (s *Scheduler) targetUp(t *target) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.status.Up && !t.removed
}

// connWatcher watches each connection with a goroutine blocked in Read: the
// portable watcher, and the fallback where epoll is not available. Its cost
// is a goroutine stack and the runtime's connection state per watch.
type connWatcher struct {
	wg sync.WaitGroup
}

type connWatch struct {
	cancel context.CancelFunc

	mu      sync.Mutex
	conn    net.Conn
	stopped bool
	fire    func()
}

func (w *connWatcher) watch(addr netip.AddrPort, fire func()) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	cw := &connWatch{cancel: cancel, fire: fire}
	w.wg.Go(func() { cw.run(ctx, addr) })
	return cw.stop, nil
}

func (w *connWatcher) close() { w.wg.Wait() }

func (cw *connWatch) run(ctx context.Context, addr netip.AddrPort) {
	d := net.Dialer{KeepAlive: -1}
	c, err := d.DialTCP(ctx, "tcp", netip.AddrPort{}, addr)
	if err != nil {
		cw.fired()
		return
	}
	// Reset on close: stopped watches leave no TIME_WAIT behind.
	_ = c.SetLinger(0)
	cw.mu.Lock()
	if cw.stopped {
		cw.mu.Unlock()
		_ = c.Close()
		return
	}
	cw.conn = c
	cw.mu.Unlock()
	buf := make([]byte, 64)
	for {
		// Data a server sends unasked (a banner) is discarded; EOF or an
		// error ends the watch.
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	cw.fired()
	_ = c.Close()
}

// fired calls fire unless the watch was stopped.
func (cw *connWatch) fired() {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if !cw.stopped {
		cw.stopped = true
		cw.fire()
	}
}

func (cw *connWatch) stop() {
	cw.mu.Lock()
	cw.stopped = true
	c := cw.conn
	cw.mu.Unlock()
	cw.cancel()
	if c != nil {
		_ = c.Close()
	}
}
