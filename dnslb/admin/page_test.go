package admin

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestPageAbout: the page names the server (host, DNS addresses, version,
// uptime) and, without a Hostname, the machine's.
func TestPageAbout(t *testing.T) {
	machine, _ := os.Hostname()
	for _, tc := range []struct {
		name  string
		about About
		want  []string
		not   []string
	}{
		{"full", About{Hostname: "dns-a.example.net", Version: "1.2.0 (abcdef012345)",
			Listen: []string{"192.0.2.53:53", "[2001:db8::53]:53"}, Started: t0.Add(-(3*time.Hour + 4*time.Minute))},
			[]string{`<span class="host" id="host"`, `>dns-a.example.net</span>`, `<title>dns-a.example.net · dnslb status</title>`,
				`192.0.2.53:53, [2001:db8::53]:53`, `1.2.0 (abcdef012345)`, `up <b>3h 4m</b>`}, nil},
		{"machine's name", About{}, []string{`>` + machine + `</span>`}, []string{"DNS on", "version", "up <b>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, newFakeBackend(), nil, Options{About: tc.about})
			page := string(do(t, "GET", "http://"+s.Addr()+"/", "", "").body)
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(page, n) {
					t.Errorf("page has %q for an empty field", n)
				}
			}
		})
	}
}

// TestPageMarks: a pool in its fallback carries a note saying what it
// answers; a degraded pool a badge with its degraded TTL, unless that TTL
// is the normal one (nothing changes then); and every member cell a label
// for the stacked layout of narrow screens, with empty cells marked to be
// left out there.
func TestPageMarks(t *testing.T) {
	fb := newFakeBackend()
	fb.pools[0].Degraded, fb.pools[0].TTLDegraded = true, 5
	fb.pools[1].AllDown, fb.pools[1].Fallback, fb.pools[1].Degraded, fb.pools[1].TTLDegraded = true, "empty", true, 10
	s := startServer(t, fb, nil, Options{})
	page := string(do(t, "GET", "http://"+s.Addr()+"/", "", "").body)
	for _, want := range []string{
		`degraded TTL 5s</span>`,
		`<div class="fallback-note" data-fallback-note>In its when_all_down fallback: no primary member is up and undrained, so the pool is answering NODATA (empty).</div>`,
		`<td class="addr lead" data-label="Member">192.0.2.2</td>`,
		`<td data-label="Error" class="blank">`,
		`<td class="override blank" data-label="Override">`,
		`<table class="stack">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, `class="badge degraded"`); n != 1 {
		t.Errorf("%d degraded badges, want 1 (api's degraded TTL is its TTL)", n)
	}
	if n := strings.Count(page, "data-fallback-note"); n != 1 {
		t.Errorf("%d fallback notes, want 1", n)
	}
}

// Each member's row shows the weight it is answered by beside the
// configured one when they differ, and what its load agent reports.
func TestPageWeights(t *testing.T) {
	fb := newFakeBackend()
	ms := fb.pools[0].Members
	ms[0].EffectiveWeight = 2 // a ramp or a live weight
	ms[0].Load = &LoadStatus{Agent: "192.0.2.1:9777", Op: "up", Percent: 60, Weight: -1, LiveWeight: 2}
	ms[2].Load = &LoadStatus{Agent: "192.0.2.3:9777", Percent: -1, Weight: -1, LiveWeight: 1, Stale: true}
	ms[3].Load = &LoadStatus{Agent: "[2001:db8::1]:9777", Percent: -1, Weight: 30, LiveWeight: 30, Admin: "drain"}
	ms[3].EffectiveWeight = 0
	s := startServer(t, fb, nil, Options{})
	page := string(do(t, "GET", "http://"+s.Addr()+"/", "", "").body)
	for _, want := range []string{
		`title="answered by 2 of configured 3"><span class="effective-weight">2</span> <span class="muted">/ 3</span><br><span class="load muted" data-load="60%">load 60%</span>`,
		`<span class="effective-weight">0</span> <span class="muted">/ 1</span>`, // 192.0.2.2, down
		`<span class="load muted stale" data-load="stale">load stale: configured weight</span>`,
		`<span class="load muted" data-load="weight:30">load weight:30 · drain</span>`,
		`title="answered by 1 of configured 1"><span class="effective-weight">1</span></td>`, // api: equal, no "/ 1"
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// A pulled zone names its primary instead of a file, and an expired
// one says so.
func TestPagePulledZones(t *testing.T) {
	fb := newFakeBackend()
	fb.zones = append(fb.zones,
		ZoneStatus{Origin: "pulled.test.", Serial: 7, Records: 4, LoadedAt: time.Now(), Primary: "192.0.2.1:53"},
		ZoneStatus{Origin: "gone.test.", Serial: 5, Records: 4, LoadedAt: time.Now(), Primary: "192.0.2.2:53", Expired: true},
		ZoneStatus{Origin: "new.test.", Primary: "192.0.2.3:53", Expired: true})
	s := startServer(t, fb, nil, Options{})
	page := string(do(t, "GET", "http://"+s.Addr()+"/", "", "").body)
	for _, want := range []string{
		`<span class="primary">from primary 192.0.2.1:53</span></td>`,
		`<span class="primary">from primary 192.0.2.2:53</span> <span class="badge alldown expired"`,
		`>EXPIRED</span>`,
		`>NOT TRANSFERRED</span>`,
		`<td class="mono muted" data-label="File">zones/example.test.zone</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
