// Package handlertest runs DNS messages through a dnsserver.Handler without
// a socket, as the server would, and unpacks the replies: the answer path's
// tests and the running server's share it.
//
// It is apart from package dnstest because it imports dnsserver, whose own
// tests use dnstest.
package handlertest

import (
	"net/netip"
	"testing"

	"github.com/dnslb/dnslb/dnslb/dnsserver"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// Exchange packs m, serves it through h (over TCP when tcp is set, from no
// particular client) and returns the unpacked reply, nil when h sends
// nothing.
func Exchange(t testing.TB, h dnsserver.Handler, m *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("handlertest: pack query: %v", err)
	}
	out := h.ServeDNS(&dnsserver.Request{Wire: wire, TCP: tcp}, make([]byte, 0, 4096))
	if out == nil {
		return nil
	}
	return dnstest.Unpack(t, out)
}

// ServeFrom serves wire, any bytes, through h as sent from client (an
// address, port 5353) and returns the reply unpacked and as sent. It fails
// the test when h sends nothing or what it sends does not parse.
func ServeFrom(t testing.TB, h dnsserver.Handler, wire []byte, client string, tcp bool) (*dns.Msg, []byte) {
	t.Helper()
	req := &dnsserver.Request{Wire: wire, TCP: tcp, Remote: netip.AddrPortFrom(netip.MustParseAddr(client), 5353)}
	out := h.ServeDNS(req, make([]byte, 0, 4096))
	if out == nil {
		t.Fatalf("handlertest: no reply to %x from %s", wire, client)
	}
	return dnstest.Unpack(t, out), out
}
