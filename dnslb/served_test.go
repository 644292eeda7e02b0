package dnslb

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/miekg/dns"
)

func servedAddrs(resp *dns.Msg) []netip.Addr {
	var out []netip.Addr
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			ip, _ := netip.AddrFromSlice(a.A)
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// TestOverrideSwapsGeneration: an override change swaps in a new
// generation that shares everything but the overrides with the one it
// replaces, which does not change; the answer path serves its view, with
// those overrides; readers of the generation take no lock.
func TestOverrideSwapsGeneration(t *testing.T) {
	rt, bfs, _ := newBlockedRuntime(t, 30*time.Second)
	defer rt.Shutdown(context.Background())
	defer close(bfs.release)

	before := rt.cur.Load()
	if err := rt.SetOverride(member10, admin.OverrideDrain, time.Time{}, "test"); err != nil {
		t.Fatal(err)
	}
	after := rt.cur.Load()
	switch {
	case after == before:
		t.Fatal("the override change did not swap in a new generation")
	case after.View == before.View || after.View.Gen() != before.View.Gen() || after.View.Zones != before.View.Zones ||
		after.View.Pools["www.example.test."] != before.View.Pools["www.example.test."] || after.Loaded != before.Loaded:
		t.Error("the new generation does not share the zones, pools and config of the old one")
	case before.Overrides().Has(member10):
		t.Error("the override changed the generation it replaced")
	case !after.Overrides().Drained(member10):
		t.Error("the new generation does not have the drain")
	case rt.auth.View() != after.View || servedOverrides(rt) != after.Overrides():
		t.Error("the answer path does not serve the generation's view and overrides")
	}
	if got := servedAddrs(askRT(t, rt, "www.example.test.", dns.TypeA)); slices.Contains(got, member10) {
		t.Errorf("answers %v after the drain of %s", got, member10)
	}

	// The generation's readers (the admin API's and the metrics') answer
	// while a writer holds mu.
	rt.mu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rt.Config()
		_ = rt.Zones()
		_ = rt.Pools()
		_, _ = rt.LastReload()
		_ = rt.memberLeads()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("Config, Zones, Pools, LastReload or the metrics wait for the Runtime's lock")
	}
	rt.mu.Unlock()
	<-done
}

// TestOverrideDuringReloadKept: an override set while a reload builds is
// in the generation the reload swaps in, not lost to the overrides the
// build started with.
func TestOverrideDuringReloadKept(t *testing.T) {
	rt, bfs, dir := newBlockedRuntime(t, 30*time.Second)
	defer rt.Shutdown(context.Background())

	writeZone(t, dir, "2", "")
	bfs.arm()
	reloaded := make(chan error, 1)
	go func() { reloaded <- rt.Reload() }()
	<-bfs.entered // the build has started; it reads the zone
	if err := rt.SetOverride(member10, admin.OverrideForceDown, time.Time{}, "during the reload"); err != nil {
		t.Fatal(err)
	}
	close(bfs.release)
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	g := rt.cur.Load()
	if soa := askRT(t, rt, "example.test.", dns.TypeSOA).Answer[0].(*dns.SOA); soa.Serial != 2 {
		t.Fatalf("serial %d after the reload, want 2", soa.Serial)
	}
	if ov, ok := g.Overrides().Get(member10); !ok || ov.Mode != answer.OverrideForceDown {
		t.Fatalf("after the reload: override of %s %+v, %v; want the force-down set during it", member10, ov, ok)
	}
	if rt.auth.View() != g.View || servedOverrides(rt) != g.Overrides() {
		t.Error("the answer path does not serve the generation's view and overrides")
	}
	if got := servedAddrs(askRT(t, rt, "www.example.test.", dns.TypeA)); slices.Contains(got, member10) {
		t.Errorf("answers %v with %s forced down", got, member10)
	}
}

// servedOverrides is the set of overrides the answer path applies now.
func servedOverrides(rt *Runtime) *answer.Overrides {
	_, ov := rt.auth.Health()
	return ov
}
