package answer

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// loadedAuthority answers www.example.test. by least-loaded, its members'
// agents reporting 25% and 100% (a watcher with a fake probe).
func loadedAuthority(t testing.TB) *Authority {
	t.Helper()
	v := poolView(t, map[string]poolSpec{"www.example.test.": {policy: "least-loaded"}})
	p := v.Pools["www.example.test."]
	var targets []healthcheck.LoadTarget
	for i := range p.V4 {
		m := &p.V4[i]
		m.Weight, m.Leads = 100, new(pool.LeadCounter)
		m.Agent = netip.AddrPortFrom(m.Addr, 9777)
		targets = append(targets, healthcheck.LoadTarget{Addr: m.Agent, Interval: time.Hour})
	}
	first := targets[0].Addr
	probe := func(_ context.Context, a netip.AddrPort, _ time.Duration) (healthcheck.AgentReport, error) {
		if a == first {
			return healthcheck.ParseAgentLine([]byte("up 25%"))
		}
		return healthcheck.ParseAgentLine([]byte("up 100%"))
	}
	w := healthcheck.NewLoadWatcher(healthcheck.WithAgentProbe(probe))
	w.Set(targets)
	w.Start(context.Background())
	t.Cleanup(w.Close)
	dnstest.Eventually(t, 10*time.Second, "both agents reported", func() (bool, string) {
		n := 0
		for _, l := range w.Loads() {
			if !l.Reported.IsZero() {
				n++
			}
		}
		return n == len(targets), ""
	})
	auth := NewAuthority(v, 0, nil)
	auth.SetLoads(w)
	return auth
}

// A least-loaded pool with live weights is answered from the cache
// without allocating, like any other pool.
func TestLeastLoadedCachedNoAllocs(t *testing.T) {
	auth := loadedAuthority(t)
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Wire: wire, Remote: netip.MustParseAddrPort("192.0.2.1:5353")}
	out := make([]byte, 0, 4096)
	for range 200 { // fill the cache's answers
		auth.ServeDNS(req, out)
	}
	if n := testing.AllocsPerRun(1000, func() { auth.ServeDNS(req, out) }); n != 0 {
		t.Errorf("%v allocations per cached least-loaded answer, want 0", n)
	}
}

// BenchmarkServeDNSLeastLoaded is BenchmarkServeDNS's pool-A with load
// feedback: the judgement also reads the load snapshot.
func BenchmarkServeDNSLeastLoaded(b *testing.B) {
	auth := loadedAuthority(b)
	wire := benchWire(b, "www.example.test.", dns.TypeA, false)
	out := make([]byte, 0, 4096)
	req := &Request{Wire: wire, Remote: netip.MustParseAddrPort("192.0.2.1:5353")}
	b.ReportAllocs()
	for b.Loop() {
		if resp := auth.ServeDNS(req, out); len(resp) == 0 {
			b.Fatal("no reply")
		}
	}
}
