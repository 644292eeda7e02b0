package dnssec

import (
	"fmt"
	"time"
)

// Policy is the timing of keys and signatures. Every duration that must
// be positive takes its default when zero; the two lifetimes are the
// exception, where zero means "never roll", so start from DefaultPolicy
// to get the default ZSK rollover.
type Policy struct {
	// Algorithm of new keys; successors keep the algorithm of the key
	// they replace (no algorithm rollover).
	Algorithm Algorithm
	// ZSKLifetime is how long a ZSK signs (DefaultPolicy: 30 days); 0
	// never rolls it.
	ZSKLifetime time.Duration
	// KSKLifetime is how long a KSK stays before a successor replaces it
	// at the parent (default 0: never, as each roll needs the parent).
	KSKLifetime time.Duration
	// DNSKEYTTL is the TTL of the DNSKEY, CDS and CDNSKEY RRsets
	// (default 1h): how long resolvers may hold an old key set.
	DNSKEYTTL time.Duration
	// PublishSafety is added to DNSKEYTTL before a new key is relied on
	// (default 1h), for propagation to secondaries and clock skew.
	PublishSafety time.Duration
	// RetireSafety is added to MaxTTL before a retired ZSK is removed
	// (default 1h).
	RetireSafety time.Duration
	// MaxTTL bounds every TTL the Signer signs (default 1 day). Online
	// signatures live in caches only as long as their answer, so this,
	// not SigValidity, is how long a retired ZSK must stay published.
	MaxTTL time.Duration
	// SigValidity is how long a new signature is valid (default 7 days).
	SigValidity time.Duration
	// SigRefresh: a cached signature is re-made when less validity than
	// this remains (default 2 days).
	SigRefresh time.Duration
	// InceptionBackdate moves inception into the past (default 1h) so
	// that validators with a slow clock accept new signatures.
	InceptionBackdate time.Duration
	// ParentDSWait is how long after CDS/CDNSKEY point to a new KSK the
	// old one is kept (default 1 day): standing in for the parent's
	// pick-up delay plus its DS TTL, as the parent is not polled.
	ParentDSWait time.Duration
}

// DefaultPolicy is a policy for a zone whose operator does nothing: ZSKs
// roll every 30 days, the KSK stays until rolled on purpose.
func DefaultPolicy() Policy {
	return Policy{
		Algorithm:         ECDSAP256SHA256,
		ZSKLifetime:       30 * 24 * time.Hour,
		DNSKEYTTL:         time.Hour,
		PublishSafety:     time.Hour,
		RetireSafety:      time.Hour,
		MaxTTL:            24 * time.Hour,
		SigValidity:       7 * 24 * time.Hour,
		SigRefresh:        2 * 24 * time.Hour,
		InceptionBackdate: time.Hour,
		ParentDSWait:      24 * time.Hour,
	}
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if p.Algorithm == 0 {
		p.Algorithm = d.Algorithm
	}
	set(&p.DNSKEYTTL, d.DNSKEYTTL)
	set(&p.PublishSafety, d.PublishSafety)
	set(&p.RetireSafety, d.RetireSafety)
	set(&p.MaxTTL, d.MaxTTL)
	set(&p.SigValidity, d.SigValidity)
	set(&p.SigRefresh, d.SigRefresh)
	set(&p.InceptionBackdate, d.InceptionBackdate)
	set(&p.ParentDSWait, d.ParentDSWait)
	return p
}

// Validate refuses timings under which the rollover or the signatures
// could not work, so that a bad configuration fails at start and not
// when a resolver first fails to validate.
func (p Policy) Validate() error {
	p = p.withDefaults()
	if !p.Algorithm.valid() {
		return fmt.Errorf("dnssec: policy: unsupported algorithm %d", p.Algorithm)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ZSKLifetime", p.ZSKLifetime}, {"KSKLifetime", p.KSKLifetime},
		{"DNSKEYTTL", p.DNSKEYTTL}, {"PublishSafety", p.PublishSafety}, {"RetireSafety", p.RetireSafety},
		{"MaxTTL", p.MaxTTL}, {"SigValidity", p.SigValidity}, {"SigRefresh", p.SigRefresh},
		{"InceptionBackdate", p.InceptionBackdate}, {"ParentDSWait", p.ParentDSWait},
	} {
		if d.v < 0 {
			return fmt.Errorf("dnssec: policy: %s %v is negative", d.name, d.v)
		}
	}
	prepub := p.DNSKEYTTL + p.PublishSafety
	if p.ZSKLifetime != 0 && p.ZSKLifetime <= prepub {
		return fmt.Errorf("dnssec: policy: ZSKLifetime %v must exceed DNSKEYTTL+PublishSafety %v so a successor can be pre-published", p.ZSKLifetime, prepub)
	}
	if p.KSKLifetime != 0 && p.KSKLifetime <= prepub+p.ParentDSWait {
		return fmt.Errorf("dnssec: policy: KSKLifetime %v must exceed DNSKEYTTL+PublishSafety+ParentDSWait %v", p.KSKLifetime, prepub+p.ParentDSWait)
	}
	if p.DNSKEYTTL > p.MaxTTL {
		return fmt.Errorf("dnssec: policy: DNSKEYTTL %v exceeds MaxTTL %v", p.DNSKEYTTL, p.MaxTTL)
	}
	if p.MaxTTL > p.SigRefresh {
		return fmt.Errorf("dnssec: policy: MaxTTL %v exceeds SigRefresh %v: a cached answer could outlive its signature", p.MaxTTL, p.SigRefresh)
	}
	if p.SigRefresh+time.Hour >= p.SigValidity {
		return fmt.Errorf("dnssec: policy: SigValidity %v must exceed SigRefresh %v by more than an hour (validity is rounded to the hour)", p.SigValidity, p.SigRefresh)
	}
	if p.SigValidity > 365*24*time.Hour {
		return fmt.Errorf("dnssec: policy: SigValidity %v is over a year", p.SigValidity)
	}
	if p.MaxTTL > time.Duration(1<<31-1)*time.Second {
		return fmt.Errorf("dnssec: policy: MaxTTL %v does not fit a TTL", p.MaxTTL)
	}
	return nil
}
