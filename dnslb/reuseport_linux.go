//go:build linux

package dnslb

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// udpSocketOptions sets SO_REUSEPORT (several sockets on one port, with
// the kernel spreading datagrams over them) and, with dontFragment, Don't
// Fragment on IPv4 replies, using the interface MTU rather than a path MTU
// that ICMP could talk down (IP_PMTUDISC_PROBE). The latter is best effort:
// an IPv6-only socket refuses it, and it only saves work.
func udpSocketOptions(c syscall.RawConn, reuse, dontFragment bool) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if reuse {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
		if dontFragment {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
