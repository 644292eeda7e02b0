package dnslb

import (
	"fmt"

	"github.com/dnslb/dnslb/dnslb/xfr"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TransferConfig is a zone's transfer: block: who may transfer the zone
// out (AXFR, IXFR), and what the transfer holds.
type TransferConfig struct {
	// View is static (the zone as written, the default).
	View string `mapstructure:"view"`
	// Allow lists who may transfer; empty refuses everyone.
	Allow []TransferAllowConfig `mapstructure:"allow"`
}

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
	case "", "static":
	default:
		bad(key+".view", "%q is not static", t.View)
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
		z := xfr.Zone{Origin: zones.CanonicalName(zc.Origin)}
		for _, a := range zc.Transfer.Allow {
			if r, err := xfr.ParseRule(a.Prefix, a.Key); err == nil {
				z.Allow = append(z.Allow, r)
			}
		}
		out = append(out, z)
	}
	return out
}

// newTransfers builds the transfer server and registers its counter,
// dnslb_transfers_total{zone,type,result}.
func newTransfers(m *Metrics) *xfr.Server {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dnslb_transfers_total",
		Help: "Zone transfers out, by zone, type (AXFR, IXFR) and result (ok, refused, failed).",
	}, []string{"zone", "type", "result"})
	m.Registry.MustRegister(total)
	return xfr.NewServer(func(zone, typ, result string) {
		total.WithLabelValues(zone, typ, result).Inc()
	})
}
