package dnslb

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// allDownGauge reads dnslb_pool_all_down{pool} from the runtime's registry
// as a scrape does; ok is false when the series is missing.
func allDownGauge(t *testing.T, rt *Runtime, pool string) (v float64, ok bool) {
	t.Helper()
	mfs, err := rt.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "dnslb_pool_all_down" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "pool" && l.GetValue() == pool {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// entries returns the JSON log lines whose message is msg.
func (l *logLines) entries(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range l.lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e["message"] == msg {
			out = append(out, e)
		}
	}
	return out
}

const (
	enterMsg = "pool all down: answering by its when_all_down fallback"
	leaveMsg = "pool no longer all down"
	www      = "www.example.test."
)

// checksWithin bounds a wait for real health checks: they run every
// 100ms, and a loaded machine may be slow.
const checksWithin = 15 * time.Second

func poolStatus(t *testing.T, rt *Runtime, name string) admin.PoolStatus {
	t.Helper()
	for _, ps := range rt.Pools() {
		if ps.Name == name {
			return ps
		}
	}
	t.Fatalf("no pool %s in %+v", name, rt.Pools())
	return admin.PoolStatus{}
}

func poolMemberState(ps admin.PoolStatus, addr string) string {
	for _, m := range ps.Members {
		if m.Address == addr {
			return m.State
		}
	}
	return ""
}

// waitGauge waits until the pool's gauge is want.
func waitGauge(t *testing.T, rt *Runtime, pool string, want float64) {
	t.Helper()
	dnstest.Eventually(t, checksWithin, fmt.Sprintf("dnslb_pool_all_down{pool=%q} = %v", pool, want), func() (bool, string) {
		v, ok := allDownGauge(t, rt, pool)
		return ok && v == want, fmt.Sprintf("%v (present: %v)", v, ok)
	})
}

// waitLogs waits until n lines with msg were logged.
func waitLogs(t *testing.T, logs *logLines, msg string, n int) []map[string]any {
	t.Helper()
	var got []map[string]any
	dnstest.Eventually(t, checksWithin, fmt.Sprintf("%d log lines %q", n, msg), func() (bool, string) {
		got = logs.entries(t, msg)
		return len(got) >= n, fmt.Sprint(got)
	})
	return got
}

// TestFallbackVisible drives real health checks (an exec check that fails
// while a file named after the member exists) through every when_all_down
// mode: the gauge, the API fields, the answers and the log lines follow
// the pool into its fallback and out again, and extra changes while it is
// down log nothing more.
func TestFallbackVisible(t *testing.T) {
	const p10, p11, b12 = "192.0.2.10", "192.0.2.11", "192.0.2.12"
	for _, tc := range []struct {
		mode   string
		answer []string // while all primaries are down; nil: NODATA
	}{
		{mode: "all", answer: []string{p10, p11}},
		{mode: "backup", answer: []string{b12}},
		{mode: "empty"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			down := t.TempDir()
			writeZone(t, dir, "1", "www 60 A 192.0.2.12\n")
			fc := baseConfig(dir)
			fc.cfg.Pools = map[string]PoolConfig{www: {
				WhenAllDown: tc.mode,
				Members:     map[string]MemberConfig{b12: {Backup: true}},
				Check: &CheckConfig{Type: "exec", Command: []string{"sh", "-c", `test ! -e "$0/$DNSLB_CHECK_ADDRESS"`, down},
					// Fall 2: one slow start of sh on a loaded machine must
					// not take the backup down.
					Interval: 300 * time.Millisecond, Timeout: 300 * time.Millisecond, Rise: 1, Fall: 2},
			}}
			logs := &logLines{}
			rt := newTestRuntime(t, dir, fc, zerolog.New(logs))
			setDown := func(addr string, isDown bool) {
				t.Helper()
				f := filepath.Join(down, addr)
				var err error
				if isDown {
					err = os.WriteFile(f, nil, 0o644)
				} else {
					err = os.Remove(f)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			waitState := func(addr, want string) {
				t.Helper()
				dnstest.Eventually(t, checksWithin, addr+" "+want, func() (bool, string) {
					ps := poolStatus(t, rt, www)
					return poolMemberState(ps, addr) == want, fmt.Sprintf("%+v", ps.Members)
				})
			}

			dnstest.Until(t, checksWithin, "first check results", rt.Ready)
			waitGauge(t, rt, www, 0)
			setDown(p10, true)
			waitState(p10, "down")
			if v, _ := allDownGauge(t, rt, www); v != 0 {
				t.Errorf("one primary of two down: gauge %v, want 0", v)
			}
			if ps := poolStatus(t, rt, www); ps.AllDown || ps.Fallback != "" {
				t.Errorf("one primary of two down: all_down %v fallback %q", ps.AllDown, ps.Fallback)
			}

			setDown(p11, true)
			waitGauge(t, rt, www, 1)
			ps := poolStatus(t, rt, www)
			if !ps.AllDown || ps.Fallback != tc.mode || !slices.Equal(ps.AllDownFamilies, []string{"A"}) {
				t.Errorf("all primaries down: all_down %v fallback %q families %v, want true %q [A]",
					ps.AllDown, ps.Fallback, ps.AllDownFamilies, tc.mode)
			}
			resp := askRT(t, rt, www, dns.TypeA)
			var got []string
			for _, rr := range resp.Answer {
				got = append(got, rr.(*dns.A).A.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.answer) {
				t.Errorf("all primaries down: answer %v, want %v", got, tc.answer)
			}
			enter := waitLogs(t, logs, enterMsg, 1)[0]
			for k, want := range map[string]any{"level": "warn", "pool": www, "fallback": tc.mode,
				"members": 3.0, "up": 1.0, "down": 2.0, "backups": 1.0} {
				if enter[k] != want {
					t.Errorf("enter line %v: %s = %v, want %v", enter, k, enter[k], want)
				}
			}

			// Changes that leave the pool all down log nothing more.
			for _, mode := range []admin.OverrideMode{admin.OverrideForceDown, admin.OverrideNone} {
				if err := rt.SetOverride(netip.MustParseAddr(p10), mode, time.Time{}, "test"); err != nil {
					t.Fatal(err)
				}
			}

			setDown(p11, false)
			waitGauge(t, rt, www, 0)
			leave := waitLogs(t, logs, leaveMsg, 1)[0]
			for k, want := range map[string]any{"level": "info", "pool": www, "fallback": tc.mode, "up": 2.0, "down": 1.0} {
				if leave[k] != want {
					t.Errorf("leave line %v: %s = %v, want %v", leave, k, leave[k], want)
				}
			}
			// The goroutine handles pokes in order: the overrides were
			// looked at before the leave line.
			if n := len(logs.entries(t, enterMsg)); n != 1 {
				t.Errorf("%d enter lines for one change, want 1", n)
			}
			if ps := poolStatus(t, rt, www); ps.AllDown || ps.Fallback != "" || ps.AllDownFamilies != nil {
				t.Errorf("recovered: %+v", ps)
			}

			// An operator's force-down counts as down: the same fallback.
			if err := rt.SetOverride(netip.MustParseAddr(p11), admin.OverrideForceDown, time.Time{}, "test"); err != nil {
				t.Fatal(err)
			}
			if v, _ := allDownGauge(t, rt, www); v != 1 {
				t.Errorf("one down, one forced down: gauge %v, want 1", v)
			}
			waitLogs(t, logs, enterMsg, 2)
			if err := rt.SetOverride(netip.MustParseAddr(p11), admin.OverrideNone, time.Time{}, "test"); err != nil {
				t.Fatal(err)
			}
			if v, _ := allDownGauge(t, rt, www); v != 0 {
				t.Errorf("force-down lifted: gauge %v, want 0", v)
			}
			waitLogs(t, logs, leaveMsg, 2)
		})
	}
}

// TestFallbackAcrossReloads: a reload that changes when_all_down while the
// pool is down logs the new fallback (with the old), and one that removes
// the pool logs its leaving.
func TestFallbackAcrossReloads(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	logs := &logLines{}
	rt := newTestRuntime(t, dir, fc, zerolog.New(logs))
	if v, ok := allDownGauge(t, rt, www); !ok || v != 0 {
		t.Fatalf("static pool: gauge %v (present %v), want 0", v, ok)
	}
	for _, a := range []string{"192.0.2.10", "192.0.2.11"} {
		if err := rt.SetOverride(netip.MustParseAddr(a), admin.OverrideDrain, time.Time{}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := allDownGauge(t, rt, www); v != 1 {
		t.Errorf("every member drained: gauge %v, want 1", v)
	}
	if e := waitLogs(t, logs, enterMsg, 1)[0]; e["fallback"] != "all" || e["drained"] != 2.0 {
		t.Errorf("enter line %v", e)
	}

	fc.set(func(c *Config) { c.Pools = map[string]PoolConfig{www: {WhenAllDown: "empty"}} })
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if ps := poolStatus(t, rt, www); !ps.AllDown || ps.Fallback != "empty" {
		t.Errorf("after when_all_down: empty: all_down %v fallback %q", ps.AllDown, ps.Fallback)
	}
	if e := waitLogs(t, logs, enterMsg, 2)[1]; e["fallback"] != "empty" || e["was"] != "all" {
		t.Errorf("enter line after the mode changed: %v", e)
	}

	writeZone(t, dir, "2", "other A 192.0.2.20\n")
	fc.set(func(c *Config) { c.Pools = map[string]PoolConfig{"other.example.test.": {}} })
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := allDownGauge(t, rt, www); ok {
		t.Error("a removed pool still has a gauge")
	}
	if e := waitLogs(t, logs, leaveMsg, 1)[0]; e["pool"] != www || e["removed"] != true {
		t.Errorf("leave line of a removed pool: %v", e)
	}
	if strings.Contains(fmt.Sprint(logs.entries(t, enterMsg)), "other.example.test.") {
		t.Error("a healthy pool logged as all down")
	}
}

// TestFallbackBackupsDownToo: with when_all_down: backup, a pool whose
// backups are down too fails open, and says so: the API and the log name
// "all", not "backup".
func TestFallbackBackupsDownToo(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "www 60 A 192.0.2.12\n")
	fc := baseConfig(dir)
	fc.cfg.Pools = map[string]PoolConfig{www: {WhenAllDown: "backup", Members: map[string]MemberConfig{"192.0.2.12": {Backup: true}}}}
	logs := &logLines{}
	rt := newTestRuntime(t, dir, fc, zerolog.New(logs))
	force := func(addr string, mode admin.OverrideMode) {
		t.Helper()
		if err := rt.SetOverride(netip.MustParseAddr(addr), mode, time.Time{}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	force("192.0.2.10", admin.OverrideForceDown)
	force("192.0.2.11", admin.OverrideForceDown)
	if ps := poolStatus(t, rt, www); !ps.AllDown || ps.Fallback != "backup" {
		t.Errorf("primaries down, backup up: all_down %v fallback %q, want backup", ps.AllDown, ps.Fallback)
	}
	if e := waitLogs(t, logs, enterMsg, 1)[0]; e["fallback"] != "backup" {
		t.Errorf("enter line %v", e)
	}
	force("192.0.2.12", admin.OverrideForceDown)
	if ps := poolStatus(t, rt, www); !ps.AllDown || ps.Fallback != "all" {
		t.Errorf("backup down too: all_down %v fallback %q, want all", ps.AllDown, ps.Fallback)
	}
	if e := waitLogs(t, logs, enterMsg, 2)[1]; e["fallback"] != "all" || e["was"] != "backup" {
		t.Errorf("line when the backup went down too: %v", e)
	}
	if got := len(askRT(t, rt, www, dns.TypeA).Answer); got != 2 {
		t.Errorf("every member forced down: %d records, want the 2 primaries (fail open)", got)
	}
	force("192.0.2.10", admin.OverrideNone)
	waitLogs(t, logs, leaveMsg, 1)
	if v, _ := allDownGauge(t, rt, www); v != 0 {
		t.Errorf("a primary back: gauge %v", v)
	}
}
