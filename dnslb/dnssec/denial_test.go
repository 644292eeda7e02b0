package dnssec

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestCompactDenial(t *testing.T) {
	for _, tc := range []struct {
		name string
		nsec *dns.NSEC
		want []uint16
	}{
		{"nxdomain", CompactNXDOMAIN("nope.example.com.", 300), []uint16{dns.TypeRRSIG, dns.TypeNSEC, TypeNXNAME}},
		{"nodata", CompactNoData("nope.example.com.", []uint16{dns.TypeAAAA, dns.TypeA, dns.TypeA}, 300), []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeRRSIG, dns.TypeNSEC}},
		{"empty non-terminal", CompactNoData("nope.example.com.", nil, 300), []uint16{dns.TypeRRSIG, dns.TypeNSEC}},
		{"nodata never claims NXNAME", CompactNoData("nope.example.com.", []uint16{TypeNXNAME, dns.TypeTXT}, 300), []uint16{dns.TypeTXT, dns.TypeRRSIG, dns.TypeNSEC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.nsec
			if n.Hdr.Name != "nope.example.com." || n.Hdr.Ttl != 300 || n.Hdr.Rrtype != dns.TypeNSEC || n.Hdr.Class != dns.ClassINET {
				t.Errorf("header %v", n.Hdr)
			}
			if n.NextDomain != `\000.nope.example.com.` {
				t.Errorf("next %q", n.NextDomain)
			}
			if !slices.Equal(n.TypeBitMap, tc.want) {
				t.Errorf("bitmap %v, want %v", n.TypeBitMap, tc.want)
			}
			// On the wire: the next name's first label is one zero octet.
			buf := make([]byte, 512)
			off, err := dns.PackRR(n, buf, 0, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			back, _, err := dns.UnpackRR(buf[:off], 0)
			if err != nil {
				t.Fatal(err)
			}
			bn := back.(*dns.NSEC)
			if bn.NextDomain != n.NextDomain || !slices.Equal(bn.TypeBitMap, tc.want) {
				t.Errorf("wire round trip %v", back)
			}
			// The next name is the immediate successor: it sorts after the
			// owner in canonical order and covers no other name.
			if dns.CompareDomainName(n.NextDomain, n.Hdr.Name) != dns.CountLabel(n.Hdr.Name) {
				t.Errorf("next %s is not a child of %s", n.NextDomain, n.Hdr.Name)
			}
		})
	}
}

func TestCompactNXDOMAINSigned(t *testing.T) {
	ks := testKeySet(t, ECDSAP256SHA256)
	s, _ := NewSigner(ks, func() time.Time { return t0 }, 10)
	set := []dns.RR{CompactNXDOMAIN("a.b.example.com.", 3600)}
	sigs, err := s.Sign(set)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, sigs, ks.SigningZSKs(), set, t0)
	// A validator checks the received message: round trip it.
	m := new(dns.Msg)
	m.SetQuestion("a.b.example.com.", dns.TypeA)
	m.Ns = append(set, sigs...)
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var got dns.Msg
	if err := got.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	if err := got.Ns[1].(*dns.RRSIG).Verify(ks.SigningZSKs()[0].DNSKEY, got.Ns[:1]); err != nil {
		t.Errorf("received compact NSEC does not verify: %v", err)
	}
}

func TestWantsCompactRcode(t *testing.T) {
	mk := func(do, co bool) *dns.OPT {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetDo(do)
		o.SetCo(co)
		return o
	}
	for _, tc := range []struct {
		opt  *dns.OPT
		want bool
	}{
		{nil, false}, {mk(false, false), false}, {mk(true, false), false}, {mk(false, true), false}, {mk(true, true), true},
	} {
		if got := WantsCompactRcode(tc.opt); got != tc.want {
			t.Errorf("WantsCompactRcode(%v) = %v", tc.opt, got)
		}
	}
	if o := mk(false, true); o.Hdr.Ttl&COFlag == 0 {
		t.Error("COFlag is not miekg/dns's CO bit")
	}
}

func TestNSEC3WhiteLies(t *testing.T) {
	m := NSEC3Match("example.com.", "www.example.com.", 300, []uint16{dns.TypeAAAA, dns.TypeA})
	if !m.Match("www.example.com.") || m.Iterations != 0 || m.Salt != "" || m.Hash != dns.SHA1 {
		t.Errorf("match %v", m)
	}
	if !slices.Equal(m.TypeBitMap, []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeRRSIG}) {
		t.Errorf("match bitmap %v", m.TypeBitMap)
	}
	c := NSEC3Cover("example.com.", "nope.example.com.", 300)
	if !c.Cover("nope.example.com.") || c.Match("nope.example.com.") {
		t.Errorf("cover %v", c)
	}
	for _, other := range []string{"www.example.com.", "example.com.", "a.nope.example.com."} {
		if c.Cover(other) {
			t.Errorf("the white lie for nope covers %s too", other)
		}
	}
	if !strings.HasSuffix(c.Hdr.Name, ".example.com.") || c.Hdr.Name != strings.ToLower(c.Hdr.Name) {
		t.Errorf("owner %q", c.Hdr.Name)
	}
}
