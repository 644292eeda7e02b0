package dnslb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// TestCatalogContent: the catalog zone has RFC 9432 4's structure (SOA,
// NS invalid., version TXT "2", one PTR per member zone under zones with
// a stable ID), lists the zones with a transfer: block but those with
// catalog: false, and changes serial only when its members do.
func TestCatalogContent(t *testing.T) {
	cfg := &Config{Catalog: &CatalogConfig{Zone: "Catalog.Test"}, Zones: []ZoneConfig{
		{Origin: "b.test.", Transfer: &TransferConfig{}},
		{Origin: "a.test", Transfer: &TransferConfig{Catalog: ptr(true)}},
		{Origin: "hidden.test.", Transfer: &TransferConfig{Catalog: ptr(false)}},
		{Origin: "plain.test."},                               // no transfer: secondaries could not have it
		{Origin: "failed.test.", Transfer: &TransferConfig{}}, // did not load
	}}
	loaded := []*zones.Zone{{Origin: "a.test."}, {Origin: "b.test."}, {Origin: "hidden.test."}, {Origin: "plain.test."}}
	now := time.Unix(1_700_000_000, 0)
	z, err := buildCatalog(cfg, loaded, map[string]serialState{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if z.Origin != "catalog.test." {
		t.Fatalf("origin %q", z.Origin)
	}
	var got []string
	for _, rr := range z.All() {
		got = append(got, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	sort.Strings(got[1:])
	want := []string{
		"catalog.test. 0 IN SOA invalid. invalid. 1700000000 3600 600 2419200 0",
		"catalog.test. 0 IN NS invalid.",
		CatalogID("a.test.") + ".zones.catalog.test. 0 IN PTR a.test.",
		CatalogID("b.test.") + ".zones.catalog.test. 0 IN PTR b.test.",
		"version.catalog.test. 0 IN TXT \"2\"",
	}
	sort.Strings(want[1:])
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("catalog:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The ID is the SHA-1 of the name's wire format, whatever its case.
	if id := CatalogID("A.Test"); id != "7439151a0e1ce432b9b89ae802a881511c29d369" {
		t.Errorf("ID %q", id)
	}

	state := map[string]serialState{"catalog.test.": {Serial: z.Serial(), Digest: digestOf(z)}}
	for _, tc := range []struct {
		name   string
		loaded []*zones.Zone
		prev   uint32
		now    time.Time
		want   uint32
	}{
		{"same members keep the serial", loaded, z.Serial(), now.Add(time.Hour), z.Serial()},
		{"a new member: the time", append(loaded, &zones.Zone{Origin: "failed.test."}), z.Serial(), now.Add(time.Hour), z.Serial() + 3600},
		{"a new member within the second: one more", loaded[1:], z.Serial(), now, z.Serial() + 1},
		{"clock behind the serial: one more", loaded[1:], z.Serial() + 100, now, z.Serial() + 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := map[string]serialState{"catalog.test.": {Serial: tc.prev, Digest: state["catalog.test."].Digest}}
			nz, err := buildCatalog(cfg, tc.loaded, s, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if nz.Serial() != tc.want {
				t.Errorf("serial %d, want %d", nz.Serial(), tc.want)
			}
		})
	}
}

func digestOf(z *zones.Zone) string { return fmt.Sprintf("%x", z.Digest) }

func TestCatalogConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cat  CatalogConfig
		want []string
	}{
		{"good", CatalogConfig{Zone: "catalog.dnslb.invalid.", Allow: []TransferAllowConfig{{Prefix: "127.0.0.1"}}, Notify: []string{"127.0.0.1:53"}}, nil},
		{"missing zone", CatalogConfig{}, []string{"catalog.zone: missing"}},
		{"a served zone", CatalogConfig{Zone: "Example.Test"}, []string{"catalog.zone: Example.Test is already zones[0]"}},
		{"bad notify", CatalogConfig{Zone: "cat.", Notify: []string{"x"}}, []string{`catalog.notify[0]: "x" is not address:port (an IP address; [v6]:port)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Zones: []ZoneConfig{{Origin: "example.test.", File: "z"}}, Catalog: &tc.cat}
			var got []string
			for _, p := range ProblemsOf(cfg.Validate()) {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestCatalogSerialReloadAndRestart: the served catalog keeps its serial
// through a reload that changes nothing, gets a higher one when its
// members change, and keeps that through a restart (the state file).
func TestCatalogSerialReloadAndRestart(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "7", "")
	fc := baseConfig(dir)
	fc.cfg.Zones[0].Transfer = &TransferConfig{Allow: []TransferAllowConfig{{Prefix: "127.0.0.1"}}}
	fc.cfg.Catalog = &CatalogConfig{Zone: "catalog.test.", Allow: []TransferAllowConfig{{Prefix: "127.0.0.1"}}}
	serial := func(rt *Runtime) uint32 {
		t.Helper()
		r := askRT(t, rt, "catalog.test.", dns.TypeSOA)
		if len(r.Answer) != 1 {
			t.Fatalf("catalog SOA: %v", r)
		}
		return r.Answer[0].(*dns.SOA).Serial
	}
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	s0 := serial(rt)
	if r := askRT(t, rt, CatalogID("example.test.")+".zones.catalog.test.", dns.TypePTR); len(r.Answer) != 1 {
		t.Fatalf("example.test. is not in the catalog: %v", r)
	}
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := serial(rt); s != s0 {
		t.Fatalf("serial %d after a reload that changed nothing, was %d", s, s0)
	}
	if err := os.WriteFile(filepath.Join(dir, "o.zone"), []byte(strings.Replace(rtZone, "%s", "1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	fc.set(func(c *Config) {
		// A new slice: the config being served shares the old one.
		c.Zones = append(append([]ZoneConfig(nil), c.Zones...), ZoneConfig{Origin: "other.test.", File: "o.zone", Transfer: c.Zones[0].Transfer})
	})
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	s1 := serial(rt)
	if r := askRT(t, rt, CatalogID("other.test.")+".zones.catalog.test.", dns.TypePTR); !serialLess(s0, s1) || len(r.Answer) != 1 {
		t.Fatalf("after adding other.test.: serial %d (was %d), %v", s1, s0, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rt2 := newTestRuntime(t, dir, fc, zerolog.Nop())
	if s := serial(rt2); s != s1 {
		t.Errorf("serial %d after a restart, want %d", s, s1)
	}
}
