package dnslb

import (
	"strings"
	"testing"
	"time"
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
