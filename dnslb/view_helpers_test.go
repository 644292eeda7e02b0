package dnslb

import (
	"github.com/dnslb/dnslb/zones"
)

// LoadZones loads every zone of cfg for the tests that build a View by
// hand; the server loads zones in build. The error lists every problem in
// every zone (a zones.ErrorList).
func LoadZones(cfg *Config, root ZoneRoot) (*zones.Set, error) {
	var (
		loaded []*zones.Zone
		errs   zones.ErrorList
	)
	for _, zc := range cfg.Zones {
		z, err := zones.Load(zoneSource(zc, root))
		if err != nil {
			errs = append(errs, zones.Errors(err)...)
			continue
		}
		loaded = append(loaded, z)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return zones.NewSet(loaded...)
}
