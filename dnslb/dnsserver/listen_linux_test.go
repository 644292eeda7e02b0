package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// queryFrom sends a query from an unconnected socket on client to target
// and returns the reply and the address it came from: a connected socket
// would hide a reply from the wrong address (the kernel drops it), as a
// resolver does.
func queryFrom(t *testing.T, client, target netip.AddrPort) (*dns.Msg, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(client))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(wire, target); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("query to %s: %v", target, err)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(buf[:n]); err != nil {
		t.Fatalf("reply from %s: %v", from, err)
	}
	return resp, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

func portOf(t *testing.T, hostport string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

// TestWildcardReplySource checks that a wildcard listen answers from the
// address the query was sent to, not from the one the kernel would pick
// by route (the loopback holds all of 127/8: a query to 127.0.0.2 would
// be answered from 127.0.0.1), on an IPv4 socket and, for IPv4 clients,
// on a dual-stack one (":0"); and that only wildcard sockets pay for the
// packet info.
func TestWildcardReplySource(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		target       string
		pktinfo      bool
	}{
		{"ipv4 wildcard", "0.0.0.0:0", "127.0.0.2", true},
		{"dual-stack wildcard", ":0", "127.0.0.3", true},
		{"specific address", "127.0.0.4:0", "127.0.0.4", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServerOn(t, Options{UDPSockets: 2}, tc.listen)
			target := netip.AddrPortFrom(netip.MustParseAddr(tc.target), portOf(t, srv.Addrs()[0]))
			for range 3 { // several, so that both sockets are likely to answer one
				resp, from := queryFrom(t, netip.MustParseAddrPort("127.0.0.1:0"), target)
				if from != target {
					t.Errorf("reply from %s, want %s", from, target)
				}
				if !resp.Response || !resp.Authoritative {
					t.Errorf("reply %v", resp)
				}
			}
			for _, pc := range srv.udp {
				if got := pktinfoOn(t, pc.(*net.UDPConn)); got != tc.pktinfo {
					t.Errorf("%s: packet info %v, want %v", pc.LocalAddr(), got, tc.pktinfo)
				}
			}
		})
	}
}

// pktinfoOn reports whether c asks for each datagram's destination.
func pktinfoOn(t *testing.T, c *net.UDPConn) bool {
	t.Helper()
	if sockoptInt(t, c, unix.SOL_SOCKET, unix.SO_DOMAIN) == unix.AF_INET6 {
		return sockoptInt(t, c, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO) != 0
	}
	return sockoptInt(t, c, unix.IPPROTO_IP, unix.IP_PKTINFO) != 0
}

// TestBatchIOReplySource checks both UDP readers, the batched one and the
// one-datagram fallback of other systems, on every kind of wildcard
// socket: each reply goes out from the address its datagram came to.
func TestBatchIOReplySource(t *testing.T) {
	impls := []struct {
		name string
		new  func(c *net.UDPConn) (batchIO, error)
	}{
		{"batch", func(c *net.UDPConn) (batchIO, error) { return newBatchIO(c, udpBatch, udpBufSize) }},
		{"single", func(c *net.UDPConn) (batchIO, error) { return newSingleIO(c, udpBufSize) }},
	}
	sockets := []struct {
		name, network, addr string
		client, target      string
	}{
		{"ipv4", "udp4", "0.0.0.0:0", "127.0.0.1:0", "127.0.0.2"},
		{"ipv4-mapped", "udp", ":0", "127.0.0.1:0", "127.0.0.5"},
		{"ipv6", "udp6", "[::]:0", "[::1]:0", "::1"},
	}
	for _, impl := range impls {
		for _, sock := range sockets {
			t.Run(impl.name+"/"+sock.name, func(t *testing.T) {
				pcs, err := listenUDP(sock.network, sock.addr, 1, sockOpts{})
				if err != nil {
					t.Fatal(err)
				}
				c := pcs[0].(*net.UDPConn)
				bio, err := impl.new(c)
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- bio.serve(echoAnswer(bio)) }()
				defer func() {
					c.Close()
					if err := <-done; !errors.Is(err, net.ErrClosed) {
						t.Errorf("serve: %v", err)
					}
				}()
				target := netip.AddrPortFrom(netip.MustParseAddr(sock.target), portOf(t, c.LocalAddr().String()))
				if _, from := queryFrom(t, netip.MustParseAddrPort(sock.client), target); from != target {
					t.Errorf("reply from %s, want %s", from, target)
				}
			})
		}
	}
}

// echoAnswer answers every datagram with itself, flagged as a response.
func echoAnswer(bio batchIO) func(n int) {
	bufs := make([][]byte, udpBatch)
	return func(n int) {
		for i := range n {
			data, _ := bio.packet(i)
			bufs[i] = append(bufs[i][:0], data...)
			if len(bufs[i]) > 2 {
				bufs[i][2] |= 0x80 // QR
			}
			bio.queue(i, bufs[i])
		}
	}
}

// TestListenBothFamilies checks that 0.0.0.0:PORT and [::]:PORT bind side
// by side, in either order: [::] is IPv6-only (IPV6_V6ONLY), TCP and UDP,
// and 0.0.0.0 an IPv4 socket.
func TestListenBothFamilies(t *testing.T) {
	for _, order := range [][2]string{{"0.0.0.0", "::"}, {"::", "0.0.0.0"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			first := startServerOn(t, Options{UDPSockets: 2}, net.JoinHostPort(order[0], "0"))
			port := strconv.Itoa(int(portOf(t, first.Addrs()[0])))
			second := New(Options{UDPSockets: 2, Listen: []string{net.JoinHostPort(order[1], port)}}, answerHandler{}, zerolog.Nop())
			if err := second.Start(); err != nil {
				t.Fatalf("%s on port %s beside %s: %v", order[1], port, order[0], err)
			}
			defer second.Close()
			for _, srv := range []*Server{first, second} {
				for _, pc := range srv.udp {
					checkFamily(t, pc.(*net.UDPConn))
				}
				for _, ln := range srv.tcp {
					checkFamily(t, ln.(*net.TCPListener))
				}
			}
			for _, target := range []string{"127.0.0.1", "::1"} {
				for _, proto := range []string{"udp", "tcp"} {
					m := new(dns.Msg)
					m.SetQuestion("www.example.test.", dns.TypeA)
					addr := net.JoinHostPort(target, port)
					resp, _, err := (&dns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(m, addr)
					if err != nil || !resp.Authoritative {
						t.Errorf("%s %s: %v %v", proto, addr, resp, err)
					}
				}
			}
		})
	}
}

// checkFamily checks that a listen socket on 0.0.0.0 is IPv4 and one on
// [::] IPv6-only.
func checkFamily(t *testing.T, c syscall.Conn) {
	t.Helper()
	var local string
	switch c := c.(type) {
	case *net.UDPConn:
		local = c.LocalAddr().String()
	case *net.TCPListener:
		local = c.Addr().String()
	}
	domain := sockoptInt(t, c, unix.SOL_SOCKET, unix.SO_DOMAIN)
	switch {
	case strings.HasPrefix(local, "0.0.0.0:"):
		if domain != unix.AF_INET {
			t.Errorf("%s: family %d, want AF_INET", local, domain)
		}
	case strings.HasPrefix(local, "[::]:"):
		if domain != unix.AF_INET6 || sockoptInt(t, c, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) != 1 {
			t.Errorf("%s: not an IPv6-only socket", local)
		}
	default:
		t.Errorf("unexpected listen address %s", local)
	}
}

// TestFreebind checks that freebind lets the server listen on addresses
// no interface holds (TEST-NET-1, the IPv6 documentation prefix), and
// that without it the listen fails.
func TestFreebind(t *testing.T) {
	for _, addr := range []string{"192.0.2.77:0", "[2001:db8::77]:0"} {
		for _, freebind := range []bool{true, false} {
			name := addr + "/without"
			if freebind {
				name = addr + "/with"
			}
			t.Run(name, func(t *testing.T) {
				if !freebind && nonlocalBind(t) {
					const why = "net.ipv4.ip_nonlocal_bind or net.ipv6.ip_nonlocal_bind is set: any address binds"
					if os.Getenv("CI") == "true" {
						t.Fatal("CI=true and " + why)
					}
					t.Skip(why)
				}
				srv := New(Options{UDPSockets: 2, Freebind: freebind, Listen: []string{addr}}, answerHandler{}, zerolog.Nop())
				err := srv.Start()
				defer srv.Close()
				if !freebind {
					if !errors.Is(err, syscall.EADDRNOTAVAIL) {
						t.Fatalf("Start without freebind: %v, want EADDRNOTAVAIL", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(srv.udp) != 2 || len(srv.tcp) != 1 {
					t.Fatalf("%d UDP and %d TCP sockets", len(srv.udp), len(srv.tcp))
				}
			})
		}
	}
}

func nonlocalBind(t *testing.T) bool {
	t.Helper()
	for _, p := range []string{"/proc/sys/net/ipv4/ip_nonlocal_bind", "/proc/sys/net/ipv6/ip_nonlocal_bind"} {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) != "0" {
			return true
		}
	}
	return false
}
