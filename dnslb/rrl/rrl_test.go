package rrl

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestLimiter(t testing.TB, mod func(*Config)) (*Limiter, *fakeClock) {
	t.Helper()
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := Config{
		ResponsesPerSecond: 5,
		Slip:               2,
		IPv4Prefix:         DefaultIPv4Prefix,
		IPv6Prefix:         DefaultIPv6Prefix,
		Exempt:             []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		TableSize:          1024,
		Now:                clock.Now,
	}
	if mod != nil {
		mod(&c)
	}
	l, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

var (
	www  = NewClass(Answer, "www.example.test.")
	mail = NewClass(Answer, "mail.example.test.")
)

// checks makes n checks and returns the actions taken, as a string of
// s (send), t (truncate: slip) and d (drop).
func checks(l *Limiter, client string, c Class, n int) string {
	a := netip.MustParseAddr(client)
	var b strings.Builder
	for range n {
		b.WriteByte("std"[l.Check(a, c)])
	}
	return b.String()
}

func TestRate(t *testing.T) {
	l, clock := newTestLimiter(t, nil) // 5/s, slip 2
	// A burst of one second's worth, then limited.
	if got := checks(l, "192.0.2.1", www, 9); got != "sssssdtdt" {
		t.Fatalf("burst: %s, want sssssdtdt", got)
	}
	// A fifth of a second earns one response.
	clock.Advance(200 * time.Millisecond)
	if got := checks(l, "192.0.2.1", www, 3); got != "sdt" {
		t.Fatalf("after 1/rate: %s, want sdt", got)
	}
	// Limited responses used no budget: a second later, a full burst.
	clock.Advance(time.Second)
	if got := checks(l, "192.0.2.1", www, 6); got != "sssssd" {
		t.Fatalf("after 1s: %s, want sssssd", got)
	}
	// Long idle: no more than one burst.
	clock.Advance(time.Hour)
	if got := checks(l, "192.0.2.1", www, 6); got != "sssssd" {
		t.Fatalf("after 1h: %s, want sssssd", got)
	}
}

// TestSteadyRate: a client asking twice its rate for 10 s gets its rate,
// plus the first burst.
func TestSteadyRate(t *testing.T) {
	l, clock := newTestLimiter(t, func(c *Config) { c.ResponsesPerSecond = 20 })
	sent := 0
	for range 400 { // 40/s for 10 s
		if l.Check(netip.MustParseAddr("198.51.100.7"), www) == Send {
			sent++
		}
		clock.Advance(25 * time.Millisecond)
	}
	if want := 20*10 + 20; sent < want-1 || sent > want+1 {
		t.Errorf("sent %d of 400, want about %d", sent, want)
	}
}

func TestSlip(t *testing.T) {
	for _, tc := range []struct {
		slip int
		want string
	}{
		{0, "dddddd"},
		{1, "tttttt"},
		{2, "dtdtdt"},
		{3, "ddtddt"},
	} {
		l, _ := newTestLimiter(t, func(c *Config) { c.Slip = tc.slip; c.ResponsesPerSecond = 1 })
		if got := checks(l, "192.0.2.1", www, 7); got != "s"+tc.want {
			t.Errorf("slip %d: %s, want s%s", tc.slip, got, tc.want)
		}
	}
}

func TestExempt(t *testing.T) {
	l, _ := newTestLimiter(t, func(c *Config) {
		c.Exempt = append(c.Exempt, netip.MustParsePrefix("2001:db8:aa::/48"), netip.MustParsePrefix("::ffff:203.0.113.0/120"))
	})
	for _, client := range []string{"127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "2001:db8:aa:1::53", "203.0.113.9"} {
		if got := checks(l, client, www, 20); got != strings.Repeat("s", 20) {
			t.Errorf("%s is exempt but got %s", client, got)
		}
	}
	for _, client := range []string{"128.0.0.1", "::2", "2001:db8:ab::53", "203.0.114.9"} {
		if got := checks(l, client, www, 6); got != "sssssd" {
			t.Errorf("%s is not exempt but got %s", client, got)
		}
	}
	if got := l.Check(netip.Addr{}, www); got != Send {
		t.Errorf("invalid address: %v, want send", got)
	}
}

func TestPrefixAggregation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		v4, v6     int
		a, b       string
		sameBucket bool
	}{
		{"same /24", 24, 56, "192.0.2.1", "192.0.2.254", true},
		{"next /24", 24, 56, "192.0.2.1", "192.0.3.1", false},
		{"/32", 32, 56, "192.0.2.1", "192.0.2.2", false},
		{"/16", 16, 56, "192.0.2.1", "192.0.99.2", true},
		{"mapped", 24, 56, "::ffff:192.0.2.1", "192.0.2.9", true},
		{"same /56", 24, 56, "2001:db8:0:ff::1", "2001:db8:0:1:ffff::2", true},
		{"next /56", 24, 56, "2001:db8:0:ff::1", "2001:db8:0:100::1", false},
		{"/64", 24, 64, "2001:db8:0:ff::1", "2001:db8:0:fe::1", false},
		{"/120", 24, 120, "2001:db8::1", "2001:db8::ff", true},
		{"/128", 24, 128, "2001:db8::1", "2001:db8::2", false},
		{"v4 and v6", 24, 56, "0.0.0.1", "::1:0:0:1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLimiter(t, func(c *Config) { c.IPv4Prefix, c.IPv6Prefix, c.Exempt = tc.v4, tc.v6, nil })
			checks(l, tc.a, www, 5) // a's budget is spent
			got := checks(l, tc.b, www, 1)
			if want := map[bool]string{true: "d", false: "s"}[tc.sameBucket]; got != want {
				t.Errorf("%s after %s's burst: %s, want %s", tc.b, tc.a, got, want)
			}
		})
	}
}

func TestCategoriesAndNames(t *testing.T) {
	l, _ := newTestLimiter(t, nil)
	checks(l, "192.0.2.1", www, 5) // spent
	for _, tc := range []struct {
		name string
		c    Class
		want string
	}{
		{"same class", www, "d"},
		{"same name in other letter case", NewClass(Answer, "WWW.Example.TEST."), "t"},
		{"another name", mail, "s"},
		{"same name, other category", NewClass(NoData, "www.example.test."), "s"},
		{"nxdomain", NewClass(NXDomain, "example.test."), "s"},
		{"error without a name", NewClass(Error, ""), "s"},
	} {
		if got := checks(l, "192.0.2.1", tc.c, 1); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if NewClass(Error, "") != (Class{}) {
		t.Error("the zero Class is not an error without a name")
	}
}

// TestTableBound: the table never holds more than its size, however many
// accounts are charged, and a stream of one-off accounts does not evict an
// account in debt.
func TestTableBound(t *testing.T) {
	l, _ := newTestLimiter(t, func(c *Config) { c.TableSize = 64; c.Exempt = nil })
	if l.TableSize() != 64 {
		t.Fatalf("table size %d, want 64", l.TableSize())
	}
	hot := netip.MustParseAddr("192.0.2.1")
	for range 5 {
		l.Check(hot, www)
	}
	for i := range 100000 {
		c := NewClass(Answer, "")
		c.Name = uint64(i) + 1
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 1})
		l.Check(a, c)
		if n := l.Entries(); i%1000 == 0 && n > 64 {
			t.Fatalf("%d entries in a table of 64", n)
		}
	}
	if n := l.Entries(); n > 64 || n < 32 {
		t.Errorf("%d entries after 100000 accounts, want at most 64 (and most in use)", n)
	}
	if got := checks(l, "192.0.2.1", www, 2); got != "dt" && got != "td" {
		t.Errorf("the account in debt was evicted by one-off accounts: %s", got)
	}
	if size, want := len(l.sets)*ways, 64; size != want {
		t.Errorf("table grew to %d", size)
	}
}

func TestTableSizeRounding(t *testing.T) {
	for _, tc := range []struct{ size, want int }{{0, DefaultTableSize}, {64, 64}, {100, 128}, {1 << 20, 1 << 20}} {
		l, _ := newTestLimiter(t, func(c *Config) { c.TableSize = tc.size })
		if got := l.TableSize(); got != tc.want {
			t.Errorf("table_size %d: %d entries, want %d", tc.size, got, tc.want)
		}
	}
}

// TestWrappedTAT: an account idle for so long that its TAT wrapped is
// idle, not in debt.
func TestWrappedTAT(t *testing.T) {
	l, clock := newTestLimiter(t, func(c *Config) { c.ResponsesPerSecond = MaxResponsesPerSecond })
	checks(l, "192.0.2.1", www, MaxResponsesPerSecond+1)
	unit := time.Second / MaxResponsesPerSecond
	for _, units := range []int64{1 << 36, 1<<36 + 1<<20, 1<<37 - 5} {
		clock.Advance(time.Duration(units) * unit)
		if got := checks(l, "192.0.2.1", www, 1); got != "s" {
			t.Errorf("after %d more units: %s, want s", units, got)
		}
	}
}

func TestConcurrent(t *testing.T) {
	l, clock := newTestLimiter(t, func(c *Config) { c.ResponsesPerSecond = 100; c.Slip = 1 })
	const workers, each = 8, 2000
	var sent, slipped atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				a := netip.AddrFrom4([4]byte{192, 0, 2, byte(w)})
				switch l.Check(a, Class{Category: Answer, Name: uint64(i % 3)}) {
				case Send:
					sent.Add(1)
				case Slip:
					slipped.Add(1)
				}
				if w == 0 && i%500 == 0 {
					clock.Advance(100 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	// 3 accounts, each a burst of 100 and 10/100ms for 400ms.
	if s := sent.Load(); s < 3*100 || s > 3*(100+40)+workers*attempts {
		t.Errorf("sent %d", s)
	}
	if sent.Load()+slipped.Load() != workers*each {
		t.Errorf("sent %d + slipped %d != %d (slip 1 never drops)", sent.Load(), slipped.Load(), workers*each)
	}
}

func TestValidate(t *testing.T) {
	good := Config{ResponsesPerSecond: 20, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.ResponsesPerSecond = 0 }, "responses_per_second: 0 is outside 1-10000"},
		{func(c *Config) { c.ResponsesPerSecond = 10001 }, "responses_per_second"},
		{func(c *Config) { c.Slip = -1 }, "slip: -1"},
		{func(c *Config) { c.Slip = 101 }, "slip: 101"},
		{func(c *Config) { c.IPv4Prefix = 33 }, "ipv4_prefix: 33"},
		{func(c *Config) { c.IPv6Prefix = 0 }, "ipv6_prefix: 0"},
		{func(c *Config) { c.TableSize = 10 }, "table_size: 10"},
		{func(c *Config) { c.Exempt = []netip.Prefix{{}} }, "exempt[0]"},
	} {
		c := good
		tc.mod(&c)
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
	if _, err := New(good); err != nil {
		t.Errorf("good config: %v", err)
	}
}

// BenchmarkCheck measures the common path: clients within their rate.
// hot: one account, as in the answer path's benchmark. warm: 256 accounts (in cache) on a clock that moves a second each time
// it is read, so that a budget spent is refilled at the next read (one in
// 10000 checks per account). cold: 65536 /24s on the real clock, a table
// too big for the cache (a lookup is a cache miss, as on a busy server).
func BenchmarkCheck(b *testing.B) {
	for _, tc := range []struct {
		name    string
		clients int
		now     func() time.Time
	}{
		{"hot", 1, func() func() time.Time {
			var ns atomic.Int64
			return func() time.Time { return time.Unix(0, ns.Add(int64(time.Second))) }
		}()},
		{"warm", 256, func() func() time.Time {
			var ns atomic.Int64
			return func() time.Time { return time.Unix(0, ns.Add(int64(time.Second))) }
		}()},
		{"cold", 1 << 16, nil},
		// limited: one client flooding, on the real clock: nearly every
		// check is over the rate (a clock read, and a slip count).
		{"limited", 1, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := New(Config{ResponsesPerSecond: MaxResponsesPerSecond, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56,
				Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Now: tc.now})
			if err != nil {
				b.Fatal(err)
			}
			addrs := make([]netip.Addr, tc.clients)
			for i := range addrs {
				addrs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
			}
			b.ReportAllocs()
			i, limited := 0, 0
			for b.Loop() {
				if l.Check(addrs[i%tc.clients], www) != Send {
					limited++
				}
				i++
			}
			b.ReportMetric(float64(limited)/float64(i), "limited/op")
		})
	}
}
