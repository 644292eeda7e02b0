package integration

// Differential tests: the same zone files are served by NSD 4.x (the
// reference) and by dnslb; the same queries go to both; rcode, flags, the
// question (byte-exact letter case) and the three sections (as sets of RRs,
// owner and rdata names lower-cased, TTLs exact) must agree. OPT is compared
// on its own: presence, version, extended rcode, flags (DO) and the
// advertised UDP size (NSD and dnslb both default to 1232).
//
// NSD is started with its defaults made explicit (minimal-responses: no,
// refuse-any: no): answers carry the zone's apex NS RRset in the authority
// section and the in-zone addresses of those NS (and of MX/SRV targets) in
// the additional section. Negative answers carry only the SOA, with
// TTL = min(SOA TTL, SOA minimum). ANY is answered with one RRset.
//
// Deliberate differences (the table marks them with `differs` and checks
// dnslb's own contract instead):
//   - CHAOS version.bind / version.server / id.server / hostname.bind: the
//     TXT content is server-specific. dnslb may answer like NSD (NOERROR, one
//     CH TXT record, TTL 0, no AA) or refuse like NSD with hide-version /
//     hide-identity (REFUSED, question echoed).
//   - qtype ANY at a name with several RRsets: RFC 8482 lets the server pick
//     which one RRset it returns; NSD's choice follows its internal order. dnslb
//     must return exactly one RRset that exists at the name, identical to what
//     NSD returns for that qtype, with NSD's rcode, flags and (empty)
//     authority/additional sections.
//   - EDNS options in replies (NSD adds Extended DNS Errors, RFC 8914, to
//     REFUSED replies) are not compared.
//   - NOTIFY (see TestMalformed): NSD answers REFUSED; dnslb, which has no
//     secondary zones, answers NOTIMP like for every opcode but QUERY.

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

var diffZones = []zoneFile{
	{Origin: "example.test.", Path: "testdata/diff/example.test.zone"},
	{Origin: "other.test.", Path: "testdata/diff/other.test.zone"},
	{Origin: "low.test.", Path: "testdata/diff/low.test.zone"},
}

// startPair starts NSD and dnslb on the diff zones.
func startPair(t *testing.T) (nsdAddr, lbAddr string) {
	t.Helper()
	requireTool(t, "nsd")
	nsdAddr = startNSD(t, diffZones)
	lbAddr = startDNSLB(t, dnslbConfig(t, diffZones))
	return nsdAddr, lbAddr
}

// transport is how a query is sent: network, EDNS, DO, RD, letter case.
type transport struct {
	name    string
	net     string
	edns    bool
	bufsize uint16
	do      bool
	rd      bool
	mix     bool // 0x20: mixed-case qname
}

var (
	tUDP       = transport{name: "udp", net: "udp"}
	tUDP20RD   = transport{name: "udp-0x20-rd", net: "udp", rd: true, mix: true}
	tUDPEDNS   = transport{name: "udp-edns", net: "udp", edns: true, bufsize: 1232, mix: true}
	tUDPDO     = transport{name: "udp-edns-do-rd", net: "udp", edns: true, bufsize: 1232, do: true, rd: true}
	tTCP       = transport{name: "tcp", net: "tcp", mix: true}
	tTCPDO     = transport{name: "tcp-edns4096-do-rd", net: "tcp", edns: true, bufsize: 4096, do: true, rd: true, mix: true}
	tUDP512    = transport{name: "udp-edns512", net: "udp", edns: true, bufsize: 512, mix: true}
	tUDP100    = transport{name: "udp-edns100", net: "udp", edns: true, bufsize: 100}
	tUDP4096   = transport{name: "udp-edns4096", net: "udp", edns: true, bufsize: 4096, mix: true}
	transports = []transport{tUDP, tUDP20RD, tUDPEDNS, tUDPDO, tTCP, tTCPDO}
)

type diffCase struct {
	name   string
	qtype  uint16
	qclass uint16 // 0 = IN
	only   []transport
	edit   func(m *dns.Msg) // last changes to the query (EDNS version, options…)
	// anyRRset: qtype ANY at a name with several RRsets; NSD and dnslb may
	// pick different RRsets (see the file comment).
	anyRRset bool
	// differs: the reason dnslb deliberately differs from NSD; check then
	// asserts dnslb's expected reply instead of comparing with NSD.
	differs string
	check   func(t *testing.T, q, got *dns.Msg)
}

func ednsVersion(v uint8) func(*dns.Msg) {
	return func(m *dns.Msg) {
		if o := m.IsEdns0(); o != nil {
			o.SetVersion(v)
		}
	}
}

var diffCases = []diffCase{
	// Positive answers: NS in authority, glue in additional.
	{name: "example.test.", qtype: dns.TypeSOA},
	{name: "example.test.", qtype: dns.TypeNS},
	{name: "example.test.", qtype: dns.TypeMX},
	{name: "example.test.", qtype: dns.TypeTXT},
	{name: "example.test.", qtype: dns.TypeA},
	{name: "www.example.test.", qtype: dns.TypeA},
	{name: "www.example.test.", qtype: dns.TypeAAAA},
	{name: "mail.example.test.", qtype: dns.TypeAAAA},
	{name: "ns1.example.test.", qtype: dns.TypeA},
	{name: "ns2.example.test.", qtype: dns.TypeA},
	{name: "mail.example.test.", qtype: dns.TypeA},
	{name: "WWW.EXAMPLE.TEST.", qtype: dns.TypeA},
	{name: "_sip._tcp.example.test.", qtype: dns.TypeSRV},
	{name: "mixed.example.test.", qtype: dns.TypeA},
	{name: "short.example.test.", qtype: dns.TypeA},
	{name: "host.other.test.", qtype: dns.TypeA},
	{name: "other.test.", qtype: dns.TypeNS},
	{name: "low.test.", qtype: dns.TypeSOA},
	// NXDOMAIN / NODATA: SOA with TTL min(SOA TTL, minimum).
	{name: "nope.example.test.", qtype: dns.TypeA},
	{name: "deep.nope.example.test.", qtype: dns.TypeA},
	{name: "www.example.test.", qtype: dns.TypeTXT},
	{name: "www.example.test.", qtype: dns.TypeNS},
	{name: "www.example.test.", qtype: dns.TypeMX},
	{name: "nope.other.test.", qtype: dns.TypeMX},
	{name: "nope.low.test.", qtype: dns.TypeA},
	{name: "low.test.", qtype: dns.TypeTXT},
	{name: "example.test.", qtype: dns.TypeDS},
	{name: "other.test.", qtype: dns.TypeDS},
	{name: "www.example.test.", qtype: 0},             // qtype 0: NODATA
	{name: "www.example.test.", qtype: dns.TypeMAILB}, // meta qtype 253: NODATA
	{name: "www.example.test.", qtype: dns.TypeOPT},   // qtype 41 in a question: NODATA
	{name: "www.example.test.", qtype: dns.TypeNULL},  // unknown-ish type: NODATA
	{name: "www.example.test.", qtype: 65280},         // private use type: NODATA
	// CNAME.
	{name: "alias.example.test.", qtype: dns.TypeA},
	{name: "alias.example.test.", qtype: dns.TypeAAAA},
	{name: "alias.example.test.", qtype: dns.TypeCNAME},
	{name: "alias.example.test.", qtype: dns.TypeTXT},
	{name: "chain1.example.test.", qtype: dns.TypeA},
	{name: "chain2.example.test.", qtype: dns.TypeAAAA},
	{name: "alias2.example.test.", qtype: dns.TypeA}, // CNAME to an NS host: no duplicate in additional
	{name: "cross.example.test.", qtype: dns.TypeA},
	{name: "cross.example.test.", qtype: dns.TypeMX},
	{name: "outside.example.test.", qtype: dns.TypeA},
	{name: "dangling.example.test.", qtype: dns.TypeA},
	{name: "crossdangling.example.test.", qtype: dns.TypeA},
	{name: "loop1.example.test.", qtype: dns.TypeA},
	{name: "towild.example.test.", qtype: dns.TypeA},
	{name: "todeleg.example.test.", qtype: dns.TypeA},
	{name: "foo.cwild.example.test.", qtype: dns.TypeA},
	{name: "foo.cwild.example.test.", qtype: dns.TypeMX},
	// Wildcards.
	{name: "foo.wild.example.test.", qtype: dns.TypeA},
	{name: "foo.wild.example.test.", qtype: dns.TypeAAAA},
	{name: "x.y.wild.example.test.", qtype: dns.TypeTXT},
	{name: "exists.wild.example.test.", qtype: dns.TypeA},
	{name: "exists.wild.example.test.", qtype: dns.TypeTXT},
	{name: "sub.exists.wild.example.test.", qtype: dns.TypeA},
	{name: "wild.example.test.", qtype: dns.TypeA},
	{name: "*.wild.example.test.", qtype: dns.TypeA},
	// Empty non-terminals.
	{name: "b.c.example.test.", qtype: dns.TypeA},
	{name: "c.example.test.", qtype: dns.TypeA},
	{name: "a.b.c.example.test.", qtype: dns.TypeA},
	{name: "x.b.c.example.test.", qtype: dns.TypeA},
	// Delegation.
	{name: "sub.example.test.", qtype: dns.TypeA},
	{name: "sub.example.test.", qtype: dns.TypeNS},
	{name: "sub.example.test.", qtype: dns.TypeSOA},
	{name: "sub.example.test.", qtype: dns.TypeDS},
	{name: "www.sub.example.test.", qtype: dns.TypeA},
	{name: "www.sub.example.test.", qtype: dns.TypeDS},
	{name: "ns1.sub.example.test.", qtype: dns.TypeA},
	{name: "ns1.sub.example.test.", qtype: dns.TypeAAAA},
	{name: "a.b.sub.example.test.", qtype: dns.TypeTXT},
	// ANY (minimal).
	{name: "example.test.", qtype: dns.TypeANY, anyRRset: true},
	{name: "www.example.test.", qtype: dns.TypeANY, anyRRset: true},
	{name: "anyorder.example.test.", qtype: dns.TypeANY, anyRRset: true},
	{name: "foo.wild.example.test.", qtype: dns.TypeANY, anyRRset: true},
	{name: "alias.example.test.", qtype: dns.TypeANY},
	{name: "nope.example.test.", qtype: dns.TypeANY},
	{name: "b.c.example.test.", qtype: dns.TypeANY},
	{name: "sub.example.test.", qtype: dns.TypeANY},
	{name: "ns1.example.test.", qtype: dns.TypeANY, anyRRset: true},
	// qclass ANY: answered from IN data, no AA, no authority/additional.
	{name: "www.example.test.", qtype: dns.TypeA, qclass: dns.ClassANY},
	{name: "nope.example.test.", qtype: dns.TypeA, qclass: dns.ClassANY},
	{name: "alias.example.test.", qtype: dns.TypeA, qclass: dns.ClassANY},
	{name: "sub.example.test.", qtype: dns.TypeA, qclass: dns.ClassANY},
	{name: "www.example.test.", qtype: dns.TypeANY, qclass: dns.ClassANY, anyRRset: true},
	// Other classes.
	{name: "example.test.", qtype: dns.TypeSOA, qclass: dns.ClassCHAOS},
	{name: "www.example.test.", qtype: dns.TypeA, qclass: dns.ClassCHAOS},
	{name: "authors.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS},
	{name: "version.bind.", qtype: dns.TypeA, qclass: dns.ClassCHAOS},
	{name: "www.example.test.", qtype: dns.TypeA, qclass: dns.ClassHESIOD},
	{name: "www.example.test.", qtype: dns.TypeA, qclass: dns.ClassNONE},
	{name: "www.example.test.", qtype: dns.TypeA, qclass: 5},
	{name: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, differs: chaosReason, check: checkChaosTXT},
	{name: "version.server.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, differs: chaosReason, check: checkChaosTXT},
	{name: "id.server.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, differs: chaosReason, check: checkChaosTXT},
	{name: "hostname.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, differs: chaosReason, check: checkChaosTXT},
	// Outside our zones: REFUSED, question echoed, no AA.
	{name: "www.example.net.", qtype: dns.TypeA},
	{name: ".", qtype: dns.TypeNS},
	{name: "test.", qtype: dns.TypeSOA},
	{name: "example.test.net.", qtype: dns.TypeA},
	{name: "xexample.test.", qtype: dns.TypeA},
	// Label handling: an escaped dot is part of a label (so this name is
	// under "test.", outside our zones); non-ASCII bytes are not case-folded.
	{name: "www\\.example.test.", qtype: dns.TypeA},
	{name: "W\\200W.example.test.", qtype: dns.TypeA},
	{name: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 45) + ".example.test.", qtype: dns.TypeA},
	// Zone transfers are not offered: AXFR over UDP NOTIMP, otherwise REFUSED.
	{name: "example.test.", qtype: dns.TypeAXFR},
	{name: "example.test.", qtype: dns.TypeIXFR},
	// Size: truncation and EDNS buffer sizes.
	{name: "big.example.test.", qtype: dns.TypeTXT},
	{name: "big.example.test.", qtype: dns.TypeTXT, only: []transport{tUDP512}},
	{name: "mid.example.test.", qtype: dns.TypeTXT},
	{name: "mid.example.test.", qtype: dns.TypeTXT, only: []transport{tUDP512}},
	{name: "example.test.", qtype: dns.TypeMX, only: []transport{tUDP100}},
	// huge (≈1.6 kB) does not fit NSD's own UDP limit (1232) even when the
	// client offers 4096: TC over UDP, full answer over TCP.
	{name: "huge.example.test.", qtype: dns.TypeTXT},
	{name: "huge.example.test.", qtype: dns.TypeTXT, only: []transport{tUDP4096}},
	{name: "big.example.test.", qtype: dns.TypeTXT, only: []transport{tUDP4096}},
	{name: "www.example.test.", qtype: dns.TypeA, only: []transport{tUDP100}},
	// EDNS: version 1 → BADVERS; unknown options and flags ignored.
	{name: "www.example.test.", qtype: dns.TypeA, only: []transport{tUDPEDNS, tUDPDO, tTCPDO}, edit: ednsVersion(1)},
	{name: "nope.example.test.", qtype: dns.TypeA, only: []transport{tUDPEDNS, tTCPDO}, edit: ednsVersion(1)},
	{name: "www.example.net.", qtype: dns.TypeA, only: []transport{tUDPEDNS}, edit: ednsVersion(1)},
	{name: "www.example.test.", qtype: dns.TypeA, only: []transport{tUDPEDNS}, edit: ednsVersion(255)},
	{name: "www.example.test.", qtype: dns.TypeA, only: []transport{tUDPEDNS, tTCPDO}, edit: func(m *dns.Msg) {
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: 65000, Data: []byte{0xab, 0xcd}})
	}},
	{name: "www.example.test.", qtype: dns.TypeA, only: []transport{tUDPEDNS}, edit: func(m *dns.Msg) {
		m.IsEdns0().Hdr.Ttl |= 0x0100 // an undefined EDNS flag bit (Z)
	}},
	{name: "www.example.test.", qtype: dns.TypeA, only: []transport{tUDPEDNS}, edit: func(m *dns.Msg) {
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	}},
	// Header bits a client should not set are not echoed.
	{name: "www.example.test.", qtype: dns.TypeA, only: []transport{tUDP, tTCP}, edit: func(m *dns.Msg) {
		m.AuthenticatedData = true
		m.CheckingDisabled = true
		m.Zero = true
		m.Authoritative = true
		m.RecursionAvailable = true
	}},
}

const chaosReason = "CHAOS TXT content is server-specific (NSD says \"NSD 4.6.1\"); dnslb answers like NSD (NOERROR, one CH TXT, TTL 0, no AA) or like NSD with hide-version/hide-identity (REFUSED)"

func checkChaosTXT(t *testing.T, q, got *dns.Msg) {
	t.Helper()
	if !sameQuestion(q.Question, got.Question) {
		t.Errorf("question: got %v, want %v", got.Question, q.Question)
	}
	if got.Authoritative || got.RecursionAvailable || !got.Response || got.RecursionDesired != q.RecursionDesired {
		t.Errorf("flags: got %s", flagString(got))
	}
	if (q.IsEdns0() != nil) != (got.IsEdns0() != nil) {
		t.Errorf("OPT presence: query %v, reply %v", q.IsEdns0() != nil, got.IsEdns0() != nil)
	}
	switch got.Rcode {
	case dns.RcodeRefused:
		if len(got.Answer) != 0 {
			t.Errorf("REFUSED with answers: %v", got.Answer)
		}
	case dns.RcodeSuccess:
		if len(got.Answer) != 1 {
			t.Fatalf("want one CH TXT answer, got %v", got.Answer)
		}
		rr, ok := got.Answer[0].(*dns.TXT)
		if !ok || rr.Hdr.Class != dns.ClassCHAOS || rr.Hdr.Ttl != 0 ||
			!strings.EqualFold(rr.Hdr.Name, q.Question[0].Name) {
			t.Errorf("want %s 0 CH TXT \"...\", got %v", q.Question[0].Name, got.Answer[0])
		}
		if len(got.Ns) != 0 || len(extraNoOPT(got)) != 0 {
			t.Errorf("want empty authority/additional, got %v / %v", got.Ns, got.Extra)
		}
	default:
		t.Errorf("rcode %s, want NOERROR or REFUSED", dns.RcodeToString[got.Rcode])
	}
}

// mixCase applies a deterministic 0x20 pattern: every other letter upper case.
func mixCase(name string) string {
	b := []rune(name)
	n := 0
	for i, r := range b {
		if unicode.IsLetter(r) {
			if n%2 == 1 {
				b[i] = unicode.ToUpper(r)
			} else {
				b[i] = unicode.ToLower(r)
			}
			n++
		}
	}
	return string(b)
}

func buildQuery(c diffCase, tr transport) *dns.Msg {
	m := new(dns.Msg)
	m.Id = dns.Id()
	name := c.name
	if tr.mix {
		name = mixCase(name)
	}
	class := c.qclass
	if class == 0 {
		class = dns.ClassINET
	}
	m.Question = []dns.Question{{Name: name, Qtype: c.qtype, Qclass: class}}
	m.RecursionDesired = tr.rd
	if tr.edns {
		m.SetEdns0(tr.bufsize, tr.do)
	}
	if c.edit != nil {
		c.edit(m)
	}
	return m
}

func TestDiffNSD(t *testing.T) {
	nsdAddr, lbAddr := startPair(t)
	runDiffCases(t, nsdAddr, lbAddr, diffCases)
}

// dsZones: a parent with a signed and an unsigned delegation to children
// served beside it, and a child it does not delegate.
var dsZones = []zoneFile{
	{Origin: "parent.test.", Path: "testdata/diff-ds/parent.test.zone"},
	{Origin: "kid.parent.test.", Path: "testdata/diff-ds/kid.parent.test.zone"},
	{Origin: "nods.parent.test.", Path: "testdata/diff-ds/nods.parent.test.zone"},
	{Origin: "loose.parent.test.", Path: "testdata/diff-ds/loose.parent.test.zone"},
}

// TestDiffNSDChildApex: DS at the apex of a child zone is answered from
// the parent when both are served (RFC 4035 3.1.4.1); everything else at
// the apex from the child.
func TestDiffNSDChildApex(t *testing.T) {
	requireTool(t, "nsd")
	nsdAddr := startNSD(t, dsZones)
	lbAddr := startDNSLB(t, dnslbConfig(t, dsZones))
	runDiffCases(t, nsdAddr, lbAddr, []diffCase{
		{name: "kid.parent.test.", qtype: dns.TypeDS},
		{name: "nods.parent.test.", qtype: dns.TypeDS},
		{name: "loose.parent.test.", qtype: dns.TypeDS},
		{name: "toapex.parent.test.", qtype: dns.TypeDS},
		{name: "parent.test.", qtype: dns.TypeDS},
		{name: "www.kid.parent.test.", qtype: dns.TypeDS},
		{name: "kid.parent.test.", qtype: dns.TypeSOA},
		{name: "kid.parent.test.", qtype: dns.TypeNS},
		{name: "nods.parent.test.", qtype: dns.TypeDNSKEY},
		{name: "kid.parent.test.", qtype: dns.TypeDS, qclass: dns.ClassANY},
		{name: "kid.parent.test.", qtype: dns.TypeDNSKEY},
		{name: "far.parent.test.", qtype: dns.TypeDS},
		{name: "far.parent.test.", qtype: dns.TypeA},
		{name: "nope.parent.test.", qtype: dns.TypeDS},
		{name: "nope.parent.test.", qtype: dns.TypeA},
		{name: "www.loose.parent.test.", qtype: dns.TypeDS},
	})
}

// runDiffCases sends each case over each of its transports to NSD and to
// dnslb and compares the replies.
func runDiffCases(t *testing.T, nsdAddr, lbAddr string, cases []diffCase) {
	t.Helper()
	for _, c := range cases {
		trs := transports
		if c.only != nil {
			trs = c.only
		}
		for _, tr := range trs {
			cname := fmt.Sprintf("%s/%s/%s/%s", strings.TrimSuffix(c.name, "."), typeName(c.qtype), className(c.qclass), tr.name)
			if c.edit != nil {
				cname += "/edited"
			}
			t.Run(cname, func(t *testing.T) {
				q := buildQuery(c, tr)
				want := queryRaw(t, nsdAddr, tr.net, q)
				got := queryRaw(t, lbAddr, tr.net, q)
				checkSize(t, q, tr.net, got)
				if c.differs != "" {
					t.Logf("deliberate difference: %s", c.differs)
					c.check(t, q, got.Msg)
					return
				}
				if !sameQuestion(want.Msg.Question, q.Question) && len(want.Msg.Question) != 0 {
					t.Logf("note: NSD did not echo the question exactly: %v", want.Msg.Question)
				}
				compareReplies(t, q, want.Msg, got.Msg, c.anyRRset, func(qtype uint16) *dns.Msg {
					// NSD's answer for one concrete qtype, for ANY comparisons.
					q2 := q.Copy()
					q2.Id = dns.Id()
					q2.Question[0].Qtype = qtype
					return query(t, nsdAddr, "tcp", q2)
				})
			})
		}
	}
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

func className(c uint16) string {
	if c == 0 {
		return "IN"
	}
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return fmt.Sprintf("CLASS%d", c)
}

// checkSize: a UDP reply must fit the client's limit (512 without EDNS, else
// max(512, advertised size)).
func checkSize(t *testing.T, q *dns.Msg, network string, got rawReply) {
	t.Helper()
	if network != "udp" {
		return
	}
	limit := 512
	if o := q.IsEdns0(); o != nil && int(o.UDPSize()) > limit {
		limit = int(o.UDPSize())
	}
	if len(got.Wire) > limit {
		t.Errorf("UDP reply is %d bytes, client limit %d", len(got.Wire), limit)
	}
}

func sameQuestion(a, b []dns.Question) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] { // Name compared byte-exact: 0x20 case preserved
			return false
		}
	}
	return true
}

func flagString(m *dns.Msg) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"},
		{m.RecursionAvailable, "ra"}, {m.Zero, "z"}, {m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return fmt.Sprintf("opcode=%s flags=[%s]", dns.OpcodeToString[m.Opcode], strings.Join(f, " "))
}

func extraNoOPT(m *dns.Msg) []dns.RR {
	var out []dns.RR
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

func compareSection(t *testing.T, section string, want, got []dns.RR) {
	t.Helper()
	missing, extra := dnstest.Diff(dnstest.NormSection(want), dnstest.NormSection(got))
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s section differs from NSD:\n  missing (NSD has, dnslb lacks):\n    %s\n  extra (dnslb has, NSD lacks):\n    %s",
			section, strings.Join(missing, "\n    "), strings.Join(extra, "\n    "))
	}
}

func compareOPT(t *testing.T, want, got *dns.Msg) {
	t.Helper()
	wo, go_ := want.IsEdns0(), got.IsEdns0()
	if (wo == nil) != (go_ == nil) {
		t.Errorf("OPT present: NSD %v, dnslb %v", wo != nil, go_ != nil)
		return
	}
	if wo == nil {
		return
	}
	if wo.Version() != go_.Version() {
		t.Errorf("OPT version: NSD %d, dnslb %d", wo.Version(), go_.Version())
	}
	if wo.ExtendedRcode() != go_.ExtendedRcode() {
		t.Errorf("OPT extended rcode: NSD %d, dnslb %d", wo.ExtendedRcode(), go_.ExtendedRcode())
	}
	if wf, gf := wo.Hdr.Ttl&0xffff, go_.Hdr.Ttl&0xffff; wf != gf {
		t.Errorf("OPT flags (DO/Z): NSD %#04x, dnslb %#04x", wf, gf)
	}
	if wo.UDPSize() != go_.UDPSize() {
		t.Errorf("OPT advertised UDP size: NSD %d, dnslb %d", wo.UDPSize(), go_.UDPSize())
	}
	if strings.ToLower(wo.Hdr.Name) != "." || go_.Hdr.Name != "." {
		t.Errorf("OPT owner: NSD %q, dnslb %q", wo.Hdr.Name, go_.Hdr.Name)
	}
}

func compareReplies(t *testing.T, q, want, got *dns.Msg, anyRRset bool, nsdFor func(uint16) *dns.Msg) {
	t.Helper()
	if got.Rcode != want.Rcode {
		t.Errorf("rcode: NSD %s, dnslb %s", rcodeName(want.Rcode), rcodeName(got.Rcode))
	}
	if fw, fg := flagString(want), flagString(got); fw != fg {
		t.Errorf("header: NSD %s, dnslb %s", fw, fg)
	}
	if !sameQuestion(want.Question, got.Question) {
		t.Errorf("question: NSD %v, dnslb %v (query %v)", want.Question, got.Question, q.Question)
	}
	compareOPT(t, want, got)
	compareSection(t, "authority", want.Ns, got.Ns)
	compareSection(t, "additional", extraNoOPT(want), extraNoOPT(got))
	if !anyRRset {
		compareSection(t, "answer", want.Answer, got.Answer)
		return
	}
	// ANY: exactly one RRset, one that exists at the name, equal to NSD's
	// answer for that concrete type.
	if len(want.Answer) == 0 {
		compareSection(t, "answer", want.Answer, got.Answer)
		return
	}
	if len(got.Answer) == 0 {
		t.Errorf("ANY: NSD answered %d records (%s), dnslb none", len(want.Answer), typeName(want.Answer[0].Header().Rrtype))
		return
	}
	h0 := got.Answer[0].Header()
	for _, rr := range got.Answer[1:] {
		h := rr.Header()
		if !strings.EqualFold(h.Name, h0.Name) || h.Rrtype != h0.Rrtype || h.Class != h0.Class {
			t.Errorf("ANY: dnslb answered more than one RRset (RFC 8482 minimal ANY): %v", got.Answer)
			return
		}
	}
	ref := nsdFor(h0.Rrtype)
	compareSection(t, fmt.Sprintf("answer (ANY → %s)", typeName(h0.Rrtype)), ref.Answer, got.Answer)
}

func rcodeName(r int) string {
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", r)
}

// ---------------------------------------------------------------------------
// Malformed and unusual packets (raw bytes). Each case is sent to NSD and to
// dnslb; both must behave as the table says (NSD's observed 4.6.1 behaviour;
// `lb` overrides it where dnslb deliberately differs), and each server must
// answer a normal query afterwards.

// outcome is what a server does with one raw packet.
type outcome struct {
	drop   bool // no reply at all (UDP) / connection closed without reply (TCP)
	rcode  int
	qd     uint16 // QDCOUNT of the reply (FORMERR/NOTIMP replies are header-only)
	opcode int
	answer bool // a real answer: ANCOUNT > 0
	// replyOrClose (TCP only): either the reply described here or the
	// connection closed without one. NSD closes a TCP connection that sends a
	// header-only (12-byte) message; a reply is as good for dnslb.
	replyOrClose bool
}

var (
	dropped    = outcome{drop: true}
	formErr    = outcome{rcode: dns.RcodeFormatError}
	answered   = outcome{rcode: dns.RcodeSuccess, qd: 1, answer: true}
	noData     = outcome{rcode: dns.RcodeSuccess, qd: 1}
	notImpOp   = func(op int) outcome { return outcome{rcode: dns.RcodeNotImplemented, opcode: op} }
	refusedQ   = outcome{rcode: dns.RcodeRefused, qd: 1}
	refusedNoQ = outcome{rcode: dns.RcodeRefused}
)

type rawCase struct {
	name string
	wire []byte
	want outcome  // NSD's behaviour, and dnslb's unless lb is set
	lb   *outcome // dnslb's deliberately different behaviour
	why  string   // reason for lb
}

func wireName(name string) []byte {
	var out []byte
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l == "" {
			continue
		}
		out = append(out, byte(len(l)))
		out = append(out, l...)
	}
	return append(out, 0)
}

func hdr(id, flags, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 12)
	for i, v := range []uint16{id, flags, qd, an, ns, ar} {
		b[2*i], b[2*i+1] = byte(v>>8), byte(v)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

const rawID = 0x1234

func rawCases() []rawCase {
	qWWW := cat(wireName("www.example.test."), []byte{0, 1, 0, 1})
	q := func(name string, qtype, qclass uint16) []byte {
		return cat(wireName(name), []byte{byte(qtype >> 8), byte(qtype), byte(qclass >> 8), byte(qclass)})
	}
	h := func(flags, qd, an, ns, ar uint16) []byte { return hdr(rawID, flags, qd, an, ns, ar) }
	const rd = 0x0100
	opt := []byte{0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0} // root OPT, 1232, no options
	notImpLB := outcome{rcode: dns.RcodeNotImplemented, opcode: dns.OpcodeNotify}
	return []rawCase{
		{name: "empty", wire: []byte{}, want: dropped},
		{name: "1 byte", wire: []byte{0}, want: dropped},
		{name: "11 bytes", wire: h(rd, 1, 0, 0, 0)[:11], want: dropped},
		{name: "QR=1 (a response)", wire: cat(h(0x8100, 1, 0, 0, 0), qWWW), want: dropped},
		{name: "30 x 0xff (QR set)", wire: []byte(strings.Repeat("\xff", 30)), want: dropped},
		{name: "header only QDCOUNT=1", wire: h(rd, 1, 0, 0, 0), want: formErr},
		{name: "header only QDCOUNT=0", wire: h(rd, 0, 0, 0, 0), want: formErr},
		{name: "QDCOUNT=0 with a question", wire: cat(h(rd, 0, 0, 0, 0), qWWW), want: formErr},
		{name: "QDCOUNT=2 two questions", wire: cat(h(rd, 2, 0, 0, 0), qWWW, qWWW), want: formErr},
		{name: "QDCOUNT=2 one question", wire: cat(h(rd, 2, 0, 0, 0), qWWW), want: formErr},
		{name: "ANCOUNT=1 without RR", wire: cat(h(rd, 1, 1, 0, 0), qWWW), want: formErr},
		{name: "ANCOUNT=1 with RR", wire: cat(h(rd, 1, 1, 0, 0), qWWW,
			[]byte{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4}), want: formErr},
		{name: "NSCOUNT=1 without RR", wire: cat(h(rd, 1, 0, 1, 0), qWWW), want: formErr},
		{name: "ARCOUNT=1 garbage RR", wire: cat(h(rd, 1, 0, 0, 1), qWWW, []byte{0xff, 0xff, 0xff}), want: formErr},
		{name: "question without type", wire: cat(h(rd, 1, 0, 0, 0), wireName("www.example.test.")), want: formErr},
		{name: "question half name", wire: cat(h(rd, 1, 0, 0, 0), wireName("www.example.test.")[:6]), want: formErr},
		{name: "question type without class", wire: cat(h(rd, 1, 0, 0, 0), wireName("www.example.test."), []byte{0, 1}), want: formErr},
		{name: "label of 64 bytes", wire: cat(h(rd, 1, 0, 0, 0), []byte{64}, []byte(strings.Repeat("a", 64)), []byte{0, 0, 1, 0, 1}), want: formErr},
		{name: "name over 255 bytes", wire: cat(h(rd, 1, 0, 0, 0), []byte(strings.Repeat("\x3f"+strings.Repeat("a", 63), 4)), []byte{0, 0, 1, 0, 1}), want: formErr},
		{name: "compression pointer loop", wire: cat(h(rd, 1, 0, 0, 0), []byte{0xc0, 0x0c, 0, 1, 0, 1}), want: formErr},
		{name: "compression pointer into header", wire: cat(h(rd, 1, 0, 0, 0), []byte{0xc0, 0x00, 0, 1, 0, 1}), want: formErr},
		{name: "compression pointer forward", wire: cat(h(rd, 1, 0, 0, 0), []byte{0xc0, 0x12, 0, 1, 0, 1}, wireName("www.example.test.")), want: formErr},
		{name: "extended label type 0x40", wire: cat(h(rd, 1, 0, 0, 0), []byte{0x41, 0, 0, 1, 0, 1}), want: formErr},
		{name: "RCODE=3 in a query", wire: cat(h(rd|3, 1, 0, 0, 0), qWWW), want: formErr},
		{name: "20 bytes 00 01 02 ...", wire: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, want: formErr},
		{name: "two OPT RRs", wire: cat(h(rd, 1, 0, 0, 2), qWWW, opt, opt), want: formErr},
		{name: "OPT owner not root", wire: cat(h(rd, 1, 0, 0, 1), qWWW, []byte{1, 'a'}, opt), want: formErr},
		{name: "OPT rdlength past end", wire: cat(h(rd, 1, 0, 0, 1), qWWW, opt[:9], []byte{0, 9, 0}), want: formErr},
		{name: "OPT option overruns rdata", wire: cat(h(rd, 1, 0, 0, 1), qWWW, opt[:9], []byte{0, 4, 0xfd, 0xe8, 0, 9}), want: formErr},
		{name: "trailing garbage after question", wire: cat(h(rd, 1, 0, 0, 0), qWWW, []byte{0xde, 0xad, 0xbe, 0xef}), want: answered},
		{name: "TC set in query", wire: cat(h(rd|0x0200, 1, 0, 0, 0), qWWW), want: answered},
		{name: "Z AD CD RA AA set in query", wire: cat(h(rd|0x0400|0x0080|0x0040|0x0020|0x0010, 1, 0, 0, 0), qWWW), want: answered},
		{name: "opcode IQUERY", wire: cat(h(1<<11|rd, 1, 0, 0, 0), qWWW), want: notImpOp(1)},
		{name: "opcode STATUS", wire: cat(h(2<<11|rd, 1, 0, 0, 0), qWWW), want: notImpOp(2)},
		{name: "opcode STATUS no question", wire: h(2<<11, 0, 0, 0, 0), want: notImpOp(2)},
		{name: "opcode 3", wire: cat(h(3<<11|rd, 1, 0, 0, 0), qWWW), want: notImpOp(3)},
		{name: "opcode UPDATE", wire: cat(h(5<<11, 1, 0, 0, 0), q("example.test.", dns.TypeSOA, dns.ClassINET)), want: notImpOp(5)},
		{name: "opcode 6", wire: cat(h(6<<11, 1, 0, 0, 0), qWWW), want: notImpOp(6)},
		{name: "opcode 15", wire: cat(h(15<<11, 1, 0, 0, 0), qWWW), want: notImpOp(15)},
		{name: "opcode NOTIFY for a zone", wire: cat(h(4<<11|0x0400, 1, 0, 0, 0), q("example.test.", dns.TypeSOA, dns.ClassINET)),
			want: outcome{rcode: dns.RcodeRefused, opcode: 4}, lb: &notImpLB,
			why: "NSD handles NOTIFY (REFUSED: not a secondary); dnslb has no secondary zones and answers NOTIMP to every opcode but QUERY (issue 2)"},
		{name: "qclass 0", wire: cat(h(rd, 1, 0, 0, 0), q("www.example.test.", dns.TypeA, 0)), want: refusedNoQ},
		{name: "qclass HS", wire: cat(h(rd, 1, 0, 0, 0), q("www.example.test.", dns.TypeA, dns.ClassHESIOD)), want: refusedNoQ},
		{name: "root qname", wire: cat(h(rd, 1, 0, 0, 0), q(".", dns.TypeA, dns.ClassINET)), want: refusedQ},
		{name: "qtype 0", wire: cat(h(rd, 1, 0, 0, 0), q("www.example.test.", 0, dns.ClassINET)), want: noData},
		{name: "qtype AXFR over UDP", wire: cat(h(rd, 1, 0, 0, 0), q("example.test.", dns.TypeAXFR, dns.ClassINET)),
			want: outcome{rcode: dns.RcodeNotImplemented, qd: 1}},
		{name: "qtype IXFR over UDP", wire: cat(h(rd, 1, 0, 0, 0), q("example.test.", dns.TypeIXFR, dns.ClassINET)), want: refusedQ},
		{name: "EDNS version 1 (BADVERS)", wire: cat(h(rd, 1, 0, 0, 1), qWWW, opt[:5], []byte{0, 1, 0, 0, 0, 0}),
			want: outcome{rcode: dns.RcodeSuccess, qd: 1}}, // header rcode 0; OPT ext-rcode 1 checked in TestDiffNSD
		// Counts the message does not hold (issue 12: ARCOUNT=65535 cost
		// dnslb 65,535 rounds and got NOERROR).
		{name: "ARCOUNT=65535 no records", wire: cat(h(rd, 1, 0, 0, 65535), qWWW), want: formErr},
		{name: "ARCOUNT=65535 one OPT", wire: cat(h(rd, 1, 0, 0, 65535), qWWW, opt), want: formErr},
		{name: "ARCOUNT=2 one OPT", wire: cat(h(rd, 1, 0, 0, 2), qWWW, opt), want: formErr},
		{name: "ANCOUNT=65535", wire: cat(h(rd, 1, 65535, 0, 0), qWWW), want: formErr},
		{name: "OPT cut short", wire: cat(h(rd, 1, 0, 0, 1), qWWW, opt[:5]), want: formErr},
		{name: "OPT of one byte", wire: cat(h(rd, 1, 0, 0, 1), qWWW, opt[:1]), want: formErr},
		{name: "OPT then trailing garbage", wire: cat(h(rd, 1, 0, 0, 1), qWWW, opt, []byte{0xde, 0xad, 0xbe, 0xef}), want: answered},
		{name: "OPT beyond ARCOUNT=0", wire: cat(h(rd, 1, 0, 0, 0), qWWW, opt), want: answered},
		// NSD takes only OPT and TSIG in a query's additional section.
		{name: "A record in additional", wire: cat(h(rd, 1, 0, 0, 1), qWWW,
			[]byte{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4}), want: formErr},
		{name: "A record and OPT in additional", wire: cat(h(rd, 1, 0, 0, 2), qWWW,
			[]byte{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4}, opt), want: formErr},
		{name: "empty record in additional", wire: cat(h(rd, 1, 0, 0, 1), qWWW, make([]byte, 11)), want: formErr},
	}
}

// hdrInfo decodes a reply header.
type hdrInfo struct {
	id             uint16
	qr, aa, tc     bool
	opcode, rcode  int
	qd, an, ns, ar uint16
}

func decodeHdr(b []byte) hdrInfo {
	u := func(i int) uint16 { return uint16(b[i])<<8 | uint16(b[i+1]) }
	f := u(2)
	return hdrInfo{id: u(0), qr: f&0x8000 != 0, aa: f&0x0400 != 0, tc: f&0x0200 != 0,
		opcode: int(f>>11) & 0xf, rcode: int(f & 0xf), qd: u(4), an: u(6), ns: u(8), ar: u(10)}
}

// checkOutcome asserts reply (nil = nothing came back) against want.
func checkOutcome(t *testing.T, server string, c rawCase, reply []byte, want outcome) {
	t.Helper()
	if want.drop {
		if reply != nil {
			t.Errorf("%s: want the packet dropped, got a %d-byte reply %+v", server, len(reply), decodeHdr(pad12(reply)))
		}
		return
	}
	if reply == nil {
		if want.replyOrClose {
			return
		}
		t.Errorf("%s: want %s reply, got none (dropped)", server, rcodeName(want.rcode))
		return
	}
	if len(reply) < 12 {
		t.Errorf("%s: reply shorter than a header: %x", server, reply)
		return
	}
	h := decodeHdr(reply)
	if len(c.wire) >= 2 && h.id != decodeHdr(pad12(c.wire)).id {
		t.Errorf("%s: reply id %#04x, query id %#04x", server, h.id, decodeHdr(pad12(c.wire)).id)
	}
	if !h.qr {
		t.Errorf("%s: QR not set in reply", server)
	}
	if h.rcode != want.rcode {
		t.Errorf("%s: rcode %s, want %s (reply header %+v)", server, rcodeName(h.rcode), rcodeName(want.rcode), h)
	}
	if h.opcode != want.opcode {
		t.Errorf("%s: opcode %d, want %d", server, h.opcode, want.opcode)
	}
	if h.qd != want.qd {
		t.Errorf("%s: QDCOUNT %d, want %d", server, h.qd, want.qd)
	}
	if want.answer && h.an == 0 {
		t.Errorf("%s: want an answer, ANCOUNT 0 (%+v)", server, h)
	}
	if want.rcode == dns.RcodeFormatError || want.rcode == dns.RcodeNotImplemented {
		if h.an+h.ns+h.ar != 0 || len(reply) != 12+len(questionBytes(reply, h.qd)) {
			t.Errorf("%s: %s reply should be header-only (+question if QDCOUNT=1), got %+v, %d bytes", server, rcodeName(want.rcode), h, len(reply))
		}
	}
	if h.tc {
		t.Errorf("%s: TC set in reply", server)
	}
	if want.answer {
		m := new(dns.Msg)
		if err := m.Unpack(reply); err != nil {
			t.Errorf("%s: unpack: %v", server, err)
		} else if m.AuthenticatedData || m.CheckingDisabled || m.Zero || m.RecursionAvailable {
			t.Errorf("%s: query header bits echoed: %s", server, flagString(m))
		}
	}
}

func pad12(b []byte) []byte {
	if len(b) >= 12 {
		return b
	}
	return append(append([]byte{}, b...), make([]byte, 12-len(b))...)
}

// questionBytes returns the wire bytes of the question section (qd 0 or 1).
func questionBytes(msg []byte, qd uint16) []byte {
	if qd == 0 {
		return nil
	}
	i := 12
	for i < len(msg) && msg[i] != 0 {
		if msg[i]&0xc0 == 0xc0 {
			i++
			break
		}
		i += int(msg[i]) + 1
	}
	i += 1 + 4
	if i > len(msg) {
		i = len(msg)
	}
	return msg[12:i]
}

// mustAnswerNormal: the server still answers a normal query.
func mustAnswerNormal(t *testing.T, server, addr, network string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	r := query(t, addr, network, m)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Fatalf("%s: normal query over %s after the bad packet: rcode %s, %d answers", server, network, rcodeName(r.Rcode), len(r.Answer))
	}
}

func TestMalformedUDP(t *testing.T) {
	nsdAddr, lbAddr := startPair(t)
	for _, c := range rawCases() {
		t.Run(c.name, func(t *testing.T) {
			// A reply, when one comes, comes within milliseconds on loopback;
			// the timeout only bounds the wait for a drop.
			const wait = 500 * time.Millisecond
			checkOutcome(t, "NSD (reference)", c, sendRaw(t, nsdAddr, "udp", c.wire, wait), c.want)
			want := c.want
			if c.lb != nil {
				t.Logf("deliberate difference: %s", c.why)
				want = *c.lb
			}
			checkOutcome(t, "dnslb", c, sendRaw(t, lbAddr, "udp", c.wire, wait), want)
			mustAnswerNormal(t, "NSD", nsdAddr, "udp")
			mustAnswerNormal(t, "dnslb", lbAddr, "udp")
		})
	}
}

// TestMalformedTCP sends each case as one framed TCP message on a fresh
// connection; a FORMERR/NOTIMP/REFUSED reply leaves the connection usable
// (a normal query on it is answered); NSD closes the connection for
// packets it drops and for header-only or very short messages.
func TestMalformedTCP(t *testing.T) {
	nsdAddr, lbAddr := startPair(t)
	tcpOnly := map[string]outcome{
		// NSD closes the connection without a reply for these.
		"empty":    dropped,
		"1 byte":   dropped,
		"11 bytes": dropped,
		// Zone transfers are refused over TCP.
		"qtype AXFR over UDP": refusedQ,
	}
	for _, c := range rawCases() {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			if o, ok := tcpOnly[c.name]; ok {
				want = o
			}
			if len(c.wire) == 12 && !want.drop {
				want.replyOrClose = true
			}
			for _, srv := range []struct{ name, addr string }{{"NSD (reference)", nsdAddr}, {"dnslb", lbAddr}} {
				w := want
				if srv.name == "dnslb" && c.lb != nil {
					t.Logf("deliberate difference: %s", c.why)
					w = *c.lb
				}
				if srv.name != "dnslb" && w.replyOrClose {
					w = dropped // NSD: closes
				}
				tcpRawCase(t, srv.name, srv.addr, c, w)
				mustAnswerNormal(t, srv.name, srv.addr, "tcp")
			}
		})
	}
}

func tcpRawCase(t *testing.T, server, addr string, c rawCase, want outcome) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, queryTimeout)
	if err != nil {
		t.Fatalf("%s: dial: %v", server, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(queryTimeout))
	if err := dnstest.WriteTCP(conn, c.wire); err != nil {
		t.Fatalf("%s: write: %v", server, err)
	}
	reply, err := dnstest.ReadTCP(conn)
	if err != nil && !errors.Is(err, dnstest.ErrClosed) && !errors.Is(err, dnstest.ErrNoReply) {
		t.Fatalf("%s: read: %v", server, err)
	}
	if errors.Is(err, dnstest.ErrNoReply) && want.drop {
		// Neither a reply nor a close within the deadline: a dropped packet
		// must not leave the connection hanging forever, but NSD keeps it
		// open until its idle timeout too; accept.
		return
	}
	checkOutcome(t, server, c, reply, want)
	if reply == nil {
		return
	}
	// The connection stays usable after an error reply.
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	wire, _ := m.Pack()
	conn.SetDeadline(time.Now().Add(queryTimeout))
	if err := dnstest.WriteTCP(conn, wire); err != nil {
		t.Errorf("%s: connection unusable after the %s reply: write: %v", server, rcodeName(decodeHdr(reply).rcode), err)
		return
	}
	r2, err := dnstest.ReadTCP(conn)
	if err != nil {
		t.Errorf("%s: connection unusable after the %s reply: %v", server, rcodeName(decodeHdr(reply).rcode), err)
		return
	}
	if h := decodeHdr(r2); h.id != m.Id || h.rcode != 0 || h.an != 2 {
		t.Errorf("%s: second query on the connection: %+v", server, h)
	}
}

// TestMalformedTCPPipelineAndStall: several queries written at once on one TCP
// connection are all answered; a client that stalls mid-message does not
// block other clients.
func TestMalformedTCPPipelineAndStall(t *testing.T) {
	nsdAddr, lbAddr := startPair(t)
	for _, srv := range []struct{ name, addr string }{{"NSD (reference)", nsdAddr}, {"dnslb", lbAddr}} {
		// A stalled client: half a length prefix, then nothing.
		stall, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer stall.Close()
		if _, err := stall.Write([]byte{0}); err != nil {
			t.Fatal(err)
		}
		// A stalled client: a length prefix promising more than is sent.
		stall2, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer stall2.Close()
		if _, err := stall2.Write([]byte{0, 40, 0x12, 0x34, 1}); err != nil {
			t.Fatal(err)
		}

		conn, err := net.DialTimeout("tcp", srv.addr, queryTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * queryTimeout))
		var batch []byte
		names := []string{"www.example.test.", "nope.example.test.", "alias.example.test.", "big.example.test."}
		for i, n := range names {
			m := new(dns.Msg)
			m.SetQuestion(n, dns.TypeA)
			if n == "big.example.test." {
				m.Question[0].Qtype = dns.TypeTXT
			}
			m.Id = uint16(100 + i)
			w, _ := m.Pack()
			batch = append(batch, byte(len(w)>>8), byte(len(w)))
			batch = append(batch, w...)
		}
		if _, err := conn.Write(batch); err != nil {
			t.Fatal(err)
		}
		seen := map[uint16]bool{}
		for range names {
			r, err := dnstest.ReadTCP(conn)
			if err != nil {
				t.Fatalf("%s: pipelined reply %d: %v", srv.name, len(seen)+1, err)
			}
			m := new(dns.Msg)
			if err := m.Unpack(r); err != nil {
				t.Fatalf("%s: unpack: %v", srv.name, err)
			}
			if m.Truncated {
				t.Errorf("%s: TC over TCP for %v", srv.name, m.Question)
			}
			seen[m.Id] = true
		}
		if len(seen) != len(names) {
			t.Errorf("%s: pipelined replies for ids %v, want 100..%d", srv.name, seen, 100+len(names)-1)
		}
		mustAnswerNormal(t, srv.name, srv.addr, "udp")
		mustAnswerNormal(t, srv.name, srv.addr, "tcp")
	}
}
