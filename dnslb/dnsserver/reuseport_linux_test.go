package dnsserver

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUDPDontFragment checks that replies that always fit a frame go out
// with DF (the kernel then skips IP ID selection), and that a server whose
// replies may need fragments keeps the system default.
func TestUDPDontFragment(t *testing.T) {
	for _, tc := range []struct {
		maxReply int
		want     int
	}{
		{1232, unix.IP_PMTUDISC_PROBE},
		{1472, unix.IP_PMTUDISC_PROBE},
		{4096, -1}, // not ours: whatever the system default is
		{0, -1},
	} {
		srv, _ := startServer(t, Options{MaxUDPReply: tc.maxReply, UDPSockets: 2})
		for _, pc := range srv.udp {
			got := sockoptInt(t, pc.(*net.UDPConn), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER)
			if tc.want >= 0 && got != tc.want {
				t.Errorf("MaxUDPReply %d: IP_MTU_DISCOVER = %d, want %d", tc.maxReply, got, tc.want)
			}
			if tc.want < 0 && got == unix.IP_PMTUDISC_PROBE {
				t.Errorf("MaxUDPReply %d: DF set, but replies may need fragments", tc.maxReply)
			}
		}
		srv.Close()
	}
}

// TestTCPListenerIsPlainTCP checks that the DNS TCP listener is not Go's
// default Multipath TCP: DNS clients do not speak it, and its fallback
// layer sits under every read and write.
func TestTCPListenerIsPlainTCP(t *testing.T) {
	srv, _ := startServer(t, Options{})
	for _, ln := range srv.tcp {
		proto := sockoptInt(t, ln.(*net.TCPListener), unix.SOL_SOCKET, unix.SO_PROTOCOL)
		if proto != unix.IPPROTO_TCP {
			t.Errorf("listener %s: protocol %d, want TCP (%d)", ln.Addr(), proto, unix.IPPROTO_TCP)
		}
	}
}

// sockoptInt reads an integer socket option of c.
func sockoptInt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}
