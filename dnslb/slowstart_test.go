package dnslb

import (
	"strings"
	"testing"
	"time"
)

// TestSlowStartConfig: slow_start is 1s to 1h (or unset); problems name
// the key; the pool built carries it.
func TestSlowStartConfig(t *testing.T) {
	const key = "pools[www.example.test.].slow_start"
	for _, tc := range []struct {
		slow    time.Duration
		problem string // "": valid
	}{
		{0, ""}, {30 * time.Second, ""}, {time.Hour, ""},
		{500 * time.Millisecond, key + ": 500ms is out of range (1s-1h)"},
		{-time.Second, key + ": -1s is out of range"},
		{2 * time.Hour, key + ": 2h0m0s is out of range"},
	} {
		t.Run(tc.slow.String(), func(t *testing.T) {
			cfg := &Config{
				Zones: []ZoneConfig{{Origin: "example.test.", File: "example.test.zone"}},
				Pools: map[string]PoolConfig{"www.example.test.": {SlowStart: tc.slow}},
			}
			err := cfg.Validate()
			switch {
			case tc.problem == "" && err != nil:
				t.Errorf("valid config: %v", err)
			case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
				t.Errorf("problems %v, want %q", err, tc.problem)
			}
		})
	}
	view := poolView(t, map[string]PoolConfig{"www.example.test.": {SlowStart: 30 * time.Second}})
	if got := view.Pools["www.example.test."].SlowStart; got != 30*time.Second {
		t.Errorf("pool SlowStart %v, want 30s", got)
	}
}
