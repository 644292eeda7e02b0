package dnssec

import (
	"fmt"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// KeySet is the zone's keys in force at one moment. It is immutable, so
// the answer path reads it without locks; when NextChange passes (or the
// key files change) build a new one, and a new Signer with it.
type KeySet struct {
	zone      string
	policy    Policy
	at        time.Time
	published []*Key
	zsks      []*Key
	ksks      []*Key
	parent    []*Key // the KSKs CDS/CDNSKEY point to
	next      time.Time
}

// NewKeySet selects, from keys of zone, those in force at now. It refuses
// a set that would make answers bogus: no signing ZSK or KSK, a signing
// key that is not published, or a published algorithm without a signing
// ZSK and KSK (RFC 4035 2.2 wants every algorithm of the DNSKEY RRset to
// sign every RRset).
func NewKeySet(zone string, keys []*Key, p Policy, now time.Time) (*KeySet, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	z, err := canonicalZone(zone)
	if err != nil {
		return nil, err
	}
	ks := &KeySet{zone: z, policy: p.withDefaults(), at: now}
	prepub := ks.policy.DNSKEYTTL + ks.policy.PublishSafety
	algs := map[Algorithm]bool{}
	for _, k := range keys {
		if k == nil || k.DNSKEY == nil || k.signer == nil {
			return nil, fmt.Errorf("dnssec: key set %s: incomplete key", z)
		}
		if k.Zone != z {
			return nil, fmt.Errorf("dnssec: key set %s: key %s belongs to another zone", z, k)
		}
		for _, t := range []time.Time{k.Publish, k.Activate, k.Inactive, k.Delete, k.Publish.Add(prepub)} {
			if t.After(now) && (ks.next.IsZero() || t.Before(ks.next)) && !k.Publish.IsZero() {
				ks.next = t
			}
		}
		pub, act := k.Published(now), k.Active(now)
		if act && !pub {
			return nil, fmt.Errorf("dnssec: key set %s: key %s is active but not published", z, k)
		}
		if !pub {
			continue
		}
		ks.published = append(ks.published, k)
		algs[k.Algorithm] = true
		if act && k.Role == ZSK {
			ks.zsks = append(ks.zsks, k)
		}
		if act && k.Role == KSK {
			ks.ksks = append(ks.ksks, k)
		}
	}
	if len(ks.zsks) == 0 || len(ks.ksks) == 0 {
		return nil, fmt.Errorf("dnssec: key set %s: need an active KSK and an active ZSK (have %d and %d)", z, len(ks.ksks), len(ks.zsks))
	}
	for alg := range algs {
		if !slices.ContainsFunc(ks.zsks, func(k *Key) bool { return k.Algorithm == alg }) {
			return nil, fmt.Errorf("dnssec: key set %s: no active ZSK of algorithm %s", z, alg)
		}
		if !slices.ContainsFunc(ks.ksks, func(k *Key) bool { return k.Algorithm == alg }) {
			return nil, fmt.Errorf("dnssec: key set %s: no active KSK of algorithm %s", z, alg)
		}
	}
	// The parent should hold the newest KSK that resolvers have had time
	// to see; until one is ready (a new zone), the newest one.
	var best *Key
	for _, k := range ks.ksks {
		if k.Publish.Add(prepub).After(now) {
			continue
		}
		if best == nil || k.Publish.After(best.Publish) || (k.Publish.Equal(best.Publish) && k.Tag > best.Tag) {
			best = k
		}
	}
	if best == nil {
		for _, k := range ks.ksks {
			if best == nil || k.Publish.After(best.Publish) {
				best = k
			}
		}
	}
	ks.parent = []*Key{best}
	return ks, nil
}

// Zone is the canonical zone name.
func (s *KeySet) Zone() string { return s.zone }

// Policy is the policy the set was built with, for the Signer.
func (s *KeySet) Policy() Policy { return s.policy }

// NextChange is the next time a key is published, activated,
// deactivated, deleted or becomes ready for CDS; zero if none. The set is
// stale from then on.
func (s *KeySet) NextChange() time.Time { return s.next }

// Keys are the published keys.
func (s *KeySet) Keys() []*Key { return slices.Clone(s.published) }

// SigningZSKs are the keys that sign every RRset but the apex key sets.
func (s *KeySet) SigningZSKs() []*Key { return slices.Clone(s.zsks) }

// SigningKSKs are the keys that sign the DNSKEY, CDS and CDNSKEY RRsets.
func (s *KeySet) SigningKSKs() []*Key { return slices.Clone(s.ksks) }

// ParentKSKs are the KSKs that CDS/CDNSKEY point to.
func (s *KeySet) ParentKSKs() []*Key { return slices.Clone(s.parent) }

func (s *KeySet) ttl() uint32 { return uint32(s.policy.DNSKEYTTL / time.Second) }

// DNSKEYs is the apex DNSKEY RRset, fresh copies that the caller may
// modify (e.g. to match the query's case).
func (s *KeySet) DNSKEYs() []dns.RR {
	out := make([]dns.RR, 0, len(s.published))
	for _, k := range s.published {
		out = append(out, k.zoneDNSKEY(s.ttl()))
	}
	return out
}

// CDS is the apex CDS RRset (SHA-256) asking the parent for the DS of
// ParentKSKs (RFC 7344).
func (s *KeySet) CDS() []dns.RR {
	var out []dns.RR
	for _, k := range s.parent {
		if c := k.CDS(); c != nil {
			c.Hdr.Ttl = s.ttl()
			out = append(out, c)
		}
	}
	return out
}

// CDNSKEY is the apex CDNSKEY RRset for ParentKSKs.
func (s *KeySet) CDNSKEY() []dns.RR {
	var out []dns.RR
	for _, k := range s.parent {
		if c := k.CDNSKEY(); c != nil {
			c.Hdr.Ttl = s.ttl()
			out = append(out, c)
		}
	}
	return out
}

// DS are the records to give the parent by hand, for parents that do not
// read CDS; digest 0 is SHA-256.
func (s *KeySet) DS(digest uint8) []*dns.DS {
	var out []*dns.DS
	for _, k := range s.parent {
		if d := k.DS(digest); d != nil {
			d.Hdr.Ttl = s.ttl()
			out = append(out, d)
		}
	}
	return out
}
