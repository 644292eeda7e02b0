package dnslb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing/fstest"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/xfr"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Zones in from a primary. A zone configured with primary: instead of
// file: is pulled from that server by AXFR, and by IXFR once a copy is
// held, and kept up to date as RFC 1034 4.3.5 and RFC 1996 say: its SOA
// is polled every refresh, every retry after a failure, and a NOTIFY from
// the primary polls it at once; a zone that has not refreshed within its
// expire answers SERVFAIL until it does. A pulled copy goes through the
// zone file's parsing and checks, and the pools apply to it, in a new
// generation built as a reload builds one (only that zone changes). A
// copy that fails either is not served: the one before stays, and the
// error is logged. The copy served is kept in the state directory (see
// keptDir), so that a restart serves it at once, and an outage of the
// primary that outlasts the restart does not empty the zone.

// PrimaryConfig is a zone's primary: block.
type PrimaryConfig struct {
	// Address is the primary's IP address and port (":53" when left out).
	Address string `mapstructure:"address"`
	// Key names one of tsig.keys: the SOA queries and transfers are
	// signed with it and the replies must be, and NOTIFY must be too.
	// "": unsigned.
	Key string `mapstructure:"key"`
}

// validatePrimary reports the problems of a zone's primary block at key.
func validatePrimary(bad func(key, format string, args ...any), key string, p *PrimaryConfig, keys []TSIGKeyConfig) {
	if p.Address == "" {
		bad(key+".address", "missing (the primary's address, e.g. 192.0.2.1:53)")
	} else if _, err := primaryAddr(p.Address); err != nil {
		bad(key+".address", "%q is not an IP address or address:port ([v6]:port)", p.Address)
	}
	if p.Key != "" && findKey(keys, p.Key) == nil {
		bad(key+".key", "%q is not one of tsig.keys", p.Key)
	}
}

// primaryAddr reads address:port, or an address alone (port 53).
func primaryAddr(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, 53), nil
}

func findKey(keys []TSIGKeyConfig, name string) *TSIGKeyConfig {
	for i := range keys {
		if dns.CanonicalName(keys[i].Name) == dns.CanonicalName(name) {
			return &keys[i]
		}
	}
	return nil
}

// primaryOf is a validated primary block in xfr's terms.
func primaryOf(p *PrimaryConfig, keys []TSIGKeyConfig) xfr.Primary {
	ap, _ := primaryAddr(p.Address)
	out := xfr.Primary{Addr: ap}
	if k := findKey(keys, p.Key); p.Key != "" && k != nil {
		out.Key = &xfr.Key{Name: dns.CanonicalName(k.Name), Algorithm: miekgAlgorithm(k.Algorithm), Secret: string(k.Secret)}
	}
	return out
}

// pullUpdate is a pulled zone's news for a build: a new copy, or the
// copy held expiring or coming back.
type pullUpdate struct {
	origin string
	zone   *zones.Zone // nil: the copy held
	// expired: the copy is not served (SERVFAIL) until a refresh works.
	expired bool
}

// keptZone is a pulled zone's copy read back from the state directory.
type keptZone struct {
	zone *zones.Zone
	// at is when it last refreshed (the file's modification time).
	at      time.Time
	expired bool
}

// The bounds of a pulled zone's timers, whatever its SOA says: polling
// a primary more than once a second helps nobody, and a day between
// polls is the most Knot and NSD wait too.
const (
	minPullInterval = time.Second
	maxPullInterval = 24 * time.Hour
)

// The wait between attempts to transfer a zone of which no copy is held
// yet (there is no SOA to take a retry from): doubling from the first to
// the last.
const (
	firstPullRetry = time.Second
	lastPullRetry  = 5 * time.Minute
)

// soaTimers returns the refresh, retry and expire of soa, bounded.
func soaTimers(soa *dns.SOA) (refresh, retry, expire time.Duration) {
	bound := func(s uint32) time.Duration {
		return min(max(time.Duration(s)*time.Second, minPullInterval), maxPullInterval)
	}
	return bound(soa.Refresh), bound(soa.Retry), max(time.Duration(soa.Expire)*time.Second, minPullInterval)
}

// keptDir is the directory that keeps the pulled zones' copies: the state
// file's path without its extension, and ".zones" (dnslb.state.zones/
// beside dnslb.state.json); "" without a state file.
func keptDir(statePath string) string {
	if statePath == "" {
		return ""
	}
	return strings.TrimSuffix(statePath, filepath.Ext(statePath)) + ".zones"
}

// keptName is the file name of origin's copy: the origin and "zone"
// (example.test.zone), with "/" and a leading dot escaped.
func keptName(origin string) string {
	name := zones.CanonicalName(origin)
	if name == "." {
		return "root.zone"
	}
	name = strings.NewReplacer("%", "%25", "/", "%2F", "\\", "%5C").Replace(name)
	if strings.HasPrefix(name, ".") {
		name = "%2E" + name[1:]
	}
	return name + "zone"
}

// loadKept reads the copies of cfg's pulled zones from dir. A copy that
// cannot be read or parsed is logged and left out: the zone is pulled
// afresh. A copy older than its SOA expire is read as expired.
func loadKept(dir string, cfg *Config, now time.Time, log zerolog.Logger) map[string]keptZone {
	out := map[string]keptZone{}
	if dir == "" {
		return out
	}
	for _, zc := range cfg.Zones {
		if zc.Primary == nil {
			continue
		}
		origin := zones.CanonicalName(zc.Origin)
		name := keptName(origin)
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				log.Warn().Err(err).Str("zone", origin).Msg("kept copy of a pulled zone not read; pulling it afresh")
			}
			continue
		}
		z, err := zones.Load(zones.Source{Origin: origin, FS: os.DirFS(dir), Path: name, Display: dir})
		if err != nil {
			log.Warn().Str("zone", origin).Strs("problems", errorLines(err)).Msg("kept copy of a pulled zone does not load; pulling it afresh")
			continue
		}
		k := keptZone{zone: z, at: fi.ModTime()}
		_, _, expire := soaTimers(z.SOA)
		k.expired = now.Sub(k.at) >= expire
		out[origin] = k
	}
	return out
}

// pulledState is the zoneState of a pulled zone in a build: the copy of
// the generation before, else the one kept on disk, with what base.pull
// says of it.
func pulledState(zc ZoneConfig, origin string, old *zoneState, base buildBase, keys []TSIGKeyConfig) *zoneState {
	st := &zoneState{cfg: zc, primary: primaryOf(zc.Primary, keys)}
	if old != nil && old.cfg.Primary != nil {
		st.zone, st.loadedAt, st.expired = old.zone, old.loadedAt, old.expired
	} else if k, ok := base.kept[origin]; ok {
		st.zone, st.loadedAt, st.expired = k.zone, k.at, k.expired
	}
	if u := base.pull; u != nil && u.origin == origin {
		if u.zone != nil {
			st.zone, st.loadedAt = u.zone, base.now
		}
		st.expired = u.expired
	}
	return st
}

// pulledText is the presentation form of a transfer's records, as kept.
func pulledText(origin string, p xfr.Primary, rrs []dns.RR, now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "; %s pulled from %s at %s by dnslb; rewritten on every transfer\n", origin, p.Addr, now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "$ORIGIN %s\n", origin)
	for _, rr := range rrs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// zoneFromText loads a pulled zone's text with the zone file's parser and
// checks; problems name the file it is kept as (dir/name) and its line.
func zoneFromText(origin string, text []byte, dir string) (*zones.Zone, error) {
	name := keptName(origin)
	display := dir
	if display == "" {
		display = "(pulled)"
	}
	z, err := zones.Load(zones.Source{Origin: origin, FS: fstest.MapFS{name: {Data: text}}, Path: name, Display: display})
	if err != nil {
		return nil, err
	}
	if dir == "" {
		z.Files = nil
	}
	return z, nil
}

// secondaries pulls the zones configured with a primary: one puller per
// zone, started and stopped to follow the config, owned by run.
type secondaries struct {
	r   *Runtime
	log zerolog.Logger
	dir string // keptDir; "": copies are not kept
	// changed wakes run when a generation was committed: the pulled
	// zones may have changed.
	changed chan struct{}
	total   *prometheus.CounterVec
	expired *prometheus.GaugeVec

	mu      sync.Mutex
	pullers map[string]*puller // by origin; Notify reads it
	// refreshed is when each zone last refreshed (a transfer, or an SOA
	// query that found the copy current).
	refreshed map[string]time.Time
}

// puller keeps one zone up to date.
type puller struct {
	origin  string
	primary xfr.Primary
	poke    chan struct{} // a NOTIFY: refresh now
	cancel  context.CancelFunc
}

func newSecondaries(r *Runtime) *secondaries {
	s := &secondaries{r: r, log: r.opts.Log.With().Str("component", "secondary").Logger(),
		changed: make(chan struct{}, 1), pullers: map[string]*puller{}, refreshed: map[string]time.Time{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnslb_transfers_in_total",
			Help: "Refreshes of zones pulled from a primary, by zone, type (SOA: the copy was current; AXFR, IXFR) and result (ok, failed, rejected).",
		}, []string{"zone", "type", "result"}),
		expired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dnslb_zone_expired",
			Help: "1 while a zone pulled from a primary answers SERVFAIL: expired, or not transferred yet.",
		}, []string{"zone"}),
	}
	r.metrics.Registry.MustRegister(s.total, s.expired)
	return s
}

// committed says a generation was committed (r.mu is held): run
// reconciles the pullers with it, and the gauges follow it.
func (s *secondaries) committed(g *Generation) {
	for origin, st := range g.zones {
		if st.cfg.Primary == nil {
			continue
		}
		v := 0.0
		if st.zone == nil || st.expired {
			v = 1
		}
		s.expired.WithLabelValues(origin).Set(v)
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// run starts and stops the pullers as the config's pulled zones change,
// until ctx ends; it returns once every puller has.
func (s *secondaries) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s.reconcile(ctx, &wg)
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		}
	}
}

// reconcile starts a puller for each pulled zone of the generation being
// served without one, and restarts or stops those whose primary changed
// or whose zone went.
func (s *secondaries) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	want := map[string]xfr.Primary{}
	for origin, st := range s.r.cur.Load().zones {
		if st.cfg.Primary != nil {
			want[origin] = st.primary
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for origin, p := range s.pullers {
		if pr, ok := want[origin]; !ok || !samePrimary(pr, p.primary) {
			p.cancel()
			delete(s.pullers, origin)
		}
	}
	for origin, pr := range want {
		if s.pullers[origin] != nil {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		p := &puller{origin: origin, primary: pr, poke: make(chan struct{}, 1), cancel: cancel}
		s.pullers[origin] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			s.work(pctx, p)
		}()
	}
}

func samePrimary(a, b xfr.Primary) bool {
	return a.Addr == b.Addr && (a.Key == nil) == (b.Key == nil) && (a.Key == nil || *a.Key == *b.Key)
}

// Notify implements answer.Notifies: a NOTIFY for a pulled zone from its
// primary's address, signed with its key when it has one, refreshes the
// zone at once.
func (s *secondaries) Notify(r *answer.NotifyRequest) answer.NotifyVerdict {
	st := s.r.cur.Load().zones[r.Zone]
	if st == nil || st.cfg.Primary == nil {
		return answer.NotifyUnknown
	}
	p := st.primary
	log := s.log.With().Str("zone", r.Zone).Str("from", r.Remote.String()).Logger()
	if r.Remote.Addr().Unmap() != p.Addr.Addr().Unmap() {
		log.Debug().Str("primary", p.Addr.String()).Msg("NOTIFY refused: not from the zone's primary")
		return answer.NotifyRefused
	}
	if p.Key != nil && r.Key != p.Key.Name {
		log.Debug().Str("key", r.Key).Str("want", p.Key.Name).Msg("NOTIFY refused: not signed with the primary's key")
		return answer.NotifyRefused
	}
	s.mu.Lock()
	pl := s.pullers[r.Zone]
	s.mu.Unlock()
	if pl != nil {
		select {
		case pl.poke <- struct{}{}:
		default: // a refresh is due already
		}
	}
	log.Debug().Msg("NOTIFY accepted: refreshing")
	return answer.NotifyAccepted
}

// held returns the pulled zone's state in the generation being served
// (nil: not configured any more).
func (s *secondaries) held(origin string) *zoneState {
	st := s.r.cur.Load().zones[origin]
	if st == nil || st.cfg.Primary == nil {
		return nil
	}
	return st
}

// work keeps p's zone up to date until ctx ends: a refresh at once, then
// every refresh of the SOA held, every retry after a failure, at once
// after a NOTIFY; and the copy expires once it has not refreshed for the
// SOA's expire.
func (s *secondaries) work(ctx context.Context, p *puller) {
	log := s.log.With().Str("zone", p.origin).Str("primary", p.primary.Addr.String()).Logger()
	backoff := firstPullRetry
	var wait time.Duration
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-p.poke:
				log.Info().Msg("NOTIFY from the primary: refreshing")
				t.Stop()
			case <-t.C:
			}
		}
		err := s.refresh(ctx, p, log, s.expiresAt(p.origin))
		if ctx.Err() != nil {
			return
		}
		st := s.held(p.origin)
		if st == nil {
			return // reconcile stops this puller
		}
		if st.zone == nil {
			wait = backoff
			backoff = min(backoff*2, lastPullRetry)
			log.Warn().Err(err).Dur("retry_in", wait).Msg("zone not transferred yet; it answers SERVFAIL until it is")
			continue
		}
		backoff = firstPullRetry
		refresh, retry, expire := soaTimers(st.zone.SOA)
		expires := s.expiresAt(p.origin)
		wait = refresh
		if err != nil {
			wait = retry
			ev := log.Warn().Err(err).Uint32("serial", st.zone.Serial()).Dur("retry_in", retry)
			if !expires.IsZero() {
				ev = ev.Time("expires", expires)
			}
			ev.Msg("zone refresh failed; serving the copy held")
		}
		if expires.IsZero() {
			continue // expired already: retried every retry
		}
		if left := expires.Sub(s.r.opts.Now()); left > 0 {
			wait = min(wait, left)
			continue
		}
		if err := s.r.applyPull(ctx, pullUpdate{origin: p.origin, expired: true}); err != nil {
			log.Error().Err(err).Msg("zone expiry not applied")
			continue
		}
		log.Error().Uint32("serial", st.zone.Serial()).Time("refreshed", expires.Add(-expire)).Dur("expire", expire).
			Msg("zone expired: no refresh from the primary within the SOA expire; it answers SERVFAIL until one works")
	}
}

// refresh polls the primary's SOA and, when its serial is newer than the
// copy's (or there is no copy), transfers the zone and serves it.
//
// The SOA query gives up at expires (when not zero), so that a primary
// that does not answer cannot hold the copy's expiry back.
func (s *secondaries) refresh(ctx context.Context, p *puller, log zerolog.Logger, expires time.Time) error {
	st := s.held(p.origin)
	if st == nil {
		return nil
	}
	qctx := ctx
	if !expires.IsZero() {
		var cancel context.CancelFunc
		qctx, cancel = context.WithDeadline(ctx, expires)
		defer cancel()
	}
	soa, err := xfr.QuerySOA(qctx, p.origin, p.primary, soaTimeout)
	if err != nil {
		s.total.WithLabelValues(p.origin, "SOA", "failed").Inc()
		return err
	}
	if st.zone != nil && !serialLess(st.zone.Serial(), soa.Serial) {
		if soa.Serial != st.zone.Serial() {
			log.Warn().Uint32("serial", st.zone.Serial()).Uint32("primary_serial", soa.Serial).
				Msg("the primary's serial is behind the copy's: keeping the copy (raise the primary's serial above it)")
		}
		s.total.WithLabelValues(p.origin, "SOA", "ok").Inc()
		return s.current(ctx, p, st, log)
	}
	var have []dns.RR
	if st.zone != nil {
		have = st.zone.All()
	}
	start := time.Now()
	pulled, err := xfr.Pull(ctx, p.origin, p.primary, have, 0)
	if err != nil {
		typ := "AXFR"
		if have != nil {
			typ = "IXFR"
		}
		s.total.WithLabelValues(p.origin, typ, "failed").Inc()
		return fmt.Errorf("transfer: %w", err)
	}
	if pulled.UpToDate {
		s.total.WithLabelValues(p.origin, "IXFR", "ok").Inc()
		return s.current(ctx, p, st, log)
	}
	now := s.r.opts.Now()
	text := pulledText(p.origin, p.primary, pulled.Records, now)
	z, err := zoneFromText(p.origin, text, s.dir)
	if err == nil {
		err = s.r.applyPull(ctx, pullUpdate{origin: p.origin, zone: z})
	}
	if err != nil {
		s.total.WithLabelValues(p.origin, pulled.Type, "rejected").Inc()
		s.reject(p.origin, text, err, log)
		return fmt.Errorf("serial %d from the primary rejected: %w", serialOf(pulled.Records), err)
	}
	s.total.WithLabelValues(p.origin, pulled.Type, "ok").Inc()
	s.setRefreshed(p.origin, now)
	s.keep(p.origin, text, log)
	ev := log.Info().Str("type", pulled.Type).Uint32("serial", z.Serial()).Int("records", z.Records()).Dur("took", time.Since(start))
	if st.zone != nil {
		ev = ev.Uint32("previous", st.zone.Serial())
	}
	ev.Msg("zone transferred")
	return nil
}

// soaTimeout bounds one SOA query (each of UDP and TCP).
const soaTimeout = 2 * time.Second

// expiresAt is when origin's copy expires, zero when it has none or has
// expired already.
func (s *secondaries) expiresAt(origin string) time.Time {
	st := s.held(origin)
	if st == nil || st.zone == nil || st.expired {
		return time.Time{}
	}
	_, _, expire := soaTimers(st.zone.SOA)
	s.mu.Lock()
	last := s.refreshed[origin]
	s.mu.Unlock()
	if last.IsZero() {
		last = st.loadedAt
	}
	return last.Add(expire)
}

func serialOf(rrs []dns.RR) uint32 {
	if len(rrs) > 0 {
		if soa, ok := rrs[0].(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

// current records a refresh that found the copy current: its expiry
// starts again, on disk too, and an expired copy is served again.
func (s *secondaries) current(ctx context.Context, p *puller, st *zoneState, log zerolog.Logger) error {
	now := s.r.opts.Now()
	s.setRefreshed(p.origin, now)
	if s.dir != "" {
		// The kept copy's time is when it last refreshed (loadKept).
		_ = os.Chtimes(filepath.Join(s.dir, keptName(p.origin)), now, now)
	}
	if st.expired {
		if err := s.r.applyPull(ctx, pullUpdate{origin: p.origin, expired: false}); err != nil {
			return fmt.Errorf("serving the copy again: %w", err)
		}
		log.Info().Uint32("serial", st.zone.Serial()).Msg("zone refreshed after it expired: serving it again")
	}
	return nil
}

func (s *secondaries) setRefreshed(origin string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshed[origin] = at
}

// keep writes the copy being served to the state directory.
func (s *secondaries) keep(origin string, text []byte, log zerolog.Logger) {
	if s.dir == "" {
		return
	}
	path := filepath.Join(s.dir, keptName(origin))
	if err := s.write(path, text); err != nil {
		log.Warn().Err(err).Str("file", path).Msg("pulled zone not kept: a restart pulls it again before serving it")
		return
	}
	_ = os.Remove(path + ".rejected")
}

// write writes a file of the state directory, which it makes if need be.
func (s *secondaries) write(path string, text []byte) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	return writeFileAtomic(s.r.stateFS, path, text)
}

// reject logs a pulled copy that was not served and keeps its text beside
// the copy served, as NAME.rejected, for the lines the problems name.
func (s *secondaries) reject(origin string, text []byte, err error, log zerolog.Logger) {
	ev := log.Error().Strs("problems", errorLines(err))
	if s.dir != "" {
		path := filepath.Join(s.dir, keptName(origin)) + ".rejected"
		if s.write(path, text) == nil {
			ev = ev.Str("rejected_copy", path)
		}
	}
	ev.Msg("zone from the primary rejected; kept serving the copy held")
}

// errPullGone says a pulled zone left the config while it was pulled.
var errPullGone = errors.New("the zone is no longer pulled from this primary")

// applyPull builds and serves a generation with a pulled zone's news (a
// new copy, or its expiry), from the generation being served: the same
// config, and every other zone as it is. Serialised with reloads; an
// error keeps everything as it was.
func (r *Runtime) applyPull(ctx context.Context, u pullUpdate) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err() // the puller was stopped: its primary may have changed
	}
	prev := r.cur.Load()
	if st := prev.zones[u.origin]; st == nil || st.cfg.Primary == nil {
		return errPullGone
	}
	l := *prev.Loaded
	cfg := *prev.Loaded.Config // build applies the defaults to its own copy
	l.Config = &cfg
	g, err := build(&l, buildBase{prev: prev, serials: prev.serials, counters: r.metrics.ZoneCounters, now: r.opts.Now(), pull: &u, sign: r.sign})
	if err != nil {
		return err
	}
	return r.install(g)
}
