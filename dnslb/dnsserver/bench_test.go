package dnsserver

import (
	"io"
	"net"
	"testing"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// benchWire is a packed query for name and qtype.
func benchWire(b *testing.B, name string, qtype uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	w, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchmarkTCPConnPerQuery measures a connection per query, as resolvers
// retrying a truncated answer over TCP make them: connect, one query, the
// reply, close. The allocations are the server's and the client's: the
// handler (answerHandler) makes none.
func BenchmarkTCPConnPerQuery(b *testing.B) {
	_, addr := startServer(b, Options{})
	wire := benchWire(b, "www.example.test.", dns.TypeA)
	frame := dnstest.Frame(wire)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadAtLeast(c, buf, 2+headerLen); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
