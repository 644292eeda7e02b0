package answer

import (
	"io/fs"
	"net/netip"
	"os"
	"sort"
	"testing"

	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// testdataDir holds the zone files the tests answer from; the root
// package's tests (which build views from config) read the same ones.
const testdataDir = "../testdata"

// testZones are the zones of testView, by origin.
var testZones = map[string]string{"example.test.": "example.test.zone", "other.test.": "other.test.zone"}

// loadSet loads the zones (origin: file) from fsys.
func loadSet(t testing.TB, fsys fs.FS, files map[string]string) *zones.Set {
	t.Helper()
	origins := make([]string, 0, len(files))
	for o := range files {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	var loaded []*zones.Zone
	for _, o := range origins {
		z, err := zones.Load(zones.Source{Origin: o, FS: fsys, Path: files[o], Display: "test"})
		if err != nil {
			t.Fatal(err)
		}
		loaded = append(loaded, z)
	}
	set, err := zones.NewSet(loaded...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func testView(t testing.TB) *View {
	t.Helper()
	return ZonesOnly(loadSet(t, os.DirFS(testdataDir), testZones))
}

// poolSpec is a test pool, as a pools: entry of the config would make it
// (the root package's buildView), without the config layer.
type poolSpec struct {
	policy     string
	maxAnswers int
	weights    map[string]int      // by member address; default 1
	check      *healthcheck.Config // every member checked with it
}

// poolView is testView with the given pools over the zones' records.
func poolView(t testing.TB, pools map[string]poolSpec) *View {
	t.Helper()
	return buildView(t, loadSet(t, os.DirFS(testdataDir), testZones), pools)
}

// testPoolTTL is the TTL of a pool's answers (the config's default).
const testPoolTTL = 30

// buildView makes the pools over set: each takes the A and AAAA records at
// its name, as the root package's buildView does.
func buildView(t testing.TB, set *zones.Set, pools map[string]poolSpec) *View {
	t.Helper()
	v := ZonesOnly(set)
	for name, ps := range pools {
		name = zones.CanonicalName(name)
		policy, err := pool.ParsePolicy(ps.policy)
		if err != nil {
			t.Fatal(err)
		}
		p := &pool.Pool{Name: name, Policy: policy, TTL: testPoolTTL, MaxAnswers: ps.maxAnswers}
		z := set.Find(name)
		if z == nil {
			t.Fatalf("pool %s is in no zone", name)
		}
		for _, rr := range append(append([]dns.RR(nil), z.RRset(name, dns.TypeA)...), z.RRset(name, dns.TypeAAAA)...) {
			var addr netip.Addr
			switch r := rr.(type) {
			case *dns.A:
				addr, _ = netip.AddrFromSlice(r.A.To4())
			case *dns.AAAA:
				addr, _ = netip.AddrFromSlice(r.AAAA)
			}
			// The pool's own copy, as the root package's buildView makes it.
			c := dns.Copy(rr)
			c.Header().Ttl = min(uint32(testPoolTTL), rr.Header().Ttl)
			m := pool.Member{Addr: addr, RR: c, Weight: 1}
			if w, ok := ps.weights[addr.String()]; ok {
				m.Weight = w
			}
			if ps.check != nil {
				tg := healthcheck.Target{Spec: ps.check.Spec(), Addr: netip.AddrPortFrom(addr, 0)}
				if err := tg.Validate(); err != nil {
					t.Fatal(err)
				}
				m.Checked, m.Target = true, tg.Key()
				v.Targets = append(v.Targets, tg)
			}
			if addr.Is4() {
				p.V4 = append(p.V4, m)
			} else {
				p.V6 = append(p.V6, m)
			}
		}
		if len(p.V4)+len(p.V6) == 0 {
			t.Fatalf("pool %s has no A or AAAA records", name)
		}
		v.Pools[name] = p
	}
	return v
}
