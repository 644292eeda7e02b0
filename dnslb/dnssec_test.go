package dnslb

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

func askDO(t *testing.T, rt *Runtime, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, true)
	resp, _, err := (&dns.Client{Timeout: 2 * time.Second, Net: "tcp"}).Exchange(m, rt.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// verifyWith checks every RRSIG of rrs against keys, and that each RRset
// of types has one.
func verifyWith(t *testing.T, keys []dns.RR, rrs []dns.RR, types ...uint16) {
	t.Helper()
	sets := map[uint16][]dns.RR{}
	var sigs []*dns.RRSIG
	for _, rr := range rrs {
		if s, ok := rr.(*dns.RRSIG); ok {
			sigs = append(sigs, s)
		} else {
			sets[rr.Header().Rrtype] = append(sets[rr.Header().Rrtype], rr)
		}
	}
	for _, typ := range types {
		ok := false
		for _, s := range sigs {
			if s.TypeCovered != typ {
				continue
			}
			for _, k := range keys {
				if dk := k.(*dns.DNSKEY); dk.KeyTag() == s.KeyTag && s.Verify(dk, sets[typ]) == nil {
					ok = true
				}
			}
		}
		if !ok {
			t.Errorf("no RRSIG over %s verifies with the zone's DNSKEYs: %v", dns.TypeToString[typ], rrs)
		}
	}
}

func TestSignedZoneRuntime(t *testing.T) {
	dir := t.TempDir()
	var big strings.Builder
	for i := range 40 {
		fmt.Fprintf(&big, "big A 192.0.2.%d\n", 100+i)
	}
	writeZone(t, dir, "1", big.String())
	fc := baseConfig(dir)
	fc.cfg.Zones[0].DNSSEC = &DNSSECConfig{}
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())

	// Keys were made in keys/ beside the config, the private ones for
	// the owner only.
	privs, _ := filepath.Glob(filepath.Join(dir, "keys", "Kexample.test.+013+*.private"))
	if len(privs) < 2 {
		t.Fatalf("private keys %v, want a KSK and a ZSK (and the ZSK's successor, published later)", privs)
	}
	for _, p := range privs {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v", p, st.Mode(), err)
		}
	}
	keys := askDO(t, rt, "example.test.", dns.TypeDNSKEY)
	if len(keys.Answer) < 3 {
		t.Fatalf("DNSKEY answer %v", keys.Answer)
	}
	var dnskeys []dns.RR
	for _, rr := range keys.Answer {
		if rr.Header().Rrtype == dns.TypeDNSKEY {
			dnskeys = append(dnskeys, rr)
		}
	}
	verifyWith(t, dnskeys, keys.Answer, dns.TypeDNSKEY)
	www := askDO(t, rt, "www.example.test.", dns.TypeA)
	verifyWith(t, dnskeys, www.Answer, dns.TypeA)
	nx := askDO(t, rt, "nope.example.test.", dns.TypeA)
	verifyWith(t, dnskeys, nx.Ns, dns.TypeSOA, dns.TypeNSEC)

	mfs := gatherFamilies(t, rt.Metrics())
	for name, want := range map[string]string{
		"dnslb_dnssec_keys":                           "",
		"dnslb_dnssec_signatures_total":               "ok",
		"dnslb_dnssec_signature_min_validity_seconds": "",
	} {
		if mfs[name] == nil {
			t.Errorf("%s not exported", name)
			continue
		}
		if want != "" && seriesValues(mfs, name, "result")[want] <= 0 {
			t.Errorf("%s{result=%s} = 0 after signed answers", name, want)
		}
	}
	// The shipped alerts' DNSSEC metrics are exported (the integration
	// test of shipped names leaves them to this one).
	rules, err := os.ReadFile("../contrib/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`dnslb_dnssec_[a-z_]+`).FindAllString(string(rules), -1) {
		if mfs[name] == nil {
			t.Errorf("alerts.yml uses %s, which a signed zone does not export", name)
		}
	}
	active := 0.0
	for _, m := range mfs["dnslb_dnssec_keys"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["state"] == "active" {
			active += m.GetGauge().GetValue()
		}
	}
	if active != 2 {
		t.Errorf("%v active keys, want a KSK and a ZSK", active)
	}
	if v := mfs["dnslb_dnssec_signature_min_validity_seconds"].GetMetric()[0].GetGauge().GetValue(); v < 24*3600 {
		t.Errorf("min validity %vs, want about SigRefresh (2 days)", v)
	}

	// The zones API shows the keys.
	zs := rt.Zones()
	if d := zs[0].DNSSEC; d == nil || len(d.Keys) < 2 || d.Signatures == 0 {
		t.Errorf("zone status %+v", zs[0].DNSSEC)
	} else {
		states := map[string]int{}
		for _, k := range d.Keys {
			states[k.Role+" "+k.State]++
			if !strings.HasPrefix(k.File, "Kexample.test.+013+") {
				t.Errorf("key file %q", k.File)
			}
		}
		if states["ksk active"] != 1 || states["zsk active"] != 1 {
			t.Errorf("key states %v", states)
		}
	}

	// A signed reply too big for the client's UDP size is truncated;
	// over TCP it is whole, and verifies.
	m := new(dns.Msg)
	m.SetQuestion("big.example.test.", dns.TypeA)
	m.SetEdns0(512, true)
	udp, _, err := (&dns.Client{Timeout: 2 * time.Second, UDPSize: 512}).Exchange(m, rt.Addrs()[0])
	if err != nil || !udp.Truncated {
		t.Errorf("40 signed A records in 512 bytes of UDP: %v truncated=%v", err, udp != nil && udp.Truncated)
	}
	verifyWith(t, dnskeys, askDO(t, rt, "big.example.test.", dns.TypeA).Answer, dns.TypeA)

	// A reload with changed data: the answers are signed over the new
	// data, never served with the old signatures.
	writeZone(t, dir, "2", big.String()+"www 60 A 192.0.2.12\n")
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	after := askDO(t, rt, "www.example.test.", dns.TypeA)
	if n := len(after.Answer); n != 4 { // three A and their RRSIG
		t.Errorf("after the reload: %v", after.Answer)
	}
	verifyWith(t, dnskeys, after.Answer, dns.TypeA)
	verifyWith(t, dnskeys, askDO(t, rt, "example.test.", dns.TypeSOA).Answer, dns.TypeSOA)

	// A restart signs with the same keys; a reload too.
	if err := rt.Reload(); err != nil && !strings.Contains(err.Error(), "nothing") {
		t.Fatal(err)
	}
	again := askDO(t, rt, "example.test.", dns.TypeDNSKEY)
	if len(again.Answer) != len(keys.Answer) {
		t.Errorf("after a reload %d DNSKEY records, before %d", len(again.Answer), len(keys.Answer))
	}
	rt2, err := NewRuntime(RuntimeOptions{Load: fc.load, Log: zerolog.Nop(), StateFile: filepath.Join(t.TempDir(), "s.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer rt2.Shutdown(context.Background())
	verifyWith(t, dnskeys, askDO(t, rt2, "www.example.test.", dns.TypeA).Answer, dns.TypeA)

	// A private key others can read is refused, by name.
	os.Chmod(privs[0], 0o644)
	_, err = NewRuntime(RuntimeOptions{Load: fc.load, Log: zerolog.Nop(), StateFile: filepath.Join(t.TempDir(), "s.json")})
	if err == nil || !strings.Contains(err.Error(), "zones[0].dnssec") || !strings.Contains(err.Error(), filepath.Base(privs[0])) {
		t.Errorf("start with a readable private key: %v", err)
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestRolloverKeepsValidating runs ZSK and KSK rollovers in accelerated
// time (a day's ZSK, two days' KSK, over a week in 15-minute steps)
// against a model of a validating resolver that caches the DNSKEY set
// for its TTL and a parent that publishes the DS of the CDS an hour
// after it changes: every answer must validate with what the resolver
// may hold at each moment.
func TestRolloverKeepsValidating(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	zsk, ksk := 24*time.Hour, 48*time.Hour
	fc.cfg.Zones[0].DNSSEC = &DNSSECConfig{Algorithm: "ed25519", ZSKLifetime: &zsk, KSKLifetime: ksk}
	clock := &fakeClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	rt, err := NewRuntime(RuntimeOptions{Load: fc.load, Log: zerolog.Nop(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())

	type fetched struct {
		at   time.Time
		keys map[uint16]*dns.DNSKEY
	}
	keysOf := func(rrs []dns.RR) map[uint16]*dns.DNSKEY {
		out := map[uint16]*dns.DNSKEY{}
		for _, rr := range rrs {
			if k, ok := rr.(*dns.DNSKEY); ok {
				out[k.KeyTag()] = k
			}
		}
		return out
	}
	var cached []fetched          // DNSKEY sets a resolver may still hold
	parentDS := map[uint16]bool{} // the parent's DS, by key tag
	var cds map[uint16]bool
	var cdsSince time.Time
	zskTags, kskTags := map[uint16]bool{}, map[uint16]bool{}
	const ttl = time.Hour

	verifies := func(what string, keys map[uint16]*dns.DNSKEY, rrs []dns.RR, typ uint16) bool {
		var set []dns.RR
		var sigs []*dns.RRSIG
		for _, rr := range rrs {
			if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == typ {
				sigs = append(sigs, s)
			} else if rr.Header().Rrtype == typ {
				set = append(set, rr)
			}
		}
		now := clock.Now()
		for _, s := range sigs {
			if k := keys[s.KeyTag]; k != nil && s.Verify(k, set) == nil && s.ValidityPeriod(now) {
				return true
			}
		}
		return false
	}
	for step := 0; step < 7*24*4; step++ {
		clock.add(15 * time.Minute)
		rt.refreshSigners(true)
		now := clock.Now()

		dk := askDO(t, rt, "example.test.", dns.TypeDNSKEY)
		current := keysOf(dk.Answer)
		for tag, k := range current {
			if k.Flags == 257 {
				kskTags[tag] = true
			} else {
				zskTags[tag] = true
			}
		}
		// The DNSKEY set is signed by a KSK the parent vouches for.
		anchored := map[uint16]*dns.DNSKEY{}
		for tag, k := range current {
			if parentDS[tag] || step == 0 {
				anchored[tag] = k
			}
		}
		if !verifies("DNSKEY", anchored, dk.Answer, dns.TypeDNSKEY) {
			t.Fatalf("%s: the DNSKEY set is not signed by a key the parent's DS %v names: %v", now, parentDS, dk.Answer)
		}
		if step == 0 {
			for tag, k := range current {
				if k.Flags == 257 {
					parentDS[tag] = true
				}
			}
		}
		cached = append(cached, fetched{now, current})
		for len(cached) > 0 && now.Sub(cached[0].at) > ttl {
			cached = cached[1:]
		}
		// Every cached DNSKEY set validates the answers made now.
		www := askDO(t, rt, "www.example.test.", dns.TypeA)
		nx := askDO(t, rt, "nope.example.test.", dns.TypeA)
		for _, c := range cached {
			if !verifies("A", c.keys, www.Answer, dns.TypeA) || !verifies("NSEC", c.keys, nx.Ns, dns.TypeNSEC) {
				t.Fatalf("%s: answers do not validate with the DNSKEY set fetched at %s (%d keys): %v %v", now, c.at, len(c.keys), www.Answer, nx.Ns)
			}
		}
		// The parent follows the CDS an hour after it changes, keeping
		// the old DS for its TTL.
		cdsNow := map[uint16]bool{}
		for _, rr := range askDO(t, rt, "example.test.", dns.TypeCDS).Answer {
			if c, ok := rr.(*dns.CDS); ok {
				cdsNow[c.KeyTag] = true
			}
		}
		if fmt.Sprint(cdsNow) != fmt.Sprint(cds) {
			cds, cdsSince = cdsNow, now
		}
		if len(cds) > 0 && now.Sub(cdsSince) >= time.Hour && fmt.Sprint(cds) != fmt.Sprint(parentDS) {
			parentDS = maps.Clone(cds)
		}
	}
	if len(zskTags) < 6 || len(kskTags) < 3 {
		t.Errorf("%d ZSKs and %d KSKs served over a week: the keys did not roll (ZSK daily, KSK every two days)", len(zskTags), len(kskTags))
	}
}
