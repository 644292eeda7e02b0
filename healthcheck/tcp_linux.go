package healthcheck

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// connectPoller runs TCP connects for a tcpChecker with as few system calls
// as a probe allows: socket, linger, non-blocking connect, one epoll
// registration, close. The Go dialer makes about twice as many (address
// lookups, keep-alive and no-delay options, netpoller registration and
// removal, SO_ERROR), and where a checker probes thousands of targets a
// second the system calls are most of its cost.
//
// Pending connects sit in a private epoll set whose own descriptor is
// watched by the Go netpoller, so no thread blocks on it: a goroutine
// drains it while connects are pending and exits when none are.
type connectPoller struct {
	file *os.File // the epoll descriptor, registered with the netpoller
	epfd int
	wake int // an eventfd in the epoll set: written to end an idle drain

	closeOnce sync.Once

	mu      sync.Mutex
	pending map[int32]*connectWait // by socket descriptor
	seq     int32                  // tells a reused descriptor's events from its predecessor's
	running bool                   // a drain goroutine is running
}

// connectWait is one pending connect.
type connectWait struct {
	seq    int32
	events chan uint32 // the epoll events, sent once; buffered
	timer  *time.Timer
	sa4    unix.SockaddrInet4
	sa6    unix.SockaddrInet6
}

var connectWaits = sync.Pool{New: func() any { return &connectWait{events: make(chan uint32, 1)} }}

// newConnectPoller returns a poller, or nil if this system will not give
// one (the checker then uses the Go dialer).
func newConnectPoller() *connectPoller {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil
	}
	// A connect that times out or is cancelled leaves the set without an
	// event; when it was the last one, the drain must still hear of it.
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		_ = unix.Close(efd)
		_ = unix.Close(epfd)
		return nil
	}
	return &connectPoller{
		file:    os.NewFile(uintptr(epfd), "healthcheck-epoll"),
		epfd:    epfd,
		wake:    efd,
		pending: make(map[int32]*connectWait),
	}
}

// close releases the descriptors, once; no connect may be pending.
func (p *connectPoller) close() {
	p.closeOnce.Do(func() {
		_ = p.file.Close()
		_ = unix.Close(p.wake)
	})
}

// newTCPChecker returns a tcp checker that connects through a
// connectPoller when the system gives one. The poller's descriptor is
// closed once the checker is unreachable (no connect can be pending then).
func newTCPChecker(timeout time.Duration) *tcpChecker {
	c := &tcpChecker{timeout: timeout, poller: newConnectPoller()}
	if c.poller != nil {
		runtime.AddCleanup(c, (*connectPoller).close, c.poller)
	}
	return c
}

// connect probes addr within timeout: nil once the handshake completes.
// handled is false if this poller cannot probe addr (an IPv6 address with a
// zone): the caller dials instead.
func (p *connectPoller) connect(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (handled bool, err error) {
	a := addr.Addr()
	if a.Zone() != "" {
		return false, nil
	}
	// The wait record is taken first: it holds the socket address too, so
	// a probe makes no garbage.
	w := connectWaits.Get().(*connectWait)
	defer connectWaits.Put(w)
	var sa unix.Sockaddr
	family := unix.AF_INET
	if a.Is4() {
		w.sa4 = unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.As4()}
		sa = &w.sa4
	} else {
		family = unix.AF_INET6
		w.sa6 = unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
		sa = &w.sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("socket: %w", err)
	}
	// Reset rather than close gracefully: a prober that connects thousands
	// of times a second must not fill its port range with TIME_WAIT sockets.
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		_ = unix.Close(fd)
		return true, fmt.Errorf("setsockopt: %w", err)
	}
	switch err := unix.Connect(fd, sa); err {
	case nil:
		return true, unix.Close(fd)
	case unix.EINPROGRESS, unix.EINTR:
	default:
		_ = unix.Close(fd)
		return true, fmt.Errorf("connect %s: %w", addr, err)
	}

	if w.timer == nil {
		w.timer = time.NewTimer(timeout)
	} else {
		w.timer.Reset(timeout)
	}
	p.mu.Lock()
	p.seq++
	w.seq = p.seq
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(fd), Pad: w.seq}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Unlock()
		w.timer.Stop()
		_ = unix.Close(fd)
		return true, fmt.Errorf("epoll_ctl: %w", err)
	}
	p.pending[int32(fd)] = w
	start := !p.running
	p.running = true
	p.mu.Unlock()
	if start {
		go p.drain()
	}

	var events uint32
	select {
	case events = <-w.events:
	case <-w.timer.C:
		err = fmt.Errorf("connect %s: %w after %s", addr, ErrTimeout, timeout)
	case <-ctx.Done():
		err = fmt.Errorf("connect %s: %w", addr, ctx.Err())
	}
	if err != nil {
		p.mu.Lock()
		wake := false
		if p.pending[int32(fd)] == w {
			delete(p.pending, int32(fd))
			wake = len(p.pending) == 0 && p.running
		} else {
			<-w.events // delivered meanwhile: empty the channel for reuse
		}
		p.mu.Unlock()
		if wake {
			// The drain waits for events that will not come: let it
			// see that nothing is pending and end.
			var one [8]byte
			binary.NativeEndian.PutUint64(one[:], 1)
			_, _ = unix.Write(p.wake, one[:])
		}
	} else if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		errno, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case gerr != nil:
			err = fmt.Errorf("connect %s: %w", addr, gerr)
		case errno != 0:
			err = fmt.Errorf("connect %s: %w", addr, syscall.Errno(errno))
		default:
			err = fmt.Errorf("connect %s: connection closed", addr)
		}
	}
	w.timer.Stop()
	_ = unix.Close(fd) // also takes it out of the epoll set
	return true, err
}

// drain hands out epoll events to the waiting connects until none is
// pending. It waits through the netpoller, which reports the epoll
// descriptor readable when events are ready.
func (p *connectPoller) drain() {
	idle := false // the loop ended because nothing is pending
	var events [64]unix.EpollEvent
	rc, err := p.file.SyscallConn()
	if err == nil {
		_ = rc.Read(func(uintptr) bool {
			for {
				n, err := unix.EpollWait(p.epfd, events[:], 0)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					return true
				}
				p.mu.Lock()
				for _, ev := range events[:n] {
					if ev.Fd == int32(p.wake) {
						var count [8]byte
						_, _ = unix.Read(p.wake, count[:]) // reset it
						continue
					}
					if w := p.pending[ev.Fd]; w != nil && w.seq == ev.Pad {
						delete(p.pending, ev.Fd)
						w.events <- ev.Events
					}
				}
				if len(p.pending) == 0 {
					p.running, idle = false, true
					p.mu.Unlock()
					return true
				}
				p.mu.Unlock()
				if n < len(events) {
					return false // drained: wait for the next edge
				}
			}
		})
	}
	if !idle {
		// The epoll descriptor failed with connects pending: their timers
		// end them, and the next connect starts another drain.
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}
}
