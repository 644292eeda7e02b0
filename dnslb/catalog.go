package dnslb

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing/fstest"
	"time"

	"github.com/dnslb/dnslb/dnslb/xfr"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// CatalogConfig is the top-level catalog: block: dnslb generates a
// catalog zone (RFC 9432) listing every zone with a transfer: block (but
// those with transfer.catalog: false), so that secondaries configured with
// the catalog alone learn which zones to serve. It is transferred like a
// zone's transfer: block says (allow, notify), always as written.
type CatalogConfig struct {
	// Zone is the catalog zone's name, e.g. catalog.dnslb.invalid.
	Zone string `mapstructure:"zone"`
	// Allow and Notify are as in a zone's transfer: block.
	Allow  []TransferAllowConfig `mapstructure:"allow"`
	Notify []string              `mapstructure:"notify"`
}

// validateCatalog reports the problems of the catalog: block.
func validateCatalog(bad func(key, format string, args ...any), c *Config) {
	cat := c.Catalog
	if cat.Zone == "" {
		bad("catalog.zone", "missing")
	} else if _, ok := dns.IsDomainName(cat.Zone); !ok {
		bad("catalog.zone", "%q is not a domain name", cat.Zone)
	} else {
		for i, z := range c.Zones {
			if zones.CanonicalName(z.Origin) == zones.CanonicalName(cat.Zone) {
				bad("catalog.zone", "%s is already zones[%d]", cat.Zone, i)
			}
		}
	}
	validateTransfer(bad, "catalog", &TransferConfig{Allow: cat.Allow, Notify: cat.Notify}, c.TSIG.Keys)
}

// catalogMember reports whether a zone is listed in the catalog: it can
// be transferred, and transfer.catalog is not false.
func catalogMember(zc ZoneConfig) bool {
	return zc.Transfer != nil && (zc.Transfer.Catalog == nil || *zc.Transfer.Catalog)
}

// CatalogID is a member zone's unique ID label (RFC 9432 4.1): the hex
// SHA-1 of its name in canonical wire format, so that a zone keeps its ID
// across reloads and restarts, and consumers do not see it removed and
// added again.
func CatalogID(origin string) string {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.CanonicalName(origin), buf, 0, nil, false)
	if err != nil {
		// Not reachable with a validated origin; the text still names it
		// uniquely.
		return fmt.Sprintf("%x", sha1.Sum([]byte(dns.CanonicalName(origin))))
	}
	sum := sha1.Sum(buf[:n])
	return hex.EncodeToString(sum[:])
}

// catalogText is the catalog zone named origin listing members (RFC 9432
// 4): the SOA (serial 1, set by buildCatalog), NS invalid., the schema
// version "2" and one PTR per member under zones.
func catalogText(origin string, members []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n", origin)
	// Refresh is an hour: NOTIFY tells the consumers of every change.
	b.WriteString("@ 0 IN SOA invalid. invalid. 1 3600 600 2419200 0\n")
	b.WriteString("@ 0 IN NS invalid.\n")
	b.WriteString("version 0 IN TXT \"2\"\n")
	for _, m := range members {
		fmt.Fprintf(&b, "%s.zones 0 IN PTR %s\n", CatalogID(m), m)
	}
	return b.String()
}

// buildCatalog generates the catalog zone of cfg over the zones that
// loaded. Its serial stays while the member set does; when the set
// changes, it becomes the time in seconds, or one more than the last if
// that is not above it (a restart without the state file still goes
// up). serials are the managed serials (the catalog's among them).
func buildCatalog(cfg *Config, loaded []*zones.Zone, serials map[string]serialState, now time.Time) (*zones.Zone, error) {
	origin := zones.CanonicalName(cfg.Catalog.Zone)
	served := map[string]bool{}
	for _, z := range loaded {
		served[z.Origin] = true
	}
	var members []string
	for _, zc := range cfg.Zones {
		if o := zones.CanonicalName(zc.Origin); catalogMember(zc) && served[o] {
			members = append(members, o)
		}
	}
	sort.Strings(members)
	const file = "catalog.zone"
	z, err := zones.Load(zones.Source{Origin: origin, FS: fstest.MapFS{file: {Data: []byte(catalogText(origin, members))}},
		Path: file, Display: "(catalog)"})
	if err != nil {
		return nil, fmt.Errorf("generating the catalog zone %s: %w", origin, err)
	}
	z.Files = nil // nothing on disk to watch
	digest := fmt.Sprintf("%x", z.Digest)
	prev, known := serials[origin]
	if known && prev.Digest == digest {
		return z.WithSerial(prev.Serial), nil
	}
	serial := uint32(now.Unix())
	if known && !serialLess(prev.Serial, serial) {
		serial = prev.Serial + 1
	}
	return z.WithSerial(serial), nil
}

// catalogTransfer is the catalog zone's transfer settings, in xfr's
// terms; the config has been validated.
func catalogTransfer(c *Config) xfr.Zone {
	t := &TransferConfig{Allow: c.Catalog.Allow, Notify: c.Catalog.Notify}
	z := xfr.Zone{Origin: zones.CanonicalName(c.Catalog.Zone), Delay: xfr.DefaultDelay}
	for _, a := range t.Allow {
		if r, err := xfr.ParseRule(a.Prefix, a.Key); err == nil {
			z.Allow = append(z.Allow, r)
		}
	}
	for _, n := range t.Notify {
		if z2, ok := notifyTarget(n, z.Allow, c.TSIG.Keys); ok {
			z.Notify = append(z.Notify, z2)
		}
	}
	return z
}
