package dnslb

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/dnslb/xfr"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TransferConfig is a zone's transfer: block: who may transfer the zone
// out (AXFR, IXFR), and what the transfer holds.
type TransferConfig struct {
	// View is static (the zone as written, the default) or filtered (as
	// dnslb answers it now, a new serial on every change).
	View string `mapstructure:"view"`
	// Allow lists who may transfer; empty refuses everyone.
	Allow []TransferAllowConfig `mapstructure:"allow"`
	// Notify lists the secondaries (address:port) sent a NOTIFY on
	// every new serial, signed with the key of the first allow entry with
	// a key whose prefix holds the address.
	Notify []string `mapstructure:"notify"`
	// NotifyDelay coalesces the changes of a filtered zone into one new
	// serial (default xfr.DefaultDelay; at most MaxNotifyDelay).
	NotifyDelay *time.Duration `mapstructure:"notify_delay"`
	// Catalog false leaves the zone out of the catalog zone (catalog:);
	// by default every zone with a transfer: block is in it.
	Catalog *bool `mapstructure:"catalog"`
}

// MaxNotifyDelay bounds transfer.notify_delay: secondaries should follow
// health within a fraction of a second, not BIND's 5 s.
const MaxNotifyDelay = time.Second

// TransferAllowConfig is one ACL entry: a client in Prefix (an address or
// a prefix; empty: any address), signed with Key (a tsig.keys name; empty:
// unsigned requests are allowed).
type TransferAllowConfig struct {
	Prefix string `mapstructure:"prefix"`
	Key    string `mapstructure:"key"`
}

// validateTransfer reports the problems of a zone's transfer block at key.
func validateTransfer(bad func(key, format string, args ...any), key string, t *TransferConfig, keys []TSIGKeyConfig) {
	switch t.View {
	case "", "static", "filtered":
	default:
		bad(key+".view", "%q is not static or filtered", t.View)
	}
	if d := t.NotifyDelay; d != nil && (*d < 0 || *d > MaxNotifyDelay) {
		bad(key+".notify_delay", "%s is outside 0-%s", *d, MaxNotifyDelay)
	}
	for i, n := range t.Notify {
		if _, err := netip.ParseAddrPort(n); err != nil {
			bad(fmt.Sprintf("%s.notify[%d]", key, i), "%q is not address:port (an IP address; [v6]:port)", n)
		}
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[dns.CanonicalName(k.Name)] = true
	}
	for i, a := range t.Allow {
		akey := fmt.Sprintf("%s.allow[%d]", key, i)
		if a.Prefix == "" && a.Key == "" {
			bad(akey, "needs a prefix, a key or both")
		}
		if _, err := xfr.ParseRule(a.Prefix, ""); err != nil {
			bad(akey+".prefix", "%v", err)
		}
		if a.Key != "" && !known[dns.CanonicalName(a.Key)] {
			bad(akey+".key", "%q is not one of tsig.keys", a.Key)
		}
	}
}

// transferZones turns the config's transfer blocks into xfr's terms; the
// config has been validated.
func transferZones(c *Config) []xfr.Zone {
	var out []xfr.Zone
	for _, zc := range c.Zones {
		if zc.Transfer == nil {
			continue
		}
		z := xfr.Zone{Origin: zones.CanonicalName(zc.Origin), Filtered: zc.Transfer.View == "filtered", Delay: xfr.DefaultDelay}
		if d := zc.Transfer.NotifyDelay; d != nil {
			z.Delay = *d
		}
		for _, a := range zc.Transfer.Allow {
			if r, err := xfr.ParseRule(a.Prefix, a.Key); err == nil {
				z.Allow = append(z.Allow, r)
			}
		}
		for _, n := range zc.Transfer.Notify {
			if t, ok := notifyTarget(n, z.Allow, c.TSIG.Keys); ok {
				z.Notify = append(z.Notify, t)
			}
		}
		out = append(out, z)
	}
	if c.Catalog != nil {
		out = append(out, catalogTransfer(c))
	}
	return out
}

// notifyTarget is a validated notify entry with the key it is signed with.
func notifyTarget(n string, allow []xfr.Rule, keys []TSIGKeyConfig) (xfr.Target, bool) {
	ap, err := netip.ParseAddrPort(n)
	if err != nil {
		return xfr.Target{}, false
	}
	return xfr.Target{Addr: ap, Key: notifyKey(allow, ap.Addr(), keys)}, true
}

// newTransfers builds the transfer server over the answer path's
// judgement of members, restores the serials of filtered zones and
// registers the counter dnslb_transfers_total{zone,type,result}.
func (r *Runtime) newTransfers(restored map[string]uint32) {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnslb_transfers_total",
		Help: "Zone transfers out, by zone, type (AXFR, IXFR) and result (ok, refused, failed).",
	}, []string{"zone", "type", "result"})
	r.metrics.Registry.MustRegister(total)
	r.xfr = xfr.NewServer(xfr.Options{
		Log:    r.log,
		Count:  func(zone, typ, result string) { total.WithLabelValues(zone, typ, result).Inc() },
		Health: func() pool.Health { h, _ := r.auth.Health(); return h },
		Changed: func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.applyTransferSerialsLocked()
		},
	})
	r.xfr.Restore(restored)
	r.auth.SetTransfers(r.xfr)
}

// setTransfersLocked gives the transfer server the generation being
// committed (its zones as loaded) and serves the filtered zones' serials.
// r.mu is held.
func (r *Runtime) setTransfersLocked(g *Generation) {
	r.xfr.Set(g.View.Zones, g.View.Pools, transferZones(g.Loaded.Config))
	r.applyTransferSerialsLocked()
}

// applyTransferSerialsLocked makes the answer path serve each filtered
// zone's SOA with the serial its transfers carry, so that a secondary
// polling the SOA (Knot does, on NOTIFY and refresh) sees what a transfer
// would give it. The view is copied with those zones' serials replaced
// (the zones share their records) and swapped in; the generation keeps
// the zones as loaded, which reloads compare against. r.mu is held.
func (r *Runtime) applyTransferSerialsLocked() {
	g := r.cur.Load()
	if g == nil {
		return
	}
	serials := r.xfr.Serials()
	filtered := map[string]bool{}
	for _, z := range transferZones(g.Loaded.Config) {
		filtered[z.Origin] = z.Filtered
	}
	var zs []*zones.Zone
	var counters map[*zones.Zone]*answer.ZoneCounters
	changed := false
	for _, z := range g.View.Zones.Zones() {
		if s, ok := serials[z.Origin]; ok && filtered[z.Origin] && s != z.Serial() {
			nz := z.WithSerial(s)
			if counters == nil && g.View.Counters != nil {
				counters = maps.Clone(g.View.Counters)
			}
			if counters != nil {
				counters[nz] = counters[z]
			}
			z, changed = nz, true
		}
		zs = append(zs, z)
	}
	if changed {
		set, err := zones.NewSet(zs...)
		if err != nil {
			r.log.Error().Err(err).Msg("transfer serials: kept serving the zones' own")
			return
		}
		v := *g.View
		v.Zones = set
		if counters != nil {
			v.Counters = counters
		}
		ng := *g
		ng.View = &v
		r.swapLocked(r.freshLocked(&ng))
	}
	r.transferSerials = serials
	r.stateDirty.Store(true)
}

// notifyKey is the key NOTIFYs to addr are signed with: that of the first
// allow rule with a key whose prefix holds addr (nil: unsigned). The
// secondary transfers with the key it is allowed with, so it knows it.
func notifyKey(allow []xfr.Rule, addr netip.Addr, keys []TSIGKeyConfig) *xfr.Key {
	for _, r := range allow {
		if r.Key == "" || r.Prefix.IsValid() && !r.Prefix.Contains(addr.Unmap()) {
			continue
		}
		for _, k := range keys {
			if dns.CanonicalName(k.Name) == r.Key {
				return &xfr.Key{Name: r.Key, Algorithm: miekgAlgorithm(k.Algorithm), Secret: string(k.Secret)}
			}
		}
	}
	return nil
}

// miekgAlgorithm is miekg/dns's name of a configured TSIG algorithm.
func miekgAlgorithm(alg string) string {
	a := strings.TrimSuffix(strings.ToLower(alg), ".")
	if a == "hmac-md5" {
		return dns.HmacMD5
	}
	return dns.Fqdn(a)
}
