package answer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"testing/fstest"

	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// ecsData is the data of a CLIENT-SUBNET option: family, source, scope
// and the address octets, as given (so malformed ones can be written).
func ecsData(family uint16, source, scope uint8, addr ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, family)
	return append(append(b, source, scope), addr...)
}

// ecsLocal is the option of ecsData, packed as is.
func ecsLocal(data []byte) *dns.EDNS0_LOCAL {
	return &dns.EDNS0_LOCAL{Code: optECS, Data: data}
}

func TestParseECS(t *testing.T) {
	cases := []struct {
		name   string
		data   []byte
		ok     bool
		prefix string // the subnet; "" for the zero Prefix (source 0)
	}{
		{"v4 /24", ecsData(1, 24, 0, 198, 51, 100), true, "198.51.100.0/24"},
		{"v4 /32", ecsData(1, 32, 0, 198, 51, 100, 7), true, "198.51.100.7/32"},
		{"v4 /20, trailing bits zero", ecsData(1, 20, 0, 198, 51, 96), true, "198.51.96.0/20"},
		{"v4 /0: no tailoring", ecsData(1, 0, 0), true, ""},
		{"v6 /56", ecsData(2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 2), true, "2001:db8:1:200::/56"},
		{"v6 /128", ecsData(2, 128, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), true, "2001:db8::1/128"},
		{"v6 /0", ecsData(2, 0, 0), true, ""},
		{"shorter than the fixed part", []byte{0, 1, 24}, false, ""},
		{"empty", nil, false, ""},
		{"family 0", ecsData(0, 0, 0), false, ""},
		{"unknown family", ecsData(3, 8, 0, 10), false, ""},
		{"v4 source beyond 32", ecsData(1, 33, 0, 198, 51, 100, 7, 0), false, ""},
		{"v6 source beyond 128", ecsData(2, 129, 0, make([]byte, 17)...), false, ""},
		{"scope nonzero in a query", ecsData(1, 24, 24, 198, 51, 100), false, ""},
		{"too many octets", ecsData(1, 24, 0, 198, 51, 100, 0), false, ""},
		{"too few octets", ecsData(1, 24, 0, 198, 51), false, ""},
		{"address without source", ecsData(1, 0, 0, 198), false, ""},
		{"bits beyond the prefix", ecsData(1, 20, 0, 198, 51, 100), false, ""},
		{"last bit beyond /31", ecsData(1, 31, 0, 198, 51, 100, 1), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e ecsOpt
			if ok := parseECS(tc.data, &e); ok != tc.ok {
				t.Fatalf("parseECS(%x) = %v, want %v", tc.data, ok, tc.ok)
			}
			if !tc.ok {
				return
			}
			got := ""
			if p := e.prefix(); p.IsValid() {
				got = p.String()
			}
			if got != tc.prefix {
				t.Errorf("prefix %q, want %q", got, tc.prefix)
			}
			if reply := ecsReply(&e, 0); !bytes.Equal(reply, tc.data) {
				t.Errorf("echo %x, want %x as received", reply, tc.data)
			}
		})
	}
}

func TestFindECS(t *testing.T) {
	opt := func(code uint16, data []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, code)
		return append(binary.BigEndian.AppendUint16(b, uint16(len(data))), data...)
	}
	v4 := ecsData(1, 24, 0, 198, 51, 100)
	cases := []struct {
		name  string
		rdata []byte
		at    int
		ok    bool
	}{
		{"none", opt(3, nil), -1, true},
		{"alone", opt(optECS, v4), 4, true},
		{"after another", append(opt(3, nil), opt(optECS, v4)...), 8, true},
		{"twice", append(opt(optECS, v4), opt(optECS, v4)...), -1, false},
		{"malformed", opt(optECS, ecsData(1, 24, 1, 198, 51, 100)), -1, false},
		{"overruns the RDATA", opt(optECS, v4)[:8], -1, false},
		{"a cut option header", append(opt(3, nil), 0, 8), -1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e ecsOpt
			at, _, ok := findECS(tc.rdata, &e)
			if at != tc.at || ok != tc.ok {
				t.Errorf("findECS = %d, %v; want %d, %v", at, ok, tc.at, tc.ok)
			}
		})
	}
}

// TestECSFormErr: a malformed CLIENT-SUBNET gets FORMERR, a bare header,
// with the cache on and off.
func TestECSFormErr(t *testing.T) {
	bad := map[string][]byte{
		"scope nonzero":      ecsData(1, 24, 8, 198, 51, 100),
		"unknown family":     ecsData(7, 0, 0),
		"v4 source 33":       ecsData(1, 33, 0, 198, 51, 100, 7, 0),
		"v6 source 129":      ecsData(2, 129, 0, make([]byte, 17)...),
		"too many octets":    ecsData(1, 16, 0, 198, 51, 100),
		"too few octets":     ecsData(2, 56, 0, 0x20, 0x01),
		"bits beyond prefix": ecsData(1, 23, 0, 198, 51, 101),
		"shorter than fixed": {0, 1},
		"two options (same)": nil, // built below
		"bad bit past /7":    ecsData(1, 7, 0, 0xff),
	}
	for name, data := range bad {
		for _, cache := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/cache=%v", name, cache), func(t *testing.T) {
				auth := NewAuthority(stickyView(t, pool.Sticky{}), 0, nil)
				if !cache {
					auth.SetCacheBytes(0)
				}
				opts := []dns.EDNS0{ecsLocal(data)}
				if data == nil {
					good := ecsLocal(ecsData(1, 24, 0, 198, 51, 100))
					opts = []dns.EDNS0{good, good}
				}
				out := auth.ServeDNS(&Request{Wire: dnstest.EDNSQuery(t, "www.pool.test.", dns.TypeA, 7, opts...), Remote: netip.MustParseAddrPort("192.0.2.1:53")}, nil)
				var m dns.Msg
				if err := m.Unpack(out); err != nil {
					t.Fatalf("reply %x: %v", out, err)
				}
				if m.Rcode != dns.RcodeFormatError || len(out) != headerLen {
					t.Errorf("rcode %s, %d bytes; want FORMERR, a bare header", dns.RcodeToString[m.Rcode], len(out))
				}
			})
		}
	}
}

// poolZone has a pool of eight members at www, a static name and a
// CNAME to the pool.
const poolZone = `$ORIGIN pool.test.
$TTL 3600
@       SOA ns1 hostmaster 1 7200 900 1209600 300
        NS  ns1
ns1     A   192.0.2.53
static  A   192.0.2.25
alias   CNAME www
www  60 A   192.0.2.10
     60 A   192.0.2.11
     60 A   192.0.2.12
     60 A   192.0.2.13
     60 A   192.0.2.14
     60 A   192.0.2.15
     60 A   192.0.2.16
     60 A   192.0.2.17
     60 AAAA 2001:db8::10
     60 AAAA 2001:db8::11
     60 AAAA 2001:db8::12
     60 AAAA 2001:db8::13
rr   60 A   192.0.2.20
     60 A   192.0.2.21
`

// stickyView serves poolZone with www as a pool of policy sticky and rr
// round-robin.
func stickyView(t testing.TB, sticky pool.Sticky) *View {
	t.Helper()
	set := loadSet(t, fstest.MapFS{"pool.test.zone": {Data: []byte(poolZone)}}, map[string]string{"pool.test.": "pool.test.zone"})
	v := buildView(t, set, map[string]poolSpec{"www.pool.test.": {policy: "sticky"}, "rr.pool.test.": {policy: "round-robin"}})
	v.Pools["www.pool.test."].Policy = sticky
	for _, p := range v.Pools {
		for i := range p.V4 {
			p.V4[i].Leads = new(pool.LeadCounter)
		}
		for i := range p.V6 {
			p.V6[i].Leads = new(pool.LeadCounter)
		}
	}
	return v
}

// replyECS returns the data of the reply's CLIENT-SUBNET option, read
// from the wire (nil: none), and the reply.
func replyECS(t testing.TB, out []byte) ([]byte, *dns.Msg) {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(out); err != nil {
		t.Fatalf("reply %x: %v", out, err)
	}
	opt := findOPT(out, headerLen+questionLen(out), len(m.Answer)+len(m.Ns)+len(m.Extra))
	if opt == nil {
		return nil, &m
	}
	rdata := opt[11:]
	for off := 0; off+4 <= len(rdata); {
		code, l := binary.BigEndian.Uint16(rdata[off:]), int(binary.BigEndian.Uint16(rdata[off+2:]))
		if code == optECS {
			return rdata[off+4 : off+4+l], &m
		}
		off += 4 + l
	}
	return nil, &m
}

// askECS sends qname with the CLIENT-SUBNET data ecs (nil: no option) from
// the resolver 192.0.2.1, and more options (a COOKIE) after it.
func askECS(t testing.TB, auth *Authority, qname string, qtype uint16, ecs []byte, more ...dns.EDNS0) ([]byte, *dns.Msg) {
	t.Helper()
	var opts []dns.EDNS0
	if ecs != nil {
		opts = append(opts, ecsLocal(ecs))
	}
	wire := dnstest.EDNSQuery(t, qname, qtype, 9, append(opts, more...)...)
	out := auth.ServeDNS(&Request{Wire: wire, Remote: netip.MustParseAddrPort("192.0.2.1:53")}, make([]byte, 0, 4096))
	return replyECS(t, out)
}

// TestECSEcho: FAMILY, SOURCE PREFIX-LENGTH and ADDRESS come back as
// received, byte for byte, with the SCOPE the answer depends on: the
// sticky prefix (never longer than the source), else 0; a query without
// the option gets none. Each twice: the second is a cache hit, patched.
func TestECSEcho(t *testing.T) {
	v6 := func(source uint8, addr ...byte) []byte { return ecsData(2, source, 0, addr...) }
	cases := []struct {
		name   string
		sticky pool.Sticky
		qname  string
		qtype  uint16
		ecs    []byte
		scope  uint8
	}{
		{"sticky /24", pool.Sticky{}, "www.pool.test.", dns.TypeA, ecsData(1, 24, 0, 198, 51, 100), 24},
		{"sticky /32: scope 24", pool.Sticky{}, "www.pool.test.", dns.TypeA, ecsData(1, 32, 0, 198, 51, 100, 9), 24},
		{"sticky /16: scope 16", pool.Sticky{}, "www.pool.test.", dns.TypeA, ecsData(1, 16, 0, 198, 51), 16},
		{"sticky /20 prefix 20", pool.Sticky{IPv4Prefix: 20}, "www.pool.test.", dns.TypeA, ecsData(1, 24, 0, 198, 51, 100), 20},
		{"sticky v6 /64: scope 56", pool.Sticky{}, "www.pool.test.", dns.TypeAAAA, v6(64, 0x20, 1, 0xd, 0xb8, 0, 1, 2, 3), 56},
		{"sticky v6 /48", pool.Sticky{}, "www.pool.test.", dns.TypeAAAA, v6(48, 0x20, 1, 0xd, 0xb8, 0, 1), 48},
		{"sticky v6 client, A query", pool.Sticky{}, "www.pool.test.", dns.TypeA, v6(56, 0x20, 1, 0xd, 0xb8, 0, 1, 2), 56},
		{"sticky through a CNAME", pool.Sticky{}, "alias.pool.test.", dns.TypeA, ecsData(1, 24, 0, 203, 0, 113), 24},
		{"sticky, source 0", pool.Sticky{}, "www.pool.test.", dns.TypeA, ecsData(1, 0, 0), 0},
		{"sticky, ecs: false", pool.Sticky{IgnoreECS: true}, "www.pool.test.", dns.TypeA, ecsData(1, 24, 0, 198, 51, 100), 0},
		{"round-robin pool", pool.Sticky{}, "rr.pool.test.", dns.TypeA, ecsData(1, 24, 0, 198, 51, 100), 0},
		{"static", pool.Sticky{}, "static.pool.test.", dns.TypeA, ecsData(1, 24, 0, 198, 51, 100), 0},
		{"nxdomain", pool.Sticky{}, "nope.pool.test.", dns.TypeA, ecsData(1, 24, 0, 198, 51, 100), 0},
		{"refused", pool.Sticky{}, "www.elsewhere.test.", dns.TypeA, ecsData(1, 24, 0, 198, 51, 100), 0},
		{"no option", pool.Sticky{}, "www.pool.test.", dns.TypeA, nil, 0},
		{"no option, static", pool.Sticky{}, "static.pool.test.", dns.TypeA, nil, 0},
	}
	for _, tc := range cases {
		for _, cookie := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cookie=%v", tc.name, cookie), func(t *testing.T) {
				auth := NewAuthority(stickyView(t, tc.sticky), 0, nil)
				var more []dns.EDNS0
				if cookie {
					auth.SetCookies(NewCookies([CookieSecretLen]byte{1}, nil))
					more = append(more, dnstest.Cookie("0102030405060708"))
				}
				for i := range 3 {
					got, m := askECS(t, auth, tc.qname, tc.qtype, tc.ecs, more...)
					if tc.ecs == nil {
						if got != nil {
							t.Fatalf("reply has CLIENT-SUBNET %x to a query without one", got)
						}
						continue
					}
					want := append([]byte(nil), tc.ecs...)
					want[3] = tc.scope
					if !bytes.Equal(got, want) {
						t.Fatalf("query %d: CLIENT-SUBNET %x, want %x", i, got, want)
					}
					if cookie && dnstest.ReplyCookie(m) == "" {
						t.Fatalf("query %d: no COOKIE in the reply", i)
					}
				}
				wantMisses := uint64(1)
				switch tc.name {
				case "refused":
					return // not cached
				case "round-robin pool":
					wantMisses = 2 // each of its two answers is packed once
				}
				if hits, misses := auth.CacheStats(); misses != wantMisses || hits != 3-wantMisses {
					t.Errorf("%d hits, %d misses; want %d misses of 3", hits, misses, wantMisses)
				}
			})
		}
	}
}

// TestECSHitPatchesTheAddress: one cached reply serves many subnets of
// one shape; each gets its own ADDRESS and SOURCE back.
func TestECSHitPatchesTheAddress(t *testing.T) {
	auth := NewAuthority(stickyView(t, pool.Sticky{}), 0, nil)
	for i := range 50 {
		// Sources 17 to 24 all carry 3 octets: one key shape.
		source := uint8(17 + i%8)
		addr := []byte{10, byte(i), byte(i*8) & (0xFF << (24 - source))}
		ecs := ecsData(1, source, 0, addr...)
		got, _ := askECS(t, auth, "static.pool.test.", dns.TypeA, ecs)
		if !bytes.Equal(got, ecs) {
			t.Fatalf("query %d: CLIENT-SUBNET %x, want %x", i, got, ecs)
		}
	}
	if hits, misses := auth.CacheStats(); misses != 1 || hits != 49 {
		t.Errorf("%d hits, %d misses; want 49, 1: static answers with ECS are cached once", hits, misses)
	}
}

// TestStickyByECSSubnet: clients in one /24 get one first member whatever
// their host bits, from the cache as from the full path; the /24s spread
// over the members; without ECS (or with ecs: false) the resolver's
// address decides, as before.
func TestStickyByECSSubnet(t *testing.T) {
	first := func(auth *Authority, ecs []byte) string {
		_, m := askECS(t, auth, "www.pool.test.", dns.TypeA, ecs)
		if a := dnstest.AnswerA(m); len(a) > 0 {
			return a[0]
		}
		t.Fatal("no answer")
		return ""
	}
	cached := NewAuthority(stickyView(t, pool.Sticky{}), 0, nil)
	uncached := NewAuthority(stickyView(t, pool.Sticky{}), 0, nil)
	uncached.SetCacheBytes(0)
	firsts := map[string]int{}
	for net := range 64 {
		var want string
		for host := range 4 {
			ecs := ecsData(1, 32, 0, 203, 0, byte(net), byte(host*50))
			got, ref := first(cached, ecs), first(uncached, ecs)
			if got != ref {
				t.Fatalf("203.0.%d.%d: cached answer leads with %s, full path with %s", net, host*50, got, ref)
			}
			if host == 0 {
				want = got
			} else if got != want {
				t.Fatalf("203.0.%d.0/24: %s and %s first", net, want, got)
			}
		}
		firsts[want]++
	}
	if len(firsts) < 6 {
		t.Errorf("64 subnets over 8 members lead with only %v", firsts)
	}
	if hits, misses := cached.CacheStats(); misses != 64 || hits != 3*64 {
		t.Errorf("%d hits, %d misses; want one miss per subnet", hits, misses)
	}

	// The resolver's subnet without ECS, with source 0 and with ecs:
	// false: all the same answer, the resolver's.
	ignoring := NewAuthority(stickyView(t, pool.Sticky{IgnoreECS: true}), 0, nil)
	resolver := first(uncached, nil)
	for _, tc := range []struct {
		name string
		auth *Authority
		ecs  []byte
	}{
		{"no ECS, cached", cached, nil},
		{"source 0", cached, ecsData(1, 0, 0)},
		{"ecs: false", ignoring, ecsData(1, 24, 0, 203, 0, 7)},
		{"ecs: false, cached", ignoring, ecsData(1, 24, 0, 203, 0, 7)},
	} {
		if got := first(tc.auth, tc.ecs); got != resolver {
			t.Errorf("%s: %s first, want the resolver's %s", tc.name, got, resolver)
		}
	}
}

// TestStickyCacheFollowsHealth: a sticky answer cached per subnet is not
// served once its member is drained.
func TestStickyCacheFollowsHealth(t *testing.T) {
	auth := NewAuthority(stickyView(t, pool.Sticky{}), 0, nil)
	ecs := ecsData(1, 24, 0, 198, 51, 100)
	_, m := askECS(t, auth, "www.pool.test.", dns.TypeA, ecs)
	lead := dnstest.AnswerA(m)[0]
	auth.Serve(auth.View().WithOverrides(NewOverrides(map[netip.Addr]Override{netip.MustParseAddr(lead): {Mode: OverrideDrain}}, 1)))
	_, m = askECS(t, auth, "www.pool.test.", dns.TypeA, ecs)
	for _, a := range dnstest.AnswerA(m) {
		if a == lead {
			t.Fatalf("drained %s still answered: %v", lead, dnstest.AnswerA(m))
		}
	}
}

// TestStickyCacheBounded: a flood of distinct client subnets evicts, and
// the cache stays within its bound.
func TestStickyCacheBounded(t *testing.T) {
	const bound = 256 << 10
	auth := NewAuthority(stickyView(t, pool.Sticky{}), 0, nil)
	auth.SetCacheBytes(bound)
	for i := range 20000 {
		askECS(t, auth, "www.pool.test.", dns.TypeA, ecsData(1, 24, 0, 10, byte(i>>8), byte(i)))
		if i%1000 == 999 {
			if n, _ := auth.CacheUse(); n > bound {
				t.Fatalf("after %d subnets the cache holds %d bytes, over its bound of %d", i+1, n, bound)
			}
		}
	}
	n, entries := auth.CacheUse()
	if entries < 100 || n > bound {
		t.Errorf("%d entries in %d bytes; want many, within %d", entries, n, bound)
	}
}

// TestECSCacheHitAllocs: an ECS query to a sticky pool is answered from
// the cache without allocating.
func TestECSCacheHitAllocs(t *testing.T) {
	auth := NewAuthority(stickyView(t, pool.Sticky{}), 0, nil)
	for _, qname := range []string{"www.pool.test.", "static.pool.test.", "rr.pool.test."} {
		req := &Request{Wire: dnstest.EDNSQuery(t, qname, dns.TypeA, 1, ecsLocal(ecsData(1, 24, 0, 198, 51, 100))), Remote: netip.MustParseAddrPort("192.0.2.1:53")}
		out := make([]byte, 0, 4096)
		auth.ServeDNS(req, out)
		auth.ServeDNS(req, out)
		if n := testing.AllocsPerRun(100, func() { auth.ServeDNS(req, out) }); n != 0 {
			t.Errorf("%s: %.1f allocations per cached ECS answer", qname, n)
		}
	}
}

// TestStickyCacheConcurrent: many goroutines asking for many subnets
// while the overrides change get the full path's answer for their
// subnet (run with -race).
func TestStickyCacheConcurrent(t *testing.T) {
	view := stickyView(t, pool.Sticky{})
	ref := NewAuthority(view, 0, nil)
	ref.SetCacheBytes(0)
	want := map[int]string{}
	for i := range 50 {
		_, m := askECS(t, ref, "www.pool.test.", dns.TypeA, ecsData(1, 24, 0, 10, 0, byte(i)))
		want[i] = dnstest.AnswerA(m)[0]
	}
	auth := NewAuthority(view, 0, nil)
	done := make(chan string, 4)
	for g := range 4 {
		go func() {
			for n := range 500 {
				i := (g*7 + n) % 50
				wire := dnstest.EDNSQuery(t, "www.pool.test.", dns.TypeA, uint16(n), ecsLocal(ecsData(1, 24, 0, 10, 0, byte(i))))
				out := auth.ServeDNS(&Request{Wire: wire, Remote: netip.MustParseAddrPort("192.0.2.1:53")}, make([]byte, 0, 4096))
				var m dns.Msg
				if err := m.Unpack(out); err != nil {
					done <- err.Error()
					return
				}
				if got := dnstest.AnswerA(&m); len(got) == 0 || got[0] != want[i] {
					done <- fmt.Sprintf("subnet %d: %v, want %s first", i, got, want[i])
					return
				}
				if g == 0 && n%100 == 0 {
					auth.Serve(auth.View().WithOverrides(NewOverrides(nil, uint64(n+1)))) // a new plan: the cache rebuilds
				}
			}
			done <- ""
		}()
	}
	for range 4 {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
