package dnslb

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// fakeConfig is a Loader over files in a directory, with a config the test
// can change between reloads.
type fakeConfig struct {
	mu  sync.Mutex
	dir string
	cfg Config
	// fsys, when set, replaces the directory as the zones' file system
	// (fault injection).
	fsys fs.FS
}

func (f *fakeConfig) load() (*Loaded, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var fsys fs.FS = os.DirFS(f.dir)
	if f.fsys != nil {
		fsys = f.fsys
	}
	return &Loaded{Config: &c, Root: ZoneRoot{FS: fsys, Display: f.dir, Dir: f.dir}, File: "test.yaml"}, nil
}

func (f *fakeConfig) set(change func(*Config)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.cfg)
}

const rtZone = `$TTL 300
@ SOA ns1 hostmaster %s 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.1
www 60 A 192.0.2.10
www 60 A 192.0.2.11
`

func writeZone(t *testing.T, dir, serial, extra string) {
	t.Helper()
	body := strings.Replace(rtZone, "%s", serial, 1) + extra
	if err := os.WriteFile(filepath.Join(dir, "z.zone"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newTestRuntime(t *testing.T, dir string, fc *fakeConfig, log zerolog.Logger) *Runtime {
	t.Helper()
	rt, err := NewRuntime(RuntimeOptions{Load: fc.load, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	return rt
}

func askRT(t *testing.T, rt *Runtime, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, rt.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func baseConfig(dir string) *fakeConfig {
	return &fakeConfig{dir: dir, cfg: Config{
		Listen: []string{"127.0.0.1:0"},
		Zones:  []ZoneConfig{{Origin: "example.test.", File: "z.zone"}},
		Pools:  map[string]PoolConfig{"www.example.test.": {}},
	}}
}

func TestReloadSwapsAndKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())

	if resp := askRT(t, rt, "new.example.test.", dns.TypeA); resp.Rcode != dns.RcodeNameError {
		t.Fatalf("new before reload: %v", resp)
	}
	writeZone(t, dir, "2", "new A 192.0.2.99\n")
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if resp := askRT(t, rt, "new.example.test.", dns.TypeA); len(resp.Answer) != 1 {
		t.Fatalf("new after reload: %v", resp)
	}

	// A broken file: the error names file and line, the old zone serves.
	writeZone(t, dir, "3", "new A 192.0.2.99\nbad A 1.2.3.999\n")
	err := rt.Reload()
	if err == nil || !strings.Contains(err.Error(), "z.zone:8: bad A") {
		t.Fatalf("reload of a broken zone: %v", err)
	}
	if resp := askRT(t, rt, "new.example.test.", dns.TypeA); len(resp.Answer) != 1 {
		t.Fatalf("old zone not served after a failed reload: %v", resp)
	}
	zs := rt.Zones()
	if len(zs) != 1 || zs[0].Serial != 2 || !strings.Contains(zs[0].Error, "z.zone:8") {
		t.Fatalf("zone status %+v", zs)
	}
	if _, lastErr := rt.LastReload(); lastErr == nil {
		t.Error("LastReload does not report the error")
	}

	// A config whose pool names a member not in the zone: nothing changes.
	writeZone(t, dir, "4", "new A 192.0.2.100\n")
	fc.set(func(c *Config) {
		c.Pools = map[string]PoolConfig{"www.example.test.": {Members: map[string]MemberConfig{"192.0.2.50": {}}}}
	})
	if err := rt.Reload(); err == nil || !strings.Contains(err.Error(), "192.0.2.50") {
		t.Fatalf("bad pool config accepted: %v", err)
	}
	if resp := askRT(t, rt, "new.example.test.", dns.TypeA); resp.Answer[0].(*dns.A).A.String() != "192.0.2.99" {
		t.Fatalf("half-applied reload: %v", resp.Answer)
	}

	// Fixed: everything new.
	fc.set(func(c *Config) { c.Pools = map[string]PoolConfig{"www.example.test.": {}} })
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if resp := askRT(t, rt, "new.example.test.", dns.TypeA); resp.Answer[0].(*dns.A).A.String() != "192.0.2.100" {
		t.Fatalf("after the fix: %v", resp.Answer)
	}
	if zs := rt.Zones(); zs[0].Error != "" || zs[0].Serial != 4 {
		t.Fatalf("zone status after the fix: %+v", zs)
	}
}

// logLines collects JSON log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logLines) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func TestSerialWarningAndAuto(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "7", "")
	fc := baseConfig(dir)
	logs := &logLines{}
	rt := newTestRuntime(t, dir, fc, zerolog.New(logs))

	writeZone(t, dir, "7", "x A 192.0.2.5\n") // changed, same serial
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if !logs.contains("SOA serial did not grow") {
		t.Error("no warning for a change without a serial bump")
	}

	fc.set(func(c *Config) { c.Zones[0].Serial = "auto" })
	writeZone(t, dir, "7", "x A 192.0.2.6\n")
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	soa := askRT(t, rt, "example.test.", dns.TypeSOA).Answer[0].(*dns.SOA)
	if soa.Serial != 8 {
		t.Errorf("serial: auto gave %d, want 8", soa.Serial)
	}
	if err := rt.Reload(); err != nil { // no change: no bump
		t.Fatal(err)
	}
	if soa := askRT(t, rt, "example.test.", dns.TypeSOA).Answer[0].(*dns.SOA); soa.Serial != 8 {
		t.Errorf("serial grew without a change: %d", soa.Serial)
	}
}

func TestOverridesSurviveRestartAndExpire(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	if err := rt.SetOverride(netip.MustParseAddr("192.0.2.99"), admin.OverrideDrain, time.Time{}, "x"); !errors.Is(err, admin.ErrUnknownMember) {
		t.Fatalf("unknown member: %v", err)
	}
	if err := rt.SetOverride(netip.MustParseAddr("192.0.2.10"), admin.OverrideDrain, time.Time{}, "maintenance"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		for _, rr := range askRT(t, rt, "www.example.test.", dns.TypeA).Answer {
			if rr.(*dns.A).A.String() == "192.0.2.10" {
				t.Fatal("drained member answered")
			}
		}
	}
	ps := rt.Pools()
	if ps[0].Members[0].State != "drained" || ps[0].Members[0].Override.Reason != "maintenance" {
		t.Fatalf("pool status %+v", ps[0].Members[0])
	}
	// The state file holds it; a new runtime (a restart) restores it.
	data, err := os.ReadFile(filepath.Join(dir, DefaultStateFile))
	if err != nil {
		t.Fatal(err)
	}
	var sf stateFile
	if err := json.Unmarshal(data, &sf); err != nil || sf.Overrides["192.0.2.10"].Reason != "maintenance" {
		t.Fatalf("state file %s: %v", data, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt.Shutdown(ctx)
	rt2 := newTestRuntime(t, dir, fc, zerolog.Nop())
	if st := rt2.Pools()[0].Members[0]; st.State != "drained" {
		t.Fatalf("drain lost over a restart: %+v", st)
	}
	// A reload keeps it too.
	writeZone(t, dir, "2", "y A 192.0.2.7\n")
	if err := rt2.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := rt2.Pools()[0].Members[0]; st.State != "drained" {
		t.Fatalf("drain lost over a reload: %+v", st)
	}
	// An expired override lifts itself.
	if err := rt2.SetOverride(netip.MustParseAddr("192.0.2.10"), admin.OverrideDrain, time.Now().Add(-time.Second), "short"); err != nil {
		t.Fatal(err)
	}
	rt2.expireOverrides()
	if st := rt2.Pools()[0].Members[0]; st.State != "up" {
		t.Fatalf("expired drain still on: %+v", st)
	}
}

func TestNoOpReloadIsSkipped(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	before := rt.Authority().View()
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if rt.Authority().View() != before {
		t.Error("a reload with nothing changed built a new generation")
	}
}
