//go:build linux

package dnsserver

import (
	"encoding/binary"
	"errors"
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
//
// On a wildcard socket (one that asks for packet info, see listenUDP) each
// datagram comes with the address it was sent to, and its reply goes out
// from that address; other sockets carry no control messages.
type mmsgIO struct {
	rc syscall.RawConn

	in     []unix.Mmsghdr
	inIov  []unix.Iovec
	inName []unix.RawSockaddrInet6
	inCtl  []pktinfoMsg // nil: no packet info
	bufs   [][]byte

	out     []unix.Mmsghdr
	outIov  []unix.Iovec
	outName []unix.RawSockaddrInet6
	outCtl  []pktinfoMsg
	nOut    int

	// The callbacks given to the netpoller, as method values made once (a
	// closure per call would be a heap allocation per batch), and their
	// state.
	cycleFn, sendFn func(fd uintptr) bool
	answer          func(n int)
	off, sent       int
	errno           syscall.Errno
	sendBlocked     bool // the socket buffer filled: replies wait from off
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
	pktinfo, err := wantsPktinfo(rc)
	if err != nil {
		return nil, err
	}
	if pktinfo {
		m.inCtl = make([]pktinfoMsg, batch)
		m.outCtl = make([]pktinfoMsg, batch)
		for i := range m.in {
			m.in[i].Hdr.Control = (*byte)(unsafe.Pointer(&m.inCtl[i]))
		}
	}
	m.cycleFn, m.sendFn = m.cycle, m.send
	return m, nil
}

// pktinfoMsg is one datagram's control message: room for an IPV6_PKTINFO
// (the larger of the two packet infos) with its header, aligned as the
// kernel lays it out.
type pktinfoMsg struct {
	hdr  unix.Cmsghdr
	data [24]byte // unix.Inet6Pktinfo or unix.Inet4Pktinfo, padded
}

// Control message sizes (CMSG_LEN, CMSG_SPACE) of the packet infos.
var (
	pktinfo4Len   = unix.CmsgLen(unix.SizeofInet4Pktinfo)
	pktinfo6Len   = unix.CmsgLen(unix.SizeofInet6Pktinfo)
	pktinfo4Space = unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	pktinfo6Space = unix.CmsgSpace(unix.SizeofInet6Pktinfo)
)

// wantsPktinfo reports whether the socket asks for each datagram's
// destination address (IP_PKTINFO or IPV6_RECVPKTINFO, by its family).
func wantsPktinfo(rc syscall.RawConn) (bool, error) {
	var on bool
	var gerr error
	err := rc.Control(func(fd uintptr) {
		domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			gerr = err
			return
		}
		v := 0
		if domain == unix.AF_INET6 {
			v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO)
		} else {
			v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO)
		}
		on = v != 0
	})
	if err == nil {
		err = gerr
	}
	return on, err
}

// serve runs the read-answer-send cycle inside the netpoller's read call,
// so that the cycle itself decides when to wait: after a batch smaller than
// the batch size the socket was empty, and it waits for the next datagram
// at once instead of asking the socket again (a system call that would
// only say EAGAIN; at moderate load that is one of the few calls per
// wake-up). Replies are sent without waiting; only when the socket buffer
// is full does serve leave the cycle to wait for room.
func (m *mmsgIO) serve(answer func(n int)) error {
	m.answer = answer
	for {
		m.errno, m.sendBlocked = 0, false
		if err := m.rc.Read(m.cycleFn); err != nil {
			return err
		}
		if m.errno != 0 {
			return m.errno
		}
		if m.sendBlocked {
			if err := m.flush(); err != nil && errors.Is(err, net.ErrClosed) {
				return err
			}
		}
	}
}

// cycle reads, answers and sends batches until the socket is drained
// (false: wait for readability; see retryAfter), a read fails or the replies cannot all be
// sent (true: serve takes over). Under a flood it also hands back to the
// netpoller now and then (false after maxBatches batches): the
// wait returns at once while datagrams are queued, but that is where a
// Close is noticed.
func (m *mmsgIO) cycle(fd uintptr) bool {
	for batches := 0; batches < maxBatches; batches++ {
		for i := range m.in {
			m.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			m.in[i].Hdr.Flags = 0
			m.in[i].Len = 0
		}
		if m.inCtl != nil {
			for i := range m.in {
				m.in[i].Hdr.SetControllen(int(unsafe.Sizeof(pktinfoMsg{})))
			}
		}
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.in[0])), uintptr(len(m.in)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			m.errno = e
			return true
		}
		n := int(r)
		m.nOut = 0
		m.answer(n)
		if !m.sendNow(fd) {
			m.sendBlocked = true
			return true
		}
		if n < retryAfter {
			return false
		}
	}
	return false
}

// retryAfter is the smallest batch after which the cycle asks the socket
// again rather than waiting. A batch of one says datagrams arrive further
// apart than one takes to answer: the socket is most likely empty, and the
// wait is the next step. A batch of several says they queued up while the
// last ones were answered, and more have most likely arrived since: asking
// again is one system call, where waiting costs an epoll_wait and a trip
// through the Go scheduler that finds them ready all the same (measured at
// full load: more epoll_waits than reads, almost none of which slept).
const retryAfter = 2

// maxBatches bounds the batches one cycle serves without a pause.
const maxBatches = 16

// sendNow sends the queued replies without waiting; false if the socket
// buffer filled, with the rest left from m.off.
func (m *mmsgIO) sendNow(fd uintptr) bool {
	for m.off = 0; m.off < m.nOut; {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[m.off])), uintptr(m.nOut-m.off), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			m.off += max(int(r), 1)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			m.off++ // the datagram at off failed (e.g. an unreachable client): skip it
		}
	}
	m.release()
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

func (m *mmsgIO) packet(i int) ([]byte, netip.AddrPort) {
	data := m.bufs[i][:m.in[i].Len]
	if m.in[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
		data = data[:0] // longer than any sane query: dropped as too short
	}
	return data, rawToAddrPort(&m.inName[i])
}

// rawToAddrPort is the client's address; an IPv4 client of a dual-stack
// socket is an IPv4 client (unmapped), as it would be on an IPv4 socket.
func rawToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
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
	if m.inCtl != nil {
		m.setSource(k, i)
	}
	m.nOut++
}

// setSource has reply k leave from the address datagram i came to: the
// packet info that came with it, as the reply's IP_PKTINFO (ipi_spec_dst,
// the local address the kernel matched) or IPV6_PKTINFO (ipi6_addr; an
// IPv4-mapped one on a dual-stack socket makes an IPv4 reply from that
// address). The interface index is left 0 (but for a link-local address)
// so that the routing table, not the query's way in, picks the way out.
// Without packet info (none came, or it was cut) the kernel picks the
// source, as on any socket.
func (m *mmsgIO) setSource(k, i int) {
	in, out, hdr := &m.inCtl[i], &m.outCtl[k], &m.out[k].Hdr
	n := int(m.in[i].Hdr.Controllen)
	ok := m.in[i].Hdr.Flags&unix.MSG_CTRUNC == 0
	switch {
	case ok && n >= pktinfo4Len && in.hdr.Level == unix.IPPROTO_IP && in.hdr.Type == unix.IP_PKTINFO:
		got := (*unix.Inet4Pktinfo)(unsafe.Pointer(&in.data))
		*(*unix.Inet4Pktinfo)(unsafe.Pointer(&out.data)) = unix.Inet4Pktinfo{Spec_dst: got.Spec_dst}
		out.hdr.Level, out.hdr.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		out.hdr.SetLen(pktinfo4Len)
		hdr.Control = (*byte)(unsafe.Pointer(out))
		hdr.SetControllen(pktinfo4Space)
	case ok && n >= pktinfo6Len && in.hdr.Level == unix.IPPROTO_IPV6 && in.hdr.Type == unix.IPV6_PKTINFO:
		got := (*unix.Inet6Pktinfo)(unsafe.Pointer(&in.data))
		pi := unix.Inet6Pktinfo{Addr: got.Addr}
		if got.Addr[0] == 0xfe && got.Addr[1]&0xc0 == 0x80 {
			// A link-local source needs its interface (unless the
			// client's scope names it): the kernel refuses it without.
			pi.Ifindex = got.Ifindex
		}
		*(*unix.Inet6Pktinfo)(unsafe.Pointer(&out.data)) = pi
		out.hdr.Level, out.hdr.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		out.hdr.SetLen(pktinfo6Len)
		hdr.Control = (*byte)(unsafe.Pointer(out))
		hdr.SetControllen(pktinfo6Space)
	default:
		hdr.Control = nil
		hdr.SetControllen(0)
	}
}

// flush sends the replies from m.off on, waiting for room in the socket
// buffer when it is full.
func (m *mmsgIO) flush() error {
	var firstErr error
	for m.off < m.nOut {
		if err := m.rc.Write(m.sendFn); err != nil {
			m.release()
			return err
		}
		if m.errno != 0 {
			// The datagram at off failed (e.g. an unreachable client):
			// skip it, send the rest.
			if firstErr == nil {
				firstErr = m.errno
			}
			m.errno, m.sent = 0, 1
		}
		m.off += max(m.sent, 1)
	}
	m.release()
	return firstErr
}

// release forgets the sent replies' buffers.
func (m *mmsgIO) release() {
	for k := range m.nOut {
		m.outIov[k].Base = nil
	}
	m.nOut = 0
}
