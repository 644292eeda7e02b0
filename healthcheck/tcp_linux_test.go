package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// blackhole returns a loopback TCP address whose accept queue is full, so
// that a connect to it gets no answer to its SYN and hangs.
func blackhole(t *testing.T) netip.AddrPort {
	t.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(lfd) })
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	// Fill the queue (backlog 0 admits one; a few more make sure) with
	// connections nobody accepts.
	for range 3 {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		_ = unix.Connect(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()})
	}
	time.Sleep(50 * time.Millisecond) // let the handshakes that can complete do so
	return addr
}

func TestTCPCheckerTimeoutAndCancel(t *testing.T) {
	hole := blackhole(t)
	c := mustChecker(t, Spec{Type: "tcp", Timeout: 200 * time.Millisecond})

	err := c.Check(context.Background(), hole)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("connect to a full accept queue: %v, want a timeout", err)
	}
	checkResult(t, err, "tcp check")

	c = mustChecker(t, Spec{Type: "tcp", Interval: time.Hour, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Check(ctx, hole) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled check: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled check did not return")
	}
}

// TestTCPCheckerConcurrent runs many probes at once against open and closed
// ports, so that socket descriptors are reused while events for their
// predecessors may still be in flight: every result must be the right one.
func TestTCPCheckerConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	var open []netip.AddrPort
	for _, network := range []string{"tcp4", "tcp6"} {
		l, err := net.Listen(network, "localhost:0")
		if err != nil {
			if network == "tcp6" {
				continue // no IPv6 loopback here
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(); wg.Wait() })
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		})
		open = append(open, addrPort(t, l.Addr()))
	}
	closed := closedPort(t, "tcp")
	c := mustChecker(t, Spec{Type: "tcp", Interval: time.Minute, Timeout: 5 * time.Second})

	var probes sync.WaitGroup
	for g := range 50 {
		probes.Go(func() {
			for i := range 40 {
				target, wantUp := closed, false
				if (g+i)%2 == 0 {
					target, wantUp = open[(g+i)/2%len(open)], true
				}
				err := c.Check(context.Background(), target)
				if (err == nil) != wantUp {
					t.Errorf("probe of %s: %v, want up=%v", target, err, wantUp)
					return
				}
			}
		})
	}
	probes.Wait()
}

// TestTCPCheckerDrainEnds checks that the goroutine draining the epoll set
// ends once no connect is pending, also when the last one ended without
// an event (a timeout, a cancel): it waited for ever before.
func TestTCPCheckerDrainEnds(t *testing.T) {
	hole := blackhole(t)
	for _, tc := range []struct {
		name   string
		cancel bool
	}{{"timeout", false}, {"cancel", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTCPChecker(100 * time.Millisecond)
			if c.poller == nil {
				t.Fatal("no connect poller on Linux")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			if err := c.Check(ctx, hole); err == nil {
				t.Fatal("a connect to a full accept queue succeeded")
			}
			dnstest.Eventually(t, 5*time.Second, "the drain stopping after the last connect ended", func() (bool, string) {
				c.poller.mu.Lock()
				running, pending := c.poller.running, len(c.poller.pending)
				c.poller.mu.Unlock()
				return !running && pending == 0, fmt.Sprintf("running %v, %d pending", running, pending)
			})
			c.poller.close()
		})
	}
}
