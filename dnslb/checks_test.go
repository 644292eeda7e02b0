package dnslb

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/rs/zerolog"
)

// TestSeveralChecksPerMember: a member with two checks is answered only
// while both are up, whichever of them fails; the second check probes the
// member's check_address.
func TestSeveralChecksPerMember(t *testing.T) {
	// A view of its own per case: pools cache their plans per generation,
	// and every new Authority starts at the same one.
	build := func() *answer.View {
		return poolView(t, map[string]PoolConfig{"www.example.test.": {
			Checks: []PoolCheckConfig{
				{CheckConfig: CheckConfig{Type: "tcp", Port: 80}},
				{CheckConfig: CheckConfig{Type: "tcp", Port: 9000}, Address: CheckAddressOwn},
			},
			Members: map[string]MemberConfig{"192.0.2.10": {CheckAddress: "10.0.0.10"}, "192.0.2.11": {CheckAddress: "10.0.0.11"}},
		}})
	}
	view := build()
	p := view.Pools["www.example.test."]
	checks := map[string][]healthcheck.TargetKey{}
	for _, m := range p.V4 {
		checks[m.Addr.String()] = append([]healthcheck.TargetKey{m.Target}, m.Also...)
	}
	for member, want := range map[string][]string{
		"192.0.2.10": {"192.0.2.10:80", "10.0.0.10:9000"},
		"192.0.2.11": {"192.0.2.11:80", "10.0.0.11:9000"},
	} {
		var got []string
		for _, k := range checks[member] {
			got = append(got, k.Addr.String())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s probes %v, want %v", member, got, want)
		}
	}
	if len(view.Targets) != 4 {
		t.Errorf("%d targets, want 4", len(view.Targets))
	}

	for _, tc := range []struct {
		name string
		down []healthcheck.TargetKey
		want string
	}{
		{"both up", nil, "192.0.2.10 192.0.2.11"},
		{"second check of .10 down", []healthcheck.TargetKey{checks["192.0.2.10"][1]}, "192.0.2.11"},
		{"first check of .10 down", []healthcheck.TargetKey{checks["192.0.2.10"][0]}, "192.0.2.11"},
		{"second check of .11 down", []healthcheck.TargetKey{checks["192.0.2.11"][1]}, "192.0.2.10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			view := build()
			sched := healthcheck.NewScheduler()
			defer sched.Close()
			seed := map[healthcheck.TargetKey]healthcheck.Status{}
			for _, k := range tc.down {
				seed[k] = healthcheck.Status{Up: false}
			}
			sched.Seed(seed)
			if err := sched.Set(view.Targets); err != nil {
				t.Fatal(err)
			}
			auth := answer.NewAuthority(view, 0, sched)
			got := dnstest.AnswerA(askA(t, auth, "www.example.test."))
			slices.Sort(got)
			if s := strings.Join(got, " "); s != tc.want {
				t.Errorf("answer %q, want %q", s, tc.want)
			}
		})
	}
}

// TestChecksShareTargets: identical checks of two pools at the same
// address are one target; a fixed check address in a pool of one member is
// probed instead of the member's.
func TestChecksShareTargets(t *testing.T) {
	view := poolView(t, map[string]PoolConfig{
		"www.example.test.": {
			Checks: []PoolCheckConfig{
				{CheckConfig: CheckConfig{Type: "tcp", Port: 9000}, Address: CheckAddressOwn},
			},
			Members: map[string]MemberConfig{"192.0.2.10": {CheckAddress: "10.0.0.25"}, "192.0.2.11": {CheckAddress: "10.0.0.11"}},
		},
		"mail.example.test.": {
			Checks: []PoolCheckConfig{
				{CheckConfig: CheckConfig{Type: "tcp", Port: 25}},
				{CheckConfig: CheckConfig{Type: "tcp", Port: 9000}, Address: "10.0.0.25"},
			},
		},
	})
	var got []string
	for _, tg := range view.Targets {
		got = append(got, tg.Addr.Addr().String()+"/"+strings.Join(view.PoolsOf(tg.Key()), ","))
	}
	slices.Sort(got)
	want := []string{"10.0.0.11/www.example.test.", "10.0.0.25/mail.example.test.,www.example.test.", "192.0.2.25/mail.example.test."}
	if !slices.Equal(got, want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	if m := view.Pools["mail.example.test."].V4[0]; m.Target.Addr != netip.MustParseAddrPort("192.0.2.25:25") || len(m.Also) != 1 {
		t.Errorf("mail's member checks %v and %v", m.Target, m.Also)
	}
}

// TestPoolsShowEachCheck: the status of a member with two checks lists
// both, and the failing one decides its health and its last error.
func TestPoolsShowEachCheck(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	// A timeout that a loaded machine's fork and exec of true stays under.
	fast := CheckConfig{Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1}
	ok, failing := fast, fast
	ok.Type, ok.Command = "exec", []string{"true"}
	failing.Type, failing.Command = "exec", []string{"false"}
	fc.cfg.Pools = map[string]PoolConfig{"www.example.test.": {
		Checks:  []PoolCheckConfig{{CheckConfig: ok}, {CheckConfig: failing, Address: CheckAddressOwn}},
		Members: map[string]MemberConfig{"192.0.2.10": {CheckAddress: "10.0.0.10"}, "192.0.2.11": {CheckAddress: "10.0.0.11"}},
	}}
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	dnstest.Eventually(t, 10*time.Second, "the failing check reporting an error", func() (bool, string) {
		m := rt.Pools()[0].Members[0]
		if len(m.Checks) != 2 {
			t.Fatalf("member %s lists %d checks, want 2: %+v", m.Address, len(m.Checks), m)
		}
		if m.Checks[1].LastError == "" || m.Checks[1].Healthy {
			return false, fmt.Sprintf("%+v", m)
		}
		if m.Healthy || m.State != "down" || !m.Checks[0].Healthy || m.Checks[1].Healthy ||
			m.Checks[1].Address != "10.0.0.10:0" || m.LastError != m.Checks[1].LastError {
			t.Errorf("member %+v: want down by its second check at 10.0.0.10, with that check's error", m)
		}
		return true, ""
	})
}
