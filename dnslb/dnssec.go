package dnslb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/dnssec"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// signing holds the keys and signers of the zones signed online
// (docs/design.md, DNSSEC). Keys live on disk; a signer is made per key
// set, so a key change never serves an old key's signature, and the
// view carrying the signers is renumbered whenever they change, so no
// cached reply outlives them.
type signing struct {
	log zerolog.Logger
	now func() time.Time
	// mu guards zones: the build of a generation (start, reload) and
	// housekeeping's rollovers.
	mu    sync.Mutex
	zones map[string]*zoneSigning // by canonical origin
	// served is when a view last got its signers (a committed build, a
	// key change or the hourly renumbering): a cached reply is no older.
	served time.Time
}

// zoneSigning is one zone's keys and signer.
type zoneSigning struct {
	dir    string
	policy dnssec.Policy
	keys   []*dnssec.Key
	set    *dnssec.KeySet
	signer *dnssec.Signer
}

// signerAdapter is a zone's signer as the answer path uses it.
type signerAdapter struct {
	s     *dnssec.Signer
	set   *dnssec.KeySet
	nsec3 bool
}

func (a signerAdapter) NSEC3() bool { return a.nsec3 }

func (a signerAdapter) Sign(rrset []dns.RR) ([]dns.RR, error) { return a.s.Sign(rrset) }

func (a signerAdapter) MaxTTL() uint32 { return uint32(a.set.Policy().MaxTTL / time.Second) }

func (a signerAdapter) Keys(qtype uint16) []dns.RR {
	switch qtype {
	case dns.TypeDNSKEY:
		return a.set.DNSKEYs()
	case dns.TypeCDS:
		return a.set.CDS()
	case dns.TypeCDNSKEY:
		return a.set.CDNSKEY()
	}
	return nil
}

// signatureCacheEntries bounds each zone's signature cache.
const signatureCacheEntries = 1 << 16

func newSigning(log zerolog.Logger, now func() time.Time) *signing {
	return &signing{log: log.With().Str("component", "dnssec").Logger(), now: now, zones: map[string]*zoneSigning{}}
}

// policyOf is the dnssec package's policy for a zone's dnssec: block.
func policyOf(d *DNSSECConfig) (dnssec.Policy, error) {
	p := dnssec.DefaultPolicy()
	alg := d.Algorithm
	if alg == "" {
		alg = "ecdsap256sha256"
	}
	a, err := dnssec.ParseAlgorithm(alg)
	if err != nil {
		return p, err
	}
	p.Algorithm = a
	if d.ZSKLifetime != nil {
		p.ZSKLifetime = *d.ZSKLifetime
	}
	p.KSKLifetime = d.KSKLifetime
	if d.SignatureValidity != 0 {
		p.SigValidity = d.SignatureValidity
		p.SigRefresh = min(p.SigRefresh, d.SignatureValidity/3)
	}
	return p, p.Validate()
}

// keyDir is a zone's key directory: its keys setting, relative to the
// config file's directory.
func keyDir(d *DNSSECConfig, root ZoneRoot) string {
	dir := d.Keys
	if dir == "" {
		dir = DefaultDNSSECKeys
	}
	if filepath.IsAbs(dir) || root.Dir == "" {
		return dir
	}
	return filepath.Join(root.Dir, dir)
}

// prepare makes sure every signed zone of l has keys (generating them,
// and rolling them as the policy says) and a signer, and returns the
// signers by origin, for the view being built. A zone whose keys cannot
// be read or made is an error: a signed zone is never served unsigned.
// Zones no longer configured are forgotten when a view without them is
// served (refreshSigners), not here: this build may not be.
func (s *signing) prepare(l *Loaded) (map[string]answer.ZoneSigner, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]answer.ZoneSigner{}
	var errs Problems
	for i, zc := range l.Config.Zones {
		if zc.DNSSEC == nil {
			continue
		}
		origin := zones.CanonicalName(zc.Origin)
		zs, err := s.zoneLocked(origin, zc.DNSSEC, l.Root)
		if err != nil {
			errs = append(errs, keyed(fmt.Sprintf("zones[%d].dnssec", i), "%v", err))
			continue
		}
		out[origin] = signerAdapter{s: zs.signer, set: zs.set, nsec3: zc.DNSSEC.Denial == "nsec3"}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// zoneLocked returns origin's signing state, made or rolled as needed.
func (s *signing) zoneLocked(origin string, d *DNSSECConfig, root ZoneRoot) (*zoneSigning, error) {
	p, err := policyOf(d)
	if err != nil {
		return nil, err
	}
	dir := keyDir(d, root)
	zs := s.zones[origin]
	if zs == nil || zs.dir != dir || zs.policy != p {
		zs = &zoneSigning{dir: dir, policy: p}
		// A first start makes the directory, for the owner alone (a
		// directory that exists is checked as it is, by LoadKeys).
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("key directory: %w", err)
		}
		if zs.keys, err = dnssec.LoadKeys(dir, origin); err != nil {
			return nil, err
		}
	}
	if err := s.rollLocked(origin, zs); err != nil {
		return nil, err
	}
	s.zones[origin] = zs
	return zs, nil
}

// rollLocked carries out what the policy asks of origin's keys now, and
// makes a new signer when the keys changed (or there was none).
func (s *signing) rollLocked(origin string, zs *zoneSigning) error {
	now := s.now()
	actions, err := dnssec.Plan(origin, zs.keys, zs.policy, now)
	if err != nil {
		return err
	}
	if len(actions) > 0 {
		keys, err := dnssec.Apply(zs.dir, zs.keys, actions, now)
		if err != nil {
			return err
		}
		for _, a := range actions {
			s.log.Info().Str("zone", origin).Str("action", a.String()).Msg("key change")
		}
		zs.keys, zs.signer = keys, nil
	}
	if zs.signer != nil && (zs.set.NextChange().IsZero() || now.Before(zs.set.NextChange())) {
		return nil // the same keys publish and sign
	}
	set, err := dnssec.NewKeySet(origin, zs.keys, zs.policy, now)
	if err != nil {
		return err
	}
	signer, err := dnssec.NewSigner(set, s.now, signatureCacheEntries)
	if err != nil {
		return err
	}
	zs.set, zs.signer = set, signer
	return nil
}

// tick rolls keys that are due and reports whether any zone has a new
// signer (its view is to be swapped).
func (s *signing) tick() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for origin, zs := range s.zones {
		before := zs.signer
		if err := s.rollLocked(origin, zs); err != nil {
			s.log.Error().Err(err).Str("zone", origin).Msg("key rollover failed; signing with the keys in use")
			continue
		}
		changed = changed || zs.signer != before
	}
	return changed
}

// signersFor returns the current signers of the zones served signed
// (served: the view's), and forgets the zones it no longer serves.
func (s *signing) signersFor(served map[string]answer.ZoneSigner) map[string]answer.ZoneSigner {
	s.mu.Lock()
	defer s.mu.Unlock()
	for origin := range s.zones {
		if served[origin] == nil {
			delete(s.zones, origin)
		}
	}
	out := make(map[string]answer.ZoneSigner, len(served))
	for origin, old := range served {
		out[origin] = old
		if zs := s.zones[origin]; zs != nil && zs.signer != nil {
			out[origin] = signerAdapter{s: zs.signer, set: zs.set, nsec3: old.NSEC3()} // denial is the config's
		}
	}
	return out
}

// servedNow notes that a view with fresh signers is served.
func (s *signing) servedNow() {
	s.mu.Lock()
	s.served = s.now()
	s.mu.Unlock()
}

// zoneReport is what the metrics say of one signed zone.
type zoneReport struct {
	origin string
	keys   []*dnssec.Key
	stats  dnssec.SignerStats
	next   time.Time
	// minValidity bounds from below the validity left of any signature
	// that can be served now: the signer re-signs before SigRefresh is
	// left, and no cached reply is older than the last renumbering.
	minValidity time.Duration
}

func (s *signing) report() []zoneReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []zoneReport
	for origin, zs := range s.zones {
		zr := zoneReport{origin: origin, keys: zs.keys}
		if zs.signer != nil {
			zr.stats = zs.signer.Stats()
			zr.next = zs.set.NextChange()
			zr.minValidity = zs.policy.SigRefresh - now.Sub(s.served)
		}
		out = append(out, zr)
	}
	return out
}

// keyState names where a key is in its life now.
func keyState(k *dnssec.Key, now time.Time) string {
	switch {
	case k.Active(now):
		return "active"
	case k.Published(now) && now.Before(k.Activate):
		return "published" // pre-published, not signing yet
	case k.Published(now):
		return "retired" // still published, no longer signing
	case now.Before(k.Publish):
		return "scheduled"
	default:
		return "removed"
	}
}

// dnssecCollector exports the signed zones' keys and signing at scrape
// time.
type dnssecCollector struct {
	r                                    *Runtime
	keys, sigs, cache, next, minValidity *prometheus.Desc
}

func newDNSSECCollector(r *Runtime) *dnssecCollector {
	return &dnssecCollector{r: r,
		keys: prometheus.NewDesc("dnslb_dnssec_keys",
			"Keys of a signed zone by role (ksk, zsk) and state (scheduled, published, active, retired).", []string{"zone", "role", "state"}, nil),
		sigs: prometheus.NewDesc("dnslb_dnssec_signatures_total",
			"Signatures made for a signed zone's answers, by result (ok, failed).", []string{"zone", "result"}, nil),
		cache: prometheus.NewDesc("dnslb_dnssec_signature_cache_total",
			"Look-ups of the zone's signature cache, by result (hit, miss).", []string{"zone", "result"}, nil),
		next: prometheus.NewDesc("dnslb_dnssec_next_key_event_timestamp_seconds",
			"When the zone's key set next changes (a key published, activated, retired or removed).", []string{"zone"}, nil),
		minValidity: prometheus.NewDesc("dnslb_dnssec_signature_min_validity_seconds",
			"A lower bound of the validity left of any signature the zone can serve now; alert well above 0.", []string{"zone"}, nil),
	}
}

func (c *dnssecCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.keys, c.sigs, c.cache, c.next, c.minValidity} {
		ch <- d
	}
}

func (c *dnssecCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.r.opts.Now()
	for _, zr := range c.r.sign.report() {
		counts := map[[2]string]int{}
		for _, k := range zr.keys {
			counts[[2]string{strings.ToLower(k.Role.String()), keyState(k, now)}]++
		}
		for _, role := range []string{"ksk", "zsk"} {
			for _, state := range []string{"scheduled", "published", "active", "retired"} {
				ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(counts[[2]string{role, state}]), zr.origin, role, state)
			}
		}
		ch <- prometheus.MustNewConstMetric(c.sigs, prometheus.CounterValue, float64(zr.stats.Signatures), zr.origin, "ok")
		ch <- prometheus.MustNewConstMetric(c.sigs, prometheus.CounterValue, float64(zr.stats.Failures), zr.origin, "failed")
		ch <- prometheus.MustNewConstMetric(c.cache, prometheus.CounterValue, float64(zr.stats.Hits), zr.origin, "hit")
		ch <- prometheus.MustNewConstMetric(c.cache, prometheus.CounterValue, float64(zr.stats.Misses), zr.origin, "miss")
		if !zr.next.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.next, prometheus.GaugeValue, float64(zr.next.Unix()), zr.origin)
		}
		ch <- prometheus.MustNewConstMetric(c.minValidity, prometheus.GaugeValue, zr.minValidity.Seconds(), zr.origin)
	}
}

// signingTick is how often (in housekeeping seconds) keys are checked for
// a due rollover; resignEvery how often the served view is renumbered
// anyway, so that no cached reply holds a signature older than that (the
// signer re-signs well before expiry; the response cache would not).
const (
	signingTick = 60
	resignEvery = 3600
)

// refreshSigners swaps in a view with new signers when a key changed, or
// with the same ones renumbered when renumber (no cached reply survives).
func (r *Runtime) refreshSigners(renumber bool) {
	changed := r.sign.tick()
	if !changed && !renumber {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.cur.Load()
	signers := r.sign.signersFor(g.View.Signers)
	if len(signers) == 0 {
		return
	}
	ng := *g
	ng.View = g.View.WithSigners(signers)
	r.swapLocked(r.freshLocked(&ng)) // renumbered: no cached reply holds the old signatures
	r.sign.servedNow()
	r.xfr.Poke()
}

// ParentRecords returns what the parent zone of origin needs to hold for
// the chain of trust: the DS (SHA-256) and DNSKEY records of the KSKs it
// should point at now, from the zone's key directory, read only (a zone
// without keys yet has none: dnslb makes them when it first serves it).
func ParentRecords(l *Loaded, origin string, now time.Time) (ds, dnskeys []dns.RR, err error) {
	origin = zones.CanonicalName(origin)
	for i, zc := range l.Config.Zones {
		if zones.CanonicalName(zc.Origin) != origin {
			continue
		}
		if zc.DNSSEC == nil {
			return nil, nil, fmt.Errorf("zones[%d] (%s) has no dnssec: block", i, origin)
		}
		p, err := policyOf(zc.DNSSEC)
		if err != nil {
			return nil, nil, fmt.Errorf("zones[%d].dnssec: %w", i, err)
		}
		dir := keyDir(zc.DNSSEC, l.Root)
		var keys []*dnssec.Key
		if _, err := os.Stat(dir); err == nil {
			if keys, err = dnssec.LoadKeys(dir, origin); err != nil {
				return nil, nil, fmt.Errorf("zones[%d].dnssec: %w", i, err)
			}
		}
		if len(keys) == 0 {
			return nil, nil, fmt.Errorf("no keys for %s in %s yet: dnslb makes them when it first serves the zone (start it once)", origin, dir)
		}
		set, err := dnssec.NewKeySet(origin, keys, p, now)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dir, err)
		}
		for _, d := range set.DS(dns.SHA256) {
			ds = append(ds, d)
		}
		for _, k := range set.ParentKSKs() {
			dnskeys = append(dnskeys, k.DNSKEY)
		}
		return ds, dnskeys, nil
	}
	return nil, nil, fmt.Errorf("%s is not one of the config's zones", origin)
}

// zoneDNSSEC is the API's view of a signed zone's keys.
func zoneDNSSEC(zr zoneReport, now time.Time) *admin.ZoneDNSSEC {
	zd := &admin.ZoneDNSSEC{Keys: []admin.DNSSECKey{}, NextKeyEvent: zr.next,
		Signatures: zr.stats.Signatures, Failures: zr.stats.Failures}
	for _, k := range zr.keys {
		zd.Keys = append(zd.Keys, admin.DNSSECKey{Tag: k.Tag, Role: strings.ToLower(k.Role.String()), Algorithm: k.Algorithm.String(),
			State: keyState(k, now), Publish: k.Publish, Activate: k.Activate, Inactive: k.Inactive, Delete: k.Delete,
			File: filepath.Base(k.Path)})
	}
	slices.SortFunc(zd.Keys, func(a, b admin.DNSSECKey) int {
		if c := strings.Compare(a.Role, b.Role); c != 0 {
			return c
		}
		return a.Activate.Compare(b.Activate)
	})
	return zd
}
