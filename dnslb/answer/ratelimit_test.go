package answer

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/rrl"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/miekg/dns"
)

// rrlClock is a clock the test moves.
type rrlClock struct{ ns atomic.Int64 }

func (c *rrlClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// rrlAuthority is an authority over the test zones with a limiter of 5
// responses per second, slip 2, on a clock that stands still.
func rrlAuthority(t testing.TB) (*Authority, *rrlClock) {
	t.Helper()
	auth := NewAuthority(testView(t), 0, nil)
	clock := &rrlClock{}
	clock.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	l, err := rrl.New(rrl.Config{ResponsesPerSecond: 5, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56,
		Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	auth.SetRRL(l)
	return auth, clock
}

// ask sends one query and says what came back: "s" a full reply, "t" a
// truncated one (checked to be header and question only, with the
// query's ID), "d" nothing.
func ask(t *testing.T, auth *Authority, req *Request, name string, qtype uint16) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = dns.Id()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req.Wire = wire
	out := auth.ServeDNS(req, make([]byte, 0, 4096))
	if out == nil {
		return "d"
	}
	var resp dns.Msg
	if err := resp.Unpack(out); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if resp.Id != m.Id || !resp.Response {
		t.Fatalf("reply id %d response %v, want id %d", resp.Id, resp.Response, m.Id)
	}
	if !resp.Truncated {
		return "s"
	}
	if len(resp.Answer)+len(resp.Ns)+len(resp.Extra) != 0 || len(resp.Question) != 1 || resp.Question[0].Name != name {
		t.Fatalf("slipped reply is not the question only:\n%v", &resp)
	}
	if len(out) > len(wire) {
		t.Fatalf("slipped reply of %d bytes to a query of %d", len(out), len(wire))
	}
	return "t"
}

// rrlCounts is an Observer that counts what the rate limiter did, by
// category, as the root package's Metrics export it.
type rrlCounts struct {
	mu          sync.Mutex
	slip, drop  [rrl.NumCategories]int
	droppedMsgs int
}

func (c *rrlCounts) Dropped(string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.droppedMsgs++
}

func (c *rrlCounts) RRLActed(act rrl.Action, cat rrl.Category) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if act == rrl.Slip {
		c.slip[cat]++
	} else {
		c.drop[cat]++
	}
}

func udpFrom(addr string) *Request {
	return &Request{Remote: netip.AddrPortFrom(netip.MustParseAddr(addr), 5300)}
}

// TestRRLBurst: a burst from one client gets its rate in full answers, then
// drops and slips, cached or not; another /24, TCP, loopback and a valid
// cookie are not limited.
func TestRRLBurst(t *testing.T) {
	auth, _ := rrlAuthority(t)
	m := &rrlCounts{}
	auth.SetMetrics(m)
	var got strings.Builder
	flooder := udpFrom("192.0.2.1")
	for range 11 {
		got.WriteString(ask(t, auth, flooder, "mail.example.test.", dns.TypeA))
	}
	if got.String() != "sssssdtdtdt" {
		t.Errorf("burst of 11: %s, want sssssdtdtdt", got.String())
	}
	if hits, _ := auth.CacheStats(); hits != 10 {
		t.Errorf("%d cache hits, want 10 (the limit applies to cached replies)", hits)
	}
	if s, d := m.slip[rrl.Answer], m.drop[rrl.Answer]; s != 3 || d != 3 {
		t.Errorf("observed: %v slipped, %v dropped, want 3 and 3", s, d)
	}
	for _, tc := range []struct {
		name string
		req  *Request
	}{
		{"same /24", udpFrom("192.0.2.200")},
		{"another /24", udpFrom("192.0.3.1")},
		{"tcp", &Request{Remote: flooder.Remote, TCP: true}},
		{"exempt", udpFrom("127.0.0.1")},
	} {
		var got strings.Builder
		for range 10 {
			got.WriteString(ask(t, auth, tc.req, "mail.example.test.", dns.TypeA))
		}
		want := strings.Repeat("s", 10)
		if tc.name == "same /24" {
			want = "dtdtdtdtdt"
		}
		if tc.name == "another /24" {
			want = "sssssdtdtd"
		}
		if got.String() != want {
			t.Errorf("%s: %s, want %s", tc.name, got.String(), want)
		}
	}
}

// TestRRLOff: without a limiter nothing is limited.
func TestRRLOff(t *testing.T) {
	auth, _ := rrlAuthority(t)
	auth.SetRRL(nil)
	var got strings.Builder
	for range 20 {
		got.WriteString(ask(t, auth, udpFrom("192.0.2.1"), "mail.example.test.", dns.TypeA))
	}
	if got.String() != strings.Repeat("s", 20) {
		t.Errorf("rrl off: %s", got.String())
	}
}

// TestRRLAccounts: responses are charged to the name an attacker cannot
// vary: names that must share an account run out together, names that
// must not do not. Each case spends five responses on its first names,
// then asks a sixth: "d" when they share an account.
func TestRRLAccounts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string // five, then the sixth
		qtype uint16
		want  string
	}{
		{"nxdomain: the zone", []string{"r1", "r2", "r3", "r4", "r5", "r6"}, dns.TypeA, "d"},
		{"nxdomain: not another zone", []string{"r1", "r2", "r3", "r4", "r5", "nope.other.test."}, dns.TypeA, "s"},
		{"wildcard: its owner", []string{"x1.wild", "x2.wild", "x3.wild", "x4.wild", "x5.wild", "x6.wild"}, dns.TypeA, "d"},
		{"wildcard nodata: its owner", []string{"x1.wild", "x2.wild", "x3.wild", "x4.wild", "x5.wild", "x6.wild"}, dns.TypeTXT, "d"},
		{"wildcard: not the zone", []string{"x1.wild", "x2.wild", "x3.wild", "x4.wild", "x5.wild", "mail"}, dns.TypeA, "s"},
		{"referral: the delegation", []string{"a.sub", "b.sub", "c.sub", "d.sub", "e.sub", "f.sub"}, dns.TypeA, "d"},
		{"answer: the name", []string{"mail", "mail", "mail", "mail", "mail", "mail"}, dns.TypeA, "d"},
		{"answer: not another name", []string{"mail", "mail", "mail", "mail", "mail", "www"}, dns.TypeA, "s"},
		{"answer via CNAME: the query name", []string{"alias", "alias", "alias", "alias", "alias", "www"}, dns.TypeA, "s"},
		{"nodata: the name", []string{"mail", "mail", "mail", "mail", "mail", "mail"}, dns.TypeTXT, "d"},
		{"nodata: not another name", []string{"mail", "mail", "mail", "mail", "mail", "www"}, dns.TypeTXT, "s"},
		{"refused: one account", []string{"a.invalid.", "b.invalid.", "c.invalid.", "d.invalid.", "e.invalid.", "f.invalid."}, dns.TypeA, "d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth, _ := rrlAuthority(t)
			client := udpFrom("192.0.2.1")
			var got strings.Builder
			for _, n := range tc.names {
				if !strings.HasSuffix(n, ".") {
					n += ".example.test."
				}
				got.WriteString(ask(t, auth, client, n, tc.qtype))
			}
			if want := "sssss" + tc.want; got.String() != want {
				t.Errorf("%s, want %s", got.String(), want)
			}
		})
	}
}

// TestRRLCategories: a category spent leaves the others: five NXDOMAINs
// do not limit an answer, nor five answers a NODATA for the same name.
func TestRRLCategories(t *testing.T) {
	auth, _ := rrlAuthority(t)
	client := udpFrom("192.0.2.1")
	for i := range 6 {
		ask(t, auth, client, fmt.Sprintf("nx%d.example.test.", i), dns.TypeA)
	}
	for range 6 {
		ask(t, auth, client, "a.invalid.", dns.TypeA)
	}
	for range 6 {
		ask(t, auth, client, "mail.example.test.", dns.TypeA)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.example.test.", dns.TypeA}, {"mail.example.test.", dns.TypeTXT}, {"x.wild.example.test.", dns.TypeA}, {"a.sub.example.test.", dns.TypeA}} {
		if got := ask(t, auth, client, q.name, q.qtype); got != "s" {
			t.Errorf("%s %s after other categories' bursts: %s", q.name, dns.TypeToString[q.qtype], got)
		}
	}
}

// TestRRLErrors: malformed queries are answered FORMERR through the
// limiter too, charged with the other errors (REFUSED).
func TestRRLErrors(t *testing.T) {
	auth, _ := rrlAuthority(t)
	client := udpFrom("192.0.2.1")
	for range 3 {
		ask(t, auth, client, "a.invalid.", dns.TypeA)
	}
	formerr := func() string {
		m := new(dns.Msg)
		m.SetQuestion("mail.example.test.", dns.TypeA)
		m.Question = append(m.Question, m.Question[0]) // QDCOUNT 2
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		client.Wire = wire
		out := auth.ServeDNS(client, make([]byte, 0, 512))
		switch {
		case out == nil:
			return "d"
		case out[2]&(flagTC>>8) != 0:
			if len(out) != headerLen {
				t.Fatalf("slipped FORMERR of %d bytes", len(out))
			}
			return "t"
		case out[3]&0xF != dns.RcodeFormatError:
			t.Fatalf("rcode %d, want FORMERR", out[3]&0xF)
		}
		return "s"
	}
	var got strings.Builder
	for range 4 {
		got.WriteString(formerr())
	}
	if got.String() != "ssdt" {
		t.Errorf("FORMERR after 3 REFUSED: %s, want ssdt", got.String())
	}
}

func TestSlipped(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("Mail.Example.Test.", dns.TypeA)
	m.Id = 4242
	m.Authoritative, m.RecursionDesired, m.Response, m.Rcode = true, true, true, dns.RcodeNameError
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "Mail.Example.Test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}}}
	m.SetEdns0(1232, true)
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var got dns.Msg
	if err := got.Unpack(slipped(wire)); err != nil {
		t.Fatal(err)
	}
	if got.Id != 4242 || !got.Truncated || !got.Authoritative || !got.RecursionDesired || got.Rcode != dns.RcodeNameError ||
		len(got.Question) != 1 || got.Question[0].Name != "Mail.Example.Test." || len(got.Answer)+len(got.Ns) != 0 {
		t.Errorf("slipped:\n%v", &got)
	}
	if opt := got.IsEdns0(); len(got.Extra) != 1 || opt == nil || opt.UDPSize() != 1232 || !opt.Do() {
		t.Errorf("slipped: the OPT record was not kept as it was:\n%v", &got)
	}
	// Without EDNS: no OPT, nothing in any section; a compressed name in
	// the answer is skipped over.
	m.Extra = nil
	m.Compress = true
	m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: "x.Mail.Example.Test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "Mail.Example.Test."})
	if wire, err = m.Pack(); err != nil {
		t.Fatal(err)
	}
	got = dns.Msg{}
	if err := got.Unpack(slipped(wire)); err != nil {
		t.Fatal(err)
	}
	if !got.Truncated || len(got.Question) != 1 || len(got.Answer)+len(got.Ns)+len(got.Extra) != 0 {
		t.Errorf("slipped, no EDNS:\n%v", &got)
	}
	if out := slipped(wire[:headerLen]); len(out) != headerLen || out[2]&(flagTC>>8) == 0 {
		t.Errorf("slipped header-only reply: % x", out)
	}
}

// BenchmarkServeDNSRRL compares the cached answer path with rate limiting
// off and on (the defaults: 20/s per /24, slip 2). One client asking in a
// loop is a flood, so the limiter's clock moves a second each time it is
// read: the client's budget is full again whenever it runs out, and every
// reply is sent, as for a client within its rate. The clock is then read
// once every 21 replies, more often than on a server whose clients keep
// within their rates, so this is the dearer case.
func BenchmarkServeDNSRRL(b *testing.B) {
	view := benchView(b)
	cases := benchCases
	for _, tc := range cases {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/rrl=%v", tc.name, on), func(b *testing.B) {
				auth := NewAuthority(view, 0, nil)
				if on {
					var ns atomic.Int64
					// The defaults, as an rrl block left empty makes them.
					rc := rrl.Config{ResponsesPerSecond: rrl.DefaultResponsesPerSecond, Slip: rrl.DefaultSlip,
						IPv4Prefix: rrl.DefaultIPv4Prefix, IPv6Prefix: rrl.DefaultIPv6Prefix,
						Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
					rc.Now = func() time.Time { return time.Unix(0, ns.Add(int64(time.Second))) }
					l, err := rrl.New(rc)
					if err != nil {
						b.Fatal(err)
					}
					auth.SetRRL(l)
				}
				wire := benchWire(b, tc.qname, tc.qtype, tc.edns)
				out := make([]byte, 0, 4096)
				req := &Request{Wire: wire, Remote: netip.MustParseAddrPort("192.0.2.1:5353")}
				b.ReportAllocs()
				// cpu-ns/op: the thread's CPU time, which other processes
				// on a busy machine do not inflate as they do ns/op.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				start := threadCPUTime()
				for b.Loop() {
					if resp := auth.ServeDNS(req, out); len(resp) == 0 || resp[2]&(flagTC>>8) != 0 {
						b.Fatal("not a full reply")
					}
				}
				if cpu := threadCPUTime() - start; cpu > 0 {
					b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// TestRRLConcurrent: answering on several goroutines while the limiter
// is swapped (a reload) is race-free (go test -race), and one /24 shared
// by every goroutine is still held to its budget.
func TestRRLConcurrent(t *testing.T) {
	auth, _ := rrlAuthority(t)
	first := auth.RRL()
	wire := dnstest.Query(t, "mail.example.test.", dns.TypeA, 1)
	var full atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			out := make([]byte, 0, 4096)
			req := &Request{Wire: wire, Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(g)}), 53)}
			for range 500 {
				if resp := auth.ServeDNS(req, out); len(resp) > 0 && resp[2]&(flagTC>>8) == 0 {
					full.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			auth.SetRRL(first)
			auth.RRL().Entries()
		}
	})
	wg.Wait()
	// One account of 5 on a clock that stands still (a CAS given up under
	// contention sends without counting: a few more at most).
	if n := full.Load(); n < 5 || n > 5+4*4 {
		t.Errorf("%d full answers to one /24 of budget 5", n)
	}
}

// TestRRLValidCookieExempt: a client that presents a valid server cookie
// proved its address, so its replies are not limited, cached or not, while
// the same client without the cookie (or with a forged one) is.
func TestRRLValidCookieExempt(t *testing.T) {
	auth, _ := rrlAuthority(t)
	secret := [CookieSecretLen]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	auth.SetCookies(NewCookies(secret, time.Now))
	const client = "192.0.2.1"
	first, _ := handlertest.ServeFrom(t, auth, dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, 1, dnstest.Cookie("0102030405060708")), client, false)
	valid := dnstest.ReplyCookie(first)
	if len(valid) != 2*replyCookieLen {
		t.Fatalf("no server cookie: %q", valid)
	}
	sent := func(cookie string) string {
		var got strings.Builder
		for i := range 12 {
			out := auth.ServeDNS(&Request{Wire: dnstest.EDNSQuery(t, "mail.example.test.", dns.TypeA, uint16(i+2), dnstest.Cookie(cookie)),
				Remote: netip.AddrPortFrom(netip.MustParseAddr(client), 5353)}, make([]byte, 0, 4096))
			switch {
			case out == nil:
				got.WriteString("d")
			case out[2]&0x02 != 0:
				got.WriteString("t")
			default:
				got.WriteString("s")
			}
		}
		return got.String()
	}
	if got := sent(valid); got != strings.Repeat("s", 12) {
		t.Errorf("with a valid server cookie: %s, want every reply sent", got)
	}
	forged := valid[:len(valid)-4] + "0000"
	if got := sent(forged); !strings.Contains(got, "d") {
		t.Errorf("with a forged server cookie: %s, want the limit applied", got)
	}
}
