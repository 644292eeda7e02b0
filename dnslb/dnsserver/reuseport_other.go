//go:build !linux

package dnsserver

import (
	"errors"
	"syscall"
)

// sockOpts are the options listenBoth sets on a socket before it binds;
// see the Linux version. Elsewhere SO_REUSEPORT and IP_MTU_DISCOVER are
// not wired up (one socket, the system's fragmentation defaults), and the
// batch reader asks for packet info itself.
type sockOpts struct {
	reuse, dontFragment, freebind, pktinfo bool
}

func setSockOpts(_ string, _ syscall.RawConn, o sockOpts) error {
	if o.freebind {
		return errors.New("freebind: not supported on this system (Linux only)")
	}
	return nil
}
