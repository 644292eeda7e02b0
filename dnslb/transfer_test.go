package dnslb

import (
	"strings"
	"testing"
)

func TestTransferConfig(t *testing.T) {
	const secret = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk"
	for _, tc := range []struct {
		name string
		tr   TransferConfig
		want []string
	}{
		{"good", TransferConfig{View: "static", Allow: []TransferAllowConfig{{Prefix: "192.0.2.53/32", Key: "XFR-key"}, {Prefix: "2001:db8::1"}, {Key: "xfr-key."}}}, nil},
		{"empty refuses all", TransferConfig{}, nil},
		{"bad view", TransferConfig{View: "live"}, []string{`zones[0].transfer.view: "live" is not static`}},
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
