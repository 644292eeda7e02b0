package dnslb

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// secZone is the primary's zone: SOA timers (refresh, retry, expire),
// then more records.
const secZone = `$TTL 300
@ SOA ns1 hostmaster %d %d %d %d 60
@ NS ns1
ns1 A 192.0.2.1
www 60 A 192.0.2.10
www 60 A 192.0.2.11
%s`

func secZoneText(serial, refresh, retry, expire int, extra string) string {
	return fmt.Sprintf(secZone, serial, refresh, retry, expire, extra)
}

var secKey = TSIGKeyConfig{Name: "xfr-key.", Algorithm: "hmac-sha256",
	Secret: Secret(base64.StdEncoding.EncodeToString([]byte("secondary secret, 32 bytes long!")))}

func primaryKeyOf(k TSIGKeyConfig) *dnstest.PrimaryKey {
	return &dnstest.PrimaryKey{Name: k.Name, Algorithm: dns.HmacSHA256, Secret: string(k.Secret)}
}

// secondaryConfig pulls example.test. from primary (signed with key when
// it is not ""), with a pool at www and other.test. from a file.
func secondaryConfig(dir, primary, key string) *fakeConfig {
	fc := &fakeConfig{dir: dir, cfg: Config{
		Listen: []string{"127.0.0.1:0"},
		Zones: []ZoneConfig{{Origin: "example.test.", Primary: &PrimaryConfig{Address: primary, Key: key}},
			{Origin: "other.test.", File: "other.zone"}},
		Pools: map[string]PoolConfig{"www.example.test.": {Policy: "round-robin"}},
		TSIG:  TSIGConfig{Keys: []TSIGKeyConfig{secKey}},
	}}
	other := strings.ReplaceAll(fmt.Sprintf(rtZone, "1"), "www", "web")
	if err := os.WriteFile(filepath.Join(dir, "other.zone"), []byte(other), 0o644); err != nil {
		panic(err)
	}
	return fc
}

// answerA is the sorted addresses of the A records answered for name, or
// the rcode's name when the answer is not NOERROR.
func answerA(t *testing.T, rt *Runtime, name string) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, rt.Addrs()[0])
	if err != nil {
		return err.Error()
	}
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func waitAnswer(t *testing.T, rt *Runtime, name, want string, within time.Duration) time.Duration {
	t.Helper()
	return dnstest.Eventually(t, within, name+" answers "+want, func() (bool, string) {
		got := answerA(t, rt, name)
		return got == want, got
	})
}

func TestPrimaryConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		zone ZoneConfig
		want string // "" valid
	}{
		{"address and port", ZoneConfig{Primary: &PrimaryConfig{Address: "192.0.2.1:5300"}}, ""},
		{"address alone", ZoneConfig{Primary: &PrimaryConfig{Address: "2001:db8::1"}}, ""},
		{"with a key", ZoneConfig{Primary: &PrimaryConfig{Address: "[2001:db8::1]:53", Key: "XFR-key"}}, ""},
		{"neither", ZoneConfig{}, "zones[0].file: missing (or primary:"},
		{"both", ZoneConfig{File: "z.zone", Primary: &PrimaryConfig{Address: "192.0.2.1"}}, "zones[0].primary: file and primary together"},
		{"no address", ZoneConfig{Primary: &PrimaryConfig{}}, "zones[0].primary.address: missing"},
		{"a name", ZoneConfig{Primary: &PrimaryConfig{Address: "ns1.example.net:53"}}, "zones[0].primary.address: \"ns1.example.net:53\" is not an IP address"},
		{"unknown key", ZoneConfig{Primary: &PrimaryConfig{Address: "192.0.2.1", Key: "other."}}, "zones[0].primary.key: \"other.\" is not one of tsig.keys"},
		{"serial auto", ZoneConfig{Serial: "auto", Primary: &PrimaryConfig{Address: "192.0.2.1"}}, "zones[0].serial: not with primary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.zone.Origin = "example.test."
			cfg := Config{Zones: []ZoneConfig{c.zone}, TSIG: TSIGConfig{Keys: []TSIGKeyConfig{secKey}}}
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestSOATimersAndKeptName(t *testing.T) {
	for _, c := range []struct {
		refresh, retry, expire uint32
		want                   [3]time.Duration
	}{
		{3600, 600, 86400, [3]time.Duration{time.Hour, 10 * time.Minute, 24 * time.Hour}},
		{0, 0, 0, [3]time.Duration{time.Second, time.Second, time.Second}},
		{1 << 31, 1 << 31, 1 << 31, [3]time.Duration{24 * time.Hour, 24 * time.Hour, (1 << 31) * time.Second}},
	} {
		r, re, e := soaTimers(&dns.SOA{Refresh: c.refresh, Retry: c.retry, Expire: c.expire})
		if got := [3]time.Duration{r, re, e}; got != c.want {
			t.Errorf("SOA %d %d %d: %v, want %v", c.refresh, c.retry, c.expire, got, c.want)
		}
	}
	for origin, want := range map[string]string{"Example.Test": "example.test.zone", ".": "root.zone",
		"a/b.test.": "a%2Fb.test.zone", `\..test.`: `%5C..test.zone`} {
		if got := keptName(origin); got != want {
			t.Errorf("keptName(%q) = %q, want %q", origin, got, want)
		}
	}
	if got := keptDir("/var/lib/dnslb/dnslb.state.json"); got != "/var/lib/dnslb/dnslb.state.zones" {
		t.Errorf("keptDir: %s", got)
	}
}

// TestSecondaryAXFRThenIXFR: the zone is pulled by AXFR at start and its
// pool answers from the pulled records; a change on the primary,
// NOTIFY'd, comes by IXFR at once, and the pool takes its new member.
func TestSecondaryAXFRThenIXFR(t *testing.T) {
	p := dnstest.NewPrimary(t, "example.test.", secZoneText(1, 3600, 600, 86400, ""), nil)
	dir := t.TempDir()
	rt := newTestRuntime(t, dir, secondaryConfig(dir, p.Addr, ""), zerolog.Nop())

	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11", 5*time.Second)
	if got := answerA(t, rt, "web.other.test."); got != "192.0.2.10 192.0.2.11" {
		t.Fatalf("the file zone: %s", got)
	}
	if _, ok := rt.cur.Load().View.Pools["www.example.test."]; !ok {
		t.Fatal("no pool over the pulled records")
	}

	p.Set(t, secZoneText(2, 3600, 600, 86400, "www 60 A 192.0.2.12\n"))
	if rc := p.Notify(t, rt.Addrs()[0], nil); rc != dns.RcodeSuccess {
		t.Fatalf("NOTIFY answered %s", dns.RcodeToString[rc])
	}
	took := waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11 192.0.2.12", time.Second)
	t.Logf("NOTIFY to the new member answered: %v", took)
	reqs := p.Requests()
	if !slices.Contains(reqs, "AXFR") || !slices.Contains(reqs, "IXFR") {
		t.Fatalf("primary saw %v, want an AXFR then an IXFR", reqs)
	}
	// The copy is kept just after it is served: wait for the write.
	dnstest.Eventually(t, 5*time.Second, "the kept copy with the new member", func() (bool, string) {
		kept, err := os.ReadFile(filepath.Join(dir, "dnslb.state.zones", "example.test.zone"))
		return err == nil && strings.Contains(string(kept), "192.0.2.12"), fmt.Sprintf("%v\n%s", err, kept)
	})
	var serial uint32
	for _, z := range rt.Zones() {
		if z.Origin == "example.test." {
			serial = z.Serial
		}
	}
	if serial != 2 {
		t.Fatalf("zone status serial %d, want 2", serial)
	}
	// Expires an SOA expire (86400 s) after the last refresh.
	zs := pulledStatus(t, rt)
	if left := time.Until(zs.ExpiresAt); zs.Primary != p.Addr || zs.Expired || left < 86000*time.Second || left > 86400*time.Second {
		t.Errorf("zone status %+v (expires in %v)", zs, left)
	}

	// A primary without a journal answers IXFR with the whole zone.
	p.SetIXFR(false)
	p.Set(t, secZoneText(3, 3600, 600, 86400, "www 60 A 192.0.2.13\n"))
	p.Notify(t, rt.Addrs()[0], nil)
	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11 192.0.2.13", time.Second)
}

// notifyFrom sends a NOTIFY for zone from the address laddr (a loopback
// address), signed with key when it is not nil, and returns the reply.
func notifyFrom(t *testing.T, laddr, to, zone string, key *dnstest.PrimaryKey) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetNotify(zone)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(laddr)}}}
	if key != nil {
		c.TsigSecret = map[string]string{key.Name: key.Secret}
		m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	}
	r, _, err := c.Exchange(m, to)
	if err != nil {
		t.Fatalf("NOTIFY from %s: %v", laddr, err)
	}
	return r
}

// TestSecondaryNotifyAccepted: NOTIFY is accepted only for the pulled
// zone, from its primary's address, signed with its key; otherwise
// REFUSED, and NOTIMP as before for zones not pulled.
func TestSecondaryNotifyAccepted(t *testing.T) {
	key := primaryKeyOf(secKey)
	p := dnstest.NewPrimary(t, "example.test.", secZoneText(1, 3600, 600, 86400, ""), key)
	dir := t.TempDir()
	rt := newTestRuntime(t, dir, secondaryConfig(dir, p.Addr, secKey.Name), zerolog.Nop())
	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11", 5*time.Second)
	cases := []struct {
		name  string
		from  string
		zone  string
		key   *dnstest.PrimaryKey
		rcode int
	}{
		{"from the primary, signed", "127.0.0.1", "example.test.", key, dns.RcodeSuccess},
		{"from the primary, unsigned", "127.0.0.1", "example.test.", nil, dns.RcodeRefused},
		{"from elsewhere, signed", "127.0.0.2", "example.test.", key, dns.RcodeRefused},
		{"a zone from a file", "127.0.0.1", "other.test.", key, dns.RcodeNotImplemented},
		{"a zone not served", "127.0.0.1", "nowhere.test.", nil, dns.RcodeNotImplemented},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := notifyFrom(t, c.from, rt.Addrs()[0], c.zone, c.key)
			if r.Rcode != c.rcode || r.Opcode != dns.OpcodeNotify {
				t.Fatalf("rcode %s opcode %d, want %s", dns.RcodeToString[r.Rcode], r.Opcode, dns.RcodeToString[c.rcode])
			}
			if c.rcode == dns.RcodeSuccess && (!r.Authoritative || r.IsTsig() == nil) {
				t.Fatalf("accepted NOTIFY: AA %v, TSIG %v", r.Authoritative, r.IsTsig())
			}
		})
	}
}

// TestSecondaryTSIGRequired: a primary that requires the key refuses a
// secondary without it (the zone answers SERVFAIL, never empty), and
// serves it once the config names the key.
func TestSecondaryTSIGRequired(t *testing.T) {
	p := dnstest.NewPrimary(t, "example.test.", secZoneText(1, 3600, 600, 86400, ""), primaryKeyOf(secKey))
	dir := t.TempDir()
	fc := secondaryConfig(dir, p.Addr, "")
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())
	dnstest.Until(t, 5*time.Second, "the primary refuses the unsigned SOA query", func() bool {
		return slices.Contains(p.Requests(), "refused SOA")
	})
	if got := answerA(t, rt, "www.example.test."); got != "SERVFAIL" {
		t.Fatalf("zone not transferred answers %s, want SERVFAIL", got)
	}
	fc.set(func(c *Config) {
		// New values: the config served shares the old ones.
		c.Zones = slices.Clone(c.Zones)
		c.Zones[0].Primary = &PrimaryConfig{Address: p.Addr, Key: secKey.Name}
	})
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11", 5*time.Second)
	for _, r := range p.Requests() {
		if r == "AXFR" {
			return
		}
	}
	t.Fatalf("no signed AXFR: %v", p.Requests())
}

// TestSecondaryExpire: with the primary down, the zone is served from the
// copy until its SOA expire (2 s here), then answers SERVFAIL; once the
// primary answers again, the copy serves again.
func TestSecondaryExpire(t *testing.T) {
	p := dnstest.NewPrimary(t, "example.test.", secZoneText(1, 1, 1, 2, ""), nil)
	dir := t.TempDir()
	rt := newTestRuntime(t, dir, secondaryConfig(dir, p.Addr, ""), zerolog.Nop())
	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11", 5*time.Second)
	p.SetDown(true)
	start := time.Now()
	waitAnswer(t, rt, "www.example.test.", "SERVFAIL", 10*time.Second)
	if d := time.Since(start); d < time.Second {
		t.Fatalf("expired after %v, before the SOA expire", d)
	}
	if got := answerA(t, rt, "web.other.test."); got != "192.0.2.10 192.0.2.11" {
		t.Fatalf("the file zone while the pulled one is expired: %s", got)
	}
	if zs := pulledStatus(t, rt); !zs.Expired || !zs.ExpiresAt.IsZero() || zs.Primary != p.Addr {
		t.Errorf("expired zone's status: %+v", zs)
	}
	p.SetDown(false)
	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11", 5*time.Second)
	if zs := pulledStatus(t, rt); zs.Expired || zs.ExpiresAt.IsZero() {
		t.Errorf("refreshed zone's status: %+v", zs)
	}
}

// pulledStatus is the admin status of example.test., the pulled zone.
func pulledStatus(t *testing.T, rt *Runtime) admin.ZoneStatus {
	t.Helper()
	for _, z := range rt.Zones() {
		if z.Origin == "example.test." {
			return z
		}
	}
	t.Fatal("no status for example.test.")
	return admin.ZoneStatus{}
}

// TestSecondaryRestartServesKeptCopy: a restart serves the copy kept in
// the state directory at once, with the primary gone, and its pools.
func TestSecondaryRestartServesKeptCopy(t *testing.T) {
	p := dnstest.NewPrimary(t, "example.test.", secZoneText(7, 3600, 600, 86400, "new TXT \"kept\"\n"), nil)
	dir := t.TempDir()
	fc := secondaryConfig(dir, p.Addr, "")
	rt, err := NewRuntime(RuntimeOptions{Load: fc.load, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()

	rt2 := newTestRuntime(t, dir, fc, zerolog.Nop())
	if got := answerA(t, rt2, "www.example.test."); got != "192.0.2.10 192.0.2.11" {
		t.Fatalf("first answer after the restart: %s", got)
	}
	if _, ok := rt2.cur.Load().View.Pools["www.example.test."]; !ok {
		t.Fatal("no pool over the kept copy")
	}
	soa := askRT(t, rt2, "example.test.", dns.TypeSOA)
	if len(soa.Answer) != 1 || soa.Answer[0].(*dns.SOA).Serial != 7 {
		t.Fatalf("SOA after the restart: %v", soa)
	}
}

// TestSecondaryBadCopyKeepsOld: a new serial that does not load as a
// zone (CNAME and other data) or breaks a pool is rejected: the copy
// before keeps serving, the error is logged, the text is kept aside.
func TestSecondaryBadCopyKeepsOld(t *testing.T) {
	p := dnstest.NewPrimary(t, "example.test.", secZoneText(1, 3600, 600, 86400, ""), nil)
	dir := t.TempDir()
	var logs logLines
	rt := newTestRuntime(t, dir, secondaryConfig(dir, p.Addr, ""), zerolog.New(&logs))
	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11", 5*time.Second)

	for i, c := range []struct{ name, extra, why string }{
		{"not a zone", "www CNAME ns1\n", "CNAME"},
		{"a pool without records", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := secZoneText(2+i, 3600, 600, 86400, c.extra)
			if c.extra == "" {
				text = strings.ReplaceAll(text, "www 60 A", "web 60 A") // the pool's name has no records
			}
			p.Set(t, text)
			p.Notify(t, rt.Addrs()[0], nil)
			dnstest.Until(t, 2*time.Second, "the rejection logged", func() bool {
				return logs.contains(fmt.Sprintf("serial %d from the primary rejected", 2+i))
			})
			if got := answerA(t, rt, "www.example.test."); got != "192.0.2.10 192.0.2.11" {
				t.Fatalf("after a bad copy: %s", got)
			}
			if _, err := os.Stat(filepath.Join(dir, "dnslb.state.zones", "example.test.zone.rejected")); err != nil {
				t.Fatalf("rejected copy not kept aside: %v", err)
			}
		})
	}
	// Fixed on the primary: served, and the rejected copy removed.
	p.Set(t, secZoneText(9, 3600, 600, 86400, "www 60 A 192.0.2.19\n"))
	p.Notify(t, rt.Addrs()[0], nil)
	waitAnswer(t, rt, "www.example.test.", "192.0.2.10 192.0.2.11 192.0.2.19", 2*time.Second)
	// Removed when the good copy is kept, just after it is served.
	dnstest.Until(t, 5*time.Second, "the rejected copy removed after a good one", func() bool {
		_, err := os.Stat(filepath.Join(dir, "dnslb.state.zones", "example.test.zone.rejected"))
		return err != nil
	})
}
