package integration

// TSIG on queries (RFC 8945), against NSD with the same keys and with dig
// -y. Where NSD 4.6 departs from the RFC, the case says so (`differs`) and
// checks dnslb's reply against the RFC instead.

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tsigKey is a key both servers hold.
type tsigKey struct {
	name, alg, nsdAlg, secret string
}

var tsigKeys = []tsigKey{
	{"xfr-key.", dns.HmacSHA256, "hmac-sha256", base64.StdEncoding.EncodeToString([]byte("integration secret for sha256!!!"))},
	{"sha512-key.", dns.HmacSHA512, "hmac-sha512", base64.StdEncoding.EncodeToString([]byte("integration secret for the sha512 key, 64 bytes long; more or less"))},
	{"sha1-key.", dns.HmacSHA1, "hmac-sha1", base64.StdEncoding.EncodeToString([]byte("integration secret for sha1"))},
	{"md5-key.", dns.HmacMD5, "hmac-md5", base64.StdEncoding.EncodeToString([]byte("integration secret for md5"))},
}

// startTSIGPair starts NSD and dnslb on the diff zones with tsigKeys.
func startTSIGPair(t *testing.T) (nsdAddr, lbAddr string) {
	t.Helper()
	requireTool(t, "nsd")
	var nsdKeys, lbKeys strings.Builder
	lbKeys.WriteString("tsig:\n  keys:\n")
	for _, k := range tsigKeys {
		fmt.Fprintf(&nsdKeys, "key:\n    name: %q\n    algorithm: %s\n    secret: %q\n", k.name, k.nsdAlg, k.secret)
		fmt.Fprintf(&lbKeys, "    - {name: %s, algorithm: %s, secret: %q}\n", k.name, k.nsdAlg, k.secret)
	}
	nsdAddr = startNSDWith(t, diffZones, nsdKeys.String())
	lbAddr = startDNSLB(t, dnslbConfig(t, diffZones)+lbKeys.String())
	return nsdAddr, lbAddr
}

// tsigCase is a signed query and what both servers must do with it.
type tsigCase struct {
	name  string
	qname string
	qtype uint16
	edns  bool
	key   tsigKey
	// secret signs the query instead of the key's; skew moves its time.
	secret string
	skew   time.Duration
	alg    string              // signs with another algorithm than the key's
	edit   func(*dns.TSIG)     // changes the TSIG after signing
	wire   func([]byte) []byte // changes the signed message
	// differs: why dnslb deliberately differs from NSD; want is then
	// dnslb's reply.
	differs string
	want    tsigOutcome
}

// tsigOutcome is what a reply to a signed query says.
type tsigOutcome struct {
	rcode    int
	question int
	hasTSIG  bool
	tsigErr  uint16
	signed   bool // a MAC in the reply's TSIG
	opt      bool
}

func outcomeOf(m *dns.Msg) tsigOutcome {
	o := tsigOutcome{rcode: m.Rcode, question: len(m.Question), opt: m.IsEdns0() != nil}
	if ts := m.IsTsig(); ts != nil {
		o.hasTSIG, o.tsigErr, o.signed = true, ts.Error, ts.MACSize > 0
	}
	return o
}

func (o tsigOutcome) String() string {
	s := fmt.Sprintf("%s question=%d opt=%v", rcodeName(o.rcode), o.question, o.opt)
	if o.hasTSIG {
		s += fmt.Sprintf(" tsig error=%s signed=%v", rcodeName(int(o.tsigErr)), o.signed)
	}
	return s
}

func (c tsigCase) query(t *testing.T) (wire []byte, mac string, q *dns.Msg) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(mixCase(c.qname), c.qtype)
	if c.edns {
		m.SetEdns0(1232, false)
	}
	alg := c.key.alg
	if c.alg != "" {
		alg = c.alg
	}
	m.SetTsig(c.key.name, alg, 300, time.Now().Add(c.skew).Unix())
	secret := c.key.secret
	if c.secret != "" {
		secret = c.secret
	}
	wire, mac, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if c.edit != nil {
		var s dns.Msg
		if err := s.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		c.edit(s.Extra[len(s.Extra)-1].(*dns.TSIG))
		if wire, err = s.Pack(); err != nil {
			t.Fatal(err)
		}
	}
	if c.wire != nil {
		wire = c.wire(wire)
	}
	q = new(dns.Msg)
	if err := q.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	return wire, mac, q
}

// withoutTSIG is m without its TSIG record, for comparing the sections.
func withoutTSIG(m *dns.Msg) *dns.Msg {
	c := m.Copy()
	if c.IsTsig() != nil {
		c.Extra = c.Extra[:len(c.Extra)-1]
	}
	return c
}

func TestDiffNSDTSIG(t *testing.T) {
	nsdAddr, lbAddr := startTSIGPair(t)
	sha256, sha512 := tsigKeys[0], tsigKeys[1]
	wrong := base64.StdEncoding.EncodeToString([]byte("not the secret the servers hold!"))
	cases := []tsigCase{
		{name: "valid", qname: "www.example.test.", qtype: dns.TypeA, key: sha256},
		{name: "valid with EDNS", qname: "www.example.test.", qtype: dns.TypeA, edns: true, key: sha256},
		{name: "valid hmac-sha512", qname: "alias.example.test.", qtype: dns.TypeA, key: sha512},
		{name: "valid hmac-sha1", qname: "example.test.", qtype: dns.TypeMX, key: tsigKeys[2]},
		{name: "valid, key name in capitals", qname: "www.example.test.", qtype: dns.TypeA,
			key: tsigKey{"XFR-KEY.", sha256.alg, sha256.nsdAlg, sha256.secret}},
		{name: "valid NXDOMAIN", qname: "nope.example.test.", qtype: dns.TypeA, key: sha256},
		{name: "valid REFUSED", qname: "www.example.net.", qtype: dns.TypeA, key: sha256},
		{name: "valid referral", qname: "www.sub.example.test.", qtype: dns.TypeA, key: sha256},
		{name: "valid, truncated over UDP", qname: "big.example.test.", qtype: dns.TypeTXT, key: sha256},
		{name: "valid, trailing bytes after the TSIG", qname: "www.example.test.", qtype: dns.TypeA, key: sha256,
			wire: func(b []byte) []byte { return append(b, 0xde, 0xad) }},
		{name: "unknown key", qname: "www.example.test.", qtype: dns.TypeA, key: tsigKey{"nokey.", sha256.alg, "", sha256.secret}},
		{name: "unknown key with EDNS", qname: "www.example.test.", qtype: dns.TypeA, edns: true, key: tsigKey{"nokey.", sha256.alg, "", sha256.secret}},
		{name: "unknown algorithm", qname: "www.example.test.", qtype: dns.TypeA, key: sha256,
			edit: func(ts *dns.TSIG) { ts.Algorithm = "hmac-unknown." }},
		{name: "bad MAC", qname: "www.example.test.", qtype: dns.TypeA, key: sha256, secret: wrong},
		{name: "bad MAC with EDNS", qname: "www.example.test.", qtype: dns.TypeA, edns: true, key: sha256, secret: wrong},
		{name: "MAC over another ID", qname: "www.example.test.", qtype: dns.TypeA, key: sha256,
			edit: func(ts *dns.TSIG) { ts.OrigId++ }},
		{name: "TSIG class IN", qname: "www.example.test.", qtype: dns.TypeA, key: sha256,
			edit: func(ts *dns.TSIG) { ts.Hdr.Class = dns.ClassINET }},
		{name: "TSIG not the last record", qname: "www.example.test.", qtype: dns.TypeA, key: sha256,
			wire: func(b []byte) []byte {
				b = append(b, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0) // an OPT after it
				binary.BigEndian.PutUint16(b[10:], 2)
				return b
			}},
		{name: "time an hour ago", qname: "www.example.test.", qtype: dns.TypeA, key: sha256, skew: -time.Hour,
			differs: "RFC 8945 5.2.3: a BADTIME reply MUST be signed; NSD 4.6 sends it unsigned",
			want:    tsigOutcome{rcode: dns.RcodeNotAuth, hasTSIG: true, tsigErr: dns.RcodeBadTime, signed: true}},
		{name: "time an hour ahead, with EDNS", qname: "www.example.test.", qtype: dns.TypeA, edns: true, key: sha256, skew: time.Hour,
			differs: "RFC 8945 5.2.3: a BADTIME reply MUST be signed; NSD 4.6 sends it unsigned",
			want:    tsigOutcome{rcode: dns.RcodeNotAuth, hasTSIG: true, tsigErr: dns.RcodeBadTime, signed: true, opt: true}},
		{name: "known name, other algorithm", qname: "www.example.test.", qtype: dns.TypeA, key: sha256, alg: dns.HmacSHA512,
			differs: "RFC 8945 5.2.1: a key is its name and algorithm, so BADKEY; NSD 4.6 takes the key by name and verifies (and signs) with the algorithm the query names",
			want:    tsigOutcome{rcode: dns.RcodeNotAuth, hasTSIG: true, tsigErr: dns.RcodeBadKey}},
		{name: "MAC truncated to half", qname: "www.example.test.", qtype: dns.TypeA, key: sha256,
			edit:    func(ts *dns.TSIG) { ts.MAC, ts.MACSize = ts.MAC[:32], 16 },
			differs: "RFC 8945 5.2.2.1: a truncated MAC under local policy is BADTRUNC, signed (dnslb takes full MACs); NSD 4.6 answers BADSIG",
			want:    tsigOutcome{rcode: dns.RcodeNotAuth, hasTSIG: true, tsigErr: dns.RcodeBadTrunc, signed: true}},
		{name: "MAC of 5 bytes", qname: "www.example.test.", qtype: dns.TypeA, key: sha256,
			edit:    func(ts *dns.TSIG) { ts.MAC, ts.MACSize = ts.MAC[:10], 5 },
			differs: "RFC 8945 5.2.2.1: a MAC shorter than max(10, half the hash) is FORMERR; NSD 4.6 answers BADSIG",
			want:    tsigOutcome{rcode: dns.RcodeFormatError}},
	}
	for _, c := range cases {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(c.name+"/"+network, func(t *testing.T) {
				wire, mac, q := c.query(t)
				nsd := sendRaw(t, nsdAddr, network, wire, queryTimeout)
				lb := sendRaw(t, lbAddr, network, wire, queryTimeout)
				var want, got dns.Msg
				if err := want.Unpack(nsd); err != nil {
					t.Fatalf("NSD reply: %v", err)
				}
				if err := got.Unpack(lb); err != nil {
					t.Fatalf("dnslb reply %x: %v", lb, err)
				}
				if got.Id != q.Id {
					t.Errorf("reply ID %#x, query %#x", got.Id, q.Id)
				}
				wo, gotO := outcomeOf(&want), outcomeOf(&got)
				if c.differs != "" {
					t.Logf("deliberate difference: %s (NSD: %s)", c.differs, wo)
					wo = c.want
				}
				if gotO != wo {
					t.Fatalf("dnslb: %s\nwant   %s\n%v", gotO, wo, &got)
				}
				if fw, fg := flagString(&want), flagString(&got); c.differs == "" && fw != fg {
					t.Errorf("header: NSD %s, dnslb %s", fw, fg)
				}
				if ts, qts := got.IsTsig(), q.IsTsig(); ts != nil && qts != nil {
					if !strings.EqualFold(ts.Hdr.Name, qts.Hdr.Name) || ts.Algorithm != strings.ToLower(qts.Algorithm) && c.edit == nil || ts.OrigId != q.Id {
						t.Errorf("reply TSIG %v for query TSIG %v", ts, qts)
					}
				}
				if gotO.signed && gotO.rcode != dns.RcodeNotAuth {
					// Both signed replies verify, and only the TSIG sets
					// them apart from an unsigned query's.
					if err := dns.TsigVerify(append([]byte(nil), nsd...), c.key.secret, mac, false); err != nil {
						t.Errorf("NSD's reply does not verify: %v", err)
					}
					if err := dns.TsigVerify(append([]byte(nil), lb...), c.key.secret, mac, false); err != nil {
						t.Errorf("dnslb's reply does not verify: %v", err)
					}
					compareReplies(t, q, withoutTSIG(&want), withoutTSIG(&got), false, nil)
				}
			})
		}
	}
}

// TestTSIGDig: dig -y signs and verifies, for every algorithm, hmac-md5
// included (which miekg/dns no longer does); with a wrong key or secret
// dnslb's NOTAUTH reads as NSD's.
func TestTSIGDig(t *testing.T) {
	nsdAddr, lbAddr := startTSIGPair(t)
	const unverified = "WARNING -- Some TSIG could not be validated"
	for _, k := range tsigKeys {
		for _, tcp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tcp=%v", k.nsdAlg, tcp), func(t *testing.T) {
				args := []string{"-y", k.nsdAlg + ":" + k.name + ":" + k.secret, "www.example.test", "A"}
				if tcp {
					args = append(args, "+tcp")
				}
				want, got := runDig(t, nsdAddr, args...), runDig(t, lbAddr, args...)
				if strings.Contains(got.raw, unverified) || strings.Contains(got.raw, "Couldn't verify") || !strings.Contains(got.raw, "TSIG PSEUDOSECTION") {
					t.Fatalf("dig did not verify dnslb's reply:\n%s", got.raw)
				}
				compareDig(t, want, got, false)
			})
		}
	}
	sha256 := tsigKeys[0]
	for _, tc := range []struct{ name, key, tsigErr string }{
		{"unknown key", "hmac-sha256:nokey.:" + sha256.secret, "BADKEY"},
		{"bad secret", "hmac-sha256:xfr-key.:" + base64.StdEncoding.EncodeToString([]byte("not the secret the servers hold!")), "BADSIG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, got := runDig(t, nsdAddr, "-y", tc.key, "www.example.test", "A"), runDig(t, lbAddr, "-y", tc.key, "www.example.test", "A")
			if got.status != "NOTAUTH" || got.status != want.status {
				t.Errorf("status: NSD %s, dnslb %s", want.status, got.status)
			}
			for _, r := range []digResult{want, got} {
				if !strings.Contains(r.raw, " "+tc.tsigErr+" ") {
					t.Errorf("want TSIG error %s:\n%s", tc.tsigErr, r.raw)
				}
			}
		})
	}
}
