package admin

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the fake clock's "now".
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeBackend is an in-memory Backend.
type fakeBackend struct {
	mu         sync.Mutex
	ready      bool
	pools      []PoolStatus
	zones      []ZoneStatus
	reloadErr  error
	reloads    int
	lastReload time.Time
	calls      []overrideCall
	setErr     error // SetOverride's error for known members, as the Runtime's when it cannot save
}

type overrideCall struct {
	Addr   netip.Addr
	Mode   OverrideMode
	Until  time.Time
	Reason string
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		ready:      true,
		lastReload: t0.Add(-5 * time.Minute),
		pools: []PoolStatus{{
			Name: "www.example.test.", Zone: "example.test.", Policy: "weighted", TTL: 30,
			MaxAnswers: 2, WhenAllDown: "all", Check: "http :80 /healthz every 2s",
			Members: []MemberStatus{
				{Address: "192.0.2.1", State: "up", Healthy: true, Checked: true, Since: t0.Add(-90 * time.Second),
					Latency: 1500 * time.Microsecond, Weight: 3, EffectiveWeight: 3, Share: 0.75},
				{Address: "192.0.2.2", State: "down", Checked: true, Since: t0.Add(-12 * time.Second),
					LastError: "dial tcp 192.0.2.2:80: connect: connection refused <b>x</b>", Weight: 1},
				{Address: "192.0.2.3", State: "up", Healthy: true, Checked: true, Since: t0.Add(-time.Hour),
					Latency: 800 * time.Microsecond, Weight: 1, EffectiveWeight: 1, Share: 0.25, Backup: true},
				{Address: "2001:db8::1", State: "up", Healthy: true, Checked: true, Since: t0.Add(-time.Hour), Weight: 1, EffectiveWeight: 1},
			},
		}, {
			Name: "api.example.test.", Zone: "example.test.", Policy: "round-robin", TTL: 10,
			WhenAllDown: "empty", Check: "tcp :443 every 5s",
			Members: []MemberStatus{
				{Address: "192.0.2.1", State: "up", Healthy: true, Checked: true, Since: t0.Add(-time.Hour), Weight: 1, EffectiveWeight: 1, Share: 1},
			},
		}},
		zones: []ZoneStatus{
			{Origin: "example.test.", File: "zones/example.test.zone", Serial: 2026030101, Records: 12, LoadedAt: t0.Add(-5 * time.Minute)},
			{Origin: "broken.test.", File: "zones/broken.test.zone", Serial: 7, Records: 3, LoadedAt: t0.Add(-time.Hour),
				Error: "zones/broken.test.zone:14: bad A record \"<300.1.1.1>\"\nzones/broken.test.zone:20: missing SOA"},
		},
	}
}

func (f *fakeBackend) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeBackend) Pools() []PoolStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]PoolStatus, len(f.pools))
	for i, p := range f.pools {
		p.Members = append([]MemberStatus(nil), p.Members...)
		out[i] = p
	}
	return out
}

func (f *fakeBackend) Zones() []ZoneStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ZoneStatus(nil), f.zones...)
}

func (f *fakeBackend) SetOverride(addr netip.Addr, mode OverrideMode, until time.Time, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, overrideCall{addr, mode, until, reason})
	if f.setErr != nil {
		for _, p := range f.pools {
			for _, m := range p.Members {
				if netip.MustParseAddr(m.Address) == addr {
					return f.setErr // and nothing changes
				}
			}
		}
	}
	found := false
	for i := range f.pools {
		for j := range f.pools[i].Members {
			m := &f.pools[i].Members[j]
			if netip.MustParseAddr(m.Address) != addr {
				continue
			}
			found = true
			switch mode {
			case OverrideNone:
				m.Override = nil
				m.State = map[bool]string{true: "up", false: "down"}[m.Healthy]
			case OverrideDrain:
				m.Override = &Override{Mode: mode, Reason: reason, Since: t0, Until: until}
				m.State = "drained"
			case OverrideForceDown:
				m.Override = &Override{Mode: mode, Reason: reason, Since: t0, Until: until}
				m.State = "forced-down"
			}
		}
	}
	if !found {
		return fmt.Errorf("set override on %s: %w", addr, ErrUnknownMember)
	}
	return nil
}

func (f *fakeBackend) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	f.lastReload = t0
	return f.reloadErr
}

func (f *fakeBackend) LastReload() (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastReload, f.reloadErr
}

func (f *fakeBackend) lastCall() (overrideCall, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return overrideCall{}, errors.New("SetOverride was not called")
	}
	return f.calls[len(f.calls)-1], nil
}
