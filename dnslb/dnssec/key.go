package dnssec

import (
	"crypto"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Algorithm is a DNSSEC signing algorithm number (RFC 8624). Only the two
// algorithms with small keys and signatures are offered: online signing
// puts a signature in every answer, and answers must stay under the UDP
// size limit.
type Algorithm uint8

// The supported algorithms. ECDSAP256SHA256 is the default because every
// validator supports it (RFC 8624 MUST); ED25519 is faster to sign with.
const (
	ECDSAP256SHA256 Algorithm = 13
	ED25519         Algorithm = 15
)

// ParseAlgorithm reads an algorithm from configuration, by mnemonic or by
// number, so that operators can copy either form from BIND or Knot.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ecdsap256sha256", "13":
		return ECDSAP256SHA256, nil
	case "ed25519", "15":
		return ED25519, nil
	}
	return 0, fmt.Errorf("dnssec: unsupported algorithm %q (want ecdsap256sha256 (13) or ed25519 (15))", s)
}

// String gives the mnemonic used in BIND files and logs.
func (a Algorithm) String() string {
	switch a {
	case ECDSAP256SHA256:
		return "ECDSAP256SHA256"
	case ED25519:
		return "ED25519"
	}
	return "algorithm " + strconv.Itoa(int(a))
}

func (a Algorithm) valid() bool { return a == ECDSAP256SHA256 || a == ED25519 }

// Role separates the key the parent's DS points to (rolled rarely, with
// the parent's help) from the key that signs answers (rolled often,
// without it).
type Role uint8

// The two roles. A combined signing key (CSK) is not supported.
const (
	ZSK Role = iota + 1
	KSK
)

// DNSKEY flags of the roles (RFC 4034 2.1.1): both have the Zone Key bit,
// the KSK has the Secure Entry Point bit too.
const (
	flagsZSK = 256
	flagsKSK = 257
)

// String names the role as BIND's comment lines and logs do.
func (r Role) String() string {
	switch r {
	case ZSK:
		return "ZSK"
	case KSK:
		return "KSK"
	}
	return "role " + strconv.Itoa(int(r))
}

func (r Role) flags() uint16 {
	if r == KSK {
		return flagsKSK
	}
	return flagsZSK
}

// Timing is when a key enters and leaves the DNSKEY RRset and when it
// signs. A zero time is unset: the event does not happen (never published,
// never inactive...). Rollover safety is entirely in these four times.
type Timing struct {
	Publish, Activate, Inactive, Delete time.Time
}

// Key is one DNSSEC key of a zone with its BIND timing metadata. A Key is
// treated as immutable once built: KeySets and Signers share it between
// goroutines, so changes (SaveTiming, Apply) work on copies.
type Key struct {
	Zone      string // canonical (lower-case, fully qualified) zone name
	Role      Role
	Algorithm Algorithm
	DNSKEY    *dns.DNSKEY
	Tag       uint16
	// Created, Publish, Activate, Inactive, Delete are BIND's timing
	// metadata; zero is unset.
	Created, Publish, Activate, Inactive, Delete time.Time
	// Path is the .key file; the .private file is next to it.
	Path string

	// signer is unexported so that the private key never appears in a
	// log line or a JSON dump of a Key.
	signer crypto.Signer
}

// Signer returns the private key, for signing with miekg/dns.
func (k *Key) Signer() crypto.Signer { return k.signer }

// String identifies the key in logs the way BIND does, without secrets.
func (k *Key) String() string {
	return fmt.Sprintf("%s %s %s/%d", k.Zone, k.Role, k.Algorithm, k.Tag)
}

// Timing returns the key's timing as one value, for planning.
func (k *Key) Timing() Timing {
	return Timing{Publish: k.Publish, Activate: k.Activate, Inactive: k.Inactive, Delete: k.Delete}
}

func (k *Key) withTiming(t Timing) *Key {
	c := *k
	c.Publish, c.Activate, c.Inactive, c.Delete = t.Publish, t.Activate, t.Inactive, t.Delete
	return &c
}

// Published reports whether the DNSKEY is in the zone's DNSKEY RRset at
// now: resolvers can only validate with keys they have fetched.
func (k *Key) Published(now time.Time) bool {
	return inWindow(k.Publish, k.Delete, now)
}

// Active reports whether the key signs at now.
func (k *Key) Active(now time.Time) bool {
	return inWindow(k.Activate, k.Inactive, now)
}

// inWindow is start <= now < end, with an unset start meaning never and
// an unset end meaning forever.
func inWindow(start, end, now time.Time) bool {
	if start.IsZero() || now.Before(start) {
		return false
	}
	return end.IsZero() || now.Before(end)
}

// DS is the record the parent zone holds for this key; digest 0 means
// SHA-256 (2), the one every validator supports. It returns nil for a
// digest type miekg/dns cannot compute; SHA-1 (1) is refused as RFC 8624
// forbids it for new DS records.
func (k *Key) DS(digest uint8) *dns.DS {
	if digest == 0 {
		digest = dns.SHA256
	}
	if digest == dns.SHA1 || k.DNSKEY == nil {
		return nil
	}
	dk := k.zoneDNSKEY(0)
	ds := dk.ToDS(digest)
	return ds
}

// CDS is the DS as the child publishes it for the parent to pick up
// (RFC 7344), with SHA-256.
func (k *Key) CDS() *dns.CDS {
	ds := k.DS(dns.SHA256)
	if ds == nil {
		return nil
	}
	return ds.ToCDS()
}

// CDNSKEY is the DNSKEY as the child publishes it for parents that
// compute the DS themselves (RFC 7344).
func (k *Key) CDNSKEY() *dns.CDNSKEY {
	if k.DNSKEY == nil {
		return nil
	}
	return k.zoneDNSKEY(0).ToCDNSKEY()
}

// zoneDNSKEY copies the DNSKEY with the canonical zone as owner and the
// given TTL, so callers never share (and mutate) the stored record.
func (k *Key) zoneDNSKEY(ttl uint32) *dns.DNSKEY {
	return &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: k.Zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: ttl},
		Flags:     k.DNSKEY.Flags,
		Protocol:  k.DNSKEY.Protocol,
		Algorithm: k.DNSKEY.Algorithm,
		PublicKey: k.DNSKEY.PublicKey,
	}
}

// canonicalZone checks a zone name and gives the form keys are compared
// and named by.
func canonicalZone(zone string) (string, error) {
	if zone == "" {
		return "", fmt.Errorf("dnssec: empty zone name")
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return "", fmt.Errorf("dnssec: invalid zone name %q", zone)
	}
	return dns.CanonicalName(zone), nil
}
