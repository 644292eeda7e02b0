package answer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/miekg/dns"
)

// The test keys. Their secrets must never show up in an error.
var (
	testSecret    = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	testSecret512 = base64.StdEncoding.EncodeToString([]byte("a secret for the hmac-sha512 key, long enough"))
	wrongSecret   = base64.StdEncoding.EncodeToString([]byte("not the secret the server holds!"))
)

func tsigView(t testing.TB) *View {
	t.Helper()
	v := testView(t)
	v.TSIG = NewKeyring()
	for _, k := range []struct{ name, alg, secret string }{
		{"xfr-key.", "hmac-sha256", testSecret},
		{"Other-Key", "HMAC-SHA512.", testSecret512},
		{"md5-key.", "hmac-md5", testSecret},
		{"sha1-key.", "hmac-sha1", testSecret},
	} {
		secret, err := base64.StdEncoding.DecodeString(k.secret)
		if err != nil {
			t.Fatal(err)
		}
		v.TSIG.Add(k.name, k.alg, secret)
	}
	return v
}

func replyTSIG(t *testing.T, reply *dns.Msg) *dns.TSIG {
	t.Helper()
	ts := reply.IsTsig()
	if ts == nil {
		t.Fatalf("reply has no TSIG as its last record:\n%v", reply)
	}
	return ts
}

// TestTSIGQueries: signed queries are answered and their replies signed
// (checked by miekg/dns's TsigVerify); queries that fail get NOTAUTH and
// the TSIG error RFC 8945 5.2 names.
func TestTSIGQueries(t *testing.T) {
	auth := NewAuthority(tsigView(t), 0, nil)
	now := time.Now()
	t.Run("valid", func(t *testing.T) {
		for _, tc := range []struct {
			key, alg, secret string
			edns, tcp        bool
			qname            string
			qtype            uint16
		}{
			{key: "xfr-key.", alg: dns.HmacSHA256, secret: testSecret, qname: "WwW.Example.Test.", qtype: dns.TypeA},
			{key: "xfr-key.", alg: dns.HmacSHA256, secret: testSecret, edns: true, qname: "www.example.test.", qtype: dns.TypeA},
			{key: "xfr-key.", alg: dns.HmacSHA256, secret: testSecret, tcp: true, qname: "big.example.test.", qtype: dns.TypeTXT},
			{key: "XFR-Key.", alg: dns.HmacSHA256, secret: testSecret, qname: "nope.example.test.", qtype: dns.TypeA},
			{key: "other-key.", alg: dns.HmacSHA512, secret: testSecret512, qname: "www.example.net.", qtype: dns.TypeA},
			{key: "sha1-key.", alg: dns.HmacSHA1, secret: testSecret, qname: "alias.example.test.", qtype: dns.TypeA},
		} {
			t.Run(fmt.Sprintf("%s/%s/%s/edns=%v/tcp=%v", tc.key, tc.qname, dns.TypeToString[tc.qtype], tc.edns, tc.tcp), func(t *testing.T) {
				q := dnstest.SignQuery(t, tc.qname, tc.qtype, tc.edns, tc.key, tc.alg, tc.secret, now, nil)
				out := auth.ServeDNS(&Request{Wire: q.Wire, TCP: tc.tcp}, make([]byte, 0, 4096))
				var unsigned dns.Msg
				unsigned.SetQuestion(tc.qname, tc.qtype)
				if tc.edns {
					unsigned.SetEdns0(1232, true)
				}
				want := handlertest.Exchange(t, auth, &unsigned, tc.tcp)
				var got dns.Msg
				if err := got.Unpack(out); err != nil {
					t.Fatal(err)
				}
				if err := dns.TsigVerify(out, tc.secret, q.MAC, false); err != nil {
					t.Fatalf("reply does not verify: %v\n%v", err, &got)
				}
				ts := replyTSIG(t, &got)
				if ts.Error != 0 || ts.Hdr.Name != strings.ToLower(dns.CanonicalName(tc.key)) || ts.Algorithm != tc.alg || ts.OrigId != got.Id {
					t.Errorf("reply TSIG %v", ts)
				}
				if got.Rcode != want.Rcode || got.Question[0] != (dns.Question{Name: tc.qname, Qtype: tc.qtype, Qclass: dns.ClassINET}) ||
					!dnstest.SameSection(got.Answer, want.Answer) || !dnstest.SameSection(got.Ns, want.Ns) {
					t.Errorf("signed reply differs from the unsigned one:\n%v\nwant\n%v", &got, want)
				}
				if (got.IsEdns0() != nil) != tc.edns {
					t.Errorf("OPT in reply: %v, want %v", got.IsEdns0() != nil, tc.edns)
				}
			})
		}
	})
	t.Run("truncated over UDP, still signed", func(t *testing.T) {
		q := dnstest.SignQuery(t, "big.example.test.", dns.TypeTXT, false, "xfr-key.", dns.HmacSHA256, testSecret, now, nil)
		out := auth.ServeDNS(&Request{Wire: q.Wire}, nil)
		if len(out) > dns.MinMsgSize {
			t.Fatalf("UDP reply of %d bytes", len(out))
		}
		if err := dns.TsigVerify(out, testSecret, q.MAC, false); err != nil {
			t.Fatalf("reply does not verify: %v", err)
		}
		var got dns.Msg
		if err := got.Unpack(out); err != nil || !got.Truncated {
			t.Fatalf("want TC: %v %v", err, &got)
		}
	})

	bad := []struct {
		name  string
		q     dnstest.SignedQuery
		rcode int    // the header's rcode
		err   uint16 // the TSIG error; with rcode NOTAUTH
		// signed: the error reply carries a MAC (BADTIME, BADTRUNC); else
		// its MAC is empty.
		signed bool
		secret string
	}{
		{name: "unknown key", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "nokey.", dns.HmacSHA256, testSecret, now, nil),
			rcode: dns.RcodeNotAuth, err: dns.RcodeBadKey},
		{name: "unknown key with EDNS", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, true, "nokey.", dns.HmacSHA256, testSecret, now, nil),
			rcode: dns.RcodeNotAuth, err: dns.RcodeBadKey},
		{name: "known name, other algorithm", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA512, testSecret, now, nil),
			rcode: dns.RcodeNotAuth, err: dns.RcodeBadKey},
		{name: "bad MAC", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, wrongSecret, now, nil),
			rcode: dns.RcodeNotAuth, err: dns.RcodeBadSig},
		{name: "MAC over another ID", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, now,
			func(ts *dns.TSIG) { ts.OrigId++ }), rcode: dns.RcodeNotAuth, err: dns.RcodeBadSig},
		{name: "time an hour ago", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, now.Add(-time.Hour), nil),
			rcode: dns.RcodeNotAuth, err: dns.RcodeBadTime, signed: true, secret: testSecret},
		{name: "time an hour ahead, with EDNS", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, true, "xfr-key.", dns.HmacSHA256, testSecret, now.Add(time.Hour), nil),
			rcode: dns.RcodeNotAuth, err: dns.RcodeBadTime, signed: true, secret: testSecret},
		{name: "MAC truncated to half", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, now,
			func(ts *dns.TSIG) { ts.MAC, ts.MACSize = ts.MAC[:32], 16 }), rcode: dns.RcodeNotAuth, err: dns.RcodeBadTrunc, signed: true, secret: testSecret},
		{name: "MAC truncated below 10 bytes", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, now,
			func(ts *dns.TSIG) { ts.MAC, ts.MACSize = ts.MAC[:18], 9 }), rcode: dns.RcodeFormatError},
		{name: "empty MAC", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, now,
			func(ts *dns.TSIG) { ts.MAC, ts.MACSize = "", 0 }), rcode: dns.RcodeFormatError},
		{name: "MAC longer than the hash", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, now,
			func(ts *dns.TSIG) { ts.MAC, ts.MACSize = ts.MAC+"0000", 34 }), rcode: dns.RcodeFormatError},
		{name: "class IN", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, now,
			func(ts *dns.TSIG) { ts.Hdr.Class = dns.ClassINET }), rcode: dns.RcodeFormatError},
		{name: "TTL not 0", q: dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, now,
			func(ts *dns.TSIG) { ts.Hdr.Ttl = 5 }), rcode: dns.RcodeFormatError},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			out := auth.ServeDNS(&Request{Wire: tc.q.Wire}, nil)
			var got dns.Msg
			if err := got.Unpack(out); err != nil {
				t.Fatalf("unpack %x: %v", out, err)
			}
			if got.Rcode != tc.rcode || got.Id != 0x4242 || !got.Response {
				t.Fatalf("rcode %s id %#x; want %s:\n%v", dns.RcodeToString[got.Rcode], got.Id, dns.RcodeToString[tc.rcode], &got)
			}
			if len(got.Question)+len(got.Answer)+len(got.Ns) != 0 {
				t.Errorf("want no question and no records, as NSD:\n%v", &got)
			}
			if tc.rcode == dns.RcodeFormatError {
				if len(out) != headerLen {
					t.Errorf("FORMERR of %d bytes; want a bare header", len(out))
				}
				return
			}
			if wantOPT := tc.q.Wire[11] == 2; (got.IsEdns0() != nil) != wantOPT {
				t.Errorf("OPT in reply %v, want %v", got.IsEdns0() != nil, wantOPT)
			}
			ts := replyTSIG(t, &got)
			var query dns.Msg
			if err := query.Unpack(tc.q.Wire); err != nil {
				t.Fatal(err)
			}
			qts := query.IsTsig()
			if ts.Error != tc.err || ts.OrigId != 0x4242 || ts.Hdr.Name != strings.ToLower(qts.Hdr.Name) || ts.Algorithm != qts.Algorithm {
				t.Errorf("TSIG error %s (%v); want %s", dns.RcodeToString[int(ts.Error)], ts, dns.RcodeToString[int(tc.err)])
			}
			if ts.TimeSigned != qts.TimeSigned {
				t.Errorf("Time Signed %d; want the client's %d", ts.TimeSigned, qts.TimeSigned)
			}
			if !tc.signed {
				if ts.MACSize != 0 || ts.MAC != "" {
					t.Errorf("%s must be unsigned (RFC 8945 5.3.2); MAC %q", dns.RcodeToString[int(ts.Error)], ts.MAC)
				}
				return
			}
			reqMAC, _ := hex.DecodeString(qts.MAC)
			if err := checkReplyMAC(out, ts, testSecret, reqMAC); err != nil {
				t.Errorf("%s reply: %v", dns.RcodeToString[int(ts.Error)], err)
			}
			if tc.err == dns.RcodeBadTime {
				other, _ := hex.DecodeString(ts.OtherData)
				var server uint64
				for _, b := range other {
					server = server<<8 | uint64(b)
				}
				if ts.OtherLen != 6 || server < uint64(now.Unix()) || server > uint64(time.Now().Unix()) {
					t.Errorf("Other Data %q; want the server's time, 6 bytes", ts.OtherData)
				}
			}
		})
	}
}

// checkReplyMAC checks the MAC of a signed hmac-sha256 reply (RFC 8945
// 4.3: request MAC, the reply without its TSIG, the TSIG variables) the
// long way. miekg/dns refuses to verify NOTAUTH replies, which the
// signed errors are.
func checkReplyMAC(reply []byte, ts *dns.TSIG, secret string, reqMAC []byte) error {
	buf := make([]byte, 512)
	n, err := dns.PackRR(ts, buf, 0, nil, false)
	if err != nil {
		return err
	}
	body := append([]byte(nil), reply[:len(reply)-n]...)
	binary.BigEndian.PutUint16(body[0:], ts.OrigId)
	binary.BigEndian.PutUint16(body[10:], binary.BigEndian.Uint16(body[10:])-1)
	key, _ := base64.StdEncoding.DecodeString(secret)
	h := hmac.New(sha256.New, key)
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(reqMAC))))
	h.Write(reqMAC)
	h.Write(body)
	name := make([]byte, 256)
	nl, _ := dns.PackDomainName(dns.CanonicalName(ts.Hdr.Name), name, 0, nil, false)
	h.Write(name[:nl])
	h.Write([]byte{0, 255, 0, 0, 0, 0})
	al, _ := dns.PackDomainName(dns.CanonicalName(ts.Algorithm), name, 0, nil, false)
	h.Write(name[:al])
	other, _ := hex.DecodeString(ts.OtherData)
	v := []byte{byte(ts.TimeSigned >> 40), byte(ts.TimeSigned >> 32), byte(ts.TimeSigned >> 24), byte(ts.TimeSigned >> 16), byte(ts.TimeSigned >> 8), byte(ts.TimeSigned)}
	v = binary.BigEndian.AppendUint16(v, ts.Fudge)
	v = binary.BigEndian.AppendUint16(v, ts.Error)
	v = binary.BigEndian.AppendUint16(v, uint16(len(other)))
	h.Write(append(v, other...))
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(ts.MAC) {
		return errors.New("MAC does not verify")
	}
	return nil
}

// TestTSIGPlacement: the TSIG must be the last record (RFC 8945 5.1).
func TestTSIGPlacement(t *testing.T) {
	auth := NewAuthority(tsigView(t), 0, nil)
	q := dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, time.Now(), nil)
	tsig := q.Wire[headerLen+len(wireName("www.example.test."))+4:]
	for _, tc := range []struct {
		name string
		wire []byte
	}{
		{"OPT after the TSIG", arcount(append(append([]byte(nil), q.Wire...), testOPT...), 2)},
		{"two TSIGs", arcount(append(append([]byte(nil), q.Wire...), tsig...), 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := auth.ServeDNS(&Request{Wire: tc.wire}, nil)
			if len(out) != headerLen || out[3]&0xF != dns.RcodeFormatError {
				t.Fatalf("reply %x; want a bare FORMERR header", out)
			}
		})
	}
}

// TestTSIGNotCached: signed queries neither use nor fill the packed
// response cache (they count as misses, as every uncached query does),
// whose replies carry no TSIG (a TSIG-only query has
// ARCOUNT 1, like a cacheable query with an OPT).
func TestTSIGNotCached(t *testing.T) {
	auth := NewAuthority(tsigView(t), 0, nil)
	plain := new(dns.Msg)
	plain.SetQuestion("www.example.test.", dns.TypeA)
	for range 2 {
		q := dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, time.Now(), nil)
		out := auth.ServeDNS(&Request{Wire: q.Wire}, nil)
		if err := dns.TsigVerify(out, testSecret, q.MAC, false); err != nil {
			t.Fatalf("signed reply: %v", err)
		}
	}
	if hits, _ := auth.CacheStats(); hits != 0 {
		t.Errorf("signed queries answered from the cache: %d hits", hits)
	}
	for range 2 {
		if r := handlertest.Exchange(t, auth, plain, false); r.IsTsig() != nil {
			t.Fatalf("unsigned query got a signed reply: %v", r)
		}
	}
	for range 2 {
		q := dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, time.Now(), nil)
		out := auth.ServeDNS(&Request{Wire: q.Wire}, nil)
		if err := dns.TsigVerify(out, testSecret, q.MAC, false); err != nil {
			t.Fatalf("signed query after a cached unsigned one: %v", err)
		}
	}
	if hits, _ := auth.CacheStats(); hits != 1 {
		t.Errorf("%d cache hits; want 1 (the second unsigned query)", hits)
	}
}

// TestTSIGWithoutKeys: a server without keys answers signed queries
// BADKEY, as RFC 8945 5.2.1 requires, instead of ignoring the TSIG.
func TestTSIGWithoutKeys(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	q := dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, time.Now(), nil)
	var got dns.Msg
	if err := got.Unpack(auth.ServeDNS(&Request{Wire: q.Wire}, nil)); err != nil {
		t.Fatal(err)
	}
	if got.Rcode != dns.RcodeNotAuth || got.IsTsig() == nil || got.IsTsig().Error != dns.RcodeBadKey {
		t.Fatalf("want NOTAUTH with TSIG error BADKEY, got\n%v", &got)
	}
}

// TestTSIGFudge: a query's time may be off by its fudge either way, not a
// second more; BADTIME carries the server's clock.
func TestTSIGFudge(t *testing.T) {
	auth := NewAuthority(tsigView(t), 0, nil)
	clock := time.Unix(1_800_000_000, 0)
	auth.now = func() time.Time { return clock }
	for _, tc := range []struct {
		skew    time.Duration
		badTime bool
	}{{0, false}, {-300 * time.Second, false}, {300 * time.Second, false}, {-301 * time.Second, true}, {301 * time.Second, true}} {
		t.Run(tc.skew.String(), func(t *testing.T) {
			q := dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, "xfr-key.", dns.HmacSHA256, testSecret, clock.Add(tc.skew), nil)
			var got dns.Msg
			if err := got.Unpack(auth.ServeDNS(&Request{Wire: q.Wire}, nil)); err != nil {
				t.Fatal(err)
			}
			ts := replyTSIG(t, &got)
			if !tc.badTime {
				if got.Rcode != dns.RcodeSuccess || ts.Error != 0 || ts.TimeSigned != uint64(clock.Unix()) {
					t.Fatalf("want an answer signed at the server's time %d:\n%v", clock.Unix(), &got)
				}
				return
			}
			if got.Rcode != dns.RcodeNotAuth || ts.Error != dns.RcodeBadTime || ts.OtherData != fmt.Sprintf("%012x", clock.Unix()) ||
				ts.TimeSigned != uint64(clock.Add(tc.skew).Unix()) {
				t.Fatalf("want BADTIME with the client's time and the server's %d in Other Data:\n%v", clock.Unix(), &got)
			}
		})
	}
}
