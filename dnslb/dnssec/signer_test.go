package dnssec

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testKeySet makes a KSK and a ZSK of alg in a temporary directory.
func testKeySet(t testing.TB, alg Algorithm) *KeySet {
	t.Helper()
	dir := t.TempDir()
	var keys []*Key
	for _, r := range []Role{KSK, ZSK} {
		k, err := Generate(dir, "example.com", alg, r, t0)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	ks, err := NewKeySet("example.com", keys, DefaultPolicy(), t0)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func rrs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		out = append(out, mustRR(t, l))
	}
	return out
}

func verify(t *testing.T, sigs []dns.RR, keys []*Key, rrset []dns.RR, now time.Time) {
	t.Helper()
	if len(sigs) != len(keys) {
		t.Fatalf("%d signatures for %d keys", len(sigs), len(keys))
	}
	for i, s := range sigs {
		sig := s.(*dns.RRSIG)
		if err := sig.Verify(keys[i].DNSKEY, rrset); err != nil {
			t.Errorf("signature by %v does not verify: %v", keys[i], err)
		}
		if !sig.ValidityPeriod(now) {
			t.Errorf("signature not valid at %v: %v", now, sig)
		}
		if sig.Hdr.Name != rrset[0].Header().Name || sig.Hdr.Ttl != rrset[0].Header().Ttl || sig.OrigTtl != rrset[0].Header().Ttl {
			t.Errorf("RRSIG header %v for %v", sig.Hdr, rrset[0].Header())
		}
	}
}

func TestSignVerifies(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256SHA256, ED25519} {
		t.Run(alg.String(), func(t *testing.T) {
			ks := testKeySet(t, alg)
			clk := newClock(t0.Add(90 * time.Minute))
			s, err := NewSigner(ks, clk.Now, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, set := range [][]dns.RR{
				rrs(t, "www.example.com. 300 IN A 192.0.2.1", "www.example.com. 300 IN A 192.0.2.2"),
				rrs(t, "WwW.Example.COM. 60 IN AAAA 2001:db8::1"),
				rrs(t, "example.com. 3600 IN NS NS1.Example.com.", "example.com. 3600 IN NS ns2.example.net."),
				rrs(t, "*.w.example.com. 30 IN TXT \"wild\""),
				{CompactNXDOMAIN("nope.example.com.", 300)},
			} {
				sigs, err := s.Sign(set)
				if err != nil {
					t.Fatal(err)
				}
				verify(t, sigs, ks.SigningZSKs(), set, clk.Now())
				sig := sigs[0].(*dns.RRSIG)
				// Validity is rounded to the hour; inception backdated.
				if got, want := sig.Inception, uint32(t0.Unix()); got != want {
					t.Errorf("inception %d, want %d", got, want)
				}
				if got, want := sig.Expiration, uint32(t0.Add(time.Hour+7*24*time.Hour).Unix()); got != want {
					t.Errorf("expiration %d, want %d", got, want)
				}
			}
			// The apex key sets are signed by the KSK.
			for _, set := range [][]dns.RR{ks.DNSKEYs(), ks.CDS(), ks.CDNSKEY()} {
				sigs, err := s.Sign(set)
				if err != nil {
					t.Fatal(err)
				}
				verify(t, sigs, ks.SigningKSKs(), set, clk.Now())
				if sigs[0].(*dns.RRSIG).KeyTag != ks.SigningKSKs()[0].Tag {
					t.Errorf("%s signed by %d, not the KSK", dns.TypeToString[set[0].Header().Rrtype], sigs[0].(*dns.RRSIG).KeyTag)
				}
			}
		})
	}
}

func TestSignCacheOrderAndContent(t *testing.T) {
	ks := testKeySet(t, ECDSAP256SHA256)
	clk := newClock(t0)
	s, _ := NewSigner(ks, clk.Now, 100)
	a := rrs(t, "www.example.com. 300 IN A 192.0.2.1", "www.example.com. 300 IN A 192.0.2.2", "www.example.com. 300 IN A 192.0.2.3")
	b := []dns.RR{a[2], a[0], a[1]}
	sa, err := s.Sign(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	if sa[0].(*dns.RRSIG).Signature != sb[0].(*dns.RRSIG).Signature {
		t.Error("the same set in another order got another signature (ECDSA is randomised: not from the cache)")
	}
	verify(t, sb, ks.SigningZSKs(), b, clk.Now())
	verify(t, sa, ks.SigningZSKs(), a, clk.Now())
	if st := s.Stats(); st.Hits != 1 || st.Misses != 1 || st.Signatures != 1 {
		t.Errorf("stats %+v, want 1 hit, 1 miss, 1 signature", st)
	}
	// Owner case is restored from the query, and the signature still
	// verifies; the returned RRSIG is the caller's to change.
	upper := rrs(t, "WWW.example.COM. 300 IN A 192.0.2.1", "WWW.example.COM. 300 IN A 192.0.2.2", "WWW.example.COM. 300 IN A 192.0.2.3")
	su, _ := s.Sign(upper)
	if su[0].Header().Name != "WWW.example.COM." {
		t.Errorf("owner %s", su[0].Header().Name)
	}
	verify(t, su, ks.SigningZSKs(), upper, clk.Now())
	su[0].(*dns.RRSIG).Signature = "broken"
	again, _ := s.Sign(a)
	verify(t, again, ks.SigningZSKs(), a, clk.Now())

	// A subset, another TTL, a duplicate-free equal set.
	sub := a[:2]
	ss, _ := s.Sign(sub)
	if ss[0].(*dns.RRSIG).Signature == sa[0].(*dns.RRSIG).Signature {
		t.Error("a subset got the signature of the whole set")
	}
	verify(t, ss, ks.SigningZSKs(), sub, clk.Now())
	if err := ss[0].(*dns.RRSIG).Verify(ks.SigningZSKs()[0].DNSKEY, a); err == nil {
		t.Error("the subset's signature verifies the whole set")
	}
	ttl := rrs(t, "www.example.com. 301 IN A 192.0.2.1", "www.example.com. 301 IN A 192.0.2.2", "www.example.com. 301 IN A 192.0.2.3")
	st, _ := s.Sign(ttl)
	verify(t, st, ks.SigningZSKs(), ttl, clk.Now())
	dup := append(append([]dns.RR{}, a...), a[0])
	sd, _ := s.Sign(dup)
	if sd[0].(*dns.RRSIG).Signature != sa[0].(*dns.RRSIG).Signature {
		t.Error("a duplicate record changed the cache entry")
	}
}

func TestSignRefresh(t *testing.T) {
	ks := testKeySet(t, ED25519)
	p := ks.Policy()
	clk := newClock(t0.Add(10 * time.Minute))
	s, _ := NewSigner(ks, clk.Now, 10)
	set := rrs(t, "www.example.com. 300 IN A 192.0.2.1")
	first, _ := s.Sign(set)
	exp := time.Unix(int64(first[0].(*dns.RRSIG).Expiration), 0)
	// Until only SigRefresh is left the cached one is served ...
	clk.ns.Store(exp.Add(-p.SigRefresh).UnixNano())
	same, _ := s.Sign(set)
	if same[0].(*dns.RRSIG).Expiration != first[0].(*dns.RRSIG).Expiration {
		t.Error("signature re-made before SigRefresh")
	}
	// ... and once less is left, a new one.
	clk.Advance(time.Second)
	fresh, _ := s.Sign(set)
	if fresh[0].(*dns.RRSIG).Expiration <= first[0].(*dns.RRSIG).Expiration {
		t.Error("signature not refreshed at expiration-SigRefresh")
	}
	verify(t, fresh, ks.SigningZSKs(), set, clk.Now())
	if remaining := time.Unix(int64(fresh[0].(*dns.RRSIG).Expiration), 0).Sub(clk.Now()); remaining < p.SigValidity-time.Hour {
		t.Errorf("fresh signature has only %v left", remaining)
	}
	if st := s.Stats(); st.Signatures != 2 || st.Hits != 1 {
		t.Errorf("stats %+v", st)
	}
	// A clock that went back before the inception gets a new signature.
	clk.ns.Store(t0.Add(-2 * time.Hour).UnixNano())
	back, _ := s.Sign(set)
	if !back[0].(*dns.RRSIG).ValidityPeriod(clk.Now()) {
		t.Error("served a signature not yet valid")
	}
}

func TestSignNewKeySet(t *testing.T) {
	set := rrs(t, "www.example.com. 300 IN A 192.0.2.1")
	ks1 := testKeySet(t, ED25519)
	ks2 := testKeySet(t, ED25519)
	clk := newClock(t0)
	s1, _ := NewSigner(ks1, clk.Now, 10)
	s2, _ := NewSigner(ks2, clk.Now, 10)
	a, _ := s1.Sign(set)
	b, _ := s2.Sign(set)
	if a[0].(*dns.RRSIG).KeyTag == b[0].(*dns.RRSIG).KeyTag || a[0].(*dns.RRSIG).Signature == b[0].(*dns.RRSIG).Signature {
		t.Error("a new key set's signer returned the old key's signature")
	}
	verify(t, b, ks2.SigningZSKs(), set, clk.Now())
}

func TestSignRefusals(t *testing.T) {
	ks := testKeySet(t, ED25519)
	s, _ := NewSigner(ks, nil, 0)
	for _, tc := range []struct {
		set  []dns.RR
		want string
	}{
		{nil, "empty"},
		{rrs(t, "www.example.com. 300 IN A 192.0.2.1", "ftp.example.com. 300 IN A 192.0.2.1"), "different owner"},
		{rrs(t, "www.example.com. 300 IN A 192.0.2.1", "www.example.com. 300 IN AAAA ::1"), "different owner, type"},
		{rrs(t, "www.example.net. 300 IN A 192.0.2.1"), "not a name in zone"},
		{rrs(t, "www.example.com. 86401 IN A 192.0.2.1"), "exceeds the policy's MaxTTL"},
		{[]dns.RR{&dns.RRSIG{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeRRSIG, Class: dns.ClassINET}}}, "is not signed"},
		{[]dns.RR{mustRR(t, "www.example.com. 1 IN A 192.0.2.1"), nil}, "nil record"},
	} {
		_, err := s.Sign(tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Sign(%v) = %v, want %q", tc.set, err, tc.want)
		}
	}
	if st := s.Stats(); st.Failures != 7 {
		t.Errorf("failures %d", st.Failures)
	}
}

func TestSignConcurrent(t *testing.T) {
	ks := testKeySet(t, ED25519)
	clk := newClock(t0)
	s, _ := NewSigner(ks, clk.Now, 64)
	// Shared records, as a zone's records are shared by all queries.
	var sets [][]dns.RR
	for i := range 100 {
		sets = append(sets, rrs(t, fmt.Sprintf("h%d.example.com. 60 IN A 192.0.2.%d", i, i), fmt.Sprintf("h%d.example.com. 60 IN A 198.51.100.%d", i, i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				set := sets[(i*7+g)%len(sets)]
				if g == 0 && i%50 == 0 {
					clk.Advance(time.Hour)
				}
				sigs, err := s.Sign(set)
				if err == nil {
					err = sigs[0].(*dns.RRSIG).Verify(ks.SigningZSKs()[0].DNSKEY, set)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.Hits == 0 || st.Hits+st.Misses != 8*500 {
		t.Errorf("stats %+v", st)
	}
}
