package dnslb

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// TestSlowStartConfig: slow_start is 1s to 1h (or unset); problems name
// the key; the pool built carries it.
func TestSlowStartConfig(t *testing.T) {
	const key = "pools[www.example.test.].slow_start"
	for _, tc := range []struct {
		slow    time.Duration
		problem string // "": valid
	}{
		{0, ""}, {30 * time.Second, ""}, {time.Hour, ""},
		{500 * time.Millisecond, key + ": 500ms is out of range (1s-1h)"},
		{-time.Second, key + ": -1s is out of range"},
		{2 * time.Hour, key + ": 2h0m0s is out of range"},
	} {
		t.Run(tc.slow.String(), func(t *testing.T) {
			cfg := &Config{
				Zones: []ZoneConfig{{Origin: "example.test.", File: "example.test.zone"}},
				Pools: map[string]PoolConfig{"www.example.test.": {SlowStart: tc.slow}},
			}
			err := cfg.Validate()
			switch {
			case tc.problem == "" && err != nil:
				t.Errorf("valid config: %v", err)
			case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
				t.Errorf("problems %v, want %q", err, tc.problem)
			}
		})
	}
	view := poolView(t, map[string]PoolConfig{"www.example.test.": {SlowStart: 30 * time.Second}})
	if got := view.Pools["www.example.test."].SlowStart; got != 30*time.Second {
		t.Errorf("pool SlowStart %v, want 30s", got)
	}
}

// TestSlowStartRuntime: an undrained member starts at 10 % of its share,
// and the Runtime's ramp timer moves the plans on until it has all of it
// (without new generations the first step's plan would stay).
func TestSlowStartRuntime(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	fc.cfg.Pools = map[string]PoolConfig{"www.example.test.": {Policy: "weighted", SlowStart: 2 * time.Second}}
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	const b = "192.0.2.11"
	// firsts counts b's first answers over n queries.
	firsts := func(n int) int {
		got := 0
		for range n {
			if r := askRT(t, rt, "www.example.test.", dns.TypeA); len(r.Answer) > 0 && r.Answer[0].(*dns.A).A.String() == b {
				got++
			}
		}
		return got
	}
	if n := firsts(10); n != 5 {
		t.Fatalf("at start b leads %d of 10, want 5: no ramp at start", n)
	}
	if err := rt.SetOverride(netip.MustParseAddr(b), admin.OverrideDrain, time.Time{}, "test"); err != nil {
		t.Fatal(err)
	}
	if n := firsts(4); n != 0 {
		t.Fatalf("drained b leads %d", n)
	}
	if err := rt.SetOverride(netip.MustParseAddr(b), admin.OverrideNone, time.Time{}, "test"); err != nil {
		t.Fatal(err)
	}
	if n := firsts(22); n > 4 {
		t.Errorf("just undrained, b leads %d of 22, want about 2 (10 %%)", n)
	}
	dnstest.Eventually(t, 10*time.Second, "b back to half the first answers", func() (bool, string) {
		n := firsts(10)
		return n == 5, fmt.Sprintf("b leads %d of 10", n)
	})
}
