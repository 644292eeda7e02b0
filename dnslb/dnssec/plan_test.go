package dnssec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// snapshot is what resolvers could have seen at one moment.
type snapshot struct {
	at      time.Time
	dnskeys []uint16 // the DNSKEY RRset
	zsks    []uint16 // ZSKs signing answers
	ksks    []uint16 // KSKs signing the DNSKEY RRset
	cds     []uint16 // KSKs the CDS points to
}

func tags(keys []*Key) []uint16 {
	var out []uint16
	for _, k := range keys {
		out = append(out, k.Tag)
	}
	return out
}

func subset(a, b []uint16) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func intersects(a, b []uint16) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

type simulation struct {
	t       *testing.T
	p       Policy
	dir     string
	start   time.Time
	keys    []*Key
	history []snapshot
	zskSeen map[uint16]bool
	kskSeen map[uint16]bool
	actions int
	all     map[uint16]bool
}

func newSimulation(t *testing.T, p Policy) *simulation {
	return &simulation{t: t, p: p.withDefaults(), dir: keyDir(t), start: t0, zskSeen: map[uint16]bool{}, kskSeen: map[uint16]bool{}, all: map[uint16]bool{}}
}

// step runs the planner at now and checks that validation keeps working
// for every resolver whose caches could hold what was served earlier.
func (s *simulation) step(now time.Time) {
	t := s.t
	t.Helper()
	acts, err := Plan("example.com", s.keys, s.p, now)
	if err != nil {
		t.Fatalf("%v: Plan: %v", now, err)
	}
	if len(acts) > 0 {
		s.actions += len(acts)
		for _, a := range acts {
			t.Logf("%v: %v", now.Format(time.DateTime), a)
		}
		if s.keys, err = Apply(s.dir, s.keys, acts, now); err != nil {
			t.Fatalf("%v: Apply: %v", now, err)
		}
		// The files say what the plan did.
		loaded, err := LoadKeys(s.dir, "example.com")
		if err != nil {
			t.Fatalf("%v: LoadKeys: %v", now, err)
		}
		if len(loaded) != len(s.keys) {
			t.Fatalf("%v: %d keys on disk, %d planned", now, len(loaded), len(s.keys))
		}
		for _, l := range loaded {
			i := slices.IndexFunc(s.keys, func(k *Key) bool { return k.Tag == l.Tag })
			if i < 0 || s.keys[i].Timing() != l.Timing() || s.keys[i].Role != l.Role {
				t.Fatalf("%v: key %v on disk with timing %+v differs from the plan", now, l, l.Timing())
			}
		}
		s.keys = loaded
		for _, k := range loaded {
			s.all[k.Tag] = true
		}
		if again, _ := Plan("example.com", s.keys, s.p, now); len(again) != 0 {
			t.Fatalf("%v: Plan not idempotent: %v", now, again)
		}
	}
	ks, err := NewKeySet("example.com", s.keys, s.p, now)
	if err != nil {
		t.Fatalf("%v: %v", now, err)
	}
	snap := snapshot{at: now, dnskeys: tags(ks.Keys()), zsks: tags(ks.SigningZSKs()), ksks: tags(ks.SigningKSKs()), cds: tags(ks.ParentKSKs())}
	prepub := s.p.DNSKEYTTL + s.p.PublishSafety
	retire := s.p.MaxTTL + s.p.RetireSafety
	for _, k := range ks.SigningZSKs() {
		s.zskSeen[k.Tag] = true
		if k.Activate.After(s.start) && k.Activate.Sub(k.Publish) < prepub {
			t.Errorf("%v: ZSK %v signs after being published only %v", now, k, k.Activate.Sub(k.Publish))
		}
	}
	for _, k := range ks.SigningKSKs() {
		s.kskSeen[k.Tag] = true
	}
	for _, k := range s.keys {
		if k.Role == ZSK && !k.Inactive.IsZero() && (k.Delete.IsZero() || k.Delete.Sub(k.Inactive) < retire) {
			t.Errorf("%v: ZSK %v deleted %v after it stops signing", now, k, k.Delete.Sub(k.Inactive))
		}
		if k.Role == KSK && (k.Published(now) != k.Active(now)) {
			t.Errorf("%v: KSK %v published %v but active %v", now, k, k.Published(now), k.Active(now))
		}
	}
	if ready := slices.ContainsFunc(ks.SigningKSKs(), func(k *Key) bool { return !now.Before(k.Publish.Add(prepub)) }); ready {
		for _, k := range ks.ParentKSKs() {
			if now.Before(k.Publish.Add(prepub)) {
				t.Errorf("%v: CDS points to %v published only %v ago", now, k, now.Sub(k.Publish))
			}
		}
	}
	for _, h := range s.history {
		age := now.Sub(h.at)
		// A resolver holding the DNSKEY RRset of then can check today's
		// signatures, and the DS the parent may have switched to now.
		if age < s.p.DNSKEYTTL {
			if !subset(snap.zsks, h.dnskeys) {
				t.Errorf("%v: ZSKs %v sign but a DNSKEY RRset cached at %v has %v", now, snap.zsks, h.at, h.dnskeys)
			}
			if !subset(snap.cds, h.dnskeys) {
				t.Errorf("%v: CDS points to %v absent from a DNSKEY RRset cached at %v (%v)", now, snap.cds, h.at, h.dnskeys)
			}
		}
		// An answer cached then is checked with today's DNSKEY RRset.
		if age < s.p.MaxTTL && !subset(h.zsks, snap.dnskeys) {
			t.Errorf("%v: answers signed at %v by %v, DNSKEY RRset now %v", now, h.at, h.zsks, snap.dnskeys)
		}
		// The parent may still serve a DS from any CDS of the last
		// ParentDSWait: one of its keys must sign the DNSKEY RRset.
		if age < s.p.ParentDSWait && !intersects(h.cds, snap.ksks) {
			t.Errorf("%v: CDS at %v was %v, DNSKEY RRset now signed by %v", now, h.at, h.cds, snap.ksks)
		}
	}
	s.history = append(s.history, snap)
	keep := now.Add(-max(s.p.MaxTTL, s.p.ParentDSWait, s.p.DNSKEYTTL))
	for len(s.history) > 0 && s.history[0].at.Before(keep) {
		s.history = s.history[1:]
	}
}

func TestPlanRollovers(t *testing.T) {
	fast := DefaultPolicy()
	fast.ZSKLifetime = 3 * 24 * time.Hour
	fast.KSKLifetime = 5 * 24 * time.Hour
	fast.Algorithm = ED25519
	def := DefaultPolicy()
	def.KSKLifetime = 20 * 24 * time.Hour
	for _, tc := range []struct {
		name       string
		p          Policy
		days       int
		step       time.Duration
		zsks, ksks int // at least this many keys signed
	}{
		{"default hourly", def, 70, time.Hour, 3, 4},
		{"default irregular", def, 70, 5*time.Hour + 17*time.Minute, 3, 4},
		{"fast 10min", fast, 16, 10 * time.Minute, 6, 4},
		{"fast 3h", fast, 16, 3 * time.Hour, 6, 4},
		{"no rollover", Policy{ZSKLifetime: 0}, 10, 2 * time.Hour, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSimulation(t, tc.p)
			end := t0.AddDate(0, 0, tc.days)
			for now := t0; now.Before(end); now = now.Add(tc.step) {
				s.step(now)
				if t.Failed() {
					return
				}
			}
			if len(s.zskSeen) < tc.zsks || len(s.kskSeen) < tc.ksks {
				t.Errorf("%d ZSKs and %d KSKs signed, want at least %d and %d", len(s.zskSeen), len(s.kskSeen), tc.zsks, tc.ksks)
			}
			if n := len(s.keys); n > 6 {
				t.Errorf("%d keys left", n)
			}
			removed, _ := os.ReadDir(filepath.Join(s.dir, removedDir))
			if want := 2 * (len(s.all) - len(s.keys)); len(removed) != want {
				t.Errorf("%d files in removed/, want %d", len(removed), want)
			}
		})
	}
}

// Adding a KSK by hand rolls the KSK even with no KSK lifetime.
func TestPlanManualKSKRoll(t *testing.T) {
	s := newSimulation(t, DefaultPolicy())
	var old uint16
	for now := t0; now.Before(t0.AddDate(0, 0, 6)); now = now.Add(30 * time.Minute) {
		if now.Equal(t0.Add(48 * time.Hour)) {
			old = s.keys[slices.IndexFunc(s.keys, func(k *Key) bool { return k.Role == KSK })].Tag
			k, err := Generate(s.dir, "example.com", ECDSAP256SHA256, KSK, now)
			if err != nil {
				t.Fatal(err)
			}
			s.keys = append(s.keys, k)
		}
		s.step(now)
		if t.Failed() {
			return
		}
	}
	if len(s.kskSeen) != 2 || slices.ContainsFunc(s.keys, func(k *Key) bool { return k.Tag == old }) {
		t.Errorf("KSK %d not rolled: keys %v", old, s.keys)
	}
}

// Keys imported with timing that would break validation are repaired.
func TestPlanRepairsImportedTiming(t *testing.T) {
	p := DefaultPolicy()
	dir := keyDir(t)
	now := t0.AddDate(0, 3, 0)
	mk := func(role Role, tm Timing) *Key {
		k, err := generate(dir, "example.com", ECDSAP256SHA256, role, t0, tm)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ksk := mk(KSK, Timing{Publish: t0, Activate: t0})
	// An old ZSK active for months, due to stop in 30 minutes, and
	// deleted when it stops.
	zsk := mk(ZSK, Timing{Publish: t0, Activate: t0, Inactive: now.Add(30 * time.Minute), Delete: now.Add(30 * time.Minute)})
	acts, err := Plan("example.com", []*Key{ksk, zsk}, p, now)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := Apply(dir, []*Key{ksk, zsk}, acts, now)
	if err != nil {
		t.Fatal(err)
	}
	var succ, old *Key
	for _, k := range keys {
		if k.Role == ZSK && k.Tag != zsk.Tag {
			succ = k
		}
		if k.Tag == zsk.Tag {
			old = k
		}
	}
	prepub := p.DNSKEYTTL + p.PublishSafety
	if succ == nil || !succ.Publish.Equal(now) || !succ.Activate.Equal(now.Add(prepub)) {
		t.Fatalf("successor %v %+v; actions %v", succ, succ, acts)
	}
	if !old.Inactive.Equal(succ.Activate) || old.Delete.Sub(old.Inactive) != p.MaxTTL+p.RetireSafety {
		t.Errorf("old ZSK timing %+v", old.Timing())
	}
	if !ksk.Inactive.IsZero() {
		t.Error("KSK changed in place")
	}
}

func TestPlanErrors(t *testing.T) {
	bad := DefaultPolicy()
	bad.ZSKLifetime = time.Hour
	if _, err := Plan("example.com", nil, bad, t0); err == nil || !strings.Contains(err.Error(), "ZSKLifetime") {
		t.Errorf("short ZSK lifetime: %v", err)
	}
	k, _ := Generate(keyDir(t), "example.net", ED25519, ZSK, t0)
	if _, err := Plan("example.com", []*Key{k}, DefaultPolicy(), t0); err == nil || !strings.Contains(err.Error(), "another zone") {
		t.Errorf("foreign key: %v", err)
	}
	for _, mod := range []func(*Policy){
		func(p *Policy) { p.MaxTTL = 3 * 24 * time.Hour },
		func(p *Policy) { p.SigRefresh = p.SigValidity },
		func(p *Policy) { p.KSKLifetime = 24 * time.Hour },
		func(p *Policy) { p.DNSKEYTTL = 2 * p.MaxTTL },
		func(p *Policy) { p.RetireSafety = -1 },
		func(p *Policy) { p.Algorithm = 8 },
	} {
		p := DefaultPolicy()
		mod(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
	if err := (Policy{}).Validate(); err != nil {
		t.Errorf("zero policy: %v", err)
	}
}

func TestNewKeySetRefusals(t *testing.T) {
	dir := keyDir(t)
	ksk, _ := Generate(dir, "example.com", ECDSAP256SHA256, KSK, t0)
	zsk, _ := Generate(dir, "example.com", ECDSAP256SHA256, ZSK, t0)
	edz, _ := Generate(dir, "example.com", ED25519, ZSK, t0)
	p := DefaultPolicy()
	for _, tc := range []struct {
		keys []*Key
		want string
	}{
		{[]*Key{ksk}, "need an active KSK and an active ZSK"},
		{[]*Key{zsk}, "need an active KSK and an active ZSK"},
		{[]*Key{ksk, zsk.withTiming(Timing{Activate: t0})}, "active but not published"},
		{[]*Key{ksk, zsk, edz}, "no active KSK of algorithm ED25519"},
	} {
		if _, err := NewKeySet("example.com", tc.keys, p, t0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewKeySet(%v) = %v, want %q", tc.keys, err, tc.want)
		}
	}
	ks, err := NewKeySet("example.com", []*Key{ksk, zsk, zsk.withTiming(Timing{Publish: t0.Add(time.Hour)})}, p, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.DNSKEYs()) != 2 || !ks.NextChange().Equal(t0.Add(time.Hour)) || len(ks.DS(0)) != 1 || ks.DS(0)[0].KeyTag != ksk.Tag {
		t.Errorf("key set %v next %v DS %v", ks.DNSKEYs(), ks.NextChange(), ks.DS(0))
	}
	if rr := ks.DNSKEYs()[0]; rr.Header().Ttl != 3600 || rr.Header().Name != "example.com." {
		t.Errorf("DNSKEY %v", rr)
	}
}
