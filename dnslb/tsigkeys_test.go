package dnslb

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// The test keys (as in package answer's TSIG tests). Their secrets must
// never show up in an error.
var (
	testSecret  = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	wrongSecret = base64.StdEncoding.EncodeToString([]byte("not the secret the server holds!"))
)

// TestTSIGConfig: key problems name the key path and never the secret.
func TestTSIGConfig(t *testing.T) {
	const secret = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk"
	for _, tc := range []struct {
		name string
		keys []TSIGKeyConfig
		want []string
	}{
		{"good", []TSIGKeyConfig{{Name: "a.", Algorithm: "hmac-sha256", Secret: secret}, {Name: "b", Algorithm: "hmac-md5.sig-alg.reg.int.", Secret: secret}}, nil},
		{"every algorithm", func() []TSIGKeyConfig {
			var ks []TSIGKeyConfig
			for i, alg := range answer.TSIGAlgorithms {
				ks = append(ks, TSIGKeyConfig{Name: fmt.Sprintf("k%d.", i), Algorithm: alg, Secret: secret})
			}
			return ks
		}(), nil},
		{"missing", []TSIGKeyConfig{{}}, []string{
			"tsig.keys[0].name: missing", "tsig.keys[0].algorithm: missing (one of " + strings.Join(answer.TSIGAlgorithms, ", ") + ")", "tsig.keys[0].secret: missing"}},
		{"not a name", []TSIGKeyConfig{{Name: "a..b", Algorithm: "hmac-sha256", Secret: secret}}, []string{`tsig.keys[0].name: "a..b" is not a domain name`}},
		{"duplicate", []TSIGKeyConfig{{Name: "a.", Algorithm: "hmac-sha256", Secret: secret}, {Name: "A", Algorithm: "hmac-sha1", Secret: secret}},
			[]string{"tsig.keys[1].name: A is already tsig.keys[0]"}},
		{"unknown algorithm", []TSIGKeyConfig{{Name: "a.", Algorithm: "hmac-sha3", Secret: secret}},
			[]string{`tsig.keys[0].algorithm: "hmac-sha3" is not one of ` + strings.Join(answer.TSIGAlgorithms, ", ")}},
		{"not base64", []TSIGKeyConfig{{Name: "a.", Algorithm: "hmac-sha256", Secret: secret + "!"}}, []string{"tsig.keys[0].secret: not base64"}},
		{"not padded", []TSIGKeyConfig{{Name: "a.", Algorithm: "hmac-sha256", Secret: Secret(secret[:len(secret)-1])}}, []string{"tsig.keys[0].secret: not base64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Zones: []ZoneConfig{{Origin: "example.test.", File: "z"}}, TSIG: TSIGConfig{Keys: tc.keys}}
			err := cfg.Validate()
			var got []string
			for _, p := range ProblemsOf(err) {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if err != nil && strings.Contains(err.Error(), secret[:20]) {
				t.Errorf("a problem shows the secret: %v", err)
			}
			if s := fmt.Sprintf("%v %+v %#v %s %q %x", cfg, cfg, cfg, tc.keys, tc.keys, tc.keys); strings.Contains(s, secret[:20]) {
				t.Errorf("printing the config shows the secret: %s", s)
			}
		})
	}
}

// TestTSIGKeysReload: the keys come with the config on start and on every
// reload; a reload with a broken key keeps the keys being served, and
// failures are counted by reason.
func TestTSIGKeysReload(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	ask := func(key, secret string) *dns.Msg {
		t.Helper()
		q := dnstest.SignQuery(t, "www.example.test.", dns.TypeA, false, key, dns.HmacSHA256, secret, time.Now(), nil)
		c, err := net.Dial("udp", rt.Addrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(q.Wire); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		var m dns.Msg
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if m.Rcode == dns.RcodeSuccess {
			if err := dns.TsigVerify(buf[:n], secret, q.MAC, false); err != nil {
				t.Fatalf("reply does not verify: %v", err)
			}
		}
		return &m
	}
	tsigErr := func(m *dns.Msg) string {
		if ts := m.IsTsig(); ts != nil && m.Rcode == dns.RcodeNotAuth {
			return dns.RcodeToString[int(ts.Error)]
		}
		return dns.RcodeToString[m.Rcode]
	}
	key := func(name, secret string) func(*Config) {
		return func(c *Config) {
			c.TSIG.Keys = []TSIGKeyConfig{{Name: name, Algorithm: "hmac-sha256", Secret: Secret(secret)}}
		}
	}

	if got := tsigErr(ask("xfr-key.", testSecret)); got != "BADKEY" {
		t.Fatalf("no keys configured: %s, want BADKEY", got)
	}
	fc.set(key("xfr-key.", testSecret))
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := tsigErr(ask("xfr-key.", testSecret)); got != "NOERROR" {
		t.Fatalf("after the key was added: %s, want NOERROR", got)
	}
	fc.set(key("xfr-key.", "not base64!"))
	if err := rt.Reload(); err == nil || !strings.Contains(err.Error(), "tsig.keys[0].secret: not base64") {
		t.Fatalf("reload with a broken secret: %v", err)
	}
	if got := tsigErr(ask("xfr-key.", testSecret)); got != "NOERROR" {
		t.Fatalf("after a failed reload: %s, want the old key to serve", got)
	}
	fc.set(key("new-key.", wrongSecret))
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := tsigErr(ask("xfr-key.", testSecret)); got != "BADKEY" {
		t.Fatalf("after the key was replaced: %s, want BADKEY", got)
	}
	if got := tsigErr(ask("new-key.", testSecret)); got != "BADSIG" {
		t.Fatalf("the new key with the old secret: %s, want BADSIG", got)
	}
	mfs, err := rt.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "dnslb_dropped_queries_total" {
			for _, m := range mf.GetMetric() {
				counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if counts["tsig_badkey"] != 2 || counts["tsig_badsig"] != 1 {
		t.Errorf("dropped queries %v; want tsig_badkey 2, tsig_badsig 1", counts)
	}
}
