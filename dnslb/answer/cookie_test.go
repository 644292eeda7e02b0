package answer

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/miekg/dns"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cookiesAt(t testing.TB, secret string, at uint32) *Cookies {
	t.Helper()
	k, err := ParseCookieSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return NewCookies(k, func() time.Time { return time.Unix(int64(at), 0) })
}

// The SipHash paper's own vectors (key 00..0f, message 00..len-1): the
// empty message (its output as bytes, as the reference code writes it)
// and the paper's worked 15-byte example (as a 64-bit value).
func TestSipHash24(t *testing.T) {
	var key, msg [16]byte
	for i := range key {
		key[i], msg[i] = byte(i), byte(i)
	}
	k0, k1 := binary.LittleEndian.Uint64(key[:]), binary.LittleEndian.Uint64(key[8:])
	var out [8]byte
	binary.LittleEndian.PutUint64(out[:], sipHash24(k0, k1, nil))
	if got := hex.EncodeToString(out[:]); got != "310e0edd47db6f72" {
		t.Errorf("empty message: %s, want 310e0edd47db6f72", got)
	}
	if got := sipHash24(k0, k1, msg[:15]); got != 0xa129ca6149be45e5 {
		t.Errorf("15 bytes: %x, want a129ca6149be45e5", got)
	}
}

// TestRFC9018Vectors: the examples of RFC 9018 Appendix A, byte for byte.
func TestRFC9018Vectors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string
		client string
		query  string // the COOKIE option sent
		now    uint32
		status CookieStatus
		reply  string
	}{
		{"A.1 learning a new server cookie", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100",
			"2464c4abcf10c957", 1559731985, CookieClientOnly,
			"2464c4abcf10c957010000005cf79f111f8130c3eee29480"},
		{"A.2 the same client 40 minutes later: renewed", "e5e973e5a6b2a43f48e7dc849e37bfcf", "198.51.100.100",
			"2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559734385, CookieValid,
			"2464c4abcf10c957010000005cf7a871d4a564a1442aca77"},
		{"A.3 another client, an expired cookie with reserved bytes set", "e5e973e5a6b2a43f48e7dc849e37bfcf", "203.0.113.203",
			"fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559734700, CookieInvalid,
			"fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e"},
		{"A.3 that cookie at its issue time", "e5e973e5a6b2a43f48e7dc849e37bfcf", "203.0.113.203",
			"fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559727985, CookieValid,
			"fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5"},
		{"A.4 IPv6, made with the previous secret", "dd3bdf9344b678b185a6f5cb60fca715", "2001:db8:220:1:59de:d0f4:8769:82b8",
			"22681ab97d52c298010000005cf7c57926556bd0934c72f8", 1559741961, CookieValid,
			"22681ab97d52c298010000005cf7c57926556bd0934c72f8"},
		{"A.4 after the secret rolled over", "445536bcd2513298075a5d379663c962", "2001:db8:220:1:59de:d0f4:8769:82b8",
			"22681ab97d52c298010000005cf7c57926556bd0934c72f8", 1559741961, CookieInvalid,
			"22681ab97d52c298010000005cf7c609a6bb79d16625507a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reply [replyCookieLen]byte
			got := cookiesAt(t, tc.secret, tc.now).Check(unhex(t, tc.query), netip.MustParseAddr(tc.client), &reply)
			if got != tc.status || hex.EncodeToString(reply[:]) != tc.reply {
				t.Errorf("%v, reply %x; want %v, %s", got, reply, tc.status, tc.reply)
			}
		})
	}
}

// TestCookieLifetime: A.1's cookie, sent back, is valid from five minutes
// before its timestamp to an hour after, echoed for half an hour, and only
// for its own client address, client cookie and secret.
func TestCookieLifetime(t *testing.T) {
	const secret, issued = "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559731985
	good := unhex(t, "2464c4abcf10c957010000005cf79f111f8130c3eee29480")
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		return b
	}
	for _, tc := range []struct {
		name   string
		opt    []byte
		addr   string
		secret string
		now    uint32
		status CookieStatus
		echo   bool
	}{
		{"just made", good, "198.51.100.100", secret, issued, CookieValid, true},
		{"half an hour old", good, "198.51.100.100", secret, issued + 1800, CookieValid, true},
		{"a second older: renewed", good, "198.51.100.100", secret, issued + 1801, CookieValid, false},
		{"an hour old", good, "198.51.100.100", secret, issued + 3600, CookieValid, false},
		{"expired", good, "198.51.100.100", secret, issued + 3601, CookieInvalid, false},
		{"five minutes ahead", good, "198.51.100.100", secret, issued - 300, CookieValid, true},
		{"too far ahead", good, "198.51.100.100", secret, issued - 301, CookieInvalid, false},
		{"another client cookie", flip(0), "198.51.100.100", secret, issued, CookieInvalid, false},
		{"version 2", flip(8), "198.51.100.100", secret, issued, CookieInvalid, false},
		{"another timestamp", flip(15), "198.51.100.100", secret, issued, CookieInvalid, false},
		{"another hash", flip(23), "198.51.100.100", secret, issued, CookieInvalid, false},
		{"another address", good, "198.51.100.101", secret, issued, CookieInvalid, false},
		{"the address IPv4-mapped", good, "::ffff:198.51.100.100", secret, issued, CookieValid, true},
		{"another secret", good, "198.51.100.100", "445536bcd2513298075a5d379663c962", issued, CookieInvalid, false},
		{"a 32-byte server cookie: not ours", append(append([]byte(nil), good...), good[8:]...), "198.51.100.100", secret, issued, CookieInvalid, false},
		{"client cookie only", good[:8], "198.51.100.100", secret, issued, CookieClientOnly, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reply [replyCookieLen]byte
			got := cookiesAt(t, tc.secret, tc.now).Check(tc.opt, netip.MustParseAddr(tc.addr), &reply)
			echoed := hex.EncodeToString(reply[:]) == hex.EncodeToString(tc.opt)
			if got != tc.status || echoed != tc.echo {
				t.Fatalf("%v (echoed %v), want %v (echoed %v)", got, echoed, tc.status, tc.echo)
			}
			if !echoed {
				// What is handed out instead is fresh and valid.
				var again [replyCookieLen]byte
				if st := cookiesAt(t, tc.secret, tc.now).Check(reply[:], netip.MustParseAddr(tc.addr), &again); st != CookieValid || again != reply {
					t.Fatalf("the fresh cookie %x comes back %v as %x", reply, st, again)
				}
				if string(reply[:8]) != string(tc.opt[:8]) {
					t.Fatalf("client cookie not kept: %x", reply)
				}
			}
		})
	}
}

// RFC 1982 arithmetic: a cookie made just before the 32-bit timestamp
// wraps is still valid just after.
func TestCookieAcrossTheTimestampWrap(t *testing.T) {
	const secret = "e5e973e5a6b2a43f48e7dc849e37bfcf"
	addr := netip.MustParseAddr("2001:db8::53")
	var made, reply [replyCookieLen]byte
	cookiesAt(t, secret, 0xffffff00).Check(unhex(t, "2464c4abcf10c957"), addr, &made)
	if st := cookiesAt(t, secret, 0x100).Check(made[:], addr, &reply); st != CookieValid || reply != made {
		t.Fatalf("512 s later, across the wrap: %v, echoed %v", st, reply == made)
	}
}

func TestFindCookie(t *testing.T) {
	opt := func(code uint16, data []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, code)
		b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
		return append(b, data...)
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	c8, c24 := make([]byte, 8), make([]byte, 24)
	for _, tc := range []struct {
		name   string
		rdata  []byte
		cookie int // its length, -1: none
		ok     bool
	}{
		{"no options", nil, -1, true},
		{"client cookie", opt(optCookie, c8), 8, true},
		{"with a server cookie", opt(optCookie, c24), 24, true},
		{"40 bytes", opt(optCookie, make([]byte, 40)), 40, true},
		{"among others", cat(opt(3, nil), opt(12, make([]byte, 30)), opt(optCookie, c24), opt(65001, []byte{1})), 24, true},
		{"other options only", cat(opt(8, []byte{0, 1, 24, 0, 192, 0, 2}), opt(3, nil)), -1, true},
		{"7 bytes", opt(optCookie, make([]byte, 7)), -1, false},
		{"9 bytes", opt(optCookie, make([]byte, 9)), -1, false},
		{"15 bytes", opt(optCookie, make([]byte, 15)), -1, false},
		{"41 bytes", opt(optCookie, make([]byte, 41)), -1, false},
		{"empty", opt(optCookie, nil), -1, false},
		{"two cookies", cat(opt(optCookie, c8), opt(optCookie, c8)), -1, false},
		{"option overruns", opt(optCookie, c8)[:10], -1, false},
		{"three bytes left", cat(opt(3, nil), []byte{0, 10, 0}), -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, n, ok := findCookie(tc.rdata)
			if at < 0 {
				n = -1
			} else if at+n > len(tc.rdata) || tc.rdata[at-4] != 0 || tc.rdata[at-3] != optCookie {
				t.Fatalf("cookie at %d, %d bytes: not the COOKIE's data", at, n)
			}
			if ok != tc.ok || (ok && n != tc.cookie) {
				t.Errorf("cookie of %d bytes, ok %v; want %d, %v", n, ok, tc.cookie, tc.ok)
			}
		})
	}
}

func TestParseCookieSecret(t *testing.T) {
	const secret = "e5e973e5a6b2a43f48e7dc849e37bfcz"
	for _, s := range []string{"", "e5e973e5", secret, secret + "00"} {
		_, err := ParseCookieSecret(s)
		if err == nil {
			t.Fatalf("%q accepted", s)
		}
		if len(s) >= 8 && strings.Contains(err.Error(), s[:8]) {
			t.Fatalf("the error repeats the secret: %v", err)
		}
	}
}

func BenchmarkCookieCheck(b *testing.B) {
	addr := netip.MustParseAddr("198.51.100.100")
	c := cookiesAt(b, "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559731985)
	for _, tc := range []struct{ name, opt string }{
		{"client-only", "2464c4abcf10c957"},
		{"valid", "2464c4abcf10c957010000005cf79f111f8130c3eee29480"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			opt := unhex(b, tc.opt)
			var reply [replyCookieLen]byte
			b.ReportAllocs()
			for b.Loop() {
				c.Check(opt, addr, &reply)
			}
		})
	}
}

func BenchmarkSipHash20(b *testing.B) {
	var in [20]byte
	var s uint64
	for b.Loop() {
		s += sipHash24(1, 2, in[:])
	}
	_ = s
}

// TestEDNSOptionsAreCached: options that do not change the answer
// (NSID, padding, TCP keepalive, unknown ones) no longer keep a query
// from the cache, and the answer is the plain one (a client subnet is
// echoed: see ecs_test.go).
func TestEDNSOptionsAreCached(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	opts := []dns.EDNS0{
		&dns.EDNS0_NSID{Code: dns.EDNS0NSID},
		&dns.EDNS0_PADDING{Padding: make([]byte, 40)},
		&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE},
		&dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}},
	}
	plain, _ := handlertest.ServeFrom(t, NewAuthority(testView(t), 0, nil), dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1), "192.0.2.1", false)
	for i, o := range opts {
		for range 2 {
			got, _ := handlertest.ServeFrom(t, auth, dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, o), "192.0.2.1", false)
			got.Id = plain.Id
			if got.String() != plain.String() {
				t.Fatalf("option %d: %s\nwant %s", o.Option(), got, plain)
			}
		}
		if hits, misses := auth.CacheStats(); hits != uint64(2*i+1) || misses != 1 {
			t.Fatalf("after option %d: %d hits, %d misses; want %d, 1", o.Option(), hits, misses, 2*i+1)
		}
	}
}

// TestEveryQueryIsAHitOrAMiss: queries the cache cannot answer count as
// misses, whatever becomes of them.
func TestEveryQueryIsAHitOrAMiss(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	axfr := dnstest.Query(t, "example.test.", dns.TypeAXFR, 3)
	resp := dnstest.Query(t, "example.test.", dns.TypeA, 4)
	resp[2] |= 0x80
	wires := [][]byte{
		dnstest.Query(t, "mail.example.test.", dns.TypeA, 1),
		dnstest.Query(t, "mail.example.test.", dns.TypeA, 2),
		axfr, resp, {1, 2, 3},
		dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 5, dnstest.Cookie("0102030405")), // FORMERR
	}
	for _, w := range wires {
		auth.ServeDNS(&Request{Wire: w, Remote: netip.MustParseAddrPort("192.0.2.1:53")}, make([]byte, 0, 4096))
	}
	if hits, misses := auth.CacheStats(); hits != 1 || misses != uint64(len(wires)-1) {
		t.Errorf("%d hits, %d misses for %d queries; want 1 hit", hits, misses, len(wires))
	}
}

// TestCookieAnswers: what each kind of COOKIE gets (RFC 7873 section 5.2,
// answered as NSD does by default), from the full path and then, asked
// again, from the cache.
func TestCookieAnswers(t *testing.T) {
	const secret, now = "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559731985
	const client = "198.51.100.100"
	const a1 = "2464c4abcf10c957010000005cf79f111f8130c3eee29480" // RFC 9018 A.1: made at now for client
	for _, tc := range []struct {
		name   string
		wire   []byte
		tcp    bool
		rcode  int
		answer bool   // the A record is answered
		cookie string // the reply's COOKIE; "fresh": a new valid one; "": none
		noOPT  bool   // a bare header, as NSD's FORMERR
	}{
		{"client cookie only", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c957")), false, dns.RcodeSuccess, true, a1, false},
		{"valid server cookie: echoed", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie(a1)), false, dns.RcodeSuccess, true, a1, false},
		{"over TCP", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie(a1)), true, dns.RcodeSuccess, true, a1, false},
		{"invalid server cookie: answered, fresh cookie", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c957"+"0100000000000000000000000000aaaa")), false, dns.RcodeSuccess, true, a1, false},
		{"another client's cookie", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e")), false, dns.RcodeSuccess, true, "fresh", false},
		{"NXDOMAIN with a cookie", dnstest.EDNSQuery(t, "nope.example.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c957")), false, dns.RcodeNameError, false, a1, false},
		{"with other options", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}, dnstest.Cookie("2464c4abcf10c957"), &dns.EDNS0_PADDING{Padding: make([]byte, 12)}), false, dns.RcodeSuccess, true, a1, false},
		{"7 bytes: FORMERR", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c9")), false, dns.RcodeFormatError, false, "", true},
		{"9 bytes: FORMERR", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c95701")), false, dns.RcodeFormatError, false, "", true},
		{"41 bytes: FORMERR", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c957"+hex.EncodeToString(make([]byte, 33)))), false, dns.RcodeFormatError, false, "", true},
		{"two cookies: FORMERR", dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c957"), dnstest.Cookie("2464c4abcf10c957")), false, dns.RcodeFormatError, false, "", true},
		{"no question, client cookie", dnstest.EDNSQuery(t, "", 0, 1, dnstest.Cookie("2464c4abcf10c957")), false, dns.RcodeSuccess, false, a1, false},
		{"no question, valid cookie", dnstest.EDNSQuery(t, "", 0, 1, dnstest.Cookie(a1)), false, dns.RcodeSuccess, false, a1, false},
		{"no question, invalid cookie: BADCOOKIE", dnstest.EDNSQuery(t, "", 0, 1, dnstest.Cookie("2464c4abcf10c957"+"0100000000000000000000000000aaaa")), false, dns.RcodeBadCookie, false, a1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := NewAuthority(testView(t), 0, nil)
			auth.SetCookies(cookiesAt(t, secret, now))
			for round := range 2 {
				got, raw := handlertest.ServeFrom(t, auth, tc.wire, client, tc.tcp)
				if got.Rcode != tc.rcode || (len(got.Answer) > 0) != tc.answer {
					t.Fatalf("round %d: %s", round, got)
				}
				if tc.noOPT {
					if len(raw) != headerLen {
						t.Fatalf("round %d: %d bytes, want a bare header: %s", round, len(raw), got)
					}
					continue
				}
				c := dnstest.ReplyCookie(got)
				switch tc.cookie {
				case "fresh":
					var again [replyCookieLen]byte
					if st := cookiesAt(t, secret, now).Check(unhex(t, c), netip.MustParseAddr(client), &again); st != CookieValid {
						t.Fatalf("round %d: cookie %s is %v", round, c, st)
					}
				default:
					if c != tc.cookie {
						t.Fatalf("round %d: cookie %q, want %q\n%s", round, c, tc.cookie, got)
					}
				}
			}
		})
	}
}

// TestCookieHitsArePatchedPerClient: two clients share one cache entry and
// each gets a cookie made for its own address; a client without a cookie
// gets none, from an entry of its own.
func TestCookieHitsArePatchedPerClient(t *testing.T) {
	auth := NewAuthority(poolView(t, map[string]poolSpec{"www.example.test.": {policy: "round-robin"}}), 0, nil)
	cookies := cookiesAt(t, "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559731985)
	auth.SetCookies(cookies)
	leads := map[string]int{}
	for i := range 40 {
		client := fmt.Sprintf("198.51.100.%d", 1+i%2)
		got, _ := handlertest.ServeFrom(t, auth, dnstest.EDNSQuery(t, "www.example.test.", dns.TypeA, uint16(i), dnstest.Cookie("2464c4abcf10c957")), client, false)
		c := dnstest.ReplyCookie(got)
		var again [replyCookieLen]byte
		if len(c) != 2*replyCookieLen || cookies.Check(unhex(t, c), netip.MustParseAddr(client), &again) != CookieValid {
			t.Fatalf("query %d from %s: cookie %q does not verify", i, client, c)
		}
		leads[dnstest.AnswerA(got)[0]]++
	}
	if leads["192.0.2.10"] != 20 || leads["192.0.2.11"] != 20 {
		t.Errorf("rotation with cookies: %v", leads)
	}
	plain, _ := handlertest.ServeFrom(t, auth, dnstest.EDNSQuery(t, "www.example.test.", dns.TypeA, 99), "198.51.100.1", false)
	if c := dnstest.ReplyCookie(plain); c != "" {
		t.Errorf("a query without a cookie got one: %s", c)
	}
	if hits, _ := auth.CacheStats(); hits < 36 {
		t.Errorf("%d of 41 from the cache", hits)
	}
}

// TestCookiesOff: with cookies off a COOKIE option is ignored, as by a
// server that does not know it, and the answer comes from the cache.
func TestCookiesOff(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	for range 2 {
		got, _ := handlertest.ServeFrom(t, auth, dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c957")), "192.0.2.1", false)
		if got.Rcode != dns.RcodeSuccess || len(got.Answer) != 1 || dnstest.ReplyCookie(got) != "" {
			t.Fatalf("%s", got)
		}
	}
	if hits, _ := auth.CacheStats(); hits != 1 {
		t.Errorf("%d hits, want 1", hits)
	}
}

// TestCoarseClock: set at once, then kept to the clock by Run until its
// context ends.
func TestCoarseClock(t *testing.T) {
	var now atomic.Int64
	now.Store(1000)
	c := NewCoarseClock(func() time.Time { return time.Unix(now.Load(), 0) })
	if c.Now().Unix() != 1000 {
		t.Fatalf("clock at %v, want 1000", c.Now().Unix())
	}
	now.Store(2000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx, time.Millisecond) }()
	dnstest.Eventually(t, 5*time.Second, "the clock following", func() (bool, string) {
		return c.Now().Unix() == 2000, fmt.Sprint(c.Now().Unix())
	})
	cancel()
	<-done
}

// TestCookieHashIsSipHash: the word-by-word hash of a cookie is SipHash-2-4
// of the bytes RFC 9018 lists, for IPv4 and IPv6 clients.
func TestCookieHashIsSipHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for i := range 1000 {
		var key [CookieSecretLen]byte
		var head [16]byte
		binary.LittleEndian.PutUint64(key[:], rng.Uint64())
		binary.LittleEndian.PutUint64(key[8:], rng.Uint64())
		binary.LittleEndian.PutUint64(head[:], rng.Uint64())
		binary.LittleEndian.PutUint64(head[8:], rng.Uint64())
		var a16 [16]byte
		binary.LittleEndian.PutUint64(a16[:], rng.Uint64())
		binary.LittleEndian.PutUint64(a16[8:], rng.Uint64())
		client := netip.AddrFrom16(a16)
		ip := a16[:]
		if i%2 == 0 {
			client = netip.AddrFrom4([4]byte(a16[:4]))
			ip = a16[:4]
		}
		c := NewCookies(key, nil)
		if got, want := c.hash(head[:], client), sipHash24(c.k0, c.k1, append(head[:], ip...)); got != want {
			t.Fatalf("%v: %x, want %x", client, got, want)
		}
	}
}

// FuzzServeDNSCookies: with cookies on, no query (options, COOKIEs of any
// length, no question) may panic, and every reply parses, from the full
// path and from the cache alike (each input is asked twice).
func FuzzServeDNSCookies(f *testing.F) {
	auth := NewAuthority(heavyView(f), 0, nil)
	auth.SetCookies(NewCookies([CookieSecretLen]byte{1, 2, 3}, func() time.Time { return time.Unix(1559731985, 0) }))
	f.Add(dnstest.EDNSQuery(f, "pool.heavy.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c957")), false)
	f.Add(dnstest.EDNSQuery(f, "x.w.heavy.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c957010000005cf79f111f8130c3eee29480"), &dns.EDNS0_NSID{Code: dns.EDNS0NSID}), true)
	f.Add(dnstest.EDNSQuery(f, "", 0, 1, dnstest.Cookie("2464c4abcf10c957")), false)
	f.Add(dnstest.EDNSQuery(f, "nope.heavy.test.", dns.TypeA, 1, dnstest.Cookie("2464c4abcf10c95701")), false)
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		for range 2 {
			out := auth.ServeDNS(&Request{Wire: wire, TCP: tcp, Remote: netip.MustParseAddrPort("198.51.100.1:53")}, nil)
			if out == nil {
				return
			}
			var m dns.Msg
			if len(out) > headerLen {
				if err := m.Unpack(out); err != nil {
					t.Fatalf("reply %x does not parse: %v", out, err)
				}
			}
		}
	})
}
