package dnslb

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/miekg/dns"
)

func poolView(t *testing.T, pools map[string]PoolConfig) *answer.View {
	t.Helper()
	cfg := &Config{
		Zones: []ZoneConfig{{Origin: "example.test.", File: "example.test.zone"}, {Origin: "other.test.", File: "other.test.zone"}},
		Pools: pools,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set, err := LoadZones(cfg, ZoneRoot{FS: os.DirFS("testdata"), Display: "testdata"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := buildView(cfg, set, viewCarry{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func askA(t *testing.T, auth *answer.Authority, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	return handlertest.Exchange(t, auth, m, false)
}

func TestPoolAnswersFollowHealth(t *testing.T) {
	// Real health checks against real TCP listeners on loopback: one up,
	// one never listening (refused).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	zone := "$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 127.0.0.1\nwww 60 A 127.0.0.1\nwww 60 A 127.0.0.2\napi CNAME www\n"
	if err := os.WriteFile(dir+"/z.zone", []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		Zones: []ZoneConfig{{Origin: "example.test.", File: "z.zone"}},
		Pools: map[string]PoolConfig{"www.example.test.": {TTL: 10, Check: &CheckConfig{Type: "tcp", Port: port,
			Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 1, Fall: 1}}},
	}
	set, err := LoadZones(cfg, ZoneRoot{FS: os.DirFS(dir)})
	if err != nil {
		t.Fatal(err)
	}
	view, err := buildView(cfg, set, viewCarry{})
	if err != nil {
		t.Fatal(err)
	}
	sched := healthcheck.NewScheduler()
	defer sched.Close()
	if err := sched.Set(view.Targets); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	auth := answer.NewAuthority(view, 0, sched)
	var resp *dns.Msg
	dnstest.Eventually(t, 10*time.Second, "127.0.0.2 (refused) no longer answered", func() (bool, string) {
		resp = askA(t, auth, "api.example.test.")
		got := dnstest.AnswerA(resp)
		return len(got) == 1 && got[0] == "127.0.0.1", fmt.Sprint(got)
	})
	// With a member down the pool is degraded: ttl_degraded, by default
	// min(ttl, 5).
	if ttl := resp.Answer[len(resp.Answer)-1].Header().Ttl; ttl != 5 {
		t.Errorf("pool TTL = %d, want the degraded 5", ttl)
	}
}

func TestPoolWhenAllDown(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		rcode  int
		answer string
		soa    bool
	}{
		{mode: "all", answer: "192.0.2.10 192.0.2.11"},
		{mode: "empty", soa: true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			view := poolView(t, map[string]PoolConfig{"www.example.test.": {
				Policy: "first-healthy", MaxAnswers: 5, WhenAllDown: tc.mode,
				Check: &CheckConfig{Type: "exec", Command: []string{"false"}, Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond, Rise: 1, Fall: 1, Initial: "down"},
			}})
			sched := healthcheck.NewScheduler()
			defer sched.Close()
			if err := sched.Set(view.Targets); err != nil {
				t.Fatal(err)
			}
			auth := answer.NewAuthority(view, 0, sched)
			resp := askA(t, auth, "www.example.test.")
			if got := strings.Join(dnstest.AnswerA(resp), " "); got != tc.answer {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
			if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative {
				t.Errorf("rcode %d aa %v", resp.Rcode, resp.Authoritative)
			}
			if hasSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA; hasSOA != tc.soa {
				t.Errorf("authority %v, want SOA: %v", resp.Ns, tc.soa)
			}
		})
	}
}

func TestPoolConfigErrors(t *testing.T) {
	cfg := &Config{
		Zones: []ZoneConfig{{Origin: "example.test.", File: "example.test.zone"}},
		Pools: map[string]PoolConfig{
			"www.example.test.":   {Members: map[string]MemberConfig{"192.0.2.77": {Weight: new(2)}}},
			"nope.example.test.":  {},
			"www.example.net.":    {},
			"x.sub.example.test.": {},
		},
	}
	set, err := LoadZones(cfg, ZoneRoot{FS: os.DirFS("testdata")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = buildView(cfg, set, viewCarry{})
	if err == nil {
		t.Fatal("built pools from a bad config")
	}
	for _, want := range []string{
		"pools[nope.example.test.]: zone example.test. (example.test.zone) has no A or AAAA records at nope.example.test.",
		"pools[www.example.net.]: www.example.net. is in none of the configured zones",
		"pools[www.example.test.].members[192.0.2.77]: not among the A/AAAA records",
		"pools[x.sub.example.test.]: x.sub.example.test. is below the delegation at sub.example.test.",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestPoolTTLNeverAboveZone(t *testing.T) {
	view := poolView(t, map[string]PoolConfig{"www.example.test.": {TTL: 3600}})
	resp := askA(t, answer.NewAuthority(view, 0, nil), "www.example.test.")
	for _, rr := range resp.Answer {
		if rr.Header().Ttl != 60 {
			t.Errorf("TTL %d, want the zone's 60", rr.Header().Ttl)
		}
	}
	if len(resp.Answer) != 2 {
		t.Errorf("answer %v", resp.Answer)
	}
}

func TestStickyUsesClientSubnet(t *testing.T) {
	view := poolView(t, map[string]PoolConfig{"www.example.test.": {Policy: "sticky", MaxAnswers: 1}})
	auth := answer.NewAuthority(view, 0, nil)
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	wire, _ := m.Pack()
	first := map[string]bool{}
	for i := range 64 {
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 1}), 5000)
		var a, b dns.Msg
		a.Unpack(auth.ServeDNS(&answer.Request{Wire: wire, Remote: remote}, nil))
		b.Unpack(auth.ServeDNS(&answer.Request{Wire: wire, Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 200}), 5000)}, nil))
		if dnstest.AnswerA(&a)[0] != dnstest.AnswerA(&b)[0] {
			t.Fatalf("same /24, different member")
		}
		first[dnstest.AnswerA(&a)[0]] = true
	}
	if len(first) != 2 {
		t.Errorf("64 subnets all landed on %v", first)
	}
}
