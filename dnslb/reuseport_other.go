//go:build !linux

package dnslb

import "syscall"

// udpSocketOptions is a no-op where SO_REUSEPORT and IP_MTU_DISCOVER are not
// wired up: one socket, the system's fragmentation defaults.
func udpSocketOptions(syscall.RawConn, bool, bool) error { return nil }
