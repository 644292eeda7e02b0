package dnslb

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// buildProblems is what one build of load found: the problems that stop
// it (or of zones that did not load) and the warnings.
func buildProblems(g *Generation, err error) (Problems, Problems) {
	if err != nil {
		return ProblemsOf(err), nil
	}
	return g.Failed, g.Warnings
}

// TestBuildSameProblems: the one build that `dnslb check`, start-up and
// reload share finds the same problems, with the same files, lines and
// keys, for the same input, however often it runs: check twice, a
// Runtime starting on it, and a running Runtime reloading into it (which
// keeps serving its previous zone meanwhile).
func TestBuildSameProblems(t *testing.T) {
	for _, tc := range []struct {
		name     string
		zone     string // lines added to the zone file
		change   func(*Config)
		want     string // in the problems' text
		warnings bool   // the build succeeds with warnings
	}{
		{name: "zone syntax", zone: "bad A 1.2.3.999\n", want: "z.zone:7"},
		{name: "pool below a delegation", zone: "sub NS ns.elsewhere.test.\n", want: "below the delegation at sub.example.test.",
			change: func(c *Config) { c.Pools = map[string]PoolConfig{"www.sub.example.test.": {}} }},
		{name: "member not in the zone", want: "192.0.2.50", change: func(c *Config) {
			c.Pools = map[string]PoolConfig{"www.example.test.": {Members: map[string]MemberConfig{"192.0.2.50": {}}}}
		}},
		{name: "pool outside every zone", want: "www.other.test. is in none of the configured zones", change: func(c *Config) {
			c.Pools = map[string]PoolConfig{"www.other.test.": {}}
		}},
		{name: "pool without records", want: "no A or AAAA records at nothing.example.test.", change: func(c *Config) {
			c.Pools = map[string]PoolConfig{"nothing.example.test.": {}}
		}},
		{name: "bad policy", want: "policy", change: func(c *Config) {
			c.Pools = map[string]PoolConfig{"www.example.test.": {Policy: "fastest"}}
		}},
		{name: "bad TSIG key", want: "tsig", change: func(c *Config) {
			c.TSIG.Keys = []TSIGKeyConfig{{Name: "k.", Algorithm: "hmac-sha256", Secret: "not base64!"}}
		}},
		{name: "deprecated cache_size", want: "cache_size", warnings: true, change: func(c *Config) { c.CacheSize = 100 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeZone(t, dir, "1", "")
			fc := baseConfig(dir)
			rt := newTestRuntime(t, dir, fc, zerolog.Nop())

			writeZone(t, dir, "2", tc.zone)
			if tc.change != nil {
				fc.set(tc.change)
			}
			checked, checkedWarn := buildProblems(Check(fc.load))
			again, againWarn := buildProblems(Check(fc.load))
			if !reflect.DeepEqual(checked, again) || !reflect.DeepEqual(checkedWarn, againWarn) {
				t.Fatalf("check twice:\n%v / %v\n%v / %v", checked, checkedWarn, again, againWarn)
			}
			got := checked
			if tc.warnings {
				got = checkedWarn
				if len(checked) > 0 {
					t.Fatalf("check: %v, want only warnings", checked)
				}
			}
			if len(got) == 0 || !strings.Contains(got.Error(), tc.want) {
				t.Fatalf("check: %v, want a problem with %q", got, tc.want)
			}

			var started Problems
			if srt, err := NewRuntime(RuntimeOptions{Load: fc.load, Log: zerolog.Nop(), StateFile: filepath.Join(t.TempDir(), "state")}); err == nil {
				started = srt.cur.Load().Warnings
				srt.Shutdown(context.Background())
			} else {
				started = ProblemsOf(err)
			}
			reloaded := ProblemsOf(rt.Reload())
			if tc.warnings {
				reloaded = rt.cur.Load().Warnings
			}
			if !reflect.DeepEqual(started, got) {
				t.Errorf("start-up:\n%v\ncheck:\n%v", started, got)
			}
			if !reflect.DeepEqual(reloaded, got) {
				t.Errorf("reload:\n%v\ncheck:\n%v", reloaded, got)
			}
		})
	}
}

// consistencyZone is the zone of TestServedGenerationConsistent: four
// pool members whose TTL says the serial of the zone they came from.
const consistencyZone = `$TTL 300
@ SOA ns1 hostmaster %[1]d 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.1
www %[2]d A 192.0.2.10
www %[2]d A 192.0.2.11
www %[2]d A 192.0.2.12
www %[2]d A 192.0.2.13
`

// servedPair is what one answer shows of the generation it came from: the
// zone's serial (by its TTL) and the members answered.
type servedPair struct {
	serial  uint32
	members string
}

// TestServedGenerationConsistent: while reloads and override changes
// race with queries, every answer comes from one generation that was
// served: the zone of one and the overrides of the same, never the zone
// of one and the overrides of another; and the view the answer path
// serves is the Runtime's generation's, with its overrides. Each reload
// serves a new zone serial, each override change drains another member
// (round the three of .11-.13), so every pair of serial and drained member
// that the writers commit is known, and a pair mixing two generations
// is not among them. Run it with -race.
func TestServedGenerationConsistent(t *testing.T) {
	dir := t.TempDir()
	write := func(serial uint32) {
		body := fmt.Sprintf(consistencyZone, serial, 1000+serial)
		if err := os.WriteFile(filepath.Join(dir, "z.zone"), []byte(body), 0o644); err != nil {
			t.Error(err)
		}
	}
	write(1)
	fc := baseConfig(dir)
	fc.set(func(c *Config) { c.Pools = map[string]PoolConfig{"www.example.test.": {TTL: 1 << 20}} })
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	members := []netip.Addr{netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.13")}

	// What a generation answers: every member but the drained ones, in
	// address order.
	expect := func(g *Generation) servedPair {
		var up []string
		for _, m := range g.View.Pools["www.example.test."].Members() {
			if !g.Overrides().Has(m.Addr) {
				up = append(up, m.Addr.String())
			}
		}
		slices.Sort(up)
		return servedPair{serial: g.View.Zones.Zone("example.test.").Serial(), members: strings.Join(up, " ")}
	}
	var (
		mu        sync.Mutex
		committed = map[servedPair]bool{expect(rt.cur.Load()): true}
		views     = map[*answer.View]bool{rt.cur.Load().View: true}
	)
	// record notes the generation the last write committed. Writers take
	// turns, so that every generation served is recorded.
	record := func() {
		g := rt.cur.Load()
		committed[expect(g)] = true
		views[g.View] = true
		if rt.Authority().View() != g.View {
			t.Error("the answer path does not serve the Runtime's generation")
		}
	}

	const rounds = 25
	var wg sync.WaitGroup
	var writersDone atomic.Bool
	wg.Add(2)
	go func() { // reloads
		defer wg.Done()
		for i := range uint32(rounds) {
			mu.Lock()
			write(i + 2)
			if err := rt.Reload(); err != nil {
				t.Error(err)
			}
			record()
			mu.Unlock()
		}
	}()
	go func() { // override changes: drain the next member, undrain the last
		defer wg.Done()
		for i := range rounds {
			mu.Lock()
			next, last := members[i%3], members[(i+2)%3]
			if err := rt.SetOverride(next, admin.OverrideDrain, time.Time{}, "test"); err != nil {
				t.Error(err)
			}
			record()
			if err := rt.SetOverride(last, admin.OverrideNone, time.Time{}, "test"); err != nil {
				t.Error(err)
			}
			record()
			mu.Unlock()
		}
	}()
	go func() {
		wg.Wait()
		writersDone.Store(true)
	}()

	// Readers: queries through the answer path, and the served view.
	query := dnstest.Query(t, "www.example.test.", dns.TypeA, 1)
	seen := make([]map[servedPair]bool, 2)
	seenViews := make([]map[*answer.View]bool, 2)
	var readers sync.WaitGroup
	for r := range seen {
		seen[r], seenViews[r] = map[servedPair]bool{}, map[*answer.View]bool{}
		readers.Add(1)
		go func() {
			defer readers.Done()
			out := make([]byte, 0, 512)
			remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(r)}), 5300)
			for !writersDone.Load() {
				seenViews[r][rt.Authority().View()] = true
				resp := rt.Authority().ServeDNS(&answer.Request{Wire: query, Remote: remote, TCP: true}, out) // TCP: not rate limited
				var m dns.Msg
				if err := m.Unpack(resp); err != nil || len(m.Answer) == 0 {
					t.Errorf("answer %v: %v", m.Answer, err)
					return
				}
				var up []string
				for _, rr := range m.Answer {
					up = append(up, rr.(*dns.A).A.String())
				}
				slices.Sort(up)
				seen[r][servedPair{serial: m.Answer[0].Header().Ttl - 1000, members: strings.Join(up, " ")}] = true
			}
		}()
	}
	readers.Wait()
	wg.Wait()
	for r := range seen {
		for p := range seen[r] {
			if !committed[p] {
				t.Errorf("answered %q from serial %d: no generation served that (a mix of two?)", p.members, p.serial)
			}
		}
		for v := range seenViews[r] {
			if !views[v] {
				t.Errorf("the answer path served a view of no generation (serial %d)", v.Zones.Zone("example.test.").Serial())
			}
		}
	}
	if len(committed) < rounds {
		t.Fatalf("only %d generations committed", len(committed))
	}
}

// TestBuildCarriesCounters: a build hands its view everything it serves
// with, in the one phase: the process's zone counters, lead counters taken
// from the view it replaces (by pool and address; a new member gets its
// own), the overrides in force and its own build number; and it leaves
// the generation it replaces as it was.
func TestBuildCarriesCounters(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	m := NewMetrics()
	ov := answer.NewOverrides(map[netip.Addr]answer.Override{netip.MustParseAddr("192.0.2.11"): {Mode: answer.OverrideDrain}}, 7)
	l, err := fc.load()
	if err != nil {
		t.Fatal(err)
	}
	g1, err := build(l, buildBase{overrides: ov, counters: m.ZoneCounters, now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	v1 := g1.View
	z1 := v1.Zones.Zone("example.test.")
	if v1.Counters[z1] != m.ZoneCounters("example.test.") || v1.NoZone != m.ZoneCounters("") {
		t.Fatal("the built view does not count into the process's zone counters")
	}
	if g1.Overrides() != ov {
		t.Fatal("the built view does not have the overrides in force")
	}
	leads := func(v *answer.View) map[string]*pool.LeadCounter {
		out := map[string]*pool.LeadCounter{}
		for _, mb := range v.Pools["www.example.test."].Members() {
			out[mb.Addr.String()] = mb.Leads
		}
		return out
	}
	first := leads(v1)
	if first["192.0.2.10"] == nil || first["192.0.2.11"] == nil || first["192.0.2.10"] == first["192.0.2.11"] {
		t.Fatalf("lead counters %v: want one per member", first)
	}
	first["192.0.2.10"].Add(0)

	writeZone(t, dir, "2", "www 60 A 192.0.2.12\n")
	if l, err = fc.load(); err != nil {
		t.Fatal(err)
	}
	g2, err := build(l, buildBase{prev: g1, serials: g1.serials, counters: m.ZoneCounters, now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	next := leads(g2.View)
	switch {
	case next["192.0.2.10"] != first["192.0.2.10"] || next["192.0.2.10"].Load() != 1:
		t.Error("a member kept over the reload does not keep its lead counter")
	case next["192.0.2.12"] == nil || next["192.0.2.12"] == first["192.0.2.10"] || next["192.0.2.12"] == first["192.0.2.11"]:
		t.Error("a new member has no lead counter of its own")
	case g2.View.Counters[g2.View.Zones.Zone("example.test.")] != m.ZoneCounters("example.test."):
		t.Error("the new zone does not count into the same counters")
	case g2.Overrides() != ov:
		t.Error("the reload did not keep the overrides in force")
	case g2.View.Gen() == v1.Gen():
		t.Error("the reload's view has the build number of the one it replaces: it would answer from its cached replies")
	case g2.serials["example.test."].Serial != 2 || g1.serials["example.test."].Serial != 1:
		t.Errorf("serials: %v, and the replaced generation's %v", g2.serials, g1.serials)
	case g1.View != v1 || len(leads(v1)) != 2:
		t.Error("the build changed the generation it replaces")
	}
}
