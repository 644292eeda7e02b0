package dnslb

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/rs/zerolog"
)

// TestMetricsMemberWeightAndLoad: dnslb_member_weight is the weight a
// member is answered by (its live weight under least-loaded), and
// dnslb_member_load what its agent reports; a member without an agent has
// its configured weight and no load series.
func TestMetricsMemberWeightAndLoad(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.32:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("up 50%\n"))
			c.Close()
		}
	}()
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	dir := t.TempDir()
	writeZone(t, dir, "1", "lb 60 A 127.0.0.32\n")
	fc := baseConfig(dir)
	if fc.cfg.Pools == nil {
		fc.cfg.Pools = map[string]PoolConfig{}
	}
	fc.cfg.Pools["lb.example.test."] = PoolConfig{Policy: "least-loaded",
		Load:    &LoadConfig{Type: LoadAgent, Port: int(port), Interval: 100 * time.Millisecond},
		Members: map[string]MemberConfig{"127.0.0.32": {Weight: new(10)}}}
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	dnstest.Eventually(t, 10*time.Second, "weight and load of the agent's member", func() (bool, string) {
		mfs := gatherFamilies(t, rt.Metrics())
		w := seriesValues(mfs, "dnslb_member_weight", "member")
		l := seriesValues(mfs, "dnslb_member_load", "member")
		lw, lok := l["127.0.0.32"]
		return w["127.0.0.32"] == 5 && lok && lw == 50 && len(l) == 1, fmt.Sprintf("weights %v loads %v", w, l)
	})
	// www's members have no agent: configured weight (1), no load.
	mfs := gatherFamilies(t, rt.Metrics())
	w := seriesValues(mfs, "dnslb_member_weight", "member")
	for a, v := range w {
		if a != "127.0.0.32" && v != 1 {
			t.Errorf("dnslb_member_weight of %s = %v, want its configured 1", a, v)
		}
	}
	if len(w) < 2 {
		t.Errorf("dnslb_member_weight %v: want every member", w)
	}
}
