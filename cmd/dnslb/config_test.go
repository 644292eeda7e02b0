package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/dnslb/dnslb/dnslb"
)

// problemAt is one expected line of `dnslb check`: "FILE:LINE: msg". With
// anyLine the line may be missing (a problem found by Validate, which does
// not know lines on this branch), but when there is one it must be LINE.
type problemAt struct {
	line    int
	anyLine bool
	msg     string
}

func (p problemAt) re(file string) *regexp.Regexp {
	loc := fmt.Sprintf(":%d", p.line)
	if p.anyLine {
		loc = "(" + loc + ")?"
	}
	return regexp.MustCompile("^" + regexp.QuoteMeta(file) + loc + ": " + regexp.QuoteMeta(p.msg) + "$")
}

// TestStrictValues: a duration without a unit and a weight outside 1-10000
// are problems of `dnslb check`, with their file, line and key path, in the
// server's and the VIP agent's configs.
func TestStrictValues(t *testing.T) {
	const zonesYAML = "zones:\n  - {origin: example.test., file: z.zone}\n"
	pool := func(body string) string { return zonesYAML + "pools:\n  www.example.test.:\n" + body } // body from line 5
	check := func(extra string) string {
		return pool("    check:\n      type: tcp\n      port: 80\n" + extra) // extra from line 8
	}
	vipYAML := func(extra string) string { // extra from line 7
		return "vip:\n  - name: a\n    interface: eth0\n    vrid: 51\n    priority: 100\n    addresses: [\"192.0.2.100/24\"]\n" + extra
	}
	const noUnit = " has no unit (write e.g. 2s or 500ms)"
	const interval = "pools[www.example.test.].check.interval: "
	tests := []struct {
		name string
		yaml string
		want []problemAt // none: the file is ok
	}{
		{"check interval integer", check("      interval: 2\n"), []problemAt{{line: 8, msg: interval + "2" + noUnit}}},
		{"check interval quoted", check("      interval: \"2\"\n"), []problemAt{{line: 8, msg: interval + `"2"` + noUnit}}},
		{"check timeout float", check("      interval: 2s\n      timeout: 0.5\n"),
			[]problemAt{{line: 9, msg: "pools[www.example.test.].check.timeout: 0.5" + noUnit}}},
		{"not a duration", check("      interval: 2 seconds\n"),
			[]problemAt{{line: 8, msg: interval + `"2 seconds" is not a duration (write e.g. 2s or 500ms)`}}},
		{"every unitless duration", check("      interval: 2\n      jitter: 1\n      fast_interval: 1\n"), []problemAt{
			{line: 8, msg: interval + "2" + noUnit},
			{line: 9, msg: "pools[www.example.test.].check.jitter: 1" + noUnit},
			{line: 10, msg: "pools[www.example.test.].check.fast_interval: 1" + noUnit},
		}},
		{"negative interval", check("      interval: -2s\n"), []problemAt{{line: 8, anyLine: true, msg: interval + "must be > 0"}}},
		{"tcp idle_timeout", zonesYAML + "tcp:\n  idle_timeout: 30\n", []problemAt{{line: 4, msg: "tcp.idle_timeout: 30" + noUnit}}},
		{"zero needs no unit", zonesYAML + "tcp:\n  idle_timeout: 0\n", nil},
		{"durations with units", check("      interval: 1500ms\n      timeout: 1s\n      jitter: 0\n"), nil},

		{"vip advert_interval", vipYAML("    advert_interval: 1\n"), []problemAt{{line: 7, msg: "vip[0].advert_interval: 1" + noUnit}}},
		{"vip preempt_delay", vipYAML("    preempt_delay: 5\n"), []problemAt{{line: 7, msg: "vip[0].preempt_delay: 5" + noUnit}}},
		{"vip garp_master_delay", vipYAML("    garp_master_delay: 5\n"), []problemAt{{line: 7, msg: "vip[0].garp_master_delay: 5" + noUnit}}},
		{"vip track interval", vipYAML("    track:\n      - interface: eth0\n        interval: 1\n"),
			[]problemAt{{line: 9, msg: "vip[0].track[0].interval: 1" + noUnit}}},
		{"vip track check timeout", vipYAML("    track:\n      - check:\n          type: tcp\n          address: 127.0.0.1:53\n          timeout: 1\n"),
			[]problemAt{{line: 11, msg: "vip[0].track[0].check.timeout: 1" + noUnit}}},
		{"vip durations with units", vipYAML("    advert_interval: 1s\n    preempt_delay: 0\n    garp_master_delay: 0s\n"), nil},

		{"weight 0", pool("    members:\n      192.0.2.10: {weight: 0}\n"), []problemAt{{line: 7, anyLine: true,
			msg: "pools[www.example.test.].members[192.0.2.10].weight: 0 is not allowed (1-10000); to answer a member only when every other member is down use backup: true (and when_all_down: backup)"}}},
		{"weight above range", pool("    members:\n      192.0.2.10: {weight: 10001}\n"),
			[]problemAt{{line: 7, anyLine: true, msg: "pools[www.example.test.].members[192.0.2.10].weight: 10001 is outside 1-10000"}}},
		{"weight negative", pool("    members:\n      192.0.2.10: {weight: -1}\n"),
			[]problemAt{{line: 7, anyLine: true, msg: "pools[www.example.test.].members[192.0.2.10].weight: -1 is outside 1-10000"}}},
		{"weights in range", pool("    members:\n      192.0.2.10: {weight: 10000}\n      192.0.2.11: {weight: 1}\n"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "dnslb.yaml"
			if strings.HasPrefix(tc.yaml, "vip:") {
				name = "vip.yaml"
			}
			dir := writeFiles(t, map[string]string{name: tc.yaml, "z.zone": goodZone + "www A 192.0.2.11\n"})
			file := filepath.Join(dir, name)
			var out, errw bytes.Buffer
			n := runCheck(file, &out, &errw)
			if len(tc.want) == 0 {
				if n != 0 {
					t.Fatalf("%d problems:\n%s", n, errw.String())
				}
				return
			}
			got := strings.Split(strings.TrimSpace(errw.String()), "\n")
			if n != len(tc.want) || len(got) != len(tc.want) {
				t.Fatalf("got %d problems:\n%s\nwant %d: %+v", n, errw.String(), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if re := w.re(file); !re.MatchString(got[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], re)
				}
			}
		})
	}
}

// TestWeights: an unset weight is 1, a set one is kept.
func TestWeights(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"dnslb.yaml": "zones:\n  - {origin: example.test., file: z.zone}\npools:\n  www.example.test.:\n    policy: weighted\n    members:\n      192.0.2.11: {weight: 5}\n      192.0.2.10: {backup: false}\n",
		"z.zone":     goodZone + "www A 192.0.2.11\nwww A 192.0.2.12\n",
	})
	sc, err := loadServerConfig(filepath.Join(dir, "dnslb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := dnslb.LoadZones(&sc.cfg, sc.root)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dnslb.BuildView(&sc.cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range v.Pools["www.example.test."].V4 {
		got[m.Addr.String()] = m.Weight
	}
	want := map[string]int{"192.0.2.10": 1, "192.0.2.11": 5, "192.0.2.12": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("weights %v, want %v", got, want)
	}
}
