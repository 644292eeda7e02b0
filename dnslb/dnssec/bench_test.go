package dnssec

import (
	"testing"
	"time"
)

func benchSign(b *testing.B, alg Algorithm, cache int) {
	ks := testKeySet(b, alg)
	s, err := NewSigner(ks, func() time.Time { return t0 }, cache)
	if err != nil {
		b.Fatal(err)
	}
	set := rrs(b, "www.example.com. 60 IN A 192.0.2.1", "www.example.com. 60 IN A 192.0.2.2")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Sign(set); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if st := s.Stats(); cache == 0 && st.Signatures == 0 {
		b.Fatal("nothing signed")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}

// Uncached (cache disabled): every call signs.
func BenchmarkSignP256(b *testing.B)    { benchSign(b, ECDSAP256SHA256, 0) }
func BenchmarkSignEd25519(b *testing.B) { benchSign(b, ED25519, 0) }

// Cached: every call after the first is a hit.
func BenchmarkSignCached(b *testing.B) { benchSign(b, ECDSAP256SHA256, 1024) }
