package dnslb

import (
	"net/netip"
	"testing"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/dnsserver"
	"github.com/miekg/dns"
)

// The answer path's test helpers (see package answer) that the tests here
// use too: they ask an Authority built from config.

// exchange runs one query through the handler, as a server would.
func exchange(t testing.TB, h dnsserver.Handler, m *dns.Msg, tcp bool) *dns.Msg {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := h.ServeDNS(&answer.Request{Wire: wire, TCP: tcp}, make([]byte, 0, 4096))
	if out == nil {
		return nil
	}
	var resp dns.Msg
	if err := resp.Unpack(out); err != nil {
		t.Fatalf("unpack reply: %v", err)
	}
	return &resp
}

func ednsQuery(t testing.TB, name string, qtype uint16, id uint16, opts ...dns.EDNS0) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	o.Option = opts
	m.Extra = append(m.Extra, o)
	w, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func cookieOpt(h string) *dns.EDNS0_COOKIE {
	return &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: h}
}

// replyCookieOf returns the COOKIE of a reply in hex, "" without one.
func replyCookieOf(m *dns.Msg) string {
	if o := m.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if c, ok := e.(*dns.EDNS0_COOKIE); ok {
				return c.Cookie
			}
		}
	}
	return ""
}

func serveFrom(t testing.TB, auth *answer.Authority, wire []byte, client string, tcp bool) (*dns.Msg, []byte) {
	t.Helper()
	out := auth.ServeDNS(&answer.Request{Wire: wire, TCP: tcp, Remote: netip.AddrPortFrom(netip.MustParseAddr(client), 5353)}, make([]byte, 0, 4096))
	var m dns.Msg
	if err := m.Unpack(out); err != nil {
		t.Fatalf("reply %x: %v", out, err)
	}
	return &m, out
}
