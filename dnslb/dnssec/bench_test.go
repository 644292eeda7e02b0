package dnssec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
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

// The floor: the standard library's own signing of a 32-byte digest,
// measured beside the Signer so that a run on a noisy machine still
// gives the Signer's overhead as a ratio.
func BenchmarkCryptoP256(b *testing.B) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("www.example.com. A"))
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, k, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}

func BenchmarkCryptoEd25519(b *testing.B) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 120) // about an A RRset's signed data
	for b.Loop() {
		ed25519.Sign(k, msg)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}
