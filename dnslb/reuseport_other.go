//go:build !linux

package dnslb

import "syscall"

// reusePort is a no-op where SO_REUSEPORT is not wired up: one socket.
func reusePort(network, address string, c syscall.RawConn) error { return nil }
