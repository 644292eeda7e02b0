package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// cliBackend is a small admin.Backend for the client commands.
type cliBackend struct {
	mu        sync.Mutex
	pools     []admin.PoolStatus
	zones     []admin.ZoneStatus
	reloadErr error
	last      struct {
		addr   netip.Addr
		mode   admin.OverrideMode
		until  time.Time
		reason string
	}
}

func newCLIBackend() *cliBackend {
	now := time.Now()
	return &cliBackend{
		pools: []admin.PoolStatus{{
			Name: "www.example.test.", Zone: "example.test.", Policy: "weighted", TTL: 30, WhenAllDown: "all", Check: "tcp :80",
			Members: []admin.MemberStatus{
				{Address: "192.0.2.1", State: "up", Healthy: true, Checked: true, Since: now.Add(-3 * time.Minute),
					Latency: 1200 * time.Microsecond, Weight: 3, EffectiveWeight: 3, Share: 0.75},
				{Address: "192.0.2.2", State: "down", Checked: true, Since: now.Add(-10 * time.Second),
					LastError: "dial tcp 192.0.2.2:80: connect: connection refused", Weight: 1},
				{Address: "192.0.2.3", State: "drained", Healthy: true, Checked: true, Since: now.Add(-time.Hour), Weight: 1, Backup: true,
					Override: &admin.Override{Mode: admin.OverrideDrain, Reason: "kernel upgrade", Since: now.Add(-time.Minute), Until: now.Add(29 * time.Minute)}},
			},
		}},
		zones: []admin.ZoneStatus{
			{Origin: "example.test.", Serial: 2026030101, Records: 9, LoadedAt: now.Add(-time.Minute)},
			{Origin: "broken.test.", Serial: 3, Records: 2, LoadedAt: now.Add(-time.Hour),
				Error: "zones/broken.test.zone:4: bad A record\nzones/broken.test.zone:9: missing SOA"},
			{Origin: "pulled.test.", Serial: 7, Records: 4, LoadedAt: now.Add(-2 * time.Minute), Primary: "192.0.2.1:53",
				ExpiresAt: now.Add(24 * time.Hour)},
			{Origin: "gone.test.", Serial: 5, Records: 4, LoadedAt: now.Add(-48 * time.Hour), Primary: "192.0.2.2:53", Expired: true},
		},
	}
}

func (b *cliBackend) Ready() bool { return true }
func (b *cliBackend) Pools() []admin.PoolStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]admin.PoolStatus(nil), b.pools...)
}
func (b *cliBackend) Zones() []admin.ZoneStatus { return b.zones }
func (b *cliBackend) SetOverride(a netip.Addr, m admin.OverrideMode, until time.Time, reason string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last.addr, b.last.mode, b.last.until, b.last.reason = a, m, until, reason
	for _, mem := range b.pools[0].Members {
		if mem.Address == a.String() {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", a, admin.ErrUnknownMember)
}
func (b *cliBackend) Reload() error                  { return b.reloadErr }
func (b *cliBackend) LastReload() (time.Time, error) { return time.Time{}, b.reloadErr }

func startAdmin(t *testing.T, b admin.Backend, token string) string {
	t.Helper()
	s := admin.NewServer("127.0.0.1:0", b, nil, admin.Options{Token: token}, zerolog.Nop())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s.Addr()
}

func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errw bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errw)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errw.String(), err
}

func TestStatusCommand(t *testing.T) {
	addr := startAdmin(t, newCLIBackend(), "")
	out, _, err := runCmd(t, newStatusCommand(), "--admin", addr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "POOL") || !strings.Contains(lines[0], "LAST ERROR") {
		t.Errorf("header %q", lines[0])
	}
	if strings.Contains(out, "ALL DOWN") {
		t.Errorf("a pool with a member up shown as all down:\n%s", out)
	}
	for _, want := range []string{
		"www.example.test.  192.0.2.1", "up", "3m0s ago", "1.2ms", "75.0%",
		"192.0.2.2", "down", "0/1", "connection refused",
		"192.0.2.3", "drained", `backup, drain "kernel upgrade" for 29m`,
		"ZONE", "example.test.", "2026030101", "broken.test.", "LOAD ERROR",
		"pulled.test.", "ok, from 192.0.2.1:53", "gone.test.", "EXPIRED (SERVFAIL) from 192.0.2.2:53",
		"  zones/broken.test.zone:9: missing SOA",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	// One pool, by name without the trailing dot.
	out, _, err = runCmd(t, newStatusCommand(), "--admin", "http://"+addr, "WWW.example.test")
	if err != nil || !strings.Contains(out, "192.0.2.2") || strings.Contains(out, "ZONE") {
		t.Errorf("status POOL: %v\n%s", err, out)
	}
	_, _, err = runCmd(t, newStatusCommand(), "--admin", addr, "nope.test")
	if err == nil || !strings.Contains(err.Error(), `no pool named "nope.test"`) || !strings.Contains(err.Error(), "404") {
		t.Errorf("status unknown pool: %v", err)
	}

	out, _, err = runCmd(t, newStatusCommand(), "--admin", addr, "--json")
	var j struct {
		Pools []admin.PoolStatus `json:"pools"`
		Zones []admin.ZoneStatus `json:"zones"`
	}
	if err != nil || json.Unmarshal([]byte(out), &j) != nil || len(j.Pools) != 1 || len(j.Zones) != 4 || j.Zones[2].Primary != "192.0.2.1:53" || !j.Zones[3].Expired {
		t.Errorf("status --json: %v\n%s", err, out)
	}
}

func TestAdminEnvironment(t *testing.T) {
	b := newCLIBackend()
	addr := startAdmin(t, b, "tok")
	t.Setenv("DNSLB_ADMIN", addr)
	t.Setenv("DNSLB_ADMIN_TOKEN", "tok")
	if _, _, err := runCmd(t, newStatusCommand()); err != nil {
		t.Errorf("status with DNSLB_ADMIN: %v", err)
	}
	if _, _, err := runCmd(t, newDrainCommand(), "192.0.2.1"); err != nil {
		t.Errorf("drain with DNSLB_ADMIN_TOKEN: %v", err)
	}
	// The flag wins over the environment.
	_, _, err := runCmd(t, newDrainCommand(), "--token", "wrong", "192.0.2.1")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--token") {
		t.Errorf("wrong token: %v", err)
	}
	t.Setenv("DNSLB_ADMIN_TOKEN", "")
	_, _, err = runCmd(t, newUndrainCommand(), "192.0.2.1")
	if err == nil || !strings.Contains(err.Error(), "missing or wrong bearer token") || !strings.Contains(err.Error(), "DNSLB_ADMIN_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	// With a token set, reads need it too.
	_, _, err = runCmd(t, newStatusCommand())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--token") {
		t.Errorf("status without a token: %v", err)
	}
	if _, _, err := runCmd(t, newStatusCommand(), "--token", "tok"); err != nil {
		t.Errorf("status --token: %v", err)
	}
}

func TestDrainCommands(t *testing.T) {
	b := newCLIBackend()
	addr := startAdmin(t, b, "")
	start := time.Now()
	out, _, err := runCmd(t, newDrainCommand(), "--admin", addr, "192.0.2.1", "--reason", "kernel upgrade", "--for", "30m")
	if err != nil {
		t.Fatal(err)
	}
	if b.last.addr != netip.MustParseAddr("192.0.2.1") || b.last.mode != admin.OverrideDrain || b.last.reason != "kernel upgrade" {
		t.Errorf("SetOverride got %+v", b.last)
	}
	if d := b.last.until.Sub(start); d < 30*time.Minute || d > 31*time.Minute {
		t.Errorf("until %v is not 30m from now", b.last.until)
	}
	if !strings.Contains(out, "drained 192.0.2.1 in 1 pool(s) until") || !strings.Contains(out, "www.example.test.") {
		t.Errorf("drain output:\n%s", out)
	}

	if _, _, err := runCmd(t, newDrainCommand(), "--admin", addr, "--force-down", "192.0.2.2"); err != nil || b.last.mode != admin.OverrideForceDown {
		t.Errorf("drain --force-down: %v %+v", err, b.last)
	}
	out, _, err = runCmd(t, newUndrainCommand(), "--admin", addr, "192.0.2.1", "--reason", "done")
	if err != nil || b.last.mode != admin.OverrideNone || b.last.reason != "done" || !strings.Contains(out, "undrained 192.0.2.1") {
		t.Errorf("undrain: %v %+v\n%s", err, b.last, out)
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"198.51.100.7"}, []string{"drain: 198.51.100.7: no pool has this member", "HTTP 404"}},
		{[]string{"not-an-address"}, []string{"not an IP address", "HTTP 400"}},
		{[]string{"192.0.2.1", "--for", "-5m"}, []string{"must be positive"}},
	} {
		_, _, err := runCmd(t, newDrainCommand(), append([]string{"--admin", addr}, tc.args...)...)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("drain %v: error %v, want it to contain %q", tc.args, err, w)
			}
		}
	}
}

func TestReloadCommand(t *testing.T) {
	b := newCLIBackend()
	addr := startAdmin(t, b, "")
	out, _, err := runCmd(t, newReloadCommand(), "--admin", addr)
	if err != nil || strings.TrimSpace(out) != "reloaded" {
		t.Errorf("reload: %v %q", err, out)
	}
	b.reloadErr = errors.New("zones/example.test.zone:12: unknown RR type \"AAA\"")
	_, errOut, err := runCmd(t, newReloadCommand(), "--admin", addr)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Errorf("failed reload: error %v, want exit status 1", err)
	}
	if !strings.Contains(errOut, `zones/example.test.zone:12: unknown RR type "AAA"`) {
		t.Errorf("failed reload stderr:\n%s", errOut)
	}
}

func TestAdminUnreachable(t *testing.T) {
	_, _, err := runCmd(t, newStatusCommand(), "--admin", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the admin API at http://127.0.0.1:1") {
		t.Errorf("unreachable: %v", err)
	}
	_, _, err = runCmd(t, newStatusCommand(), "--admin", "ftp://x")
	if err == nil || !strings.Contains(err.Error(), "--admin") {
		t.Errorf("bad --admin: %v", err)
	}
}

// A pool answering by its when_all_down fallback says so below the table.
func TestStatusCommandAllDown(t *testing.T) {
	b := newCLIBackend()
	b.pools[0].AllDown, b.pools[0].Fallback, b.pools[0].AllDownFamilies = true, "all", []string{"A"}
	addr := startAdmin(t, b, "")
	out, _, err := runCmd(t, newStatusCommand(), "--admin", addr)
	if err != nil {
		t.Fatal(err)
	}
	want := "ALL DOWN: www.example.test. answers by its when_all_down fallback: every member (fail-open) (A only)"
	if !strings.Contains(out, want) {
		t.Errorf("status output lacks %q:\n%s", want, out)
	}
}

// TestAdminHints: the commands add to the server's refusal what to do
// about it.
func TestAdminHints(t *testing.T) {
	tokenAddr := startAdmin(t, newCLIBackend(), "s3cret")
	stub := func(code int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"error": "refused by the stub"}`)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no token", []string{"--admin", tokenAddr}, []string{"missing or wrong bearer token", "(HTTP 401 Unauthorized); the server wants a token: pass --token or set DNSLB_ADMIN_TOKEN"}},
		{"wrong token", []string{"--admin", tokenAddr, "--token", "guess"}, []string{"(HTTP 401 Unauthorized); check --token / DNSLB_ADMIN_TOKEN"}},
		{"forbidden", []string{"--admin", stub(http.StatusForbidden)}, []string{"refused by the stub (HTTP 403 Forbidden); run this on the server itself"}},
		{"misdirected", []string{"--admin", stub(http.StatusMisdirectedRequest)}, []string{"refused by the stub (HTTP 421 Misdirected Request); give --admin as an IP address"}},
		{"other", []string{"--admin", stub(http.StatusTeapot)}, []string{"refused by the stub (HTTP 418 I'm a teapot)"}},
		{"unreachable", []string{"--admin", "127.0.0.1:1"}, []string{"cannot reach the admin API at http://127.0.0.1:1", "(is dnslb serve running with admin: set? --admin, DNSLB_ADMIN)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envAdmin, "")
			t.Setenv(envAdminToken, "")
			_, _, err := runCmd(t, newStatusCommand(), tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.name == "other" && strings.Contains(err.Error(), "; ") {
				t.Errorf("a hint for a status that has none: %q", err)
			}
		})
	}
}
