//go:build linux

package dnsserver

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// sockOpts are the options listenBoth sets on a socket before it binds.
type sockOpts struct {
	// reuse is SO_REUSEPORT: several sockets on one port, with the kernel
	// spreading datagrams over them.
	reuse bool
	// dontFragment is Don't Fragment on IPv4 replies, using the interface
	// MTU rather than a path MTU that ICMP could talk down
	// (IP_PMTUDISC_PROBE). Best effort: an IPv6-only socket refuses it,
	// and it only saves work.
	dontFragment bool
	// freebind lets the socket bind an address the host does not hold
	// (yet): IP_FREEBIND, IPV6_FREEBIND.
	freebind bool
	// pktinfo has each datagram arrive with the address it was sent to
	// (IP_PKTINFO, IPV6_RECVPKTINFO), so that a wildcard socket can send
	// the reply from it.
	pktinfo bool
}

// setSockOpts sets o on the socket of a Control function; network is
// Go's resolved one ("udp4", "tcp6", …) and says the family.
func setSockOpts(network string, c syscall.RawConn, o sockOpts) error {
	v6 := network == "udp6" || network == "tcp6"
	var serr error
	err := c.Control(func(fd uintptr) {
		s := int(fd)
		if o.reuse {
			if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				serr = errors.Join(serr, fmt.Errorf("SO_REUSEPORT: %w", err))
			}
		}
		if o.dontFragment {
			_ = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		}
		if o.freebind {
			var err error = unix.ENOPROTOOPT
			if v6 {
				err = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
			}
			if errors.Is(err, unix.ENOPROTOOPT) {
				// IPV6_FREEBIND is Linux 4.15; before it IP_FREEBIND
				// covered IPv6 sockets too.
				err = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
			}
			if err != nil {
				serr = errors.Join(serr, fmt.Errorf("freebind: %w", err))
			}
		}
		if o.pktinfo {
			var err error
			if v6 {
				// On a dual-stack socket this covers IPv4 datagrams too:
				// their destination comes as an IPv4-mapped address.
				err = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			} else {
				err = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			}
			if err != nil {
				serr = errors.Join(serr, fmt.Errorf("packet info: %w", err))
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
