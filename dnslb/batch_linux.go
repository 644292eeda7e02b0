//go:build linux

package dnslb

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgIO reads and writes UDP datagrams in batches with recvmmsg and
// sendmmsg, issued as raw system calls on the non-blocking socket: they
// never block (EAGAIN hands back to Go's poller), so there is no reason to
// tell the scheduler about them, and not doing so spares a P handoff (a
// thread wake-up) per batch when a sendmmsg of many datagrams takes longer
// than the scheduler's 20 µs syscall threshold. Replies reuse the client's
// raw socket address: no address conversion on the way out.
type mmsgIO struct {
	rc syscall.RawConn

	in     []unix.Mmsghdr
	inIov  []unix.Iovec
	inName []unix.RawSockaddrInet6
	bufs   [][]byte

	out     []unix.Mmsghdr
	outIov  []unix.Iovec
	outName []unix.RawSockaddrInet6
	nOut    int

	// The system calls, as method values made once (a closure per call
	// would be a heap allocation per batch), and their results.
	recvFn, sendFn func(fd uintptr) bool
	nIn            int
	off, sent      int
	errno          syscall.Errno
}

func newBatchIO(c *net.UDPConn, batch, bufSize int) (batchIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	m := &mmsgIO{
		rc:      rc,
		in:      make([]unix.Mmsghdr, batch),
		inIov:   make([]unix.Iovec, batch),
		inName:  make([]unix.RawSockaddrInet6, batch),
		bufs:    make([][]byte, batch),
		out:     make([]unix.Mmsghdr, batch),
		outIov:  make([]unix.Iovec, batch),
		outName: make([]unix.RawSockaddrInet6, batch),
	}
	for i := range m.in {
		m.bufs[i] = make([]byte, bufSize)
		m.inIov[i].Base = &m.bufs[i][0]
		m.inIov[i].SetLen(bufSize)
		m.in[i].Hdr.Iov = &m.inIov[i]
		m.in[i].Hdr.SetIovlen(1)
		m.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&m.inName[i]))
		m.out[i].Hdr.Iov = &m.outIov[i]
		m.out[i].Hdr.SetIovlen(1)
		m.out[i].Hdr.Name = (*byte)(unsafe.Pointer(&m.outName[i]))
	}
	m.recvFn, m.sendFn = m.recv, m.send
	return m, nil
}

// recv is the read side's system call: false (wait) when nothing is there.
func (m *mmsgIO) recv(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.in[0])), uintptr(len(m.in)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	m.nIn, m.errno = int(r), e
	return true
}

// send is the write side's: replies from m.off on; false (wait) when the
// socket buffer is full.
func (m *mmsgIO) send(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[m.off])), uintptr(m.nOut-m.off), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	m.sent, m.errno = int(r), e
	return true
}

func (m *mmsgIO) read() (int, error) {
	for i := range m.in {
		m.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		m.in[i].Hdr.Flags = 0
		m.in[i].Len = 0
	}
	if err := m.rc.Read(m.recvFn); err != nil {
		return 0, err
	}
	if m.errno != 0 {
		return 0, m.errno
	}
	m.nOut = 0
	return m.nIn, nil
}

func (m *mmsgIO) packet(i int) ([]byte, netip.AddrPort) {
	data := m.bufs[i][:m.in[i].Len]
	if m.in[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
		data = data[:0] // longer than any sane query: dropped as too short
	}
	return data, rawToAddrPort(&m.inName[i])
}

func rawToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
	}
	return netip.AddrPort{}
}

func (m *mmsgIO) queue(i int, resp []byte) {
	k := m.nOut
	m.outName[k] = m.inName[i]
	m.out[k].Hdr.Namelen = m.in[i].Hdr.Namelen
	m.outIov[k].Base = &resp[0]
	m.outIov[k].SetLen(len(resp))
	m.out[k].Len = 0
	m.nOut++
}

func (m *mmsgIO) flush() error {
	var firstErr error
	for m.off = 0; m.off < m.nOut; {
		if err := m.rc.Write(m.sendFn); err != nil {
			return err
		}
		if m.errno != 0 {
			// The datagram at off failed (e.g. an unreachable client):
			// skip it, send the rest.
			if firstErr == nil {
				firstErr = m.errno
			}
			m.sent = 1
		}
		m.off += max(m.sent, 1)
	}
	for k := range m.nOut {
		m.outIov[k].Base = nil // let the reply buffers go
	}
	m.nOut = 0
	return firstErr
}
