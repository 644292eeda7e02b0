package dnslb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/miekg/dns"
)

// TestCachedAnswerTTLFollowsHealth: a cached pool answer carries the
// degraded TTL from the first answer after a member goes down, the pool
// TTL again from the first after it recovers, and a drain alone does not
// shorten it; every answer but the first of each state comes from the
// cache.
func TestCachedAnswerTTLFollowsHealth(t *testing.T) {
	var down atomic.Bool
	bad := netip.MustParseAddr("192.0.2.11")
	sched := healthcheck.NewScheduler(healthcheck.WithCheckerFactory(func(healthcheck.Spec) (healthcheck.Checker, error) {
		return healthcheck.CheckerFunc(func(_ context.Context, addr netip.AddrPort) error {
			if down.Load() && addr.Addr() == bad {
				return errors.New("refused")
			}
			return nil
		}), nil
	}))
	defer sched.Close()
	// The zone's www has TTL 60; the pool TTL is the default 30, the
	// degraded one the default 5.
	view := poolView(t, map[string]PoolConfig{"www.example.test.": {Policy: "round-robin",
		Check: &CheckConfig{Type: "tcp", Port: 80, Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond, Rise: 1, Fall: 1}}})
	if err := sched.Set(view.Targets); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	auth := answer.NewAuthority(view, 0, sched)
	key := view.Pools["www.example.test."].V4[1].Target
	waitUp := func(up bool) {
		t.Helper()
		dnstest.Until(t, 5*time.Second, fmt.Sprintf("the target up=%v", up), func() bool { return sched.Snapshot().Up(key) == up })
	}
	// expect asks four times (one miss fills the answer of each slot, the
	// rest hit) and checks the addresses and every TTL.
	expect := func(state string, ttl uint32, n int) {
		t.Helper()
		hits0, _ := auth.CacheStats()
		for i := range 4 {
			resp, _ := handlertest.ServeFrom(t, auth, dnstest.Query(t, "www.example.test.", dns.TypeA, uint16(i)), "192.0.2.1", false)
			if len(resp.Answer) != n {
				t.Fatalf("%s: answer %v, want %d records", state, dnstest.AnswerA(resp), n)
			}
			for _, rr := range resp.Answer {
				if rr.Header().Ttl != ttl {
					t.Errorf("%s, query %d: TTL %d, want %d", state, i, rr.Header().Ttl, ttl)
				}
			}
		}
		if hits, _ := auth.CacheStats(); hits-hits0 < 2 {
			t.Errorf("%s: %d of 4 answers from the cache, want at least 2", state, hits-hits0)
		}
	}
	waitUp(true)
	expect("healthy", 30, 2)

	down.Store(true)
	waitUp(false)
	expect("one member down", 5, 1)

	down.Store(false)
	waitUp(true)
	expect("recovered", 30, 2)

	auth.Serve(auth.View().WithOverrides(answer.NewOverrides(map[netip.Addr]answer.Override{bad: {Mode: answer.OverrideDrain}}, 1)))
	expect("drained", 30, 1)
	auth.Serve(auth.View().WithOverrides(answer.NewOverrides(map[netip.Addr]answer.Override{bad: {Mode: answer.OverrideForceDown}}, 2)))
	expect("forced down", 30, 1)
}

// TestEmptyNODATATTL: the NODATA of when_all_down: empty caps its SOA at
// the degraded TTL (it is the fallback), cached or not.
func TestEmptyNODATATTL(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ttl      int
		degraded *int
		want     uint32
	}{
		{name: "defaults", want: 5},
		{name: "ttl_degraded 10", degraded: new(10), want: 10},
		{name: "ttl 3", ttl: 3, want: 3},
		{name: "ttl_degraded as ttl", ttl: 20, degraded: new(20), want: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			view := poolView(t, map[string]PoolConfig{"www.example.test.": {WhenAllDown: "empty", TTL: tc.ttl, TTLDegraded: tc.degraded,
				Check: &CheckConfig{Type: "tcp", Port: 80}}})
			sched := healthcheck.NewScheduler()
			defer sched.Close()
			seed := map[healthcheck.TargetKey]healthcheck.Status{}
			for _, m := range view.Pools["www.example.test."].V4 {
				seed[m.Target] = healthcheck.Status{Up: false}
			}
			sched.Seed(seed)
			if err := sched.Set(view.Targets); err != nil {
				t.Fatal(err)
			}
			auth := answer.NewAuthority(view, 0, sched)
			for i := range 3 {
				resp, _ := handlertest.ServeFrom(t, auth, dnstest.Query(t, "www.example.test.", dns.TypeA, uint16(i)), "192.0.2.1", false)
				if len(resp.Answer) != 0 || len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != dns.TypeSOA {
					t.Fatalf("query %d: want NODATA with the SOA, got\n%v", i, resp)
				}
				if got := resp.Ns[0].Header().Ttl; got != tc.want {
					t.Errorf("query %d: SOA TTL %d, want %d", i, got, tc.want)
				}
			}
		})
	}
}

// TestTTLDegradedConfig: ttl_degraded is 1 to the pool's ttl; problems
// name the key.
func TestTTLDegradedConfig(t *testing.T) {
	const key = "pools[www.example.test.].ttl_degraded"
	for _, tc := range []struct {
		name     string
		ttl      int
		degraded int
		problem  string // "": valid
	}{
		{name: "below ttl", ttl: 30, degraded: 10},
		{name: "equal to ttl", ttl: 30, degraded: 30},
		{name: "equal to the default ttl", degraded: 30},
		{name: "zero", degraded: 0, problem: key + ": 0 is out of range"},
		{name: "negative", degraded: -1, problem: key + ": -1 is out of range"},
		{name: "above ttl", ttl: 30, degraded: 31, problem: key + ": 31 is above the ttl (30)"},
		{name: "above the default ttl", degraded: 60, problem: key + ": 60 is above the ttl (30)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{
				Zones: []ZoneConfig{{Origin: "example.test.", File: "example.test.zone"}},
				Pools: map[string]PoolConfig{"www.example.test.": {TTL: tc.ttl, TTLDegraded: new(tc.degraded)}},
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
}

// TestTTLDegradedDefault: unset, ttl_degraded is min(ttl, 5) and caps the
// degraded copies of the members' records, as the zone's TTL does.
func TestTTLDegradedDefault(t *testing.T) {
	for _, tc := range []struct {
		ttl  int
		want uint32
	}{{0, 5}, {30, 5}, {3, 3}} {
		view := poolView(t, map[string]PoolConfig{"www.example.test.": {TTL: tc.ttl}})
		p := view.Pools["www.example.test."]
		if p.TTLDegraded != tc.want {
			t.Errorf("ttl %d: TTLDegraded %d, want %d", tc.ttl, p.TTLDegraded, tc.want)
		}
		for _, m := range p.V4 {
			if got := m.Degraded.Header().Ttl; got != tc.want {
				t.Errorf("ttl %d: %s degraded TTL %d, want %d", tc.ttl, m.Addr, got, tc.want)
			}
		}
	}
}
