package xfr

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

func TestAllowed(t *testing.T) {
	rule := func(prefix, key string) Rule {
		r, err := ParseRule(prefix, key)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	z := Zone{Origin: "example.test.", Allow: []Rule{
		rule("192.0.2.53", "XFR-Key"), // this address, with this key
		rule("198.51.100.0/24", ""),   // these, signed or not
		rule("", "any-key."),          // anyone with this key
	}}
	for _, tc := range []struct {
		addr, key string
		want      bool
	}{
		{"192.0.2.53", "xfr-key.", true},
		{"192.0.2.53", "", false},
		{"192.0.2.53", "other.", false},
		{"192.0.2.54", "xfr-key.", false},
		{"::ffff:192.0.2.53", "xfr-key.", true},
		{"198.51.100.7", "", true},
		{"198.51.100.7", "xfr-key.", true},
		{"203.0.113.1", "any-key.", true},
		{"203.0.113.1", "", false},
	} {
		if got := z.Allowed(netip.MustParseAddr(tc.addr), tc.key); got != tc.want {
			t.Errorf("Allowed(%s, %q) = %v, want %v", tc.addr, tc.key, got, tc.want)
		}
	}
	if (&Zone{}).Allowed(netip.MustParseAddr("127.0.0.1"), "") {
		t.Error("an empty ACL allows")
	}
}

// downHealth judges the members at the addresses in it down.
type downHealth map[netip.Addr]bool

func (d downHealth) Eligible(m *pool.Member) bool { return !d[m.Addr] }
func (downHealth) Drained(*pool.Member) bool      { return false }
func (d downHealth) Failing(m *pool.Member) bool  { return d[m.Addr] }

const testZone = `$ORIGIN example.test.
$TTL 3600
@    IN SOA ns1 h 100 7200 900 1209600 300
     IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.10
www  IN A   192.0.2.11
www  IN A   192.0.2.12
www  IN TXT "stays"
`

// filteredFixture is a Server over testZone with a pool at www (TTL 30)
// judged by a health it lets the test change; update recomputes.
type filteredFixture struct {
	s      *Server
	health atomic.Pointer[downHealth]
	set    *zones.Set
	pools  map[string]*pool.Pool
	cfg    []Zone
}

func newFiltered(t *testing.T, journal int, restored map[string]uint32) *filteredFixture {
	t.Helper()
	z, err := zones.Load(zones.Source{Origin: "example.test.", FS: fstest.MapFS{"z": {Data: []byte(testZone)}}, Path: "z", Display: "z"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := zones.NewSet(z)
	if err != nil {
		t.Fatal(err)
	}
	p := &pool.Pool{Name: "www.example.test.", TTL: 30}
	for _, rr := range z.RRset("www.example.test.", dns.TypeA) {
		c := dns.Copy(rr)
		c.Header().Ttl = 30
		p.V4 = append(p.V4, pool.Member{Addr: netip.MustParseAddr(rr.(*dns.A).A.String()), RR: c, Weight: 1, Checked: true})
	}
	f := &filteredFixture{set: set, pools: map[string]*pool.Pool{p.Name: p}}
	f.health.Store(&downHealth{})
	f.s = NewServer(Options{JournalRecords: journal, Health: func() pool.Health { return *f.health.Load() }})
	f.s.Restore(restored)
	f.cfg = []Zone{{Origin: "example.test.", Filtered: true, Allow: []Rule{{}}}}
	f.s.Set(set, f.pools, f.cfg)
	return f
}

// down marks addrs down and recomputes, as Run does after a poke.
func (f *filteredFixture) down(addrs ...string) {
	h := downHealth{}
	for _, a := range addrs {
		h[netip.MustParseAddr(a)] = true
	}
	f.health.Store(&h)
	f.s.mu.Lock()
	f.s.updateLocked(false)
	f.s.mu.Unlock()
}

func (f *filteredFixture) transfer(t *testing.T, typ uint16, serial uint32) []string {
	t.Helper()
	rrs, ok := f.s.Transfer(&answer.TransferRequest{Zone: "example.test.", Type: typ, Serial: serial, TCP: true, Remote: netip.MustParseAddr("127.0.0.1")})
	if !ok {
		t.Fatal("refused")
	}
	var out []string
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			out = append(out, fmt.Sprintf("SOA %d", soa.Serial))
			continue
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func TestFilteredIXFR(t *testing.T) {
	f := newFiltered(t, 0, nil)
	if got := f.s.Serials()["example.test."]; got != 100 {
		t.Fatalf("first serial %d, want the file's, 100", got)
	}
	full := f.transfer(t, dns.TypeAXFR, 0)
	want := []string{"SOA 100", "example.test. 3600 IN NS ns1.example.test.", "ns1.example.test. 3600 IN A 192.0.2.53",
		`www.example.test. 3600 IN TXT "stays"`,
		"www.example.test. 30 IN A 192.0.2.10", "www.example.test. 30 IN A 192.0.2.11", "www.example.test. 30 IN A 192.0.2.12", "SOA 100"}
	if strings.Join(full, "\n") != strings.Join(want, "\n") {
		t.Fatalf("AXFR:\n%s\nwant:\n%s", strings.Join(full, "\n"), strings.Join(want, "\n"))
	}
	f.down("192.0.2.11")
	f.down("192.0.2.11") // no change: no serial
	f.down("192.0.2.11", "192.0.2.12")
	f.down("192.0.2.12")
	for _, tc := range []struct {
		name   string
		serial uint32
		want   []string
	}{
		{"current", 103, []string{"SOA 103"}},
		{"newer than current", 200, []string{"SOA 103"}},
		{"one change", 102, []string{"SOA 103", "SOA 102", "SOA 103", "www.example.test. 30 IN A 192.0.2.11", "SOA 103"}},
		{"from the start", 100, []string{"SOA 103",
			"SOA 100", "www.example.test. 30 IN A 192.0.2.11", "SOA 101",
			"SOA 101", "www.example.test. 30 IN A 192.0.2.12", "SOA 102",
			"SOA 102", "SOA 103", "www.example.test. 30 IN A 192.0.2.11", "SOA 103"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.transfer(t, dns.TypeIXFR, tc.serial); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("IXFR from %d:\n%s\nwant:\n%s", tc.serial, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	if got := f.transfer(t, dns.TypeIXFR, 99); len(got) != 7 || got[0] != "SOA 103" {
		t.Errorf("IXFR from a serial the journal never had: %v, want the zone", got)
	}
}

// TestFilteredJournalBound: past its bound the journal drops the oldest
// differences, and IXFR from before them is a full transfer.
func TestFilteredJournalBound(t *testing.T) {
	f := newFiltered(t, 7, nil) // room for two differences of 3 records
	f.down("192.0.2.10")
	f.down()
	f.down("192.0.2.10")
	if got := f.transfer(t, dns.TypeIXFR, 100); len(got) != 7 {
		t.Errorf("IXFR from a dropped serial: %v, want the whole zone", got)
	}
	if got := f.transfer(t, dns.TypeIXFR, 101); len(got) != 8 {
		t.Errorf("IXFR from a kept serial: %v, want 2 differences", got)
	}
}

// TestFilteredSerialsGrow: a restored serial above the file's is the base
// of the next; a zone read again unchanged keeps its serial and journal,
// a changed one makes a new serial, never lower.
func TestFilteredSerialsGrow(t *testing.T) {
	f := newFiltered(t, 0, map[string]uint32{"example.test.": 5000})
	if got := f.s.Serials()["example.test."]; got != 5001 {
		t.Fatalf("serial after a restart %d, want 5001", got)
	}
	f.down("192.0.2.10")
	reload := func(text string) {
		z, err := zones.Load(zones.Source{Origin: "example.test.", FS: fstest.MapFS{"z": {Data: []byte(text)}}, Path: "z", Display: "z"})
		if err != nil {
			t.Fatal(err)
		}
		set, _ := zones.NewSet(z)
		f.s.Set(set, f.pools, f.cfg)
	}
	reload(testZone)
	if got := f.s.Serials()["example.test."]; got != 5002 {
		t.Fatalf("serial after reading the zone again %d, want 5002", got)
	}
	if got := f.transfer(t, dns.TypeIXFR, 5001); len(got) != 5 {
		t.Errorf("IXFR after reading the zone again: %v, want the one change", got)
	}
	reload(strings.Replace(testZone, "stays", "changed", 1))
	if got := f.s.Serials()["example.test."]; got != 5003 {
		t.Fatalf("serial after a reload %d, want 5002", got)
	}
	if got := f.transfer(t, dns.TypeIXFR, 5002); len(got) != 7 {
		t.Errorf("IXFR across a changed zone: %v, want the whole zone", got)
	}
}

// TestFilteredIXFRSizeOfBigZone: after one health change the IXFR of a
// 1,000,000-record zone is that change: five records, a few hundred bytes.
func TestFilteredIXFRSizeOfBigZone(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a 1,000,000-record zone")
	}
	var b strings.Builder
	b.WriteString(testZone)
	for i := range 1_000_000 {
		fmt.Fprintf(&b, "h%d IN A 10.%d.%d.%d\n", i, i/62500%250, i/250%250, i%250+1)
	}
	z, err := zones.Load(zones.Source{Origin: "example.test.", FS: fstest.MapFS{"z": {Data: []byte(b.String())}}, Path: "z", Display: "z"})
	if err != nil {
		t.Fatal(err)
	}
	f := newFiltered(t, 0, nil)
	set, _ := zones.NewSet(z)
	f.set = set
	f.s.Set(set, f.pools, f.cfg)
	from := f.s.Serials()["example.test."]
	f.down("192.0.2.11")
	rrs, ok := f.s.Transfer(&answer.TransferRequest{Zone: "example.test.", Type: dns.TypeIXFR, Serial: from, TCP: true, Remote: netip.MustParseAddr("127.0.0.1")})
	if !ok {
		t.Fatal("refused")
	}
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeIXFR)
	m.Answer = rrs
	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs) != 5 || len(wire) > 400 {
		t.Errorf("IXFR after one change: %d records, %d bytes; want 5 records, a few hundred bytes", len(rrs), len(wire))
	}
	t.Logf("IXFR of a %d-record zone after one change: %d records, %d bytes", z.Records(), len(rrs), len(wire))
}
