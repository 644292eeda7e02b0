package handlertest

import (
	"net/netip"
	"testing"

	"github.com/dnslb/dnslb/dnslb/dnsserver"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// echo answers with the query flagged as a response, and remembers what it
// was asked; a query for silent.test. gets nothing.
type echo struct{ got dnsserver.Request }

func (e *echo) ServeDNS(req *dnsserver.Request, out []byte) []byte {
	e.got = *req
	var q dns.Msg
	if q.Unpack(req.Wire) == nil && len(q.Question) == 1 && q.Question[0].Name == "silent.test." {
		return nil
	}
	out = append(out[:0], req.Wire...)
	out[2] |= 0x80
	return out
}

func TestExchange(t *testing.T) {
	h := &echo{}
	for _, tcp := range []bool{false, true} {
		m := new(dns.Msg)
		m.SetQuestion("a.test.", dns.TypeA)
		r := Exchange(t, h, m, tcp)
		if r == nil || !r.Response || r.Id != m.Id || h.got.TCP != tcp {
			t.Fatalf("tcp=%v: reply %v, request %+v", tcp, r, h.got)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("silent.test.", dns.TypeA)
	if r := Exchange(t, h, m, false); r != nil {
		t.Fatalf("no reply sent, got %v", r)
	}
}

func TestServeFrom(t *testing.T) {
	h := &echo{}
	r, raw := ServeFrom(t, h, dnstest.Query(t, "a.test.", dns.TypeA, 9), "2001:db8::1", true)
	if r.Id != 9 || len(raw) == 0 || h.got.Remote != netip.MustParseAddrPort("[2001:db8::1]:5353") || !h.got.TCP {
		t.Fatalf("reply %v, request %+v", r, h.got)
	}
}
