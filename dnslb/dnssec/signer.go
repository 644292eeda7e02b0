package dnssec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
)

// Signer signs RRsets of one KeySet with a cache of signatures: most
// answers repeat, and an ECDSA signature costs far more than a lookup.
// It is safe for concurrent use. Make a new Signer for a new KeySet: the
// cache then starts empty, so no signature by a retired key is served.
type Signer struct {
	ks       *KeySet
	p        Policy
	now      func() time.Time
	cache    *lru.Cache[sigKey, *cachedSig] // nil: no cache
	hits     atomic.Uint64
	misses   atomic.Uint64
	made     atomic.Uint64
	failures atomic.Uint64
}

// sigKey identifies one signature: the RRset by its canonical content,
// and the key. The owner is lower-cased (case does not change the
// signature, RFC 4034 6.2) and restored from the query on a hit.
type sigKey struct {
	owner  string
	rrtype uint16
	class  uint16
	ttl    uint32
	digest [sha256.Size]byte
	tag    uint16
	alg    uint8
}

type cachedSig struct {
	sig        *dns.RRSIG // never modified once cached
	inception  time.Time
	expiration time.Time
}

// SignerStats are counters for metrics.
type SignerStats struct {
	Hits, Misses uint64 // cache lookups per signature
	Signatures   uint64 // signatures made
	Failures     uint64 // signing errors
}

// NewSigner makes a Signer for ks, with its policy. now is the clock
// (nil: time.Now); cacheEntries bounds the cache in signatures, and 0 or
// less disables it.
func NewSigner(ks *KeySet, now func() time.Time, cacheEntries int) (*Signer, error) {
	if ks == nil {
		return nil, fmt.Errorf("dnssec: signer: nil key set")
	}
	if now == nil {
		now = time.Now
	}
	s := &Signer{ks: ks, p: ks.policy, now: now}
	if cacheEntries > 0 {
		c, err := lru.New[sigKey, *cachedSig](cacheEntries)
		if err != nil {
			return nil, fmt.Errorf("dnssec: signer cache: %w", err)
		}
		s.cache = c
	}
	return s, nil
}

// KeySet is the key set the Signer signs with.
func (s *Signer) KeySet() *KeySet { return s.ks }

// Stats returns the counters since the Signer was made.
func (s *Signer) Stats() SignerStats {
	return SignerStats{Hits: s.hits.Load(), Misses: s.misses.Load(), Signatures: s.made.Load(), Failures: s.failures.Load()}
}

// validity is rounded down to the hour so that all signers (threads,
// instances) agree on inception and expiration within an hour, and so
// that a signature made at any moment of that hour has at least
// SigValidity-1h left.
func (s *Signer) validity(now time.Time) (inception, expiration time.Time) {
	base := now.UTC().Truncate(time.Hour)
	return base.Add(-s.p.InceptionBackdate), base.Add(s.p.SigValidity)
}

// Sign returns the RRSIGs of one RRset, one per signing key: KSKs for the
// apex DNSKEY, CDS and CDNSKEY RRsets, ZSKs for the rest. Owner and TTL
// come from the first record; the order of the records does not matter.
// The RRSIGs returned are the caller's to modify.
func (s *Signer) Sign(rrset []dns.RR) ([]dns.RR, error) {
	ck, err := s.check(rrset)
	if err != nil {
		s.failures.Add(1)
		return nil, err
	}
	keys := s.ks.zsks
	switch ck.rrtype {
	case dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
		keys = s.ks.ksks
	}
	if ck.digest, err = rdataDigest(rrset); err != nil {
		s.failures.Add(1)
		return nil, err
	}
	owner := rrset[0].Header().Name
	now := s.now()
	out := make([]dns.RR, 0, len(keys))
	for _, k := range keys {
		ck.tag, ck.alg = k.Tag, uint8(k.Algorithm)
		if s.cache != nil {
			if c, ok := s.cache.Get(ck); ok && !now.Before(c.inception) && c.expiration.Sub(now) >= s.p.SigRefresh {
				s.hits.Add(1)
				sig := *c.sig
				sig.Hdr.Name = owner
				out = append(out, &sig)
				continue
			}
			s.misses.Add(1)
		}
		c, err := s.sign(k, rrset, now)
		if err != nil {
			s.failures.Add(1)
			return nil, err
		}
		if s.cache != nil {
			s.cache.Add(ck, c)
		}
		sig := *c.sig
		sig.Hdr.Name = owner
		out = append(out, &sig)
	}
	return out, nil
}

func (s *Signer) sign(k *Key, rrset []dns.RR, now time.Time) (*cachedSig, error) {
	inc, exp := s.validity(now)
	h := rrset[0].Header()
	sig := &dns.RRSIG{
		Hdr:        dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: h.Class, Ttl: h.Ttl},
		Algorithm:  uint8(k.Algorithm),
		OrigTtl:    h.Ttl,
		Expiration: uint32(exp.Unix()),
		Inception:  uint32(inc.Unix()),
		KeyTag:     k.Tag,
		SignerName: s.ks.zone,
	}
	// miekg/dns copies the records, puts them in canonical form and
	// sorts them (RFC 4034 6.2, 6.3) before signing.
	if err := sig.Sign(k.signer, rrset); err != nil {
		return nil, fmt.Errorf("dnssec: sign %s %s with %s: %w", h.Name, dns.TypeToString[h.Rrtype], k, err)
	}
	s.made.Add(1)
	return &cachedSig{sig: sig, inception: inc, expiration: exp}, nil
}

// check validates the RRset and fills the parts of its cache key that
// come from the header.
func (s *Signer) check(rrset []dns.RR) (sigKey, error) {
	if len(rrset) == 0 || rrset[0] == nil || rrset[0].Header() == nil {
		return sigKey{}, fmt.Errorf("dnssec: sign: empty RRset")
	}
	h0 := rrset[0].Header()
	for _, rr := range rrset[1:] {
		if rr == nil || rr.Header() == nil {
			return sigKey{}, fmt.Errorf("dnssec: sign %s: nil record in RRset", h0.Name)
		}
		h := rr.Header()
		if !strings.EqualFold(h.Name, h0.Name) || h.Rrtype != h0.Rrtype || h.Class != h0.Class {
			return sigKey{}, fmt.Errorf("dnssec: sign %s %s: records of different owner, type or class (%s %s)",
				h0.Name, dns.TypeToString[h0.Rrtype], h.Name, dns.TypeToString[h.Rrtype])
		}
	}
	switch h0.Rrtype {
	case dns.TypeRRSIG, dns.TypeOPT, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeTSIG, dns.TypeNone:
		return sigKey{}, fmt.Errorf("dnssec: sign %s: type %s is not signed", h0.Name, dns.TypeToString[h0.Rrtype])
	}
	if _, ok := dns.IsDomainName(h0.Name); !ok || !dns.IsFqdn(h0.Name) || !dns.IsSubDomain(s.ks.zone, dns.CanonicalName(h0.Name)) {
		return sigKey{}, fmt.Errorf("dnssec: sign %s: not a name in zone %s", h0.Name, s.ks.zone)
	}
	// Retired keys stay published for MaxTTL only: a longer TTL could
	// outlive the key its signature needs.
	if time.Duration(h0.Ttl)*time.Second > s.p.MaxTTL {
		return sigKey{}, fmt.Errorf("dnssec: sign %s %s: TTL %d exceeds the policy's MaxTTL %v", h0.Name, dns.TypeToString[h0.Rrtype], h0.Ttl, s.p.MaxTTL)
	}
	return sigKey{owner: dns.CanonicalName(h0.Name), rrtype: h0.Rrtype, class: h0.Class, ttl: h0.Ttl}, nil
}

// rdataDigest hashes the sorted, de-duplicated wire RDATA of the set, so
// that the same records in any order share a cache entry. The RDATA is
// taken as given (not lower-cased): two spellings of one set get two
// entries, both valid, and different sets never share one.
func rdataDigest(rrset []dns.RR) ([sha256.Size]byte, error) {
	rdatas := make([][]byte, 0, len(rrset))
	buf := make([]byte, 512)
	for _, rr := range rrset {
		// PackRR writes Rdlength into the record: pack a copy, as the
		// caller's records may be shared with other goroutines.
		c := dns.Copy(rr)
		c.Header().Name = "." // the owner is in the cache key already
		var off int
		var err error
		for {
			off, err = dns.PackRR(c, buf, 0, nil, false)
			if err == nil || len(buf) >= 1<<16+512 {
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		if err != nil {
			return [sha256.Size]byte{}, fmt.Errorf("dnssec: sign %s: pack record: %w", rr.Header().Name, err)
		}
		// Root owner (1 byte) + type, class, TTL, rdlength (10 bytes).
		rdatas = append(rdatas, bytes.Clone(buf[11:off]))
	}
	slices.SortFunc(rdatas, bytes.Compare)
	rdatas = slices.CompactFunc(rdatas, bytes.Equal)
	h := sha256.New()
	var l [2]byte
	for _, r := range rdatas {
		binary.BigEndian.PutUint16(l[:], uint16(len(r)))
		h.Write(l[:])
		h.Write(r)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d, nil
}
