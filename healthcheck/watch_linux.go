package healthcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// newWatcher returns the epoll watcher; its descriptors and goroutine are
// made by the first watch.
func newWatcher() watcher { return &epollWatcher{} }

// epollWatcher keeps every watched connection in one epoll set, drained by
// one goroutine that waits through the Go netpoller (as connectPoller
// does): a watch costs a socket and a small record, no goroutine, and an
// idle watch costs no CPU at all.
type epollWatcher struct {
	wg sync.WaitGroup

	mu      sync.Mutex
	started bool
	closed  bool
	file    *os.File // the epoll descriptor, registered with the netpoller
	epfd    int
	wake    int                   // an eventfd in the set: written to end the loop
	watches map[int32]*epollWatch // by socket descriptor
	seq     int32                 // tells a reused descriptor's events from its predecessor's
	limit   int                   // most watches open at once
}

// errWatchLimit is returned when half of the process's descriptors would
// be watches: the probes need descriptors too, and a probe that cannot get
// one fails.
var errWatchLimit = errors.New("healthcheck: connection watch limit reached (half the open-file limit)")

// epollWatch is one watched connection; guarded by epollWatcher.mu.
type epollWatch struct {
	w         *epollWatcher
	fd        int
	seq       int32
	connected bool
	fire      func()
}

// startLocked makes the epoll set and starts the loop.
func (w *epollWatcher) startLocked() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return fmt.Errorf("epoll: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		_ = unix.Close(efd)
		_ = unix.Close(epfd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	w.file = os.NewFile(uintptr(epfd), "healthcheck-watch-epoll")
	w.epfd, w.wake = epfd, efd
	w.watches = make(map[int32]*epollWatch)
	w.limit = 1 << 30
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(2*w.limit) {
		w.limit = int(rl.Cur / 2)
	}
	w.started = true
	w.wg.Go(w.loop)
	return nil
}

func (w *epollWatcher) watch(addr netip.AddrPort, fire func()) (func(), error) {
	// Checked before the socket is made, so a full watcher costs nothing
	// (concurrent watches may overshoot by a few).
	w.mu.Lock()
	full := w.started && len(w.watches) >= w.limit
	w.mu.Unlock()
	if full {
		return nil, errWatchLimit
	}
	sa, family, err := sockaddr(addr)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	// Reset on close: a watch we stop leaves no TIME_WAIT behind.
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("setsockopt: %w", err)
	}
	switch err := unix.Connect(fd, sa); err {
	case nil, unix.EINPROGRESS, unix.EINTR:
	default:
		// Refused at once: the peer is not there, which is what a watch
		// is for. The caller's goroutine probes now.
		_ = unix.Close(fd)
		fire()
		return func() {}, nil
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		_ = unix.Close(fd)
		return nil, ErrClosed
	}
	if !w.started {
		if err := w.startLocked(); err != nil {
			_ = unix.Close(fd)
			return nil, err
		}
	}
	w.seq++
	ew := &epollWatch{w: w, fd: fd, seq: w.seq, fire: fire}
	// Level-triggered: writable once connected (then only readable and
	// hang-up are asked for), readable on data, EOF or reset.
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd), Pad: ew.seq}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	w.watches[int32(fd)] = ew
	return ew.stop, nil
}

// sockaddr converts addr for connect.
func sockaddr(addr netip.AddrPort) (unix.Sockaddr, int, error) {
	a := addr.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.As4()}, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		if n, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.ZoneId = uint32(n)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else {
			return nil, 0, fmt.Errorf("zone %q: %w", z, err)
		}
	}
	return sa, unix.AF_INET6, nil
}

// stop closes the watch unless the loop has already ended it.
func (ew *epollWatch) stop() {
	w := ew.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watches[int32(ew.fd)] == ew {
		w.removeLocked(ew)
	}
}

// removeLocked forgets ew and closes its socket (which takes it out of the
// epoll set).
func (w *epollWatcher) removeLocked(ew *epollWatch) {
	delete(w.watches, int32(ew.fd))
	_ = unix.Close(ew.fd)
}

// close ends the loop, waits for it and closes what is left.
func (w *epollWatcher) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	started := w.started
	if started {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(w.wake, one[:])
	}
	w.mu.Unlock()
	if !started {
		return
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ew := range w.watches {
		w.removeLocked(ew)
	}
	_ = w.file.Close()
	_ = unix.Close(w.wake)
}

// loop hands out the events until close.
func (w *epollWatcher) loop() {
	rc, err := w.file.SyscallConn()
	if err != nil {
		return
	}
	var events [128]unix.EpollEvent
	_ = rc.Read(func(uintptr) bool {
		for {
			n, err := unix.EpollWait(w.epfd, events[:], 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return true
			}
			w.mu.Lock()
			if w.closed {
				w.mu.Unlock()
				return true
			}
			for _, ev := range events[:n] {
				if ev.Fd == int32(w.wake) {
					continue
				}
				if ew := w.watches[ev.Fd]; ew != nil && ew.seq == ev.Pad {
					w.eventLocked(ew, ev.Events)
				}
			}
			w.mu.Unlock()
			if n < len(events) {
				return false // drained: wait for the next readiness
			}
		}
	})
}

// eventLocked handles the events of one watch: a failed connect, or EOF or
// a reset of an open connection, fires it; a completed connect or data
// leave it armed.
func (w *epollWatcher) eventLocked(ew *epollWatch, events uint32) {
	if !ew.connected {
		if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			w.fireLocked(ew)
			return
		}
		if events&unix.EPOLLOUT == 0 {
			return
		}
		if errno, err := unix.GetsockoptInt(ew.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			w.fireLocked(ew)
			return
		}
		ew.connected = true
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(ew.fd), Pad: ew.seq}
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, ew.fd, &ev); err != nil {
			w.fireLocked(ew)
			return
		}
		if events&(unix.EPOLLIN|unix.EPOLLRDHUP) == 0 {
			return
		}
	}
	// Read until the socket is empty: data a server sends unasked (a
	// banner) is discarded; EOF or an error is the end.
	// A server that keeps sending gets a few reads per round: the event
	// is level-triggered and comes back.
	var buf [512]byte
	for range 8 {
		n, err := unix.Read(ew.fd, buf[:])
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			return
		case err != nil || n == 0:
			w.fireLocked(ew)
			return
		}
	}
}

func (w *epollWatcher) fireLocked(ew *epollWatch) {
	w.removeLocked(ew)
	ew.fire()
}
