package dnslb

import (
	"strings"
	"time"
)

// DNSSECConfig is a zone's dnssec: block: its answers are signed as they
// are made, with keys kept in a directory (BIND's K*.key/K*.private
// files, generated when there are none).
type DNSSECConfig struct {
	// Algorithm is ecdsap256sha256 (13, the default) or ed25519 (15).
	Algorithm string `mapstructure:"algorithm"`
	// Keys is the key directory, relative to the config file (default
	// keys/). Private keys in it must not be readable by others.
	Keys string `mapstructure:"keys"`
	// Denial is how non-existence is proved: compact (RFC 9824, the
	// default) or nsec3 (white lies: SHA-1, no salt, no iterations).
	Denial string `mapstructure:"denial"`
	// ZSKLifetime is how long a zone-signing key signs before a
	// pre-published successor takes over (default 30 days; 0: never).
	ZSKLifetime *time.Duration `mapstructure:"zsk_lifetime"`
	// KSKLifetime is the same for the key-signing key, rolled with
	// CDS/CDNSKEY for the parent to follow (default 0: never).
	KSKLifetime time.Duration `mapstructure:"ksk_lifetime"`
	// SignatureValidity is how long a signature is valid (default 7 days).
	SignatureValidity time.Duration `mapstructure:"signature_validity"`
}

// DefaultDNSSECKeys is the key directory of a dnssec: block without
// keys:, beside the config file.
const DefaultDNSSECKeys = "keys"

func validateDNSSEC(bad func(key, format string, args ...any), key string, d *DNSSECConfig) {
	switch strings.ToLower(d.Algorithm) {
	case "", "ecdsap256sha256", "13", "ed25519", "15":
	default:
		bad(key+".algorithm", "%q is not ecdsap256sha256 (13) or ed25519 (15)", d.Algorithm)
	}
	switch d.Denial {
	case "", "compact", "nsec3":
	default:
		bad(key+".denial", "%q is not compact or nsec3", d.Denial)
	}
	if l := d.ZSKLifetime; l != nil && *l != 0 && *l < time.Hour {
		bad(key+".zsk_lifetime", "%s is under an hour (0: never roll)", *l)
	}
	if l := d.KSKLifetime; l != 0 && l < 24*time.Hour {
		bad(key+".ksk_lifetime", "%s is under a day (0: never roll)", l)
	}
	if v := d.SignatureValidity; v != 0 && (v < 2*time.Hour || v > 90*24*time.Hour) {
		bad(key+".signature_validity", "%s is outside 2h-90 days", v)
	}
}
