package dnslb

import (
	"strings"
	"testing"

	"github.com/dnslb/dnslb/dnslb/rrl"
	"github.com/rs/zerolog"
)

// TestRRLRuntime: a Runtime limits by default; a reload that changes the
// rrl block takes a new limiter, one that does not keeps the table, and
// rrl: off on reload turns limiting off.
func TestRRLRuntime(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	first := rt.Authority().RRL()
	if first == nil || first.TableSize() != rrl.DefaultTableSize {
		t.Fatalf("default limiter %v", first)
	}
	writeZone(t, dir, "2", "") // a reload with the same rrl block
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if rt.Authority().RRL() != first {
		t.Error("a reload that left rrl alone replaced the limiter (and its table)")
	}
	fc.set(func(c *Config) { c.RRL = RRLConfig{TableSize: 1024} })
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if l := rt.Authority().RRL(); l == first || l == nil || l.TableSize() != 1024 {
		t.Errorf("after table_size: 1024: limiter %v, table %d", l, l.TableSize())
	}
	fc.set(func(c *Config) { c.RRL = RRLConfig{Enabled: new(false)} })
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if l := rt.Authority().RRL(); l != nil {
		t.Error("rrl: off on reload left a limiter")
	}
	fc.set(func(c *Config) { c.RRL = RRLConfig{Slip: new(500)} })
	if err := rt.Reload(); err == nil || !strings.Contains(err.Error(), "rrl.slip: 500 is outside 0-100") {
		t.Errorf("bad slip on reload: %v", err)
	}
	if l := rt.Authority().RRL(); l != nil {
		t.Error("a failed reload changed the limiter")
	}
}
