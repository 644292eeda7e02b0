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
	"github.com/dnslb/dnslb/dnslb/answer"
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
		{"vip notify hook missing", vipYAML("    notify_master: /nonexistent/to-master.sh\n"),
			[]problemAt{{line: 7, msg: "vip[0].notify_master: stat /nonexistent/to-master.sh: no such file or directory"}}},
		{"vip durations with units", vipYAML("    advert_interval: 1s\n    preempt_delay: 0\n    garp_master_delay: 0s\n"), nil},

		{"admin allowed_hosts", zonesYAML + "admin:\n  listen: 127.0.0.1:8053\n  allowed_hosts: [lb1.example.com, \"*.dc1.example.com\", 192.0.2.53, \"[2001:db8::53]\", dnslb.localhost.]\n", nil},
		{"admin allowed_hosts bad", zonesYAML + "admin:\n  listen: 127.0.0.1:8053\n  allowed_hosts:\n    - lb1.example.com:8053\n    - \"*\"\n    - http://lb1\n", []problemAt{
			{line: 6, msg: `admin.allowed_hosts[0]: "lb1.example.com:8053" is not a host name (want e.g. lb1.example.com or *.example.com, without port)`},
			{line: 7, msg: `admin.allowed_hosts[1]: "*" is not a host name (want e.g. lb1.example.com or *.example.com, without port)`},
			{line: 8, msg: `admin.allowed_hosts[2]: "http://lb1" is not a host name (want e.g. lb1.example.com or *.example.com, without port)`},
		}},

		{"weight 0", pool("    members:\n      192.0.2.10: {weight: 0}\n"), []problemAt{{line: 6,
			msg: "pools[www.example.test.].members[192.0.2.10].weight: 0 is not allowed (1-10000); to answer a member only when every other member is down use backup: true (and when_all_down: backup)"}}},
		{"weight above range", pool("    members:\n      192.0.2.10: {weight: 10001}\n"),
			[]problemAt{{line: 6, msg: "pools[www.example.test.].members[192.0.2.10].weight: 10001 is outside 1-10000"}}},
		{"weight negative", pool("    members:\n      192.0.2.10: {weight: -1}\n"),
			[]problemAt{{line: 6, msg: "pools[www.example.test.].members[192.0.2.10].weight: -1 is outside 1-10000"}}},
		{"weights in range", pool("    members:\n      192.0.2.10: {weight: 10000}\n      192.0.2.11: {weight: 1}\n"), nil},

		{"cache sizes with units", zonesYAML + "cache:\n  max_bytes: 64MiB\n", nil},
		{"cache size not a size", zonesYAML + "cache:\n  max_bytes: 64 megs\n", []problemAt{{line: 4,
			msg: `cache.max_bytes: "64 megs" is not a size (write e.g. 64MiB, 512KiB, 1GB or a number of bytes)`}}},
		{"cache size too small", zonesYAML + "cache:\n  max_bytes: 4KiB\n", []problemAt{{line: 4,
			msg: "cache.max_bytes: 4096 is below the minimum of 1MiB (0 turns the cache off)"}}},
		{"cache_size beside cache.max_bytes", zonesYAML + "cache_size: 1000\ncache: {max_bytes: 8MiB}\n", []problemAt{{line: 3,
			msg: "cache_size: deprecated, and cache.max_bytes is set: remove cache_size"}}},
		{"cookies off", zonesYAML + "cookies: off\n", nil},
		{"cookies neither off nor a block", zonesYAML + "cookies: maybe\n", []problemAt{{line: 3,
			msg: `cookies: "maybe": write off, on, or a block {secret: ...}`}}},
		{"cookie secret", zonesYAML + "cookies:\n  secret: e5e973e5a6b2a43f48e7dc849e37bfcf\n", nil},
		{"cookie secret too short: not repeated", zonesYAML + "cookies:\n  secret: e5e973e5a6b2a43f\n", []problemAt{{line: 4,
			msg: "cookies.secret: must be 32 hex digits (16 bytes)"}}},
		{"cookie secret not hex: not repeated", zonesYAML + "cookies:\n  secret: e5e973e5a6b2a43f48e7dc849e37bfcX\n", []problemAt{{line: 4,
			msg: "cookies.secret: must be 32 hex digits (16 bytes); it has a character that is not one"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "dnslb.yaml"
			if strings.HasPrefix(tc.yaml, "vip:") {
				name = "vip.yaml"
			}
			dir := writeFiles(t, map[string]string{name: tc.yaml, "z.zone": goodZone + "www A 192.0.2.11\n"})
			checkFile(t, filepath.Join(dir, name), tc.want)
		})
	}
}

// TestWeights: an unset weight is 1, a set one is kept.
func TestWeights(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"dnslb.yaml": "zones:\n  - {origin: example.test., file: z.zone}\npools:\n  www.example.test.:\n    policy: weighted\n    members:\n      192.0.2.11: {weight: 5}\n      192.0.2.10: {backup: false}\n",
		"z.zone":     goodZone + "www A 192.0.2.11\nwww A 192.0.2.12\n",
	})
	g, err := dnslb.Check(func() (*dnslb.Loaded, error) { return loadServerConfig(filepath.Join(dir, "dnslb.yaml")) })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range g.View.Pools["www.example.test."].V4 {
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
			name: "freebind from the file", yaml: "freebind: true\n",
			check: func(c *dnslb.Config) string {
				if !c.Freebind {
					return "freebind false, want true"
				}
				return ""
			},
		},
		{
			name: "DNSLB_FREEBIND",
			env:  map[string]string{"DNSLB_FREEBIND": "true"},
			check: func(c *dnslb.Config) string {
				if !c.Freebind {
					return "freebind false, want true from DNSLB_FREEBIND"
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
			name: "cache sizes", yaml: "cache: {max_bytes: 512KiB}\n",
			env: map[string]string{"DNSLB_CACHE_MAX_BYTES": "2MiB"},
			check: func(c *dnslb.Config) string {
				if c.CacheBytes() != 2<<20 {
					return fmt.Sprintf("cache bytes %d, want 2MiB from DNSLB_CACHE_MAX_BYTES", c.CacheBytes())
				}
				return ""
			},
		},
		{
			name: "DNSLB_COOKIES_SECRET keeps cookies: off", yaml: "cookies: off\n",
			env: map[string]string{"DNSLB_COOKIES_SECRET": "e5e973e5a6b2a43f48e7dc849e37bfcf"},
			check: func(c *dnslb.Config) string {
				if !c.Cookies.Off || c.Cookies.Secret == "" || c.Validate() == nil {
					return fmt.Sprintf("cookies %+v (valid: %v), want off with the secret, a problem", c.Cookies, c.Validate() == nil)
				}
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
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("admin %+v, want %+v", got, want)
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
		"DNSLB_LISTEN=listen", "DNSLB_FREEBIND=freebind", "DNSLB_ADMIN_LISTEN=admin.listen", "DNSLB_ADMIN_ALLOWED_HOSTS=admin.allowed_hosts",
		"DNSLB_STATE_FILE=state_file",
		"DNSLB_LOG_LEVEL=log.level", "DNSLB_LOG_FORMAT=log.format", "DNSLB_UDP_SIZE=udp_size",
		"DNSLB_TCP_IDLE_TIMEOUT=tcp.idle_timeout", "DNSLB_TCP_MAX_CONNECTIONS=tcp.max_connections",
		"DNSLB_CACHE_MAX_BYTES=cache.max_bytes", "DNSLB_CACHE_SIZE=cache_size", "DNSLB_COOKIES_SECRET=cookies.secret",
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

// TestTSIGKeyProblems: the tsig: block's problems have their lines and
// key paths, and no output of `dnslb check` shows a secret.
func TestTSIGKeyProblems(t *testing.T) {
	const secret = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk"
	yaml := "zones:\n  - {origin: example.test., file: z.zone}\ntsig:\n  keys:\n" +
		"    - name: xfr-key.\n      algorithm: hmac-sha256\n      secret: \"" + secret + "!\"\n" + // lines 5-7
		"    - {name: \"bad..name\", algorithm: hmac-sha3, secret: \"\"}\n" + // line 8
		"    - {name: XFR-Key, algorithm: hmac-md5, secret: \"" + secret + "\"}\n" + // line 9
		"    - {name: ok., algorithm: hmac-sha512, secret: {nested: \"" + secret + "\"}}\n" // line 10
	dir := writeFiles(t, map[string]string{"dnslb.yaml": yaml, "z.zone": goodZone})
	file := filepath.Join(dir, "dnslb.yaml")
	var out, errw bytes.Buffer
	runCheck(file, &out, &errw)
	if strings.Contains(out.String()+errw.String(), secret[:16]) {
		t.Fatalf("check shows a secret:\n%s%s", out.String(), errw.String())
	}
	// Decoding fails first, on the secret that is not a string.
	want := []problemAt{{line: 10, msg: "tsig.keys[3].secret: expected type 'dnslb.Secret', got unconvertible type 'map[string]interface {}'"}}
	checkProblems(t, file, errw.String(), want)

	yaml = strings.Replace(yaml, "{nested: \""+secret+"\"}", "\""+secret+"\"", 1)
	dir = writeFiles(t, map[string]string{"dnslb.yaml": yaml, "z.zone": goodZone})
	file = filepath.Join(dir, "dnslb.yaml")
	out.Reset()
	errw.Reset()
	runCheck(file, &out, &errw)
	if strings.Contains(out.String()+errw.String(), secret[:16]) {
		t.Fatalf("check shows a secret:\n%s%s", out.String(), errw.String())
	}
	checkProblems(t, file, errw.String(), []problemAt{
		{line: 7, msg: "tsig.keys[0].secret: not base64"},
		{line: 8, msg: `tsig.keys[1].name: "bad..name" is not a domain name`},
		{line: 8, msg: `tsig.keys[1].algorithm: "hmac-sha3" is not one of ` + strings.Join(answer.TSIGAlgorithms, ", ")},
		{line: 8, msg: "tsig.keys[1].secret: missing"},
		{line: 9, msg: "tsig.keys[2].name: XFR-Key is already tsig.keys[0]"},
	})
}

// checkFile runs `dnslb check` on file and compares its problems with want
// (none: the file must pass).
func checkFile(t *testing.T, file string, want []problemAt) {
	t.Helper()
	var out, errw bytes.Buffer
	n := runCheck(file, &out, &errw)
	if len(want) == 0 {
		if n != 0 {
			t.Fatalf("%d problems:\n%s", n, errw.String())
		}
		return
	}
	if n != len(want) {
		t.Fatalf("got %d problems:\n%s\nwant %d: %+v", n, errw.String(), len(want), want)
	}
	checkProblems(t, file, errw.String(), want)
}

func checkProblems(t *testing.T, file, stderr string, want []problemAt) {
	t.Helper()
	got := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d problems:\n%s\nwant %d: %+v", len(got), stderr, len(want), want)
	}
	for i, w := range want {
		if re := w.re(file); !re.MatchString(got[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], re)
		}
	}
}

// TestCacheBytes: cache.max_bytes in the forms operators write, and the
// deprecated cache_size taken as 1 KiB per entry.
func TestCacheBytes(t *testing.T) {
	const zonesYAML = "zones:\n  - {origin: example.test., file: z.zone}\n"
	for _, tc := range []struct {
		yaml string
		want int64
	}{
		{"", answer.DefaultCacheBytes},
		{"cache: {max_bytes: 64MiB}\n", 64 << 20},
		{"cache: {max_bytes: 1GB}\n", 1e9},
		{"cache: {max_bytes: 1.5GiB}\n", 3 << 29},
		{"cache: {max_bytes: 2097152}\n", 2 << 20},
		{"cache: {max_bytes: \"8 MiB\"}\n", 8 << 20},
		{"cache: {max_bytes: 0}\n", 0},
		{"cache_size: 65536\n", 64 << 20},
		{"cache_size: 10\n", dnslb.MinCacheBytes},
		{"cache_size: -1\n", 0},
	} {
		dir := writeFiles(t, map[string]string{"dnslb.yaml": zonesYAML + tc.yaml})
		sc, err := loadServerConfig(filepath.Join(dir, "dnslb.yaml"))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := sc.Config.CacheBytes(); got != tc.want {
			t.Errorf("%q: %d bytes, want %d", tc.yaml, got, tc.want)
		}
	}
}
