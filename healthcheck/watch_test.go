package healthcheck

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeWatcher stands in for the socket watchers in synctest bubbles (which
// cannot do network I/O): a test closes a watched "connection" with kill.
type fakeWatcher struct {
	mu     sync.Mutex
	open   map[netip.AddrPort]*fakeWatch
	opened map[netip.AddrPort]int
	closed bool
}

type fakeWatch struct{ fire func() }

func newFakeWatcher() *fakeWatcher {
	return &fakeWatcher{open: map[netip.AddrPort]*fakeWatch{}, opened: map[netip.AddrPort]int{}}
}

func (f *fakeWatcher) watch(addr netip.AddrPort, fire func()) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open[addr] != nil {
		panic("two watches of " + addr.String())
	}
	w := &fakeWatch{fire: fire}
	f.open[addr] = w
	f.opened[addr]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.open[addr] == w {
			delete(f.open, addr)
		}
	}, nil
}

func (f *fakeWatcher) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

// kill closes addr's watched connection from the peer's side; false if
// there is no watch.
func (f *fakeWatcher) kill(addr netip.AddrPort) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.open[addr]
	if w == nil {
		return false
	}
	delete(f.open, addr)
	w.fire()
	return true
}

func (f *fakeWatcher) isOpen(addr netip.AddrPort) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open[addr] != nil
}

func (f *fakeWatcher) openCount(addr netip.AddrPort) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opened[addr]
}

func TestWatchCloseProbesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb, fw := newFakeBackends(), newFakeWatcher()
		s := newTestScheduler(t, fb, withWatcher(fw))
		tg := tgt("192.0.2.1:80", testSpec)
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		ch, cancel := s.Subscribe()
		defer cancel()
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testSpec.Interval)
		synctest.Wait()
		if !fw.isOpen(tg.Addr) {
			t.Fatal("no watch after a successful probe of an up target")
		}

		// The backend dies: its connections close and it refuses new ones.
		// The close wakes the target, and the immediate confirmations take
		// it down with no time passing at all, far from the next interval.
		fb.set(tg.Addr, errRefused)
		calls := fb.callCount(tg.Addr)
		killed := time.Now()
		fw.kill(tg.Addr)
		synctest.Wait()
		if n := fb.callCount(tg.Addr) - calls; n != testSpec.Fall {
			t.Errorf("%d probes after the close, want fall = %d", n, testSpec.Fall)
		}
		select {
		case tr := <-ch:
			if tr.To.Up || !tr.To.Since.Equal(killed) {
				t.Errorf("transition %+v, want down at the close (%s)", tr, killed)
			}
		default:
			t.Fatal("still up after the watch closed")
		}
		if fw.isOpen(tg.Addr) {
			t.Error("a down target has a watch")
		}

		// Down: probed on the interval, never watched.
		time.Sleep(10 * testSpec.Interval)
		if n := fw.openCount(tg.Addr); n != 1 {
			t.Errorf("%d watches opened, want 1 (none while down)", n)
		}
		// Up again: watched again.
		fb.set(tg.Addr, nil)
		if tr := recv(t, ch, time.Minute); !tr.To.Up {
			t.Fatalf("transition %+v", tr)
		}
		time.Sleep(testSpec.Interval + testSpec.Jitter)
		synctest.Wait()
		if !fw.isOpen(tg.Addr) {
			t.Error("no watch after recovery")
		}
	})
}

// A server that closes idle connections at once costs an extra probe per
// close, and ever fewer closes: the reopening backs off. A watch that lives
// an Interval resets the backoff: the next close reopens it at once.
func TestWatchReopenBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb, fw := newFakeBackends(), newFakeWatcher()
		s := newTestScheduler(t, fb, withWatcher(fw))
		tg := tgt("192.0.2.1:80", testSpec)
		if err := s.Set([]Target{tg}); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var closer sync.WaitGroup
		closer.Go(func() { // closes every watch as soon as it is open
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				fw.kill(tg.Addr)
			}
		})
		const intervals = 30
		time.Sleep(intervals * testSpec.Interval)
		close(stop)
		closer.Wait()
		// Opened after 0, 2, 4, 8, 16 intervals (+ jitter).
		opens, probes := fw.openCount(tg.Addr), fb.callCount(tg.Addr)
		if opens < 3 || opens > 6 {
			t.Errorf("%d watches opened in %d intervals, want 3-6 (backing off)", opens, intervals)
		}
		if probes > intervals+opens+1 {
			t.Errorf("%d probes in %d intervals with %d closes, want at most one extra per close", probes, intervals, opens)
		}
		if st := mustStatus(t, s, tg.Key()); !st.Up || st.Failures != 0 {
			t.Errorf("a healthy server closing idle connections: %+v", st)
		}

		// The server keeps connections now: watched again within the
		// backoff's bound, and a watch that lived is reopened at once.
		time.Sleep((maxWatchBackoff + 1) * (testSpec.Interval + testSpec.Jitter))
		synctest.Wait()
		if !fw.isOpen(tg.Addr) {
			t.Fatal("not watched again after the backoff")
		}
		time.Sleep(2 * testSpec.Interval)
		synctest.Wait()
		probes = fb.callCount(tg.Addr)
		fw.kill(tg.Addr)
		synctest.Wait()
		if n := fb.callCount(tg.Addr) - probes; n != 1 {
			t.Errorf("%d probes after the close of a long-lived watch, want 1", n)
		}
		if !fw.isOpen(tg.Addr) {
			t.Error("long-lived watch not reopened after its close")
		}
	})
}

func TestWatchOnlyWhereItApplies(t *testing.T) {
	off := false
	for _, tc := range []struct {
		name  string
		spec  Spec
		watch bool
	}{
		{"tcp", Spec{Type: TypeTCP}, true},
		{"http", Spec{Type: TypeHTTP}, true},
		{"https", Spec{Type: TypeHTTPS}, true},
		{"tcp watch false", Spec{Type: TypeTCP, Watch: &off}, false},
		{"http watch false", Spec{Type: TypeHTTP, Watch: &off}, false},
		{"dns", Spec{Type: TypeDNS, Name: "example.test."}, false},
		{"exec", Spec{Type: TypeExec, Command: []string{"true"}}, false},
		{"initial down, failing", Spec{Type: TypeTCP, Initial: InitialDown}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fb, fw := newFakeBackends(), newFakeWatcher()
				s := newTestScheduler(t, fb, withWatcher(fw))
				tg := tgt("192.0.2.1:80", tc.spec)
				if tc.spec.Initial == InitialDown {
					fb.set(tg.Addr, errRefused)
				}
				if err := s.Set([]Target{tg}); err != nil {
					t.Fatal(err)
				}
				if err := s.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				if got := fw.isOpen(tg.Addr); got != tc.watch {
					t.Errorf("watched = %v, want %v", got, tc.watch)
				}
				if fb.callCount(tg.Addr) == 0 {
					t.Error("never probed")
				}
			})
		})
	}
}

func TestWatchStoppedWithTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb, fw := newFakeBackends(), newFakeWatcher()
		s := newTestScheduler(t, fb, withWatcher(fw))
		a, b := tgt("192.0.2.1:80", testSpec), tgt("192.0.2.2:80", testSpec)
		if err := s.Set([]Target{a, b}); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testSpec.Interval)
		synctest.Wait()
		if !fw.isOpen(a.Addr) || !fw.isOpen(b.Addr) {
			t.Fatal("targets not watched")
		}
		if err := s.Set([]Target{b}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if fw.isOpen(a.Addr) {
			t.Error("removed target still watched")
		}
		if !fw.isOpen(b.Addr) {
			t.Error("kept target lost its watch")
		}
		_ = s.Close()
		if fw.isOpen(b.Addr) {
			t.Error("watch open after Close")
		}
		if !fw.closed {
			t.Error("watcher not closed by Close")
		}
	})
}

// The scheduler with the real watcher and checker: a backend that dies
// (its connections closed or reset, new ones refused) goes down after
// fall immediate probes, long before the next interval (a minute).
func TestWatchRealBackendDies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool
	}{{"FIN", false}, {"RST", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newHoldServer(t)
			var probes atomic.Int64
			s := NewScheduler(WithRand(rand.New(zeroSource{})),
				WithObserver(func(TargetKey, time.Duration, error) { probes.Add(1) }))
			defer s.Close()
			tg := Target{Spec: Spec{Type: TypeTCP, Interval: time.Minute}, Addr: srv.addr}
			if err := s.Set([]Target{tg}); err != nil {
				t.Fatal(err)
			}
			ch, cancel := s.Subscribe()
			defer cancel()
			if err := s.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			// The first probe (at once: zeroSource) and then the watch.
			deadline := time.Now().Add(10 * time.Second)
			for probes.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no first probe")
				}
				time.Sleep(time.Millisecond) // poll interval
			}
			srv.waitHeld(t, 1)
			if n := probes.Load(); n != 1 {
				t.Fatalf("%d probes before the kill, want 1", n)
			}
			srv.kill(tc.reset)
			select {
			case tr := <-ch:
				if tr.To.Up {
					t.Fatalf("transition %+v", tr)
				}
			case <-time.After(20 * time.Second): // a third of the interval
				t.Fatal("the watch did not trigger a probe")
			}
			if n := probes.Load(); n != 1+3 {
				t.Errorf("%d probes, want 1 + fall (3)", n)
			}
		})
	}
}

// zeroSource makes every random draw (about) 0: the first probe runs at
// once. (1, not 0: Int64N rejects a draw of 0 for most n and draws again.)
type zeroSource struct{}

func (zeroSource) Uint64() uint64 { return 1 }

// holdServer accepts TCP connections and keeps them open until kill.
type holdServer struct {
	l    net.Listener
	addr netip.AddrPort
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []*net.TCPConn
}

func newHoldServer(t *testing.T) *holdServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holdServer{l: l, addr: addrPort(t, l.Addr())}
	h.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c.(*net.TCPConn))
			h.mu.Unlock()
			// Forget probes' connections (reset by the prober).
			h.wg.Go(func() {
				var b [1]byte
				_, _ = c.Read(b[:])
				h.drop(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() { h.kill(false) })
	return h
}

func (h *holdServer) drop(c *net.TCPConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, o := range h.conns {
		if o == c {
			h.conns = append(h.conns[:i], h.conns[i+1:]...)
			_ = c.Close()
			return
		}
	}
}

// waitHeld waits until n connections are held open.
func (h *holdServer) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		got := len(h.conns)
		h.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections held, want %d", got, n)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}

// kill closes the listener and every connection, as a dying process's
// kernel does: gracefully (FIN) or with a reset.
func (h *holdServer) kill(reset bool) {
	_ = h.l.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		if reset {
			_ = c.SetLinger(0)
		}
		_ = c.Close()
	}
	h.conns = nil
	h.mu.Unlock()
	h.wg.Wait()
}

// The socket watchers themselves: each fires on a close or reset by the
// peer and on a refused connect, not on data, and not once stopped.
func TestWatchers(t *testing.T) {
	impls := []struct {
		name string
		new  func() watcher
	}{
		{"default", newWatcher},
		{"goroutine", func() watcher { return &connWatcher{} }},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			t.Run("peer closes", func(t *testing.T) { testWatcherPeerCloses(t, impl.new(), false) })
			t.Run("peer resets", func(t *testing.T) { testWatcherPeerCloses(t, impl.new(), true) })
			t.Run("refused", func(t *testing.T) {
				w := impl.new()
				defer w.close()
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := addrPort(t, l.Addr())
				l.Close()
				fired := make(chan struct{}, 1)
				stop, err := w.watch(addr, func() { fired <- struct{}{} })
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
				waitFired(t, fired)
			})
			t.Run("stopped", func(t *testing.T) {
				w := impl.new()
				defer w.close()
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				var fired atomic.Int64
				stop, err := w.watch(addrPort(t, l.Addr()), func() { fired.Add(1) })
				if err != nil {
					t.Fatal(err)
				}
				c, err := l.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				stop()
				// The watcher closed its end: the server reads the end.
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
					t.Fatalf("server read after stop: %v, want EOF or reset", err)
				}
				if n := fired.Load(); n != 0 {
					t.Errorf("fired %d times after stop", n)
				}
			})
		})
	}
}

func testWatcherPeerCloses(t *testing.T, w watcher, reset bool) {
	defer w.close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fired := make(chan struct{}, 2)
	stop, err := w.watch(addrPort(t, l.Addr()), func() { fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// Data the server sends unasked does not fire the watch.
	if _, err := c.Write([]byte("220 banner\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
		t.Fatal("fired on data")
	case <-time.After(50 * time.Millisecond): // a negative: nothing to poll for
	}
	if reset {
		_ = c.(*net.TCPConn).SetLinger(0)
	}
	_ = c.Close()
	waitFired(t, fired)
	select {
	case <-fired:
		t.Error("fired twice")
	default:
	}
}

func waitFired(t *testing.T, fired <-chan struct{}) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not fire")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrNoProgress)
}

func TestSpecWatch(t *testing.T) {
	on, off := true, false
	addr := netip.MustParseAddrPort("192.0.2.1:80")
	key := func(s Spec) string { return Target{Spec: s, Addr: addr}.Key().Check }
	for _, typ := range []string{TypeTCP, TypeHTTP, TypeHTTPS} {
		s := Spec{Type: typ}.WithDefaults()
		if !s.watches() {
			t.Errorf("%s: watch off by default", typ)
		}
		// The default is not written: keys saved before the field existed
		// still match.
		if k := key(Spec{Type: typ}); strings.Contains(k, "watch") || k != key(Spec{Type: typ, Watch: &on}) {
			t.Errorf("%s: default key %q", typ, k)
		}
		if k := key(Spec{Type: typ, Watch: &off}); !strings.HasSuffix(k, " watch=false") {
			t.Errorf("%s: key with watch off %q", typ, k)
		}
		if err := (Spec{Type: typ, Watch: &off}).Validate(); err != nil {
			t.Errorf("%s watch false: %v", typ, err)
		}
	}
	for _, s := range []Spec{
		{Type: TypeDNS, Name: "example.test.", Watch: &on},
		{Type: TypeExec, Command: []string{"true"}, Watch: &off},
		{Type: TypeNone, Watch: &on},
	} {
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), "check.watch: only valid for tcp, http and https checks") {
			t.Errorf("%s with watch: %v", s.Type, err)
		}
		s.Watch = nil
		if d := s.WithDefaults(); d.watches() {
			t.Errorf("%s watches", s.Type)
		}
	}
	c := Config{Type: TypeHTTP, Watch: &off}
	if s := c.Spec(); s.Watch == nil || *s.Watch {
		t.Errorf("Config.Spec lost watch: %+v", s)
	}
}

// TestWatchOnWithRunner: a scheduler whose exec checks go through a Runner
// (as the server's do) still watches connections; only a factory of one's
// own turns watches off.
func TestWatchOnWithRunner(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []Option
		watch bool
	}{
		{"default", nil, true},
		{"runner", []Option{WithRunner(new(Runner))}, true},
		{"own factory", []Option{WithCheckerFactory(NewChecker)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScheduler(tc.opts...)
			defer s.Close()
			if got := s.watcher != nil; got != tc.watch {
				t.Errorf("connection watches on: %v, want %v", got, tc.watch)
			}
		})
	}
}
