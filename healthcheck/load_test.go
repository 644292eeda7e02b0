package healthcheck

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestLoadMergeAndWeights(t *testing.T) {
	now := time.Unix(1000, 0)
	parse := func(s string) AgentReport {
		r, err := ParseAgentLine([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		lines   []string
		down    bool
		drained bool
		weight  int // of a member configured with 8; -1: none
	}{
		{[]string{"up"}, false, false, -1},
		{[]string{"up 25%"}, false, false, 2},
		{[]string{"50%", "down"}, true, false, 4}, // the percentage stays
		{[]string{"down", "75%"}, true, false, 6}, // and so does down
		{[]string{"down", "up"}, false, false, -1},
		{[]string{"drain"}, false, true, -1},
		{[]string{"maint", "ready"}, false, false, -1},
		{[]string{"0%"}, false, true, 0},
		{[]string{"1%"}, false, false, 1}, // rounds up, not to drained
		{[]string{"weight:0"}, false, true, 0},
		{[]string{"weight:3"}, false, false, 3},
		{[]string{"weight:3", "200%"}, false, false, 16},
		{[]string{"drain 100%", "maxconn:4"}, false, true, 8},
	}
	for _, tt := range tests {
		l := unsetLoad()
		for _, s := range tt.lines {
			l = l.Merge(parse(s), now)
		}
		w, ok := l.LiveWeight(8)
		if !ok {
			w = -1
		}
		if l.Down() != tt.down || l.Drained() != tt.drained || w != tt.weight {
			t.Errorf("%q: down %v drained %v weight %d; want %v %v %d", tt.lines, l.Down(), l.Drained(), w, tt.down, tt.drained, tt.weight)
		}
	}
}

// script is a fake agent: each probe of addr gets the next result.
type script struct {
	mu      sync.Mutex
	replies []string // "": the probe fails
}

func (s *script) set(replies ...string) {
	s.mu.Lock()
	s.replies = replies
	s.mu.Unlock()
}

func (s *script) probe(_ context.Context, _ netip.AddrPort, _ time.Duration) (AgentReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := ""
	if len(s.replies) > 0 {
		reply = s.replies[0]
		if len(s.replies) > 1 {
			s.replies = s.replies[1:]
		}
	}
	if reply == "" {
		return AgentReport{}, errors.New("connection refused")
	}
	return ParseAgentLine([]byte(reply))
}

func TestLoadWatcherStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		addr := netip.MustParseAddrPort("192.0.2.1:9777")
		sc := &script{}
		sc.set("up 25%")
		var changes []LoadChange
		w := NewLoadWatcher(WithAgentProbe(sc.probe), WithLoadChanges(func(c LoadChange) { changes = append(changes, c) }))
		w.Set([]LoadTarget{{Addr: addr, Interval: 2 * time.Second}})
		gen0 := w.Snapshot().Generation
		w.Start(t.Context())
		defer w.Close()
		synctest.Wait()
		l, _ := w.Snapshot().Get(addr)
		if wt, ok := l.LiveWeight(4); !ok || wt != 1 || w.Snapshot().Generation == gen0 {
			t.Fatalf("after the first report: %+v", l)
		}
		gen1 := w.Snapshot().Generation
		time.Sleep(10 * time.Second) // the same report, five times more
		synctest.Wait()
		if g := w.Snapshot().Generation; g != gen1 {
			t.Errorf("an unchanged report published generation %d after %d", g, gen1)
		}
		sc.set("") // the agent stops
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if l, _ := w.Snapshot().Get(addr); l.Stale {
			t.Fatalf("stale after 2.5 intervals: %+v", l)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		l, _ = w.Snapshot().Get(addr)
		if _, ok := l.LiveWeight(4); !l.Stale || ok {
			t.Fatalf("not stale after 3 intervals without a report: %+v", l)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if len(changes) != 2 || !changes[1].New.Stale {
			t.Errorf("changes %+v, want the first report and going stale, once", changes)
		}
		sc.set("drain")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if l, _ := w.Snapshot().Get(addr); l.Stale || !l.Drained() || l.Percent != -1 {
			t.Errorf("after the agent came back with drain: %+v (the old percentage is gone)", l)
		}
		w.Set(nil)
		if _, ok := w.Snapshot().Get(addr); ok {
			t.Error("a removed agent is still in the snapshot")
		}
	})
}

// A passive target takes reports from Report, and goes stale without them.
func TestLoadWatcherPassive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		addr := netip.MustParseAddrPort("192.0.2.1:8080")
		w := NewLoadWatcher(WithAgentProbe(func(context.Context, netip.AddrPort, time.Duration) (AgentReport, error) {
			t.Error("a passive target was probed")
			return AgentReport{}, nil
		}))
		w.Set([]LoadTarget{{Addr: addr, Interval: time.Second, Passive: true}})
		w.Start(t.Context())
		defer w.Close()
		w.Report(addr, "50%", nil)
		w.Report(netip.MustParseAddrPort("192.0.2.2:8080"), "drain", nil) // not watched
		if l, _ := w.Snapshot().Get(addr); l.Percent != 50 || l.Stale {
			t.Fatalf("after a report: %+v", l)
		}
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if l, _ := w.Snapshot().Get(addr); l.Stale {
			t.Fatalf("stale after 2.5 intervals: %+v", l)
		}
		w.Report(addr, "", errors.New("no X-Weight header"))
		time.Sleep(1 * time.Second)
		synctest.Wait()
		if l, _ := w.Snapshot().Get(addr); !l.Stale || l.Percent != -1 || l.Err != "no X-Weight header" {
			t.Fatalf("after 3.5 intervals without a report: %+v", l)
		}
	})
}
