//go:build !linux

package dnslb

import (
	"net"
	"net/netip"
)

// singleIO reads and writes one datagram per system call, where batched
// I/O is not wired up.
type singleIO struct {
	c     *net.UDPConn
	buf   []byte
	n     int
	from  netip.AddrPort
	reply []byte
}

func newBatchIO(c *net.UDPConn, batch, bufSize int) (batchIO, error) {
	return &singleIO{c: c, buf: make([]byte, bufSize)}, nil
}

func (s *singleIO) serve(answer func(int)) error {
	for {
		n, from, err := s.c.ReadFromUDPAddrPort(s.buf)
		if err != nil {
			return err
		}
		s.n, s.from, s.reply = n, from, nil
		answer(1)
		if s.reply != nil {
			_, _ = s.c.WriteToUDPAddrPort(s.reply, s.from) // a lost reply is retried by the client
		}
	}
}

func (s *singleIO) packet(int) ([]byte, netip.AddrPort) { return s.buf[:s.n], s.from }

func (s *singleIO) queue(_ int, resp []byte) { s.reply = resp }
