package main

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dnslb/dnslb/dnslb/rrl"
)

// TestRRLConfig: rrl is on with the defaults unless the file says
// otherwise; "rrl: off" (or false, or enabled: false) turns it off; the
// block form sets each key; the environment sets leaves.
func TestRRLConfig(t *testing.T) {
	const zonesYAML = "zones:\n  - {origin: example.test., file: z.zone}\n"
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	defaults := rrl.Config{ResponsesPerSecond: 20, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56, Exempt: loopback}
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		off  bool
		want rrl.Config // when on
	}{
		{name: "absent: on, defaults", want: defaults},
		{name: "off", yaml: "rrl: off\n", off: true},
		{name: "quoted OFF", yaml: "rrl: \"OFF\"\n", off: true},
		{name: "false", yaml: "rrl: false\n", off: true},
		{name: "enabled: false", yaml: "rrl: {enabled: false, slip: 1}\n", off: true},
		{name: "on", yaml: "rrl: on\n", want: defaults},
		{name: "true", yaml: "rrl: true\n", want: defaults},
		{name: "empty block", yaml: "rrl: {}\n", want: defaults},
		{name: "every key", yaml: "rrl:\n  responses_per_second: 50\n  slip: 0\n  ipv4_prefix: 32\n  ipv6_prefix: 64\n" +
			"  exempt: [\"10.0.0.0/8\", \"192.0.2.1\", \"2001:db8::/32\"]\n  table_size: 1024\n",
			want: rrl.Config{ResponsesPerSecond: 50, Slip: 0, IPv4Prefix: 32, IPv6Prefix: 64, TableSize: 1024, Exempt: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")}}},
		{name: "exempt nothing", yaml: "rrl: {exempt: []}\n",
			want: rrl.Config{ResponsesPerSecond: 20, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56}},
		{name: "environment turns it off", yaml: "rrl: {slip: 1}\n", env: map[string]string{"DNSLB_RRL_ENABLED": "false"}, off: true},
		{name: "environment sets a key", yaml: "rrl: {slip: 1}\n", env: map[string]string{"DNSLB_RRL_RESPONSES_PER_SECOND": "50"},
			want: rrl.Config{ResponsesPerSecond: 50, Slip: 1, IPv4Prefix: 24, IPv6Prefix: 56, Exempt: loopback}},
		{name: "environment sets the exempt list", env: map[string]string{"DNSLB_RRL_EXEMPT": "10.0.0.0/8,::1"},
			want: rrl.Config{ResponsesPerSecond: 20, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56,
				Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := writeFiles(t, map[string]string{"dnslb.yaml": zonesYAML + tc.yaml})
			sc, err := loadServerConfig(filepath.Join(dir, "dnslb.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			c := sc.Config.RRL
			if c.On() == tc.off {
				t.Fatalf("on = %v, want %v", c.On(), !tc.off)
			}
			if tc.off {
				return
			}
			got, ps := c.Limiter("rrl")
			if len(ps) > 0 {
				t.Fatal(ps)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("limiter config\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestRRLProblems: bad rrl values are problems of `dnslb check` with their
// file, line and key path, even while rrl is off.
func TestRRLProblems(t *testing.T) {
	const zonesYAML = "zones:\n  - {origin: example.test., file: z.zone}\n" // rrl: from line 3
	tests := []struct {
		name string
		yaml string
		want []problemAt
	}{
		{"rate 0", "rrl:\n  responses_per_second: 0\n", []problemAt{{4,
			"rrl.responses_per_second: 0 is not allowed (1-10000); to turn rate limiting off write rrl: off"}}},
		{"rate too high", "rrl:\n  responses_per_second: 20000\n", []problemAt{{4, "rrl.responses_per_second: 20000 is outside 1-10000"}}},
		{"rate negative", "rrl: {responses_per_second: -1}\n", []problemAt{{3, "rrl.responses_per_second: -1 is outside 1-10000"}}},
		{"slip", "rrl:\n  slip: 101\n", []problemAt{{4,
			"rrl.slip: 101 is outside 0-100 (0: drop every limited response, 1: truncate every one)"}}},
		{"prefixes", "rrl:\n  ipv4_prefix: 33\n  ipv6_prefix: 129\n", []problemAt{
			{4, "rrl.ipv4_prefix: 33 is outside 1-32"}, {5, "rrl.ipv6_prefix: 129 is outside 1-128"}}},
		{"table size", "rrl:\n  table_size: 10\n", []problemAt{{4, "rrl.table_size: 10 is outside 64-67108864"}}},
		{"exempt", "rrl:\n  exempt:\n    - 10.0.0.0/8\n    - nonsense\n", []problemAt{{6,
			`rrl.exempt[1]: "nonsense" is not an address or prefix (192.0.2.0/24, 2001:db8::/48)`}}},
		{"checked while off", "rrl:\n  enabled: false\n  slip: -1\n", []problemAt{{5,
			"rrl.slip: -1 is outside 0-100 (0: drop every limited response, 1: truncate every one)"}}},
		{"not a word it knows", "rrl: maybe\n", []problemAt{{3, `rrl: "maybe": write off, on, or a block {responses_per_second: 20, slip: 2, …}`}}},
		{"unknown key", "rrl:\n  rate-limit: 5\n", []problemAt{{4, "rrl.rate-limit: unknown key"}}},
		{"good", "rrl: {responses_per_second: 200, slip: 0, exempt: []}\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"dnslb.yaml": zonesYAML + tc.yaml, "z.zone": goodZone})
			checkFile(t, filepath.Join(dir, "dnslb.yaml"), tc.want)
		})
	}
}
