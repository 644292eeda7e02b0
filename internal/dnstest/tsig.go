package dnstest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// SignedQuery is a query signed by miekg/dns, and the MAC a signed reply
// must be computed over.
type SignedQuery struct {
	Wire []byte
	MAC  string
}

// SignQuery packs a query for name and qtype (ID 0x4242, with EDNS when
// edns is set) signed with TSIG key, algorithm alg and the base64 secret at
// time at (fudge 300). edit, when not nil, changes the TSIG record after
// signing, for queries whose signature must not verify.
func SignQuery(t testing.TB, name string, qtype uint16, edns bool, key, alg, secret string, at time.Time, edit func(*dns.TSIG)) SignedQuery {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x4242
	if edns {
		m.SetEdns0(1232, true)
	}
	m.SetTsig(key, alg, 300, at.Unix())
	wire, mac, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatalf("dnstest: sign query %s with %s: %v", name, key, err)
	}
	if edit != nil {
		var signed dns.Msg
		if err := signed.Unpack(wire); err != nil {
			t.Fatalf("dnstest: unpack signed query: %v", err)
		}
		edit(signed.Extra[len(signed.Extra)-1].(*dns.TSIG))
		if wire, err = signed.Pack(); err != nil {
			t.Fatalf("dnstest: pack edited query: %v", err)
		}
	}
	return SignedQuery{Wire: wire, MAC: mac}
}

// AnswerA is the addresses of the A records in m's answer, in order.
func AnswerA(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}
