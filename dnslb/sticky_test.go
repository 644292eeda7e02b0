package dnslb

import (
	"strings"
	"testing"

	"github.com/dnslb/dnslb/dnslb/pool"
)

// TestStickyConfig: sticky: sets the sticky policy's prefixes and ECS
// switch; problems name the key.
func TestStickyConfig(t *testing.T) {
	const key = "pools[www.example.test.].sticky"
	for _, tc := range []struct {
		name    string
		policy  string
		sticky  *StickyConfig
		want    pool.Sticky
		problem string // "": valid
	}{
		{name: "defaults", policy: "sticky", want: pool.Sticky{}},
		{name: "empty", policy: "sticky", sticky: &StickyConfig{}, want: pool.Sticky{}},
		{name: "all set", policy: "sticky", sticky: &StickyConfig{ECS: new(false), IPv4Prefix: new(20), IPv6Prefix: new(48)},
			want: pool.Sticky{IgnoreECS: true, IPv4Prefix: 20, IPv6Prefix: 48}},
		{name: "ecs on", policy: "sticky", sticky: &StickyConfig{ECS: new(true)}, want: pool.Sticky{}},
		{name: "host prefixes", policy: "sticky", sticky: &StickyConfig{IPv4Prefix: new(32), IPv6Prefix: new(128)},
			want: pool.Sticky{IPv4Prefix: 32, IPv6Prefix: 128}},
		{name: "ipv4 0", policy: "sticky", sticky: &StickyConfig{IPv4Prefix: new(0)}, problem: key + ".ipv4_prefix: 0 is out of range (1-32)"},
		{name: "ipv4 33", policy: "sticky", sticky: &StickyConfig{IPv4Prefix: new(33)}, problem: key + ".ipv4_prefix: 33 is out of range (1-32)"},
		{name: "ipv6 129", policy: "sticky", sticky: &StickyConfig{IPv6Prefix: new(129)}, problem: key + ".ipv6_prefix: 129 is out of range (1-128)"},
		{name: "ipv6 negative", policy: "sticky", sticky: &StickyConfig{IPv6Prefix: new(-1)}, problem: key + ".ipv6_prefix: -1 is out of range (1-128)"},
		{name: "another policy", policy: "weighted", sticky: &StickyConfig{}, problem: key + ": only the sticky policy uses it, and the policy is weighted"},
		{name: "the default policy", sticky: &StickyConfig{ECS: new(true)}, problem: key + ": only the sticky policy uses it, and the policy is round-robin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := PoolConfig{Policy: tc.policy, Sticky: tc.sticky}
			cfg := &Config{
				Zones: []ZoneConfig{{Origin: "example.test.", File: "example.test.zone"}},
				Pools: map[string]PoolConfig{"www.example.test.": pc},
			}
			err := cfg.Validate()
			switch {
			case tc.problem == "" && err != nil:
				t.Fatalf("valid config: %v", err)
			case tc.problem != "":
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Errorf("problems %v, want %q", err, tc.problem)
				}
				return
			}
			view := poolView(t, map[string]PoolConfig{"www.example.test.": pc})
			if got := view.Pools["www.example.test."].Policy; got != pool.Policy(tc.want) {
				t.Errorf("policy %#v, want %#v", got, tc.want)
			}
		})
	}
}
