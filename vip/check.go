package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/dnslb/dnslb/healthcheck"
)

// healthSpec maps a track's check to the healthcheck package; scheduling
// (interval, rise, fall) stays with the tracker.
func (c CheckConfig) healthSpec() healthcheck.Spec {
	s := c.Config.Spec()
	s.Rise, s.Fall = 0, 0
	return s
}

func defaultPort(checkType string) uint16 {
	switch checkType {
	case healthcheck.TypeDNS:
		return 53
	case healthcheck.TypeHTTP:
		return 80
	case healthcheck.TypeHTTPS:
		return 443
	}
	return 0
}

// target is the address the check probes: Address ("127.0.0.1:53", or an
// address plus Port or the type's default port). Exec checks need none.
func (c CheckConfig) target() (netip.AddrPort, error) {
	if c.Type == healthcheck.TypeExec || c.Type == healthcheck.TypeNone {
		return netip.AddrPort{}, nil
	}
	if c.Address == "" {
		return netip.AddrPort{}, errors.New("check.address: required (e.g. 127.0.0.1:53)")
	}
	if ap, err := netip.ParseAddrPort(c.Address); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(c.Address)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("check.address: %q is neither address:port nor an address", c.Address)
	}
	port := uint16(c.Port)
	if port == 0 {
		port = defaultPort(c.Type)
	}
	if port == 0 {
		return netip.AddrPort{}, fmt.Errorf("check.port: required for a %s check on %s", c.Type, a)
	}
	return netip.AddrPortFrom(a, port), nil
}

// validate reports what newCheckProbe would reject, for `dnslb check`.
func (c CheckConfig) validate() error {
	if _, err := c.target(); err != nil {
		return err
	}
	return c.healthSpec().Validate()
}

// newCheckProbe builds a probe from the healthcheck package; exec checks
// run under r.
func newCheckProbe(r *healthcheck.Runner, c CheckConfig) (Probe, error) {
	chk, err := r.NewChecker(c.healthSpec())
	if err != nil {
		return nil, err
	}
	target, err := c.target()
	if err != nil {
		return nil, err
	}
	return ProbeFunc(func(ctx context.Context) error { return chk.Check(ctx, target) }), nil
}
