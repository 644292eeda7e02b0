package dnstest

import (
	"net"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server on a free loopback port, UDP and TCP on the same
// port, for tests that need a peer: an upstream, a primary, a target of a
// dns health check. It stops when the test ends.
type Server struct {
	// Addr is host:port, the same for UDP and TCP.
	Addr string
	udp  *dns.Server
	tcp  *dns.Server
	once sync.Once
}

// NewServer starts a Server answering with h.
func NewServer(t testing.TB, h dns.Handler) *Server {
	t.Helper()
	return NewSignedServer(t, h, nil)
}

// NewSignedServer starts a Server answering with h that verifies TSIG
// with secrets (key name to base64 secret), as dns.Server.TsigSecret.
func NewSignedServer(t testing.TB, h dns.Handler, secrets map[string]string) *Server {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	var err error
	// The UDP port is free; its TCP twin usually is too; retry when not.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: listen udp: %v", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("dnstest: no port free for both UDP and TCP: %v", err)
	}
	s := &Server{
		Addr: pc.LocalAddr().String(),
		udp:  &dns.Server{PacketConn: pc, Handler: h, TsigSecret: secrets},
		tcp:  &dns.Server{Listener: ln, Handler: h, TsigSecret: secrets},
	}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = s.udp.ActivateAndServe() }()
	go func() { defer wg.Done(); _ = s.tcp.ActivateAndServe() }()
	<-started
	<-started
	t.Cleanup(func() { s.Close(); wg.Wait() })
	return s
}

// Close stops the server; it is also done when the test ends.
func (s *Server) Close() {
	s.once.Do(func() {
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
	})
}

// HandlerFunc answers every query from a function of the query: fill in the
// reply (already a reply to the query, authoritative) and return it, or
// return nil to send nothing.
func HandlerFunc(f func(q, reply *dns.Msg) *dns.Msg) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(q)
		r.Authoritative = true
		if r = f(q, r); r != nil {
			_ = w.WriteMsg(r)
		}
	})
}
