package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dnslb/dnslb/dnslb"
	"github.com/dnslb/dnslb/internal/fuzzguard"
	"github.com/dnslb/dnslb/vip"
)

// FuzzConfig reads arbitrary YAML as a server config and as a VIP agent's
// config, as `dnslb check` does: no input may panic; every problem names
// the file, and every problem Validate finds has its key path.
func FuzzConfig(f *testing.F) {
	for _, name := range []string{"../../examples/dnslb.yaml", "../../examples/vip.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1) {
		f.Add(string(b[1]))
	}
	const zonesYAML = "zones:\n  - {origin: example.test., file: z.zone}\n"
	for _, s := range []string{
		zonesYAML + "pools:\n  www.example.test.:\n    check: {type: tcp, port: 80, interval: 2}\n",
		zonesYAML + "pools:\n  www.example.test.:\n    members:\n      192.0.2.10: {weight: 0}\n",
		zonesYAML + "pools:\n  nope.example.test.: {}\n  www.example.test.: {policy: sticky, when_all_down: backup}\n",
		zonesYAML + "admin: {listen: \"127.0.0.1:8053\", token: x, allowed_hosts: [\"*.example.com\", \"a:1\"]}\n",
		zonesYAML + "listen: [\"[::]:53\", 53]\nudp_size: 100000\ntcp: {idle_timeout: -1s}\nbogus: 1\n",
		"zones: 5\npools: [1, 2]\nlisten: {a: b}\n",
		"zones:\n  - origin: example.test.\n    file: z.zone\n  - origin: EXAMPLE.test\n    file: z.zone\n",
		"vip:\n  - {name: a, interface: eth0, vrid: 0, priority: 300, advert_interval: 15ms, addresses: [\"192.0.2.1/24\", \"192.0.2.1\"]}\n",
		"vip:\n  - name: a\n    interface: eth0\n    vrid: 51\n    priority: 100\n    addresses: [\"2001:db8::1/64\", \"192.0.2.1/24\"]\n    unicast_peers: [\"192.0.2.2\", ff02::1]\n    track:\n      - {check: {type: dns, address: \"127.0.0.1:53\"}, weight: -300}\n      - {exec: \"true\", interface: eth0}\n",
		"a: &a [*a]\n",
		// A billion laughs: aliases that expand exponentially.
		"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
			"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
			"zones: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\npools: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n",
		"a: !!binary x\n",
		"{",
		"",
	} {
		f.Add(s)
	}
	root := dnslb.ZoneRoot{FS: fstest.MapFS{"z.zone": {Data: []byte(goodZone)}}, Display: "conf"}
	f.Fuzz(func(t *testing.T, text string) {
		fuzzguard.Run(t, "server config", fuzzguard.Limit, func() { checkServerConfig(t, text, root) })
		fuzzguard.Run(t, "vip config", fuzzguard.Limit, func() { checkVIPConfig(t, text) })
	})
}

func checkServerConfig(t *testing.T, text string, root dnslb.ZoneRoot) {
	t.Helper()
	var cfg dnslb.Config
	data, err := readConfig("", []byte(text), &cfg)
	if err != nil {
		wantPlaced(t, "readConfig", dnslb.ProblemsOf(err), false)
		return
	}
	if err := cfg.Validate(); err != nil {
		wantPlaced(t, "Validate", dnslb.ProblemsOf(err), true)
	}
	l := &dnslb.Loaded{Config: &cfg, Root: root, File: "dnslb.yaml", Locate: locator(data)}
	if _, err := dnslb.Check(func() (*dnslb.Loaded, error) { return l, nil }); err != nil {
		wantPlaced(t, "Check", dnslb.ProblemsOf(err), false)
	}
}

func checkVIPConfig(t *testing.T, text string) {
	t.Helper()
	var cfg vip.Config
	data, err := readConfig("", []byte(text), &cfg)
	if err != nil {
		wantPlaced(t, "readConfig", dnslb.ProblemsOf(err), false)
		return
	}
	if err := cfg.Validate(); err != nil {
		wantPlaced(t, "vip Validate", dnslb.ProblemsOf(placeKeyed("vip.yaml", locator(data), err)), true)
	}
}

// wantPlaced fails unless there are problems and each names its file
// and says something; keyed problems must also carry their key path.
func wantPlaced(t *testing.T, what string, ps dnslb.Problems, keyed bool) {
	t.Helper()
	if len(ps) == 0 {
		t.Fatalf("%s: an error without problems", what)
	}
	for _, p := range ps {
		if strings.TrimSpace(p.Msg) == "" || (keyed && p.Key == "") || (!keyed && p.File == "" && p.Key == "") {
			t.Fatalf("%s: problem %#v lacks its key path, file or message (all: %v)", what, p, ps)
		}
	}
}
