//go:build !linux

package dnsserver

import "net"

// newBatchIO reads one datagram per system call where batched I/O is not
// wired up.
func newBatchIO(c *net.UDPConn, _, bufSize int) (batchIO, error) {
	return newSingleIO(c, bufSize)
}
