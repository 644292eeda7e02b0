package dnslb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/dnsserver"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/dnslb/rrl"
	"github.com/dnslb/dnslb/dnslb/xfr"
	"github.com/dnslb/dnslb/fleet"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// RuntimeOptions configures a Runtime.
type RuntimeOptions struct {
	Load Loader
	Log  zerolog.Logger
	// StateFile overrides the config's state_file (tests); "" uses it.
	StateFile string
	// Watch re-reads zone files (and the config) when they change on disk.
	Watch bool
	// ConfigFile is the config's path, watched with the zone files.
	ConfigFile string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ReloadTimeout bounds reading and building the config and zones
	// (default DefaultReloadTimeout): a file that blocks (a FIFO, a hung
	// network mount) fails the reload instead of wedging it.
	ReloadTimeout time.Duration
	// IgnoreState starts without a state file that cannot be read or
	// parsed, after renaming it aside, instead of refusing to start.
	IgnoreState bool

	stateFS stateFS // the state file's filesystem (tests inject faults); nil: the OS
}

// DefaultReloadTimeout is how long a reload may read and build before it
// is given up. A million-record zone loads in about two seconds.
const DefaultReloadTimeout = 60 * time.Second

// Runtime is one running dnslb server: sockets, the answer path, health
// checks, operator overrides, metrics, and reloads that swap a new
// generation of config and zones in without dropping a query. It
// implements admin.Backend.
type Runtime struct {
	opts    RuntimeOptions
	log     zerolog.Logger
	metrics *Metrics
	auth    *answer.Authority
	xfr     *xfr.Server // zone transfers out
	sched   *healthcheck.Scheduler
	loads   *healthcheck.LoadWatcher
	server  *dnsserver.Server
	// runner runs the exec checks: one per process, so its containment is
	// probed once.
	runner *healthcheck.Runner

	// reloadMu serialises reloads. Files are read and generations built
	// under it alone, so the API, metrics and shutdown never wait on disk.
	reloadMu sync.Mutex
	// building is set while a build runs in the background; a build that
	// outlived its timeout keeps it set until its read returns.
	building atomic.Bool
	stopping chan struct{} // closed by Shutdown

	// cur is the generation being served: config, zones, pools with
	// their lead and query counters, the overrides in force and the
	// managed serials, one immutable value (docs/design.md, Where state
	// lives). Readers (Config, Zones, Pools, the metrics collectors, the
	// watcher, the state file) load it without a lock. The answer path
	// serves its View, stored with it (commit, publishOverridesLocked).
	cur atomic.Pointer[Generation]

	// mu serialises the writers of cur: a reload's commit, an override
	// set, lifted or expired. Each reads cur, derives the next generation
	// and stores it, and without mu one would lose the other's change
	// (an override set while a reload builds). It also serialises the
	// writes of the state file, whose content those changes decide (an
	// override is written before it is applied), and guards stateFail.
	// It is held only to derive and swap, or to write the state file,
	// never across a build's file reads.
	mu        sync.Mutex
	stateFail bool // the last best-effort write failed (logged); the next to work says so

	// Set once in NewRuntime, before the Runtime is shared, and read
	// without a lock after.
	statePath string
	stateFS   stateFS
	// transferSerials are the filtered zones' serials, for the state
	// file; written by the transfers' publisher under mu.
	transferSerials map[string]uint32
	// servedGen is the highest build number of a view served (see
	// freshLocked).
	servedGen uint64
	// cookieSecret is the generated DNS Cookie secret, kept in the state
	// file (a configured cookies.secret wins).
	cookieSecret string
	// clock times cookies (see CoarseClock); it ticks from Start.
	clock *answer.CoarseClock

	// lastReload is the outcome of the last reload, for the admin API
	// (nil: none yet). Not part of a generation: a failed reload builds
	// none.
	lastReload atomic.Pointer[reloadOutcome]
	// shares are the answer shares over the last minute, published by
	// housekeeping from its samples; ring holds those and is
	// housekeeping's alone.
	shares atomic.Pointer[map[string]map[netip.Addr]float64]
	ring   shareRing

	stateDirty atomic.Bool
	freeMem    chan struct{}
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	stopOnce   sync.Once

	// sec pulls the zones configured with a primary.
	sec *secondaries

	// fallbackPoke wakes watchFallback (see pokeFallback).
	fallbackPoke chan struct{}

	// fleet is this node's membership of a fleet (nil: none configured);
	// keptFleet are the fleet overrides the state file kept, for its
	// start.
	fleet     *fleetNode
	keptFleet []fleet.Override

	// sign holds the keys and signers of the zones signed online.
	sign *signing

	// rrlNow is the rate limiter's clock: RuntimeOptions.Now as given,
	// nil for the limiter's own (which reads the monotonic clock alone).
	rrlNow func() time.Time
}

// NewRuntime loads the config and every zone and builds the server; nothing
// listens until Start. At start-up every zone must load: a server that
// cannot serve what it was told to refuses to start. The error lists every
// problem (Problems), zone problems first.
func NewRuntime(opts RuntimeOptions) (*Runtime, error) {
	rrlNow := opts.Now
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReloadTimeout <= 0 {
		opts.ReloadTimeout = DefaultReloadTimeout
	}
	r := &Runtime{
		opts:         opts,
		log:          opts.Log.With().Str("component", "runtime").Logger(),
		metrics:      NewMetrics(),
		freeMem:      make(chan struct{}, 1),
		stopping:     make(chan struct{}),
		fallbackPoke: make(chan struct{}, 1),
		rrlNow:       rrlNow,
	}
	r.sec = newSecondaries(r)
	r.sign = newSigning(opts.Log, opts.Now)
	var rs restored
	res, err := r.buildAside(func() (*Generation, error) {
		l, err := opts.Load()
		if err != nil {
			return nil, err
		}
		r.statePath = opts.StateFile
		if r.statePath == "" {
			r.statePath = stateFilePath(l.Config, l.Root)
		}
		r.stateFS = opts.stateFS
		if r.stateFS == nil {
			r.stateFS = osStateFS{}
		}
		if rs, err = r.loadState(); err != nil {
			return nil, err
		}
		r.sec.dir = keptDir(r.statePath)
		kept := loadKept(r.sec.dir, l.Config, opts.Now(), r.sec.log)
		return build(l, buildBase{serials: rs.serials, overrides: answer.NewOverrides(rs.overrides, 1), sign: r.sign,
			counters: r.metrics.ZoneCounters, now: opts.Now(), kept: kept})
	})
	if err != nil {
		return nil, err
	}
	g := res
	if len(g.Failed) > 0 {
		return nil, g.Failed
	}
	cfg := g.Loaded.Config
	r.runner = new(healthcheck.Runner)
	r.sched = healthcheck.NewScheduler(healthcheck.WithObserver(r.observeProbe),
		healthcheck.WithRunner(r.runner))
	r.sched.Seed(rs.health)
	var health answer.HealthSource = r.sched
	if cfg.Fleet != nil {
		// The fleet is created before the first generation is
		// committed, so that setTargets can see it; settings() reads
		// the generation only once the loop runs.
		if r.fleet, err = newFleetNode(r, *cfg.Fleet); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		r.keptFleet = keptFleetOverrides(rs, r.fleet.f.Name())
		health = r.fleet
	}
	// Until the Runtime is returned, an error leaves the fleet it
	// joined no socket behind.
	built := false
	defer func() {
		if !built {
			r.closeFleet()
		}
	}()
	if err := r.setTargets(g.View.Targets); err != nil {
		return nil, fmt.Errorf("health checks: %w", err)
	}
	r.loads = healthcheck.NewLoadWatcher(healthcheck.WithLoadChanges(r.logLoadChange))
	r.loads.Set(g.View.LoadTargets)
	r.auth = answer.NewAuthority(g.View, uint16(cfg.UDPSize), health)
	r.auth.SetLoads(r.loads)
	r.auth.SetCacheBytes(cfg.CacheBytes())
	r.clock = answer.NewCoarseClock(r.opts.Now)
	if err := r.ensureCookieSecret(); err != nil {
		return nil, err
	}
	r.applyCookies(cfg)
	r.auth.SetMetrics(r.metrics)
	r.newTransfers(rs.transferSerials)
	r.auth.SetNotifies(r.sec)
	r.metrics.watchCache(r.auth)
	r.metrics.watchRRL(r.auth)
	lim, err := r.newLimiter(cfg.RRL)
	if err != nil {
		return nil, err
	}
	r.auth.SetRRL(lim)
	r.metrics.Registry.MustRegister(newMemberCollector(r.Pools), newRuntimeCollector(r), newWeightCollector(r), newFleetCollector(r), newDNSSECCollector(r))
	r.server = dnsserver.New(dnsserver.Options{
		Listen:         cfg.Listen,
		TCPIdleTimeout: cfg.TCP.IdleTimeout,
		MaxTCPConns:    cfg.TCP.MaxConnections,
		MaxUDPReply:    cfg.UDPSize,
		Freebind:       cfg.Freebind,
		Observer:       r.metrics,
	}, r.auth, r.opts.Log.With().Str("component", "dnsserver").Logger())
	r.mu.Lock()
	r.commit(g)
	r.mu.Unlock()
	// Loading a big zone leaves the parser's garbage behind: have
	// housekeeping hand that memory back to the OS soon, rather than hold
	// the peak until the next collection (and without delaying the start
	// of serving).
	select {
	case r.freeMem <- struct{}{}:
	default:
	}
	r.metrics.LastReload.Set(float64(r.opts.Now().Unix()))
	built = true
	return r, nil
}

// buildAside runs build in a goroutine of its own and waits for it, for at
// most the reload timeout and no longer than the Runtime runs. A build
// that does not return in time is left to finish on its own (a read
// blocked in the kernel cannot be cancelled) and its result is dropped;
// until it returns, further builds are refused rather than pile up.
func (r *Runtime) buildAside(build func() (*Generation, error)) (*Generation, error) {
	if !r.building.CompareAndSwap(false, true) {
		return nil, errReloadBusy
	}
	type result struct {
		g   *Generation
		err error
	}
	done := make(chan result, 1)
	go func() {
		g, err := build()
		// Cleared before the result is handed over: a caller that
		// got it may build again at once.
		r.building.Store(false)
		done <- result{g, err}
	}()
	timer := time.NewTimer(r.opts.ReloadTimeout)
	defer timer.Stop()
	select {
	case res := <-done:
		return res.g, res.err
	case <-timer.C:
		return nil, fmt.Errorf("reading the config and zone files took longer than %s (a FIFO, or a hung mount?); kept serving the previous data", r.opts.ReloadTimeout)
	case <-r.stopping:
		return nil, errors.New("shutting down")
	}
}

// Config returns the config being served, with its defaults applied.
func (r *Runtime) Config() *Config {
	return r.cur.Load().Loaded.Config
}

// Metrics returns the runtime's metrics (its Registry feeds /metrics).
func (r *Runtime) Metrics() *Metrics { return r.metrics }

// Authority returns the answer path.
func (r *Runtime) Authority() *answer.Authority { return r.auth }

// Addrs returns the DNS addresses being served (after Start).
func (r *Runtime) Addrs() []string { return r.server.Addrs() }

// Start opens the sockets and starts health checks and housekeeping.
func (r *Runtime) Start(ctx context.Context) error {
	if err := r.server.Start(); err != nil {
		return err
	}
	ctx, r.cancel = context.WithCancel(ctx)
	if err := r.sched.Start(healthcheck.WithHeaderSink(ctx, r.loadHeader)); err != nil {
		r.server.Close()
		return fmt.Errorf("health checks: %w", err)
	}
	r.loads.Start(ctx)
	if r.fleet != nil {
		if err := r.fleet.start(ctx, r.keptFleet); err != nil {
			r.cancel()
			r.server.Close()
			return fmt.Errorf("fleet: %w", err)
		}
	}
	transitions, unsubscribe := r.sched.Subscribe()
	r.run(func() { r.logTransitions(transitions) })
	r.run(func() {
		<-ctx.Done()
		unsubscribe()
	})
	r.run(func() { r.housekeeping(ctx) })
	r.run(func() { r.clock.Run(ctx, 250*time.Millisecond) })
	r.run(func() { r.watchFallback(ctx) })
	r.run(func() { r.rampSteps(ctx) })
	r.run(func() { r.xfr.Run(ctx) })
	r.run(func() { r.sec.run(ctx) })
	if r.opts.Watch {
		w, err := newWatcher(r)
		if err != nil {
			r.log.Warn().Err(err).Msg("zone files are not watched; reload with SIGHUP or the API")
		} else {
			w.sync()
			r.run(func() { w.run(ctx) })
		}
	}
	view := r.cur.Load().View
	for _, z := range view.Zones.Zones() {
		r.log.Info().Str("zone", z.Origin).Uint32("serial", z.Serial()).Int("records", z.Records()).Str("file", z.File).Msg("zone loaded")
	}
	for _, origin := range view.Unavailable {
		r.log.Warn().Str("zone", origin).Msg("zone pulled from a primary has no copy to serve yet (or it expired): it answers SERVFAIL until a transfer works")
	}
	if r.sec.dir == "" && slices.ContainsFunc(r.cur.Load().Loaded.Config.Zones, func(z ZoneConfig) bool { return z.Primary != nil }) {
		r.log.Warn().Msg("no state file: zones pulled from a primary are not kept across restarts")
	}
	for name, p := range view.Pools {
		r.log.Info().Str("pool", name).Str("policy", p.Policy.String()).Int("members", len(p.V4)+len(p.V6)).Msg("pool ready")
	}
	r.log.Info().Str("containment", r.runner.Containment()).Msg("exec checks run contained")
	return nil
}

// rampTick is how often rampSteps looks for ramping pools: a tenth of
// the shortest slow_start (1s).
const rampTick = 100 * time.Millisecond

// rampSteps starts a new judgement every step of the shortest slow start
// (slow_start / pool.SlowStartSteps) while a pool has a member ramping,
// so that its plans follow the ramp; otherwise it changes nothing, and
// the cached answers stay valid.
func (r *Runtime) rampSteps(ctx context.Context) {
	t := time.NewTicker(rampTick)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now() // the pools' clock (pool.Pool.Now is unset)
		var step time.Duration
		for _, p := range r.cur.Load().View.Pools {
			if p.Ramping(now) {
				if s := p.SlowStart / pool.SlowStartSteps; step == 0 || s < step {
					step = s
				}
			}
		}
		if step > 0 && now.Sub(last) >= step {
			r.auth.NextRampStep()
			last = now
		}
	}
}

func (r *Runtime) run(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// Shutdown stops serving (finishing TCP queries in flight, within ctx),
// stops health checks, saves the state file and waits for every goroutine.
// Safe to call more than once.
func (r *Runtime) Shutdown(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		close(r.stopping)
		if r.cancel != nil {
			r.cancel()
		}
		err = r.server.Shutdown(ctx)
		r.closeFleet()
		r.sched.Close()
		r.loads.Close()
		r.wg.Wait()
		r.saveState()
	})
	return err
}

// Reload re-reads the config and every zone and swaps them in. Zones that
// fail to load keep serving their previous version (and the error is
// returned and shown by the API); a config or pool error keeps everything
// as it was. Queries in flight finish with the generation they started on.
// Every problem is logged once, here; the error (Problems) lists them for
// the caller to show, not to log again.
func (r *Runtime) Reload() error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	err := r.reloadLocked()
	now := r.opts.Now()
	r.lastReload.Store(&reloadOutcome{at: now, err: err})
	r.pokeFallback() // the pools may have changed
	if err != nil {
		r.metrics.Reloads.WithLabelValues("error").Inc()
		for _, p := range ProblemsOf(err) {
			p.Log(r.log.Error()).Msg("reload: kept serving the previous data")
		}
		return err
	}
	r.metrics.Reloads.WithLabelValues("ok").Inc()
	r.metrics.LastReload.Set(float64(now.Unix()))
	return nil
}

// errUnchanged says the config and files are what is being served.
var errUnchanged = errors.New("nothing changed")

// reloadOutcome is when the last reload ran and its error.
type reloadOutcome struct {
	at  time.Time
	err error
}

func (r *Runtime) reloadLocked() error {
	// No lock: cur is immutable, and reloads are serialised by reloadMu.
	prev := r.cur.Load()
	base := buildBase{prev: prev, serials: prev.serials, counters: r.metrics.ZoneCounters, now: r.opts.Now(), sign: r.sign}
	restore := boundReloadMemory()
	defer func() {
		// Collect the generation replaced (or a build that failed) and
		// hand its memory back while the cap holds: lifted first, the
		// next collection would wait for the heap to double from both.
		debug.FreeOSMemory()
		restore()
	}()
	g, err := r.buildAside(func() (*Generation, error) {
		l, err := r.opts.Load()
		if err != nil {
			return nil, err
		}
		if unchanged(l, base.prev) {
			return nil, errUnchanged
		}
		return build(l, base)
	})
	if errors.Is(err, errUnchanged) {
		r.log.Info().Msg("reload: nothing changed")
		return nil
	}
	if err != nil {
		return err
	}
	old := base.prev.Loaded.Config
	if cfg := g.Loaded.Config; !reflect.DeepEqual(cfg.Listen, old.Listen) || cfg.Freebind != old.Freebind || cfg.UDPSize != old.UDPSize || cfg.TCP != old.TCP {
		r.log.Warn().Msg("reload: listen, freebind, udp_size and tcp changes take effect after a restart")
	}
	// Rate limiting settings that changed take a new, empty table; ones
	// that did not keep counting where they were.
	newRRL := !reflect.DeepEqual(g.Loaded.Config.RRL, old.RRL)
	var lim *rrl.Limiter
	if newRRL {
		if lim, err = r.newLimiter(g.Loaded.Config.RRL); err != nil {
			return err
		}
	}
	if err := r.install(g); err != nil {
		return err
	}
	if r.fleet != nil || g.Loaded.Config.Fleet != nil {
		r.fleetReloaded(g.Loaded.Config.Fleet)
	}
	if g.Loaded.Config.CacheBytes() != old.CacheBytes() {
		r.log.Warn().Msg("reload: cache.max_bytes changes take effect after a restart")
	}
	r.applyCookies(g.Loaded.Config)
	if newRRL {
		r.auth.SetRRL(lim)
		r.log.Info().Bool("on", lim != nil).Msg("reload: rate limiting settings changed; counting starts afresh")
	}
	if len(g.Failed) > 0 {
		return g.Failed
	}
	r.log.Info().Int("zones", len(g.View.Zones.Zones())).Int("pools", len(g.View.Pools)).Msg("reloaded")
	return nil
}

// newLimiter builds the response rate limiter c asks for; nil when RRL is
// off. c has been validated.
func (r *Runtime) newLimiter(c RRLConfig) (*rrl.Limiter, error) {
	if !c.On() {
		return nil, nil
	}
	rc, ps := c.Limiter("rrl")
	if len(ps) > 0 {
		return nil, ps
	}
	rc.Now = r.rrlNow
	l, err := rrl.New(rc)
	if err != nil {
		return nil, fmt.Errorf("rrl: %w", err)
	}
	return l, nil
}

// reloadMemoryFactor bounds the memory a reload may use, as a multiple of
// what the process holds alive before it: the zones being served stay alive
// while their replacements are built beside them, so two copies, the zone
// file being parsed, and room for the loader's garbage. Measured with a
// million records under 20,000 queries a second: at 2.2 the collector ran
// back to back at the end of the build and the reload took twice as long;
// 2.5 only raised the peak.
const reloadMemoryFactor = 2.35

// minReloadLimit is the least cap worth setting: below it, collecting more
// often saves too little to matter.
const minReloadLimit = 64 << 20

// boundReloadMemory caps the Go runtime's memory at reloadMemoryFactor
// times what is alive now, until the returned function restores the
// previous limit. Left to GOGC alone, a collection during the build sets
// the next one at twice the old and new zones together: the peak reached
// 2.6 times the memory of one copy of a large zone. Under the cap the
// collector runs more often near the end of the build instead; the cap is
// soft, so a larger new zone set only makes the build slower.
//
// The limit is the process's: one Runtime per process, and reloads are
// serialised by r.mu.
func boundReloadMemory() (restore func()) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	metrics.Read(samples)
	v := make([]uint64, len(samples))
	for i, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return func() {} // not this runtime's metrics: leave GC as it is
		}
		v[i] = s.Value.Uint64()
	}
	// What is alive: the heap as of the last collection, and what the
	// runtime holds beside the heap (stacks, GC metadata). Not the garbage
	// queries made since, nor free pages not yet returned.
	live, total, heap := v[0], v[1], v[2]+v[3]+v[4]+v[5]
	if live == 0 {
		return func() {} // no collection yet: nothing known to scale
	}
	alive := live + total - min(heap, total)
	limit := max(int64(float64(alive)*reloadMemoryFactor), minReloadLimit)
	prev := debug.SetMemoryLimit(-1)
	if limit >= prev {
		return func() {} // the operator's GOMEMLIMIT is tighter already
	}
	debug.SetMemoryLimit(limit)
	return func() {
		// Unless something else changed it meanwhile.
		if debug.SetMemoryLimit(-1) == limit {
			debug.SetMemoryLimit(prev)
		}
	}
}

// install makes a built generation the one served (a reload's, or a
// pulled zone's): health checks and load agents follow its pools, and it
// takes the overrides in force now, not when the build started: one may
// have changed meanwhile (a new value, like the change was). The
// config's other settings are the caller's to apply.
func (r *Runtime) install(g *Generation) error {
	if err := r.setTargets(g.View.Targets); err != nil {
		return fmt.Errorf("health checks: %w", err)
	}
	r.loads.Set(g.View.LoadTargets)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ov := r.cur.Load().Overrides(); ov != g.Overrides() {
		g = g.withOverrides(ov)
	}
	r.commit(g)
	return nil
}

// unchanged reports whether l and the zone files on disk are what prev
// serves (by content digest), so the reload can be skipped.
func unchanged(l *Loaded, prev *Generation) bool {
	if prev == nil {
		return false
	}
	cfg := *l.Config
	cfg.ApplyDefaults() // as the build would
	if !reflect.DeepEqual(&cfg, prev.Loaded.Config) || !reflect.DeepEqual(l.Root, prev.Loaded.Root) {
		return false
	}
	for _, zc := range l.Config.Zones {
		st := prev.zones[zones.CanonicalName(zc.Origin)]
		if st != nil && zc.Primary != nil {
			continue // pulled, not read: a reload keeps the copy
		}
		if st == nil || st.err != nil || st.zone == nil {
			return false
		}
		d, ok := zones.DigestFiles(zoneSource(zc, l.Root), st.zone.Files)
		if !ok || d != st.zone.Digest {
			return false
		}
	}
	return true
}

// commit makes g the generation being served, by the Runtime and the
// answer path, and logs what its build found. r.mu is held.
func (r *Runtime) commit(g *Generation) {
	g = r.freshLocked(g)
	r.swapLocked(g)
	r.sign.servedNow()
	r.setTransfersLocked(g)
	r.sec.committed(g)
	for origin, st := range g.zones {
		failed := 0.0
		if st.err != nil {
			failed = 1
		}
		r.metrics.ZoneLoadError.WithLabelValues(origin).Set(failed)
	}
	for _, w := range g.Warnings {
		msg := "zone warning"
		if w.Key != "" {
			msg = "config warning"
		}
		w.Log(r.log.Warn()).Msg(msg)
	}
	for _, n := range g.Notes {
		ev := r.log.Info()
		if n.Warn {
			ev = r.log.Warn()
		}
		ev.Str("zone", n.Zone).Uint32("serial", n.Serial).Uint32("previous", n.From).Msg(n.Msg)
	}
	r.stateDirty.Store(true)
}

// serialLess compares serials with RFC 1982 arithmetic.
func serialLess(a, b uint32) bool {
	return a != b && (b-a) < 1<<31
}

// swapLocked makes g the generation being served: the Runtime's, then the
// answer path's, each one store of one value. r.mu is held, so that the
// two never disagree for long and no writer's change is lost; a reader
// loads one of them and sees one whole generation.
func (r *Runtime) swapLocked(g *Generation) {
	r.cur.Store(g)
	r.auth.Serve(g.View)
}

// freshLocked returns g with a view numbered above every view served so
// far, copying it when its build number is taken: a build numbers its
// view after the generation it started from, and a view swapped in
// meanwhile (a filtered zone's new serial) may hold that number, whose
// cached replies must not answer for g. r.mu is held.
func (r *Runtime) freshLocked(g *Generation) *Generation {
	if g.View.Gen() > r.servedGen {
		r.servedGen = g.View.Gen()
		return g
	}
	r.servedGen++
	ng := *g
	ng.View = g.View.Renumbered(r.servedGen)
	return &ng
}

func (r *Runtime) observeProbe(key healthcheck.TargetKey, latency time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "fail"
	}
	typ, _, _ := strings.Cut(key.Check, " ")
	r.metrics.CheckDuration.WithLabelValues(typ, result).Observe(latency.Seconds())
}

func (r *Runtime) logTransitions(ch <-chan healthcheck.Transition) {
	for tr := range ch {
		r.metrics.Transitions.WithLabelValues(upDown(tr.To.Up)).Inc()
		r.stateDirty.Store(true)
		r.xfr.Poke()
		pools := r.cur.Load().View.PoolsOf(tr.Key)
		ev := r.log.Warn()
		if tr.To.Up {
			ev = r.log.Info()
		}
		ev = ev.Strs("pools", pools).
			Str("member", tr.Key.Addr.Addr().String()).
			Uint16("port", tr.Key.Addr.Port()).
			Str("check", tr.Target.Spec.Type).
			Str("from", upDown(tr.From.Up)).
			Str("to", upDown(tr.To.Up)).
			Dur("latency", tr.Latency)
		if tr.Err != nil {
			ev = ev.Str("reason", tr.Err.Error())
		}
		if tr.Dropped > 0 {
			ev = ev.Uint64("transitions_dropped", tr.Dropped)
		}
		ev.Msg("health transition")
		r.pokeFallback()
		if r.fleet != nil {
			r.fleet.wake()
		}
	}
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// housekeeping lifts expired overrides, samples answer shares and saves
// the state file when something changed.
func (r *Runtime) housekeeping(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.freeMem:
			debug.FreeOSMemory()
			continue
		case <-tick.C:
		}
		n++
		r.expireOverrides()
		if n%signingTick == 0 {
			r.refreshSigners(n%resignEvery == 0)
		}
		if n%shareSampleEvery == 0 {
			r.sampleShares()
		}
		r.saveIfDirty()
	}
}

func (r *Runtime) expireOverrides() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Now()
	next := r.cur.Load().Overrides().Clone()
	changed := false
	for a, ov := range next {
		if ov.Expired(now) {
			delete(next, a)
			changed = true
			r.log.Info().Str("member", a.String()).Str("mode", ov.Mode.String()).Str("reason", ov.Reason).Msg("override expired")
		}
	}
	if changed {
		r.publishOverridesLocked(next)
		r.stateDirty.Store(true)
	}
}

// publishOverridesLocked swaps in a copy of the generation being served
// with the overrides ovs, for the Runtime and the answer path at once.
// r.mu is held.
func (r *Runtime) publishOverridesLocked(ovs map[netip.Addr]answer.Override) {
	g := r.cur.Load()
	r.swapLocked(g.withOverrides(answer.NewOverrides(ovs, g.Overrides().Generation()+1)))
	r.pokeFallback()
	r.xfr.Poke()
}

// errorLines splits an error (errors.Join trees, zones.ErrorList) into lines.
func errorLines(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

var _ admin.Backend = (*Runtime)(nil)

// Ready reports whether zones are loaded and every health target has its
// first result.
func (r *Runtime) Ready() bool {
	for _, st := range r.sched.Statuses() {
		if !st.Checked {
			return false
		}
	}
	return true
}

// LastReload implements admin.Backend.
func (r *Runtime) LastReload() (time.Time, error) {
	if o := r.lastReload.Load(); o != nil {
		return o.at, o.err
	}
	return time.Time{}, nil
}

// Zones implements admin.Backend.
func (r *Runtime) Zones() []admin.ZoneStatus {
	g := r.cur.Load()
	out := make([]admin.ZoneStatus, 0, len(g.zones))
	for origin, st := range g.zones {
		zs := admin.ZoneStatus{Origin: origin, File: st.cfg.File}
		if st.zone != nil {
			zs.File = st.zone.File
			zs.Serial = st.zone.Serial()
			zs.Records = st.zone.Records()
			zs.LoadedAt = st.loadedAt
		}
		if st.err != nil {
			zs.Error = strings.Join(errorLines(st.err), "\n")
		}
		if pc := st.cfg.Primary; pc != nil {
			zs.Primary = pc.Address
			zs.Expired = st.zone == nil || st.expired
			if r.sec != nil {
				zs.ExpiresAt = r.sec.expiresAt(origin)
			}
		}
		out = append(out, zs)
	}
	if r.sign != nil {
		signed := map[string]*admin.ZoneDNSSEC{}
		for _, zr := range r.sign.report() {
			signed[zr.origin] = zoneDNSSEC(zr, r.opts.Now())
		}
		for i := range out {
			out[i].DNSSEC = signed[out[i].Origin]
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// SetOverride implements admin.Backend: the API's mode converted, see
// setOverride.
func (r *Runtime) SetOverride(addr netip.Addr, mode admin.OverrideMode, until time.Time, reason string) error {
	m, ok := overrideModeFromAdmin(mode)
	if !ok {
		return fmt.Errorf("unknown override mode %q", mode)
	}
	return r.setOverride(addr, m, until, reason)
}

// setOverride drains, undrains (answer.OverrideNone) or forces down a member
// address in every pool that has it. The change is written to the state
// file before it is applied: one that could not be saved would be lost
// by the next restart, so it is refused (admin.ErrNotPersisted) and
// nothing changes.
func (r *Runtime) setOverride(addr netip.Addr, mode answer.OverrideMode, until time.Time, reason string) error {
	addr = addr.Unmap()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.isMemberLocked(addr) {
		return fmt.Errorf("%s: %w", addr, admin.ErrUnknownMember)
	}
	next := r.cur.Load().Overrides().Clone()
	old, had := next[addr]
	switch mode {
	case answer.OverrideNone:
		if !had && r.fleet == nil {
			return nil // nothing to lift, nothing to save
		}
		delete(next, addr)
	case answer.OverrideDrain, answer.OverrideForceDown:
		next[addr] = answer.Override{Mode: mode, Reason: reason, Since: r.opts.Now(), Until: until}
	default:
		return fmt.Errorf("unknown override mode %v", mode)
	}
	if r.fleet != nil {
		// Lifted on every node, even where this one had none: the
		// drain may be on its way to it.
		if err := r.setFleetOverrideLocked(addr, mode, until, reason, next); err != nil {
			return err
		}
	} else if err := r.writeStateLocked(next); err != nil {
		return fmt.Errorf("%s: %w: %w", addr, admin.ErrNotPersisted, err)
	}
	if mode == answer.OverrideNone {
		if had {
			r.log.Info().Str("member", addr.String()).Str("was", old.Mode.String()).Str("reason", reason).Msg("override lifted")
		}
	} else {
		ev := r.log.Info().Str("member", addr.String()).Str("mode", mode.String()).Str("reason", reason)
		if !until.IsZero() {
			ev = ev.Time("until", until)
		}
		ev.Msg("override set")
	}
	r.publishOverridesLocked(next)
	return nil
}

func (r *Runtime) isMemberLocked(addr netip.Addr) bool {
	for _, p := range r.cur.Load().View.Pools {
		for _, m := range p.Members() {
			if m.Addr == addr {
				return true
			}
		}
	}
	return false
}

// Pools implements admin.Backend.
func (r *Runtime) Pools() []admin.PoolStatus {
	// No lock: one generation, loaded once, gives the config, the pools
	// and the overrides; one judgement of them (with the current health)
	// gives the fallback and the member states, as the answer path judges
	// them while it serves this generation.
	g := r.cur.Load()
	view, cfg, overrides := g.View, g.Loaded.Config, g.Overrides()
	judge := r.auth.HealthOf(view)
	var shares map[string]map[netip.Addr]float64
	if s := r.shares.Load(); s != nil {
		shares = *s
	}
	loads := r.loads.Loads()
	fleetViews := r.fleetViews()
	now := time.Now() // the pools' clock, as the weight metrics read it
	names := make([]string, 0, len(view.Pools))
	for n := range view.Pools {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]admin.PoolStatus, 0, len(names))
	for _, name := range names {
		p := view.Pools[name]
		ps := admin.PoolStatus{Name: name, Policy: p.Policy.String(), MaxAnswers: p.MaxAnswers,
			WhenAllDown: p.WhenAllDown.String(), Check: "none"}
		if z := view.Zones.Find(name); z != nil {
			ps.Zone = z.Origin
		}
		if pc, ok := findPoolConfig(cfg, name); ok {
			ps.TTL = DefaultPoolTTL
			if pc.TTL > 0 {
				ps.TTL = uint32(pc.TTL)
			}
			if pc.Check != nil {
				ps.Check = describeCheck(pc.Check)
			}
			if len(pc.Checks) > 0 {
				descs := make([]string, len(pc.Checks))
				for i := range pc.Checks {
					descs[i] = describeCheck(&pc.Checks[i].CheckConfig)
					if a := pc.Checks[i].Address; a != "" && a != CheckAddressMember {
						descs[i] += " at " + a
					}
				}
				ps.Check = strings.Join(descs, "; ")
			}
		}
		for _, f := range [...]struct {
			qtype uint16
			name  string
		}{{dns.TypeA, "A"}, {dns.TypeAAAA, "AAAA"}} {
			answers, ok := p.Fallback(f.qtype, judge)
			if !ok {
				continue
			}
			if !ps.AllDown || answers == pool.FailOpen { // failing open outranks backups
				ps.Fallback = answers.String()
			}
			ps.AllDown = true
			ps.AllDownFamilies = append(ps.AllDownFamilies, f.name)
		}
		// Degraded as the plans judge it (pool.Plan.Degraded): in
		// fallback, or a primary down by its checks alone.
		ps.Degraded, ps.TTLDegraded = ps.AllDown, p.TTLDegraded
		for _, m := range p.Members() {
			ps.Degraded = ps.Degraded || !m.Backup && m.Checked && judge.Failing(&m)
			ms := admin.MemberStatus{Address: m.Addr.String(), Weight: m.Weight, Backup: m.Backup,
				Healthy: true, Checked: m.Checked}
			if m.Checked {
				r.checkStates(&ms, &m)
			}
			ov, ok := overrides.Get(m.Addr)
			if ok {
				ms.Override = adminOverride(ov)
			}
			ms.State = answer.MemberStateOf(ms.Healthy, ov, ok).String()
			if l, ok := loads[m.Agent]; ok && m.Agent.IsValid() {
				ms.Load = loadStatus(m.Agent, l, m.Weight)
				if ms.State == answer.MemberUp.String() && !l.Stale {
					switch {
					case l.Down():
						ms.State = answer.MemberDown.String()
					case l.Drained():
						ms.State = answer.MemberDrained.String()
					}
				}
			}
			ms.Fleet = fleetViews.of(&m)
			ms.Share = shares[name][m.Addr]
			ms.EffectiveWeight = p.EffectiveWeight(&m, judge, now)
			ps.Members = append(ps.Members, ms)
		}
		out = append(out, ps)
	}
	return out
}

// checkStates fills in the health of ms from each of m's checks: healthy
// only if all are, with the error, latency and since of the first failing
// one (or, while all are up, of the first with an error, and since the
// last came up).
func (r *Runtime) checkStates(ms *admin.MemberStatus, m *pool.Member) {
	keys := append([]healthcheck.TargetKey{m.Target}, m.Also...)
	var lead *healthcheck.Status
	up := true
	for _, k := range keys {
		typ, _, _ := strings.Cut(k.Check, " ")
		cs := admin.CheckStatus{Type: typ, Address: k.Addr.String(), Healthy: true}
		st, ok := r.targetStatus(k)
		if ok {
			cs.Healthy, cs.Since, cs.LastError, cs.Latency = st.Up, st.Since, st.LastError, st.LastLatency
			switch {
			case up && !st.Up:
				up, lead = false, &st
			case up && lead == nil && st.LastError != "":
				lead = &st
			}
			if up && st.Since.After(ms.Since) {
				ms.Since = st.Since
			}
		}
		ms.Checks = append(ms.Checks, cs)
	}
	ms.Healthy = up
	if lead != nil {
		ms.LastError, ms.Latency = lead.LastError, lead.LastLatency
		if !up {
			ms.Since = lead.Since
		}
	} else if st, ok := r.targetStatus(m.Target); ok {
		ms.Latency = st.LastLatency
	}
}

func findPoolConfig(cfg *Config, name string) (PoolConfig, bool) {
	for k, pc := range cfg.Pools {
		if zones.CanonicalName(k) == name {
			return pc, true
		}
	}
	return PoolConfig{}, false
}

func describeCheck(c *CheckConfig) string {
	spec := c.Spec().WithDefaults()
	var b strings.Builder
	b.WriteString(spec.Type)
	if spec.Port > 0 {
		fmt.Fprintf(&b, " :%d", spec.Port)
	}
	switch spec.Type {
	case healthcheck.TypeHTTP, healthcheck.TypeHTTPS:
		fmt.Fprintf(&b, " %s %s", spec.Method, spec.Path)
	case healthcheck.TypeDNS:
		fmt.Fprintf(&b, " %s %s", spec.Name, spec.QType)
	case healthcheck.TypeExec:
		fmt.Fprintf(&b, " %s", strings.Join(spec.Command, " "))
	}
	fmt.Fprintf(&b, " every %s, rise %d, fall %d", spec.Interval, spec.Rise, spec.Fall)
	return b.String()
}

// logLoadChange logs a change of a member's load agent that changes its
// answers: a new state or weight, and its data going stale (once, until
// it reports again).
func (r *Runtime) logLoadChange(c healthcheck.LoadChange) {
	l := c.New
	switch {
	case l.Stale:
		r.log.Warn().Str("agent", c.Addr.String()).Str("error", l.Err).Int("intervals", healthcheck.StaleIntervals).
			Msg("load agent silent: its member is answered by its configured weight")
	case c.Old.Stale:
		r.log.Info().Str("agent", c.Addr.String()).Msg("load agent reports again")
	default:
		// A weight may move on every report: a change of state is news,
		// a change of weight is detail.
		ev := r.log.Debug()
		if l.Down() != c.Old.Down() || l.Drained() != c.Old.Drained() {
			ev = r.log.Info()
		}
		ev.Str("agent", c.Addr.String()).Bool("down", l.Down()).Bool("drained", l.Drained()).
			Int("percent", l.Percent).Int("weight", l.Weight).Msg("load agent report")
	}
}

// loadStatus is the admin API's view of a member's agent.
func loadStatus(agent netip.AddrPort, l healthcheck.Load, configured int) *admin.LoadStatus {
	ls := &admin.LoadStatus{Agent: agent.String(), Percent: l.Percent, Weight: l.Weight, LiveWeight: configured,
		Stale: l.Stale, Reported: l.Reported, LastError: l.Err}
	ls.Op = [...]string{healthcheck.AgentOpUnset: "", healthcheck.AgentUp: "up", healthcheck.AgentDown: "down"}[l.Op]
	ls.Admin = [...]string{healthcheck.AgentAdminUnset: "", healthcheck.AgentReady: "ready",
		healthcheck.AgentDrain: "drain", healthcheck.AgentMaint: "maint"}[l.Admin]
	if w, ok := l.LiveWeight(configured); ok && !l.Stale {
		ls.LiveWeight = w
	}
	return ls
}

// loadHeader routes the responses of http checks to the load watcher: a
// pool with load: {type: http-header} reads its reports in a header or a
// JSON body field there. It runs for every http probe, so it only reads
// the current view.
func (r *Runtime) loadHeader(addr netip.AddrPort, h http.Header, body func() ([]byte, error)) {
	src, ok := r.cur.Load().View.LoadHeaders[addr]
	if !ok {
		return
	}
	if src.JSON == "" {
		if v := h.Get(src.Header); v != "" {
			r.loads.Report(addr, v, nil)
			return
		}
		r.loads.Report(addr, "", fmt.Errorf("no %s header in the check's response", src.Header))
		return
	}
	b, err := body()
	if err != nil {
		r.loads.Report(addr, "", fmt.Errorf("reading the check's response body: %w", err))
		return
	}
	line, err := jsonLoadReport(b, src.JSON)
	r.loads.Report(addr, line, err)
}
