package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb"
	"github.com/dnslb/dnslb/vip"
)

// problemAt is one expected line of `dnslb check`: "FILE:LINE: msg".
type problemAt struct {
	line int
	msg  string
}

func (p problemAt) re(file string) *regexp.Regexp {
	loc := fmt.Sprintf(":%d", p.line)
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
		{"negative interval", check("      interval: -2s\n"), []problemAt{{line: 8, msg: interval + "must be > 0"}}},
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

		{"weight 0", pool("    members:\n      192.0.2.10: {weight: 0}\n"), []problemAt{{line: 6,
			msg: "pools[www.example.test.].members[192.0.2.10].weight: 0 is not allowed (1-10000); to answer a member only when every other member is down use backup: true (and when_all_down: backup)"}}},
		{"weight above range", pool("    members:\n      192.0.2.10: {weight: 10001}\n"),
			[]problemAt{{line: 6, msg: "pools[www.example.test.].members[192.0.2.10].weight: 10001 is outside 1-10000"}}},
		{"weight negative", pool("    members:\n      192.0.2.10: {weight: -1}\n"),
			[]problemAt{{line: 6, msg: "pools[www.example.test.].members[192.0.2.10].weight: -1 is outside 1-10000"}}},
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
	set, err := dnslb.LoadZones(sc.Config, sc.Root)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dnslb.BuildView(sc.Config, set)
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

// TestEnvironment: DNSLB_<KEY> sets one leaf key; the admin client's
// variables and variables named for a whole block change nothing.
func TestEnvironment(t *testing.T) {
	const zonesYAML = "zones:\n  - {origin: example.test., file: z.zone}\n"
	const adminBlock = "admin: {listen: \"127.0.0.1:8053\", token: s3cret}\n"
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		check   func(c *dnslb.Config) string // what is wrong, or ""
		wantErr string                       // instead of check
	}{
		{
			name: "DNSLB_ADMIN is the client's", yaml: adminBlock,
			env: map[string]string{"DNSLB_ADMIN": "127.0.0.1:9999", "DNSLB_ADMIN_TOKEN": "other"},
			check: func(c *dnslb.Config) string {
				return wantAdmin(c.Admin, dnslb.AdminConfig{Listen: "127.0.0.1:8053", Token: "s3cret"})
			},
		},
		{
			name: "DNSLB_ADMIN_LISTEN sets only admin.listen", yaml: adminBlock,
			env: map[string]string{"DNSLB_ADMIN_LISTEN": "127.0.0.1:9"},
			check: func(c *dnslb.Config) string {
				return wantAdmin(c.Admin, dnslb.AdminConfig{Listen: "127.0.0.1:9", Token: "s3cret"})
			},
		},
		{
			name: "DNSLB_ADMIN_LISTEN with the short form", yaml: "admin: \"127.0.0.1:8053\"\n",
			env: map[string]string{"DNSLB_ADMIN_LISTEN": "127.0.0.1:9"},
			check: func(c *dnslb.Config) string {
				return wantAdmin(c.Admin, dnslb.AdminConfig{Listen: "127.0.0.1:9"})
			},
		},
		{
			name: "DNSLB_ADMIN_LISTEN without admin in the file",
			env:  map[string]string{"DNSLB_ADMIN_LISTEN": "127.0.0.1:9"},
			check: func(c *dnslb.Config) string {
				return wantAdmin(c.Admin, dnslb.AdminConfig{Listen: "127.0.0.1:9"})
			},
		},
		{
			name: "DNSLB_LOG replaces no block", yaml: "log: {level: warn, format: console}\n",
			env: map[string]string{"DNSLB_LOG": "debug", "DNSLB_TCP": "x", "DNSLB_ZONES": "x", "DNSLB_POOLS": "x"},
			check: func(c *dnslb.Config) string {
				if c.Log != (dnslb.LogConfig{Level: "warn", Format: "console"}) {
					return fmt.Sprintf("log %+v, want the file's", c.Log)
				}
				return ""
			},
		},
		{
			name: "DNSLB_LOG_LEVEL", yaml: "log: {level: warn, format: console}\n",
			env: map[string]string{"DNSLB_LOG_LEVEL": "debug"},
			check: func(c *dnslb.Config) string {
				if c.Log != (dnslb.LogConfig{Level: "debug", Format: "console"}) {
					return fmt.Sprintf("log %+v, want level debug, format console", c.Log)
				}
				return ""
			},
		},
		{
			name: "an empty variable is unset", yaml: "log: {level: warn}\n",
			env: map[string]string{"DNSLB_LOG_LEVEL": ""},
			check: func(c *dnslb.Config) string {
				if c.Log.Level != "warn" {
					return fmt.Sprintf("log.level %q, want the file's warn", c.Log.Level)
				}
				return ""
			},
		},
		{
			name: "keys with underscores", yaml: "udp_size: 1232\ntcp: {idle_timeout: 10s, max_connections: 5}\n",
			env: map[string]string{"DNSLB_UDP_SIZE": "1400", "DNSLB_TCP_IDLE_TIMEOUT": "3s", "DNSLB_STATE_FILE": "x.json", "DNSLB_CACHE_SIZE": "-1"},
			check: func(c *dnslb.Config) string {
				if c.UDPSize != 1400 || c.TCP.IdleTimeout != 3*time.Second || c.TCP.MaxConnections != 5 || c.StateFile != "x.json" || c.CacheSize != -1 {
					return fmt.Sprintf("udp_size %d, tcp %+v, state_file %q, cache_size %d", c.UDPSize, c.TCP, c.StateFile, c.CacheSize)
				}
				return ""
			},
		},
		{
			name: "a list replaces the file's", yaml: "listen: [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\"]\n",
			env: map[string]string{"DNSLB_LISTEN": "127.0.0.1:53,[::1]:53"},
			check: func(c *dnslb.Config) string {
				if strings.Join(c.Listen, " ") != "127.0.0.1:53 [::1]:53" {
					return fmt.Sprintf("listen %q", c.Listen)
				}
				return ""
			},
		},
		{
			name: "other DNSLB_ variables are ignored",
			env:  map[string]string{"DNSLB_CHECK_ADDRESS": "192.0.2.1", "DNSLB_CHECK_PORT": "80", "DNSLB_NO_SUCH_KEY": "1"},
			check: func(c *dnslb.Config) string {
				return ""
			},
		},
		{
			name:    "a duration without a unit",
			env:     map[string]string{"DNSLB_TCP_IDLE_TIMEOUT": "2"},
			wantErr: `environment DNSLB_TCP_IDLE_TIMEOUT: tcp.idle_timeout: "2" has no unit (write e.g. 2s or 500ms)`,
		},
		{
			name:    "not a number",
			env:     map[string]string{"DNSLB_UDP_SIZE": "big"},
			wantErr: "environment DNSLB_UDP_SIZE: udp_size: ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := writeFiles(t, map[string]string{"dnslb.yaml": zonesYAML + tc.yaml})
			sc, err := loadServerConfig(filepath.Join(dir, "dnslb.yaml"))
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one starting %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if problem := tc.check(sc.Config); problem != "" {
				t.Error(problem)
			}
		})
	}
}

func wantAdmin(got, want dnslb.AdminConfig) string {
	if got != want {
		return fmt.Sprintf("admin {listen %q, token %q}, want {listen %q, token %q}", got.Listen, got.Token, want.Listen, want.Token)
	}
	return ""
}

// TestVIPEnvironment: the VIP agent's admin: is not the admin client's
// DNSLB_ADMIN either; its log keys can be set.
func TestVIPEnvironment(t *testing.T) {
	dir := writeFiles(t, map[string]string{"vip.yaml": "vip:\n  - {name: a, interface: eth0, vrid: 51, priority: 100, addresses: [\"192.0.2.100/24\"]}\nadmin: \"127.0.0.1:8054\"\n"})
	t.Setenv("DNSLB_ADMIN", "127.0.0.1:9999")
	t.Setenv("DNSLB_LOG_LEVEL", "debug")
	cfg, err := loadVIPConfig(filepath.Join(dir, "vip.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin != "127.0.0.1:8054" || cfg.Log.Level != "debug" {
		t.Errorf("admin %q, log.level %q; want the file's 127.0.0.1:8054 and debug from DNSLB_LOG_LEVEL", cfg.Admin, cfg.Log.Level)
	}
}

// TestEnvLeaves: the variables each config answers to. A new key shows up
// here; two keys that would share a variable are an error.
func TestEnvLeaves(t *testing.T) {
	names := func(v any) []string {
		t.Helper()
		leaves, err := envLeaves(reflect.TypeOf(v))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range leaves {
			out = append(out, l.name+"="+l.key)
		}
		return out
	}
	server := []string{
		"DNSLB_LISTEN=listen", "DNSLB_ADMIN_LISTEN=admin.listen", "DNSLB_STATE_FILE=state_file",
		"DNSLB_LOG_LEVEL=log.level", "DNSLB_LOG_FORMAT=log.format", "DNSLB_UDP_SIZE=udp_size",
		"DNSLB_TCP_IDLE_TIMEOUT=tcp.idle_timeout", "DNSLB_TCP_MAX_CONNECTIONS=tcp.max_connections",
		"DNSLB_CACHE_SIZE=cache_size",
		"DNSLB_RRL_ENABLED=rrl.enabled", "DNSLB_RRL_RESPONSES_PER_SECOND=rrl.responses_per_second",
		"DNSLB_RRL_SLIP=rrl.slip", "DNSLB_RRL_IPV4_PREFIX=rrl.ipv4_prefix", "DNSLB_RRL_IPV6_PREFIX=rrl.ipv6_prefix",
		"DNSLB_RRL_EXEMPT=rrl.exempt", "DNSLB_RRL_TABLE_SIZE=rrl.table_size",
	}
	if got := names(dnslb.Config{}); !reflect.DeepEqual(got, server) {
		t.Errorf("server config: %q\nwant %q", got, server)
	}
	vipWant := []string{"DNSLB_LOG_LEVEL=log.level", "DNSLB_LOG_FORMAT=log.format"}
	if got := names(vip.Config{}); !reflect.DeepEqual(got, vipWant) {
		t.Errorf("vip config: %q\nwant %q", got, vipWant)
	}

	type clash struct {
		A struct {
			B string `mapstructure:"b"`
		} `mapstructure:"a"`
		AB string `mapstructure:"a_b"`
	}
	if _, err := envLeaves(reflect.TypeFor[clash]()); err == nil || !strings.Contains(err.Error(), "DNSLB_A_B would set both a.b and a_b") {
		t.Errorf("clashing keys: %v", err)
	}
}

func TestMain(m *testing.M) {
	// The developer's shell may set the admin client's variables or
	// overrides; the tests set what they need.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) {
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}
