package answer

import (
	"crypto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/dnssec"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/miekg/dns"
)

// testSigner signs with a KSK and a ZSK of its own, without a cache.
type testSigner struct {
	ksk, zsk       *dns.DNSKEY
	kskPriv, zPriv crypto.Signer
	signed         int
	maxTTL         uint32
	nsec3          bool
}

func newTestSigner(t testing.TB, origin string) *testSigner {
	t.Helper()
	s := &testSigner{}
	for _, k := range []struct {
		key  **dns.DNSKEY
		priv *crypto.Signer
		flag uint16
	}{{&s.ksk, &s.kskPriv, 257}, {&s.zsk, &s.zPriv, 256}} {
		key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
			Flags: k.flag, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
		priv, err := key.Generate(256)
		if err != nil {
			t.Fatal(err)
		}
		*k.key, *k.priv = key, priv.(crypto.Signer)
	}
	return s
}

func (s *testSigner) Sign(rrset []dns.RR) ([]dns.RR, error) {
	s.signed++
	key, priv := s.zsk, s.zPriv
	if rrset[0].Header().Rrtype == dns.TypeDNSKEY {
		key, priv = s.ksk, s.kskPriv
	}
	now := time.Now()
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Name: rrset[0].Header().Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: rrset[0].Header().Ttl},
		Algorithm: key.Algorithm, KeyTag: key.KeyTag(), SignerName: key.Hdr.Name,
		Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(24 * time.Hour).Unix())}
	if err := sig.Sign(priv, rrset); err != nil {
		return nil, err
	}
	return []dns.RR{sig}, nil
}

func (s *testSigner) NSEC3() bool { return s.nsec3 }

func (s *testSigner) MaxTTL() uint32 {
	if s.maxTTL == 0 {
		return 3600
	}
	return s.maxTTL
}

func (s *testSigner) Keys(qtype uint16) []dns.RR {
	if qtype == dns.TypeDNSKEY {
		return []dns.RR{s.ksk, s.zsk}
	}
	return nil
}

// verifySigned checks that every RRset of a section but RRSIGs has an
// RRSIG that verifies with the signer's keys, and returns the RRsets'
// types.
func verifySigned(t *testing.T, s *testSigner, section string, rrs []dns.RR, unsigned ...string) []string {
	t.Helper()
	sets := map[string][]dns.RR{}
	sigs := map[string]*dns.RRSIG{}
	var order []string
	for _, rr := range rrs {
		h := rr.Header()
		if sig, ok := rr.(*dns.RRSIG); ok {
			sigs[strings.ToLower(h.Name)+" "+dns.TypeToString[sig.TypeCovered]] = sig
			continue
		}
		k := strings.ToLower(h.Name) + " " + dns.TypeToString[h.Rrtype]
		if sets[k] == nil {
			order = append(order, k)
		}
		sets[k] = append(sets[k], rr)
	}
	for _, k := range order {
		sig := sigs[k]
		if slices.Contains(unsigned, k) {
			if sig != nil {
				t.Errorf("%s: %s is signed", section, k)
			}
			continue
		}
		if sig == nil {
			t.Errorf("%s: %s has no RRSIG", section, k)
			continue
		}
		key := s.zsk
		if sig.TypeCovered == dns.TypeDNSKEY {
			key = s.ksk
		}
		if err := sig.Verify(key, sets[k]); err != nil {
			t.Errorf("%s: RRSIG of %s does not verify: %v", section, k, err)
		}
	}
	return order
}

func signedExchange(t *testing.T, auth *Authority, qname string, qtype uint16, do, co bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.SetEdns0(1232, do)
	if co {
		m.IsEdns0().Hdr.Ttl |= dnssec.COFlag
	}
	resp := handlertest.Exchange(t, auth, m, false)
	if resp == nil {
		t.Fatal("no reply")
	}
	return resp
}

func TestOnlineSigning(t *testing.T) {
	view := poolView(t, map[string]poolSpec{"www.example.test.": {policy: "round-robin", maxAnswers: 1}})
	zone := view.Zones.Zone("example.test.")
	signer := newTestSigner(t, "example.test.")
	view.Signers = map[string]ZoneSigner{zone.Origin: signer}
	auth := NewAuthority(view, 0, nil)

	nsecOf := func(resp *dns.Msg) *dns.NSEC {
		for _, rr := range resp.Ns {
			if n, ok := rr.(*dns.NSEC); ok {
				return n
			}
		}
		t.Fatalf("no NSEC in %v", resp.Ns)
		return nil
	}
	types := func(n *dns.NSEC) string {
		var out []string
		for _, b := range n.TypeBitMap {
			out = append(out, dns.Type(b).String())
		}
		return strings.Join(out, " ")
	}

	t.Run("pool answers, each rotation signed", func(t *testing.T) {
		seen := map[string]bool{}
		for range 4 {
			resp := signedExchange(t, auth, "www.example.test.", dns.TypeA, true, false)
			if got := verifySigned(t, signer, "answer", resp.Answer); !slices.Equal(got, []string{"www.example.test. A"}) {
				t.Fatalf("answer sets %v", got)
			}
			verifySigned(t, signer, "authority", resp.Ns)
			seen[resp.Answer[0].(*dns.A).A.String()] = true
		}
		if len(seen) < 2 {
			t.Errorf("one member in every answer: %v", seen)
		}
	})
	t.Run("no DO, no signatures", func(t *testing.T) {
		resp := signedExchange(t, auth, "www.example.test.", dns.TypeA, false, false)
		for _, rr := range append(resp.Answer, resp.Ns...) {
			if rr.Header().Rrtype == dns.TypeRRSIG || rr.Header().Rrtype == dns.TypeNSEC {
				t.Errorf("unsolicited %v", rr)
			}
		}
	})
	t.Run("DNSKEY at the apex, signed by the KSK", func(t *testing.T) {
		resp := signedExchange(t, auth, "example.test.", dns.TypeDNSKEY, true, false)
		if got := verifySigned(t, signer, "answer", resp.Answer); !slices.Equal(got, []string{"example.test. DNSKEY"}) || len(resp.Answer) != 3 {
			t.Errorf("DNSKEY answer %v", resp.Answer)
		}
		if resp := signedExchange(t, auth, "example.test.", dns.TypeCDS, true, false); len(resp.Answer) != 0 || len(resp.Ns) == 0 {
			t.Errorf("CDS without one: %v", resp)
		}
	})
	t.Run("compact NXDOMAIN", func(t *testing.T) {
		resp := signedExchange(t, auth, "nope.example.test.", dns.TypeA, true, false)
		if resp.Rcode != dns.RcodeSuccess {
			t.Errorf("rcode %s, want NOERROR without CO", dns.RcodeToString[resp.Rcode])
		}
		n := nsecOf(resp)
		if n.Hdr.Name != "nope.example.test." || n.NextDomain != "\\000.nope.example.test." || types(n) != "RRSIG NSEC NXNAME" {
			t.Errorf("NSEC %v (types %s)", n, types(n))
		}
		if got := verifySigned(t, signer, "authority", resp.Ns); !slices.Equal(got, []string{"example.test. SOA", "nope.example.test. NSEC"}) {
			t.Errorf("authority sets %v", got)
		}
		resp = signedExchange(t, auth, "nope.example.test.", dns.TypeA, true, true)
		if resp.Rcode != dns.RcodeNameError || resp.IsEdns0().Hdr.Ttl&dnssec.COFlag == 0 {
			t.Errorf("with CO: rcode %s, CO echoed %v", dns.RcodeToString[resp.Rcode], resp.IsEdns0().Hdr.Ttl&dnssec.COFlag != 0)
		}
	})
	t.Run("NODATA lists the name's other types", func(t *testing.T) {
		resp := signedExchange(t, auth, "www.example.test.", dns.TypeTXT, true, false)
		n := nsecOf(resp)
		if types(n) != "A AAAA RRSIG NSEC" && types(n) != "A RRSIG NSEC" {
			t.Errorf("NODATA types %s", types(n))
		}
		verifySigned(t, signer, "authority", resp.Ns)
		// The asked type is never in the bitmap, even when the name has
		// it (a pool with nothing to answer).
		resp = signedExchange(t, auth, "www.example.test.", dns.TypeMX, true, false)
		if strings.Contains(types(nsecOf(resp)), "MX") {
			t.Errorf("MX in the bitmap of an MX NODATA: %s", types(nsecOf(resp)))
		}
	})
	t.Run("referral proves no DS", func(t *testing.T) {
		resp := signedExchange(t, auth, "www.sub.example.test.", dns.TypeA, true, false)
		if resp.Authoritative {
			t.Fatalf("not a referral: %v", resp)
		}
		n := nsecOf(resp)
		if n.Hdr.Name != "sub.example.test." || types(n) != "NS RRSIG NSEC" {
			t.Errorf("no-DS NSEC %v", n)
		}
		if got := verifySigned(t, signer, "authority", resp.Ns, "sub.example.test. NS"); !slices.Contains(got, "sub.example.test. NSEC") {
			t.Errorf("authority %v", got)
		}
	})
	t.Run("a CNAME into a delegation leaves the cut's NS unsigned", func(t *testing.T) {
		resp := signedExchange(t, auth, "todeleg.example.test.", dns.TypeA, true, false)
		verifySigned(t, signer, "answer", resp.Answer)
		verifySigned(t, signer, "authority", resp.Ns, "sub.example.test. NS")
	})
	t.Run("cached answers stay signed", func(t *testing.T) {
		before := signer.signed
		for range 20 {
			resp := signedExchange(t, auth, "mail.example.test.", dns.TypeA, true, false)
			verifySigned(t, signer, "answer", resp.Answer)
		}
		if n := signer.signed - before; n > 4 {
			t.Errorf("%d signings for 20 equal queries: the cache does not hold signed answers", n)
		}
	})
	t.Run("TTLs over the signer's longest are cut", func(t *testing.T) {
		signer.maxTTL = 60
		defer func() { signer.maxTTL = 0 }()
		resp := signedExchange(t, auth, "example.test.", dns.TypeMX, true, false)
		verifySigned(t, signer, "answer", resp.Answer)
		for _, rr := range resp.Answer {
			if rr.Header().Ttl > 60 {
				t.Errorf("TTL %d over 60: %v", rr.Header().Ttl, rr)
			}
		}
		if ttl := zone.RRset("example.test.", dns.TypeMX)[0].Header().Ttl; ttl != 3600 {
			t.Errorf("the zone's record changed: TTL %d", ttl)
		}
	})
	t.Run("NSEC3 white lies", func(t *testing.T) {
		signer.nsec3 = true
		defer func() { signer.nsec3 = false }()
		resp := signedExchange(t, auth, "a.nope.example.test.", dns.TypeA, true, false)
		if resp.Rcode != dns.RcodeNameError {
			t.Errorf("rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
		}
		var n3 []*dns.NSEC3
		for _, rr := range resp.Ns {
			if n, ok := rr.(*dns.NSEC3); ok {
				n3 = append(n3, n)
			}
		}
		has := func(f func(*dns.NSEC3) bool) bool { return slices.ContainsFunc(n3, f) }
		if len(n3) != 3 ||
			!has(func(n *dns.NSEC3) bool { return n.Match("example.test.") }) ||
			!has(func(n *dns.NSEC3) bool { return n.Cover("nope.example.test.") }) ||
			!has(func(n *dns.NSEC3) bool { return n.Cover("*.example.test.") }) {
			t.Errorf("closest encloser proof: %v", n3)
		}
		for _, n := range n3 {
			if n.Cover("www.example.test.") || n.Cover("mail.example.test.") {
				t.Errorf("%v covers a name that exists", n)
			}
		}
		verifySigned(t, signer, "authority", resp.Ns)
		// A name not asked before (the signer's mode changed under the
		// cache, which a real change of denial never does: it is a new
		// view).
		resp = signedExchange(t, auth, "mail.example.test.", dns.TypeTXT, true, false)
		if resp.Rcode != dns.RcodeSuccess || len(resp.Ns) < 3 {
			t.Fatalf("NODATA %v", resp)
		}
		n, ok := resp.Ns[2].(*dns.NSEC3)
		if !ok || !n.Match("mail.example.test.") || slices.Contains(n.TypeBitMap, dns.TypeTXT) {
			t.Errorf("NODATA NSEC3 %v", resp.Ns)
		}
	})
}
