package answer

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/dnsserver"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/dnslb/dnslb/internal/fuzzguard"
	"github.com/miekg/dns"
)

type answerCase struct {
	name   string
	qname  string
	qtype  uint16
	qclass uint16
	rcode  int
	aa     bool
	answer []string
	ns     []string
	extra  []string
}

func TestAuthorityAnswers(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	apexNS := []string{"example.test. 3600 in ns ns1.example.test.", "example.test. 3600 in ns ns2.example.net."}
	glue := []string{"ns1.example.test. 3600 in a 192.0.2.53", "ns1.example.test. 3600 in aaaa 2001:db8::53"}
	soa := []string{"example.test. 300 in soa ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 300"}
	cases := []answerCase{
		{name: "positive", qname: "WwW.Example.Test.", qtype: dns.TypeA, aa: true,
			answer: []string{"www.example.test. 60 in a 192.0.2.10", "www.example.test. 60 in a 192.0.2.11"}, ns: apexNS, extra: glue},
		{name: "apex NS: no authority", qname: "example.test.", qtype: dns.TypeNS, aa: true,
			answer: apexNS, extra: glue},
		{name: "MX gets target address", qname: "example.test.", qtype: dns.TypeMX, aa: true,
			answer: []string{"example.test. 3600 in mx 10 mail.example.test."}, ns: apexNS,
			extra: append([]string{"mail.example.test. 3600 in a 192.0.2.25"}, glue...)},
		{name: "nodata", qname: "www.example.test.", qtype: dns.TypeTXT, aa: true, ns: soa},
		{name: "nxdomain", qname: "nope.example.test.", qtype: dns.TypeA, aa: true, rcode: dns.RcodeNameError, ns: soa},
		{name: "empty non-terminal", qname: "b.c.example.test.", qtype: dns.TypeA, aa: true, ns: soa},
		{name: "cname chain", qname: "chain.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"chain.example.test. 3600 in cname alias.example.test.", "alias.example.test. 3600 in cname www.example.test.",
				"www.example.test. 60 in a 192.0.2.10", "www.example.test. 60 in a 192.0.2.11"}, ns: apexNS, extra: glue},
		{name: "cname out of our zones", qname: "outside.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"outside.example.test. 3600 in cname www.example.net."}},
		{name: "dangling cname", qname: "dangling.example.test.", qtype: dns.TypeA, aa: true, rcode: dns.RcodeNameError,
			answer: []string{"dangling.example.test. 3600 in cname nothing.example.test."}, ns: soa},
		{name: "cross-zone cname", qname: "cross.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"cross.example.test. 3600 in cname host.other.test.", "host.other.test. 7200 in a 192.0.2.201"},
			ns:     []string{"other.test. 7200 in ns ns.other.test."}, extra: []string{"ns.other.test. 7200 in a 192.0.2.200"}},
		{name: "cname loop", qname: "loop1.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"loop1.example.test. 3600 in cname loop2.example.test.", "loop2.example.test. 3600 in cname loop1.example.test."}},
		{name: "cname into delegation", qname: "todeleg.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"todeleg.example.test. 3600 in cname www.sub.example.test."},
			ns:     []string{"sub.example.test. 3600 in ns ns.sub.example.test."}, extra: []string{"ns.sub.example.test. 3600 in a 192.0.2.54"}},
		{name: "wildcard", qname: "x.wild.example.test.", qtype: dns.TypeA, aa: true,
			answer: []string{"x.wild.example.test. 3600 in a 192.0.2.99"}, ns: apexNS, extra: glue},
		{name: "referral", qname: "www.sub.example.test.", qtype: dns.TypeA,
			ns: []string{"sub.example.test. 3600 in ns ns.sub.example.test."}, extra: []string{"ns.sub.example.test. 3600 in a 192.0.2.54"}},
		{name: "DS at cut from parent", qname: "sub.example.test.", qtype: dns.TypeDS, aa: true, ns: soa},
		{name: "ANY minimal", qname: "www.example.test.", qtype: dns.TypeANY, aa: true,
			answer: []string{"www.example.test. 60 in a 192.0.2.10", "www.example.test. 60 in a 192.0.2.11"}},
		{name: "ANY at cname not chased", qname: "alias.example.test.", qtype: dns.TypeANY, aa: true,
			answer: []string{"alias.example.test. 3600 in cname www.example.test."}},
		{name: "outside our zones", qname: "www.example.net.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "root", qname: ".", qtype: dns.TypeNS, rcode: dns.RcodeRefused},
		{name: "class ANY: no AA, no authority", qname: "www.example.test.", qtype: dns.TypeA, qclass: dns.ClassANY,
			answer: []string{"www.example.test. 60 in a 192.0.2.10", "www.example.test. 60 in a 192.0.2.11"}},
		{name: "class ANY nxdomain: no SOA", qname: "nope.example.test.", qtype: dns.TypeA, qclass: dns.ClassANY, rcode: dns.RcodeNameError},
		{name: "class CH refused", qname: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused},
		{name: "AXFR over UDP", qname: "example.test.", qtype: dns.TypeAXFR, rcode: dns.RcodeNotImplemented},
		{name: "IXFR", qname: "example.test.", qtype: dns.TypeIXFR, rcode: dns.RcodeRefused},
	}
	checkAnswers(t, auth, cases)
}

// checkAnswers runs each case's query (RD set, over UDP) and compares the
// reply's rcode, AA, question and sections.
func checkAnswers(t *testing.T, auth dnsserver.Handler, cases []answerCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			if tc.qclass != 0 {
				m.Question[0].Qclass = tc.qclass
			}
			m.RecursionDesired = true
			resp := handlertest.Exchange(t, auth, m, false)
			if resp == nil {
				t.Fatal("no reply")
			}
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if resp.Authoritative != tc.aa {
				t.Errorf("AA = %v, want %v", resp.Authoritative, tc.aa)
			}
			if !resp.RecursionDesired || resp.RecursionAvailable || !resp.Response || resp.Id != m.Id {
				t.Errorf("header wrong: %+v", resp.MsgHdr)
			}
			if len(resp.Question) != 1 || resp.Question[0].Name != tc.qname {
				t.Errorf("question = %v, want %s echoed exactly", resp.Question, tc.qname)
			}
			for _, s := range []struct {
				name      string
				got, want []string
				rrs       []dns.RR
			}{{"answer", nil, tc.answer, resp.Answer}, {"authority", nil, tc.ns, resp.Ns}, {"additional", nil, tc.extra, resp.Extra}} {
				if missing, extra := dnstest.Diff(dnstest.NormLines(t, s.want...), dnstest.NormSection(s.rrs)); missing != nil || extra != nil {
					t.Errorf("%s: missing %q, extra %q", s.name, missing, extra)
				}
			}
		})
	}
}

// TestDSAtChildApex: when the parent zone is served too, DS at a child's
// apex is the parent's data (RFC 4035 3.1.4.1), as NSD answers it; the
// child answers every other type at its apex, and DS below it.
func TestDSAtChildApex(t *testing.T) {
	set := loadSet(t, os.DirFS(testdataDir+"/ds"), map[string]string{
		"parent.test.":       "parent.test.zone",
		"kid.parent.test.":   "kid.parent.test.zone",
		"nods.parent.test.":  "nods.parent.test.zone",
		"loose.parent.test.": "loose.parent.test.zone",
	})
	auth := NewAuthority(ZonesOnly(set), 0, nil)
	parentSOA := []string{"parent.test. 300 in soa ns1.parent.test. hostmaster.parent.test. 1 7200 900 1209600 300"}
	kidSOA := []string{"kid.parent.test. 600 in soa ns1.kid.parent.test. hostmaster.kid.parent.test. 1 7200 900 1209600 600"}
	ds := "kid.parent.test. 3600 in ds 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	// As NSD, positive DS and DNSKEY answers carry no NS RRset in the
	// authority section (nor its addresses): those RRsets are large.
	checkAnswers(t, auth, []answerCase{
		{name: "DS from the parent", qname: "kid.parent.test.", qtype: dns.TypeDS, aa: true, answer: []string{ds}},
		{name: "DS in letter case of the query", qname: "KID.Parent.test.", qtype: dns.TypeDS, aa: true, answer: []string{ds}},
		{name: "no DS in the parent: its NODATA", qname: "nods.parent.test.", qtype: dns.TypeDS, aa: true, ns: parentSOA},
		{name: "not delegated by the parent: its NODATA, not its wildcard", qname: "loose.parent.test.", qtype: dns.TypeDS, aa: true, ns: parentSOA},
		{name: "CNAME to a child apex", qname: "toapex.parent.test.", qtype: dns.TypeDS, aa: true,
			answer: []string{"toapex.parent.test. 3600 in cname kid.parent.test.", ds}},
		{name: "DS at a cut to a child served elsewhere", qname: "far.parent.test.", qtype: dns.TypeDS, aa: true,
			answer: []string{"far.parent.test. 3600 in ds 54321 13 2 fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"}},
		{name: "other types at the apex from the child", qname: "kid.parent.test.", qtype: dns.TypeSOA, aa: true,
			answer: []string{"kid.parent.test. 3600 in soa ns1.kid.parent.test. hostmaster.kid.parent.test. 1 7200 900 1209600 600"},
			ns:     []string{"kid.parent.test. 3600 in ns ns1.kid.parent.test."}, extra: []string{"ns1.kid.parent.test. 3600 in a 192.0.2.2"}},
		{name: "DNSKEY from the child", qname: "kid.parent.test.", qtype: dns.TypeDNSKEY, aa: true,
			answer: []string{"kid.parent.test. 3600 in dnskey 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="}},
		{name: "DS below the apex from the child", qname: "www.kid.parent.test.", qtype: dns.TypeDS, aa: true, ns: kidSOA},
		{name: "DS at the parent's own apex: no grandparent", qname: "parent.test.", qtype: dns.TypeDS, aa: true, ns: parentSOA},
	})
}

func TestEDNS(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	m.SetEdns0(4096, true)
	resp := handlertest.Exchange(t, auth, m, false)
	opt := resp.IsEdns0()
	if opt == nil || opt.UDPSize() != DefaultUDPSize || !opt.Do() || opt.Version() != 0 {
		t.Fatalf("OPT = %v", opt)
	}

	m.SetQuestion("www.example.test.", dns.TypeA)
	m.Extra = nil
	resp = handlertest.Exchange(t, auth, m, false)
	if resp.IsEdns0() != nil {
		t.Error("OPT in reply to a query without one")
	}

	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	resp = handlertest.Exchange(t, auth, m, false)
	if resp.Rcode != dns.RcodeBadVers || resp.IsEdns0() == nil || len(resp.Answer) != 0 || resp.Authoritative {
		t.Errorf("version 1: rcode %s, %v", dns.RcodeToString[resp.Rcode], resp)
	}
}

func TestTruncation(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	m := new(dns.Msg)
	m.SetQuestion("big.example.test.", dns.TypeTXT)

	udp := handlertest.Exchange(t, auth, m, false)
	if !udp.Truncated || len(udp.Answer) != 0 || len(udp.Question) != 1 {
		t.Errorf("UDP without EDNS: TC=%v answer=%d", udp.Truncated, len(udp.Answer))
	}
	tcp := handlertest.Exchange(t, auth, m, true)
	if tcp.Truncated || len(tcp.Answer) != 6 {
		t.Errorf("TCP: TC=%v answer=%d", tcp.Truncated, len(tcp.Answer))
	}
	m.SetEdns0(1232, false)
	edns := handlertest.Exchange(t, auth, m, false)
	if edns.Truncated || len(edns.Answer) != 6 || edns.IsEdns0() == nil {
		t.Errorf("EDNS 1232: TC=%v answer=%d", edns.Truncated, len(edns.Answer))
	}
}

func TestMalformed(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	valid := func() []byte {
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		m.Id = 0x1234
		b, _ := m.Pack()
		return b
	}
	with := func(f func(b []byte) []byte) []byte { return f(valid()) }
	cases := []struct {
		name  string
		wire  []byte
		tcp   bool
		drop  bool
		rcode int
		rd    bool
	}{
		{name: "empty", wire: nil, drop: true},
		{name: "11 bytes", wire: make([]byte, 11), drop: true},
		{name: "response", wire: with(func(b []byte) []byte { b[2] |= 0x80; return b }), drop: true},
		{name: "header only claiming a question", wire: with(func(b []byte) []byte { return b[:12] }), rcode: dns.RcodeFormatError, rd: true},
		{name: "header only on TCP closes", wire: with(func(b []byte) []byte { return b[:12] }), tcp: true, drop: true},
		{name: "two questions claimed", wire: with(func(b []byte) []byte { b[5] = 2; return b }), rcode: dns.RcodeFormatError},
		{name: "no question claimed", wire: with(func(b []byte) []byte { b[5] = 0; return b }), rcode: dns.RcodeFormatError},
		{name: "answer count in query", wire: with(func(b []byte) []byte { b[7] = 1; return b }), rcode: dns.RcodeFormatError, rd: true},
		{name: "truncated question", wire: with(func(b []byte) []byte { return b[:20] }), rcode: dns.RcodeFormatError, rd: true},
		{name: "pointer in question", wire: with(func(b []byte) []byte { return append(b[:12], 0xc0, 0x00, 0, 1, 0, 1) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "rcode set in query", wire: with(func(b []byte) []byte { b[3] |= 3; return b }), rcode: dns.RcodeFormatError, rd: true},
		{name: "opcode UPDATE", wire: with(func(b []byte) []byte { b[2] |= 5 << 3; return b }), rcode: dns.RcodeNotImplemented, rd: true},
		{name: "garbage additional", wire: with(func(b []byte) []byte { b[11] = 1; return append(b, 0xff, 0xff) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "trailing bytes ignored", wire: with(func(b []byte) []byte { return append(b, 1, 2, 3) }), rcode: dns.RcodeSuccess, rd: true},
		// Counts the message does not hold are FORMERR, as NSD answers;
		// each record must start before the message ends.
		{name: "ARCOUNT 65535, no records", wire: with(func(b []byte) []byte { return arcount(b, 65535) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "ARCOUNT 65535, one OPT", wire: with(func(b []byte) []byte { return arcount(append(b, testOPT...), 65535) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "ARCOUNT 2, one OPT", wire: with(func(b []byte) []byte { return arcount(append(b, testOPT...), 2) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "OPT cut short", wire: with(func(b []byte) []byte { return arcount(append(b, testOPT[:7]...), 1) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "OPT of one byte", wire: with(func(b []byte) []byte { return arcount(append(b, 0), 1) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "two OPTs", wire: with(func(b []byte) []byte { return arcount(append(append(b, testOPT...), testOPT...), 2) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "OPT then trailing bytes", wire: with(func(b []byte) []byte { return arcount(append(append(b, testOPT...), 0xde, 0xad), 1) }), rcode: dns.RcodeSuccess, rd: true},
		// NSD takes only OPT and TSIG in a query's additional section.
		{name: "A record in additional", wire: with(func(b []byte) []byte { return arcount(append(b, testA...), 1) }), rcode: dns.RcodeFormatError, rd: true},
		{name: "empty record in additional", wire: with(func(b []byte) []byte { return arcount(append(b, make([]byte, 11)...), 1) }), rcode: dns.RcodeFormatError, rd: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := auth.ServeDNS(&Request{Wire: tc.wire, TCP: tc.tcp}, nil)
			if tc.drop {
				if out != nil {
					t.Fatalf("replied %x; want no reply", out)
				}
				return
			}
			var resp dns.Msg
			if err := resp.Unpack(out); err != nil {
				t.Fatalf("unpack %x: %v", out, err)
			}
			if resp.Rcode != tc.rcode || resp.RecursionDesired != tc.rd || !resp.Response {
				t.Errorf("rcode %s rd %v; want %s rd %v", dns.RcodeToString[resp.Rcode], resp.RecursionDesired, dns.RcodeToString[tc.rcode], tc.rd)
			}
			if tc.rcode == dns.RcodeFormatError && len(out) != headerLen {
				t.Errorf("FORMERR is %d bytes; want a bare header", len(out))
			}
		})
	}
}

// testOPT is a root OPT record for 1232 bytes without options; testA an
// A record owned by the question's name.
var (
	testOPT = []byte{0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}
	testA   = []byte{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1}
)

// arcount sets a query's ARCOUNT.
func arcount(b []byte, n uint16) []byte {
	binary.BigEndian.PutUint16(b[10:], n)
	return b
}

// FuzzServeDNS: no input may panic, produce an unparsable reply, or take
// more than 50 ms (under -fuzz; see fuzzguard).
func FuzzServeDNS(f *testing.F) {
	view := tsigView(f)
	view.Pools = poolView(f, map[string]poolSpec{"www.example.test.": {policy: "sticky"}}).Pools
	// example.test. is signed: queries with DO take the signing path.
	view.Signers = map[string]ZoneSigner{"example.test.": newTestSigner(f, "example.test.")}
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	m.SetEdns0(1232, true)
	b, _ := m.Pack()
	f.Add(b, false)
	f.Add(b[:12], true)
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0xc0, 0x0c}, false)
	f.Add(arcount(append([]byte(nil), b...), 65535), false)
	f.Add(arcount(append([]byte(nil), b[:len(b)-len(testOPT)]...), 65535), true)
	f.Add(dnstest.SignQuery(f, "www.example.test.", dns.TypeA, true, "xfr-key.", dns.HmacSHA256, testSecret, time.Now(), nil).Wire, false)
	f.Add(dnstest.SignQuery(f, "big.example.test.", dns.TypeTXT, false, "other-key.", dns.HmacSHA512, testSecret512, time.Now(), nil).Wire, false)
	f.Add(dnstest.SignQuery(f, "www.example.test.", dns.TypeA, false, "nokey.", dns.HmacSHA256, testSecret, time.Now(), nil).Wire, true)
	// Client subnets: well formed, to a pool and a static name, and
	// malformed (scope set, bits past the prefix, a cut option).
	for _, q := range []struct {
		name string
		ecs  []byte
	}{
		{"www.example.test.", ecsData(1, 24, 0, 198, 51, 100)},
		{"www.example.test.", ecsData(2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 1, 2)},
		{"mail.example.test.", ecsData(1, 0, 0)},
		{"www.example.test.", ecsData(1, 24, 24, 198, 51, 100)},
		{"www.example.test.", ecsData(1, 23, 0, 198, 51, 101)},
		{"www.example.test.", ecsData(3, 8, 0, 10)},
	} {
		w := dnstest.EDNSQuery(f, q.name, dns.TypeA, 1, ecsLocal(q.ecs), dnstest.Cookie("0102030405060708"))
		f.Add(w, false)
		f.Add(w[:len(w)-14], false) // cut inside the options
	}
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		req := &Request{Wire: wire, TCP: tcp}
		var out []byte
		// A fresh Authority per run, so that a repeat does not hit the
		// cache the first run filled.
		// It is asked twice: the second may be a cache hit (a sticky
		// answer by client subnet, a patched ECS option).
		auth := NewAuthority(view, 0, nil)
		for i := range 2 {
			fuzzguard.Run(t, "one query", 50*time.Millisecond, func() { out = auth.ServeDNS(req, nil) })
			if out == nil {
				return
			}
			if len(out) < headerLen {
				t.Fatalf("reply %d: %d bytes", i, len(out))
			}
			if !tcp && len(out) > DefaultUDPSize {
				t.Fatalf("reply %d: UDP reply of %d bytes", i, len(out))
			}
			var m dns.Msg
			if err := m.Unpack(out); err != nil {
				t.Fatalf("reply %d does not parse: %v", i, err)
			}
		}
	})
}

func TestSelectionDoesNotModifyZone(t *testing.T) {
	view := testView(t)
	auth := NewAuthority(view, 0, nil)
	// Exactly, in order and case: a change of either is a change to the zone.
	before := fmt.Sprint(view.Zones.Zone("example.test.").All())
	for _, q := range []string{"nope.example.test.", "x.wild.example.test.", "chain.example.test."} {
		m := new(dns.Msg)
		m.SetQuestion(q, dns.TypeA)
		handlertest.Exchange(t, auth, m, false)
	}
	if after := fmt.Sprint(view.Zones.Zone("example.test.").All()); after != before {
		t.Fatal("answering changed the zone's records")
	}
}
