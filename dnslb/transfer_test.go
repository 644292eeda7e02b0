package dnslb

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

func ptr[T any](v T) *T { return &v }

func TestTransferConfig(t *testing.T) {
	const secret = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk"
	for _, tc := range []struct {
		name string
		tr   TransferConfig
		want []string
	}{
		{"good", TransferConfig{View: "static", Allow: []TransferAllowConfig{{Prefix: "192.0.2.53/32", Key: "XFR-key"}, {Prefix: "2001:db8::1"}, {Key: "xfr-key."}}}, nil},
		{"empty refuses all", TransferConfig{}, nil},
		{"bad view", TransferConfig{View: "live"}, []string{`zones[0].transfer.view: "live" is not static or filtered`}},
		{"notify", TransferConfig{View: "filtered", Notify: []string{"192.0.2.53:53", "[2001:db8::1]:5353", "ns1.example.test:53", "192.0.2.1"}, NotifyDelay: ptr(2 * time.Second)},
			[]string{"zones[0].transfer.notify_delay: 2s is outside 0-1s",
				`zones[0].transfer.notify[2]: "ns1.example.test:53" is not address:port (an IP address; [v6]:port)`,
				`zones[0].transfer.notify[3]: "192.0.2.1" is not address:port (an IP address; [v6]:port)`}},
		{"empty entry", TransferConfig{Allow: []TransferAllowConfig{{}}}, []string{"zones[0].transfer.allow[0]: needs a prefix, a key or both"}},
		{"bad prefix", TransferConfig{Allow: []TransferAllowConfig{{Prefix: "192.0.2.0/33"}}}, []string{`zones[0].transfer.allow[0].prefix: "192.0.2.0/33" is not an address or prefix`}},
		{"unknown key", TransferConfig{Allow: []TransferAllowConfig{{Key: "other."}}}, []string{`zones[0].transfer.allow[0].key: "other." is not one of tsig.keys`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Zones: []ZoneConfig{{Origin: "example.test.", File: "z", Transfer: &tc.tr}},
				TSIG: TSIGConfig{Keys: []TSIGKeyConfig{{Name: "xfr-key.", Algorithm: "hmac-sha256", Secret: secret}}}}
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

// TestFilteredSerialServedAndKept: a drain gives a filtered zone a new
// serial, which dnslb's own SOA answers carry and the state file keeps;
// after a restart the serial is above it.
func TestFilteredSerialServedAndKept(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "7", "")
	fc := baseConfig(dir)
	fc.cfg.Zones[0].Transfer = &TransferConfig{View: "filtered", NotifyDelay: ptr(time.Duration(0))}
	serial := func(rt *Runtime) uint32 {
		r := askRT(t, rt, "example.test.", dns.TypeSOA)
		if len(r.Answer) != 1 {
			t.Fatalf("SOA: %v", r)
		}
		return r.Answer[0].(*dns.SOA).Serial
	}
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	if got := serial(rt); got != 7 {
		t.Fatalf("first serial %d, want the file's, 7", got)
	}
	if err := rt.SetOverride(netip.MustParseAddr("192.0.2.10"), admin.OverrideDrain, time.Time{}, "test"); err != nil {
		t.Fatal(err)
	}
	dnstest.Until(t, 5*time.Second, "the served SOA carries the new serial", func() bool { return serial(rt) == 8 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, DefaultStateFile))
	if err != nil || !strings.Contains(string(data), `"transfer_serials": {`) || !strings.Contains(string(data), `"example.test.": 8`) {
		t.Fatalf("state file (%v):\n%s", err, data)
	}
	rt2 := newTestRuntime(t, dir, fc, zerolog.Nop())
	if got := serial(rt2); got != 9 {
		t.Errorf("serial after a restart %d, want 9", got)
	}
}
