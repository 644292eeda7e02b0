package dnslb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// TestLoadConfig: load: takes type agent, a port and an interval; problems
// name the key.
func TestLoadConfig(t *testing.T) {
	const key = "pools[www.example.test.].load"
	for _, tc := range []struct {
		name    string
		load    LoadConfig
		problem string // "": valid
	}{
		{name: "agent", load: LoadConfig{Type: "agent", Port: 9777, Interval: 2 * time.Second}},
		{name: "default interval", load: LoadConfig{Type: "agent", Port: 9777}},
		{name: "no type", load: LoadConfig{Port: 9777}, problem: key + `.type: "" is not one of agent, http-header`},
		{name: "unknown type", load: LoadConfig{Type: "snmp", Port: 9777}, problem: key + `.type: "snmp" is not one of agent, http-header`},
		{name: "agent with a header", load: LoadConfig{Type: "agent", Port: 9777, Header: "X-Weight"}, problem: key + ".header: only for type http-header"},
		{name: "http-header", load: LoadConfig{Type: "http-header", Header: "X-Weight"}},
		{name: "http-header without a name", load: LoadConfig{Type: "http-header"}, problem: key + `.header: "" is not a header name`},
		{name: "http-header bad name", load: LoadConfig{Type: "http-header", Header: "X Weight"}, problem: key + `.header: "X Weight" is not a header name`},
		{name: "json field", load: LoadConfig{Type: "http-header", JSON: "stats.weight"}},
		{name: "json and header", load: LoadConfig{Type: "http-header", JSON: "load", Header: "X-Weight"}, problem: key + ": header and json are exclusive"},
		{name: "json empty key", load: LoadConfig{Type: "http-header", JSON: "stats..weight"}, problem: key + `.json: "stats..weight" is not a dotted path`},
		{name: "agent with json", load: LoadConfig{Type: "agent", Port: 9777, JSON: "load"}, problem: key + ".json: only for type http-header"},
		{name: "http-header with a port", load: LoadConfig{Type: "http-header", Header: "X-Weight", Port: 80}, problem: key + ".port: not for type http-header"},
		{name: "no port", load: LoadConfig{Type: "agent"}, problem: key + ".port: 0 is not a TCP port"},
		{name: "port too big", load: LoadConfig{Type: "agent", Port: 70000}, problem: key + ".port: 70000 is not a TCP port"},
		{name: "interval too short", load: LoadConfig{Type: "agent", Port: 1, Interval: time.Millisecond}, problem: key + ".interval: 1ms is out of range"},
		{name: "max_step 10%", load: LoadConfig{Type: "agent", Port: 1, MaxStep: "10%"}},
		{name: "max_step 100%", load: LoadConfig{Type: "agent", Port: 1, MaxStep: "100%"}},
		{name: "max_step without %", load: LoadConfig{Type: "agent", Port: 1, MaxStep: "10"}, problem: key + `.max_step: "10" is not a percentage (1%-100%)`},
		{name: "max_step 0%", load: LoadConfig{Type: "agent", Port: 1, MaxStep: "0%"}, problem: key + `.max_step: "0%" is not a percentage`},
		{name: "max_step 101%", load: LoadConfig{Type: "agent", Port: 1, MaxStep: "101%"}, problem: key + `.max_step: "101%" is not a percentage`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{
				Zones: []ZoneConfig{{Origin: "example.test.", File: "example.test.zone"}},
				Pools: map[string]PoolConfig{"www.example.test.": {Policy: "least-loaded", Load: &tc.load}},
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

// TestLoadTargets: a pool with load: polls an agent on each member's
// address at its port, and its members know their agent.
func TestLoadTargets(t *testing.T) {
	v := poolView(t, map[string]PoolConfig{"ns1.example.test.": {Policy: "least-loaded",
		Load: &LoadConfig{Type: "agent", Port: 9777}}})
	want := []healthcheck.LoadTarget{
		{Addr: netip.MustParseAddrPort("192.0.2.53:9777"), Interval: DefaultLoadInterval, MaxStep: DefaultLoadMaxStep},
		{Addr: netip.MustParseAddrPort("[2001:db8::53]:9777"), Interval: DefaultLoadInterval, MaxStep: DefaultLoadMaxStep},
	}
	if len(v.LoadTargets) != 2 || v.LoadTargets[0] != want[0] || v.LoadTargets[1] != want[1] {
		t.Errorf("load targets %v, want %v", v.LoadTargets, want)
	}
	p := v.Pools["ns1.example.test."]
	if p.V4[0].Agent != want[0].Addr || p.V6[0].Agent != want[1].Addr {
		t.Errorf("member agents %v %v", p.V4[0].Agent, p.V6[0].Agent)
	}
}

// TestLoadAnswers: what agents report decides the answers: down and drain
// take a member out, a percentage sets its share of first answers under
// least-loaded, and a stale agent counts for nothing.
func TestLoadAnswers(t *testing.T) {
	replies := map[netip.AddrPort]string{}
	var mu sync.Mutex
	probe := func(_ context.Context, a netip.AddrPort, _ time.Duration) (healthcheck.AgentReport, error) {
		mu.Lock()
		defer mu.Unlock()
		if replies[a] == "" {
			return healthcheck.AgentReport{}, errors.New("refused")
		}
		return healthcheck.ParseAgentLine([]byte(replies[a]))
	}
	v := poolView(t, map[string]PoolConfig{"www.example.test.": {Policy: "least-loaded",
		Load:    &LoadConfig{Type: "agent", Port: 9777, Interval: 100 * time.Millisecond},
		Members: map[string]MemberConfig{"192.0.2.10": {Weight: new(100)}, "192.0.2.11": {Weight: new(100)}}}})
	w := healthcheck.NewLoadWatcher(healthcheck.WithAgentProbe(probe))
	w.Set(v.LoadTargets)
	w.Start(t.Context())
	defer w.Close()
	auth := answer.NewAuthority(v, 0, nil)
	auth.SetLoads(w)
	a10, a11 := netip.MustParseAddrPort("192.0.2.10:9777"), netip.MustParseAddrPort("192.0.2.11:9777")
	firsts := func() map[string]int {
		got := map[string]int{}
		for range 125 { // one walk of a 25:100 schedule
			r := askA(t, auth, "www.example.test.")
			got[r.Answer[0].(*dns.A).A.String()]++
		}
		return got
	}
	for _, tc := range []struct {
		name     string
		r10, r11 string
		want     map[string]int
	}{
		{"1:4", "up 25%", "up 100%", map[string]int{"192.0.2.10": 25, "192.0.2.11": 100}},
		{"drain", "drain", "up 100%", map[string]int{"192.0.2.11": 125}},
		{"down", "ready down", "up", map[string]int{"192.0.2.11": 125}},
		{"weight 0", "up 0%", "up", map[string]int{"192.0.2.11": 125}},
		{"back", "up 100%", "up 25%", map[string]int{"192.0.2.10": 100, "192.0.2.11": 25}},
		{"stale: configured weights", "", "", map[string]int{"192.0.2.10": 63, "192.0.2.11": 62}},
	} {
		mu.Lock()
		replies[a10], replies[a11] = tc.r10, tc.r11
		mu.Unlock()
		// Each step starts once both agents were asked again: the answers
		// of the step before may be right for this one too.
		set := time.Now()
		dnstest.Eventually(t, 10*time.Second, tc.name+": agents asked", func() (bool, string) {
			ls := w.Loads()
			asked := func(l healthcheck.Load) bool { return l.Reported.After(set) || l.Stale }
			return asked(ls[a10]) && asked(ls[a11]), fmt.Sprint(ls)
		})
		dnstest.Eventually(t, 10*time.Second, tc.name, func() (bool, string) {
			got := firsts()
			ok := len(got) == len(tc.want)
			for a, n := range tc.want {
				ok = ok && got[a] >= n-1 && got[a] <= n+1
			}
			return ok, fmt.Sprint(got)
		})
	}
}

// TestPoolsShowLoad: the admin API shows a member's agent, what it says,
// and the state and live weight that follow from it.
func TestPoolsShowLoad(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.31:0")
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
			_, _ = c.Write([]byte("drain 50%\n"))
			c.Close()
		}
	}()
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	dir := t.TempDir()
	writeZone(t, dir, "1", "lb 60 A 127.0.0.31\n")
	fc := baseConfig(dir)
	fc.cfg.Pools = map[string]PoolConfig{"lb.example.test.": {Policy: "least-loaded",
		Load:    &LoadConfig{Type: LoadAgent, Port: int(port), Interval: 100 * time.Millisecond},
		Members: map[string]MemberConfig{"127.0.0.31": {Weight: new(10)}}}}
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	dnstest.Eventually(t, 10*time.Second, "the agent's report in the API", func() (bool, string) {
		m := rt.Pools()[0].Members[0]
		l := m.Load
		if l == nil {
			t.Fatalf("member %+v has no load status", m)
		}
		ok := l.Agent == ln.Addr().String() && l.Admin == "drain" && l.Percent == 50 && l.LiveWeight == 5 &&
			!l.Stale && m.State == "drained" && m.EffectiveWeight == 0
		return ok, fmt.Sprintf("%+v %+v", m, *l)
	})
}

// TestLoadHTTPHeader: load: {type: http-header} reads the reports from a
// header of the pool's http check; a pool without one is a problem.
func TestLoadHTTPHeader(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.32:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Weight", "up 30%")
		_, _ = w.Write([]byte(`{"stats":{"free":60.2}}`))
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()

	dir := t.TempDir()
	writeZone(t, dir, "1", "lb 60 A 127.0.0.32\n")
	fc := baseConfig(dir)
	fc.cfg.Pools = map[string]PoolConfig{"lb.example.test.": {Policy: "least-loaded",
		Check:   &CheckConfig{Type: "http", Port: int(port), Interval: 200 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 1, Fall: 1},
		Load:    &LoadConfig{Type: LoadHTTPHeader, Header: "X-Weight"},
		Members: map[string]MemberConfig{"127.0.0.32": {Weight: new(10)}}}}
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	dnstest.Eventually(t, 10*time.Second, "the header's report in the API", func() (bool, string) {
		m := rt.Pools()[0].Members[0]
		l := m.Load
		if l == nil {
			t.Fatalf("member %+v has no load status", m)
		}
		ok := l.Agent == ln.Addr().String() && l.Op == "up" && l.Percent == 30 && l.LiveWeight == 3 && m.State == "up" && m.EffectiveWeight == 3
		return ok, fmt.Sprintf("%+v %+v", m, *l)
	})

	// The same check, the report in a field of its JSON body instead: a
	// number is N%.
	fc.set(func(c *Config) {
		pc := c.Pools["lb.example.test."]
		pc.Load = &LoadConfig{Type: LoadHTTPHeader, JSON: "stats.free", MaxStep: "100%"}
		c.Pools = map[string]PoolConfig{"lb.example.test.": pc} // a new map: the old config keeps its own
	})
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	dnstest.Eventually(t, 10*time.Second, "the JSON field's report in the API", func() (bool, string) {
		m := rt.Pools()[0].Members[0]
		l := m.Load
		ok := l != nil && l.Percent == 60 && l.LiveWeight == 6 && m.State == "up" && m.EffectiveWeight == 6
		return ok, fmt.Sprintf("%+v %+v", m, l)
	})

	cfg := &Config{Zones: []ZoneConfig{{Origin: "example.test.", File: "example.test.zone"}},
		Pools: map[string]PoolConfig{"www.example.test.": {
			Check: &CheckConfig{Type: "tcp", Port: 80}, Load: &LoadConfig{Type: LoadHTTPHeader, Header: "X-Weight"}}}}
	set, err := LoadZones(cfg, ZoneRoot{FS: os.DirFS("testdata")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = buildView(cfg, set, viewCarry{})
	if err == nil || !strings.Contains(err.Error(), "pools[www.example.test.].load.type: http-header reads a header of the pool's http or https check") {
		t.Errorf("a pool without an http check: %v", err)
	}
}
