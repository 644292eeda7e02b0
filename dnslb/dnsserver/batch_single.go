package dnsserver

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// singleIO reads and writes one datagram per system call, where batched
// I/O is not wired up (batch_other.go). On a wildcard socket it asks for
// each datagram's destination address and sends the reply from it, as the
// batched reader does, where the system supports it.
type singleIO struct {
	c     *net.UDPConn
	buf   []byte
	oob   []byte // nil: not a wildcard socket, no packet info
	v6    bool   // an IPv6 socket (its packet info is IPv6's)
	n     int
	from  netip.AddrPort
	dst   netip.Addr // where the datagram was sent, if known
	ifi   int        // the interface it came in on
	reply []byte
}

func newSingleIO(c *net.UDPConn, bufSize int) (*singleIO, error) {
	s := &singleIO{c: c, buf: make([]byte, bufSize)}
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || !la.IP.IsUnspecified() {
		return s, nil
	}
	// A socket that cannot be asked (the system lacks packet info) is
	// served as before: the kernel picks each reply's source.
	if la.IP.To4() != nil {
		if ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst, true) == nil {
			s.oob = ipv4.NewControlMessage(ipv4.FlagDst)
		}
	} else if ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst, true) == nil {
		s.oob, s.v6 = ipv6.NewControlMessage(ipv6.FlagDst), true
	}
	return s, nil
}

func (s *singleIO) serve(answer func(int)) error {
	for {
		n, oobn, _, from, err := s.c.ReadMsgUDPAddrPort(s.buf, s.oob)
		if err != nil {
			return err
		}
		s.n, s.from, s.dst, s.ifi, s.reply = n, from, netip.Addr{}, 0, nil
		if oobn > 0 {
			s.dst, s.ifi = s.parseDst(s.oob[:oobn])
		}
		answer(1)
		if s.reply != nil {
			// A lost reply is retried by the client.
			_, _, _ = s.c.WriteMsgUDPAddrPort(s.reply, sourceControl(s.dst, s.ifi), s.from)
		}
	}
}

// parseDst is the destination address and the interface in a datagram's
// packet info.
func (s *singleIO) parseDst(oob []byte) (netip.Addr, int) {
	var ip net.IP
	ifi := 0
	if s.v6 {
		var cm ipv6.ControlMessage
		if cm.Parse(oob) == nil {
			ip, ifi = cm.Dst, cm.IfIndex
		}
	} else {
		var cm ipv4.ControlMessage
		if cm.Parse(oob) == nil {
			ip, ifi = cm.Dst, cm.IfIndex
		}
	}
	a, _ := netip.AddrFromSlice(ip)
	return a, ifi
}

// sourceControl is the control message that sends a reply from dst: an
// IPv4 one for an IPv4 (or IPv4-mapped, on a dual-stack socket) address,
// which Linux takes on either family's socket; nil when dst is unknown.
// The interface is left to the routing table, but for a link-local
// address, which needs it.
func sourceControl(dst netip.Addr, ifi int) []byte {
	switch {
	case !dst.IsValid() || dst.IsUnspecified():
		return nil
	case dst.Unmap().Is4():
		return (&ipv4.ControlMessage{Src: dst.Unmap().AsSlice()}).Marshal()
	default:
		cm := &ipv6.ControlMessage{Src: dst.AsSlice()}
		if dst.IsLinkLocalUnicast() {
			cm.IfIndex = ifi
		}
		return cm.Marshal()
	}
}

func (s *singleIO) packet(int) ([]byte, netip.AddrPort) {
	return s.buf[:s.n], netip.AddrPortFrom(s.from.Addr().Unmap(), s.from.Port())
}

func (s *singleIO) queue(_ int, resp []byte) { s.reply = resp }
