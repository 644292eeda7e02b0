package dnslb

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/dnslb/rrl"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds dnslb's Prometheus metrics. One value lives as long as the
// process: reloads keep counting into it. The query counters are plain
// atomics (exported through a collector) so that counting a query costs a
// map lookup and an atomic add, not a label hash.
type Metrics struct {
	Registry *prometheus.Registry

	queries      *queryCollector
	responseSize *prometheus.HistogramVec
	duration     *prometheus.HistogramVec
	// Children resolved once: a label lookup per query costs a hash.
	sizeUDP, sizeTCP, durUDP, durTCP prometheus.Observer
	malformed                        *prometheus.CounterVec
	tcpOpen                          prometheus.Gauge
	tcpTotal                         *prometheus.CounterVec
	// Transitions counts health transitions by new state.
	Transitions *prometheus.CounterVec
	// CheckDuration observes every health probe.
	CheckDuration *prometheus.HistogramVec
	// Reloads counts reload attempts by result (ok, error).
	Reloads *prometheus.CounterVec
	// ZoneLoadError is 1 for a zone whose last load failed (the old data
	// is being served), else 0.
	ZoneLoadError *prometheus.GaugeVec
	// LastReload is the time of the last successful reload.
	LastReload prometheus.Gauge
	// rrlActions counts responses RRL slipped or dropped, resolved per
	// action and category up front: a flood counts without a label
	// lookup.
	rrlActions       *prometheus.CounterVec
	rrlSlip, rrlDrop [rrl.NumCategories]prometheus.Counter
}

// NewMetrics creates and registers every metric, plus the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		queries:  newQueryCollector(),
		responseSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dnslb_response_size_bytes",
			Help:    "Size of DNS responses sent.",
			Buckets: []float64{64, 128, 256, 512, 768, 1024, 1232, 1500, 4096, 16384, 65535},
		}, []string{"transport"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dnslb_request_duration_seconds",
			Help:    "Time from a query read to its response ready, in the server (UDP: the first query of each read batch, a sample).",
			Buckets: []float64{.000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01},
		}, []string{"transport"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnslb_dropped_queries_total",
			Help: "Messages not answered normally: dropped, or answered FORMERR/NOTIMP, by reason.",
		}, []string{"reason"}),
		// Not dnslb_tcp_connections: under OpenMetrics that is the
		// family name of the counter dnslb_tcp_connections_total, and a
		// gauge of the same name collides with it.
		tcpOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dnslb_tcp_connections_open",
			Help: "TCP connections open now.",
		}),
		tcpTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnslb_tcp_connections_total",
			Help: "TCP connections accepted, or rejected at the connection cap.",
		}, []string{"result"}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnslb_health_transitions_total",
			Help: "Health state transitions of check targets, by new state.",
		}, []string{"to"}),
		CheckDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dnslb_health_check_duration_seconds",
			Help:    "Duration of health probes, by check type and result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"type", "result"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnslb_reloads_total",
			Help: "Config and zone reloads, by result.",
		}, []string{"result"}),
		ZoneLoadError: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dnslb_zone_load_error",
			Help: "1 when the zone's last load failed and older data is served.",
		}, []string{"zone"}),
		LastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dnslb_last_reload_success_timestamp_seconds",
			Help: "When config and zones were last (re)loaded without error.",
		}),
		rrlActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dnslb_rrl_actions_total",
			Help: "UDP responses over their rate limit, by action (slip: sent truncated; drop: not sent) and response category.",
		}, []string{"action", "category"}),
	}
	for c := range rrl.Category(rrl.NumCategories) {
		m.rrlSlip[c] = m.rrlActions.WithLabelValues("slip", c.String())
		m.rrlDrop[c] = m.rrlActions.WithLabelValues("drop", c.String())
	}
	m.sizeUDP, m.sizeTCP = m.responseSize.WithLabelValues("udp"), m.responseSize.WithLabelValues("tcp")
	m.durUDP, m.durTCP = m.duration.WithLabelValues("udp"), m.duration.WithLabelValues("tcp")
	reg.MustRegister(m.queries, m.responseSize, m.duration, m.malformed, m.tcpOpen, m.tcpTotal,
		m.Transitions, m.CheckDuration, m.Reloads, m.ZoneLoadError, m.LastReload, m.rrlActions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetBuildInfo exports dnslb_build_info: 1, with the running binary's
// version, git commit and Go version as labels (joined to other series
// with group_left, as Prometheus' own build_info is). Call it once.
func (m *Metrics) SetBuildInfo(version, commit, goVersion string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "dnslb_build_info",
		Help:        "1, labelled with the running binary's version, git commit and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": goVersion},
	})
	g.Set(1)
	if err := m.Registry.Register(g); err != nil {
		return fmt.Errorf("dnslb_build_info: %w", err)
	}
	return nil
}

// watchCache exports the response cache's hit and miss counts and its size.
func (m *Metrics) watchCache(a *answer.Authority) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dnslb_cache_hits_total",
			Help: "Queries answered from the packed-response cache.",
		}, func() float64 { h, _ := a.CacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dnslb_cache_misses_total",
			Help: "Queries answered by the full path: every query is a hit or a miss.",
		}, func() float64 { _, m := a.CacheStats(); return float64(m) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dnslb_cache_bytes",
			Help: "Memory the packed-response cache is accounted at (entries, keys, replies, index); at most cache.max_bytes.",
		}, func() float64 { b, _ := a.CacheUse(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dnslb_cache_entries",
			Help: "Questions the packed-response cache holds answers for.",
		}, func() float64 { _, n := a.CacheUse(); return float64(n) }),
	)
}

// watchRRL exports the size of the rate limiter's table in use.
func (m *Metrics) watchRRL(a *answer.Authority) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dnslb_rrl_table_entries",
		Help: "Rate limiting accounts (client prefix, category, name) charged within about the last second; 0 when RRL is off.",
	}, func() float64 {
		if l := a.RRL(); l != nil {
			return float64(l.Entries())
		}
		return 0
	}))
}

// RRLActed implements answer.Observer.
func (m *Metrics) RRLActed(act rrl.Action, c rrl.Category) {
	if c >= rrl.NumCategories {
		return
	}
	if act == rrl.Slip {
		m.rrlSlip[c].Inc()
	} else {
		m.rrlDrop[c].Inc()
	}
}

// ZoneCounters returns the query counters of a zone ("" for queries that
// matched no zone), creating them on first use. Reloads reuse them.
func (m *Metrics) ZoneCounters(origin string) *answer.ZoneCounters {
	return m.queries.zone(origin)
}

// Dropped implements answer.Observer: a message not answered normally.
func (m *Metrics) Dropped(reason string) {
	m.malformed.WithLabelValues(reason).Inc()
}

// Served implements dnsserver.Observer.
func (m *Metrics) Served(tcp bool, size int, d time.Duration) {
	sizes, durations := m.sizeUDP, m.durUDP
	if tcp {
		sizes, durations = m.sizeTCP, m.durTCP
	}
	sizes.Observe(float64(size))
	if d >= 0 {
		durations.Observe(d.Seconds())
	}
}

// TCPOpened implements dnsserver.Observer.
func (m *Metrics) TCPOpened() {
	m.tcpOpen.Inc()
	m.tcpTotal.WithLabelValues("accepted").Inc()
}

// TCPClosed implements dnsserver.Observer.
func (m *Metrics) TCPClosed() { m.tcpOpen.Dec() }

// TCPRejected implements dnsserver.Observer.
func (m *Metrics) TCPRejected() { m.tcpTotal.WithLabelValues("rejected").Inc() }

type queryCollector struct {
	desc  *prometheus.Desc
	mu    sync.Mutex
	zones map[string]*answer.ZoneCounters
}

func newQueryCollector() *queryCollector {
	return &queryCollector{
		desc: prometheus.NewDesc("dnslb_queries_total",
			"Queries answered, by zone (\"\" for names outside every zone), qtype and rcode.",
			[]string{"zone", "qtype", "rcode"}, nil),
		zones: map[string]*answer.ZoneCounters{},
	}
}

func (c *queryCollector) zone(origin string) *answer.ZoneCounters {
	c.mu.Lock()
	defer c.mu.Unlock()
	z := c.zones[origin]
	if z == nil {
		z = &answer.ZoneCounters{}
		c.zones[origin] = z
	}
	return z
}

func (c *queryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.zones))
	for n := range c.zones {
		names = append(names, n)
	}
	zs := make([]*answer.ZoneCounters, len(names))
	sort.Strings(names)
	for i, n := range names {
		zs[i] = c.zones[n]
	}
	c.mu.Unlock()
	for i, z := range zs {
		z.Each(func(qtype, rcode string, n uint64) {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), names[i], qtype, rcode)
		})
	}
}

// memberCollector exports each pool member's state, and whether each pool
// answers by its when_all_down fallback, at scrape time: from the pools'
// status, so it keeps no state to get out of step.
type memberCollector struct {
	pools   func() []admin.PoolStatus
	up      *prometheus.Desc
	drained *prometheus.Desc
	latency *prometheus.Desc
	allDown *prometheus.Desc
}

func newMemberCollector(pools func() []admin.PoolStatus) *memberCollector {
	labels := []string{"pool", "member"}
	return &memberCollector{
		pools:   pools,
		up:      prometheus.NewDesc("dnslb_member_up", "1 when the member's health check passes (or it has none), else 0.", labels, nil),
		drained: prometheus.NewDesc("dnslb_member_override", "1 when an operator drained or forced down the member.", append(labels, "mode"), nil),
		latency: prometheus.NewDesc("dnslb_member_check_latency_seconds", "Duration of the member's last health probe.", labels, nil),
		allDown: prometheus.NewDesc("dnslb_pool_all_down",
			"1 while the pool answers by its when_all_down fallback (no primary member of a family up and undrained), else 0.",
			[]string{"pool"}, nil),
	}
}

func (c *memberCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.drained
	ch <- c.latency
	ch <- c.allDown
}

func (c *memberCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.pools() {
		allDown := 0.0
		if p.AllDown {
			allDown = 1
		}
		ch <- prometheus.MustNewConstMetric(c.allDown, prometheus.GaugeValue, allDown, p.Name)
		for _, m := range p.Members {
			up := 0.0
			if m.Healthy {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, p.Name, m.Address)
			if m.Override != nil {
				ch <- prometheus.MustNewConstMetric(c.drained, prometheus.GaugeValue, 1, p.Name, m.Address, string(m.Override.Mode))
			}
			if m.Checked {
				ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, m.Latency.Seconds(), p.Name, m.Address)
			}
		}
	}
}

// memberLead is the count of answers one pool member led.
type memberLead struct {
	pool, member string
	n            uint64
}

// memberLeads returns the answers each member of each pool now served has
// led (counted across reloads; a member no longer in the config is not
// exported).
func (r *Runtime) memberLeads() []memberLead {
	var out []memberLead
	for name, p := range r.cur.Load().View.Pools {
		seen := map[netip.Addr]bool{}
		for _, m := range p.Members() {
			if m.Leads == nil || seen[m.Addr] {
				continue
			}
			seen[m.Addr] = true
			out = append(out, memberLead{pool: name, member: m.Addr.String(), n: m.Leads.Load()})
		}
	}
	return out
}

// runtimeCollector exports, at scrape time, what the Runtime already keeps:
// the answers each pool member led (the answer path only adds to the lead
// counters) and each zone's serial.
type runtimeCollector struct {
	leads   func() []memberLead
	zones   func() []admin.ZoneStatus
	answers *prometheus.Desc
	serial  *prometheus.Desc
}

func newRuntimeCollector(r *Runtime) *runtimeCollector {
	return &runtimeCollector{
		leads: r.memberLeads,
		zones: r.Zones,
		answers: prometheus.NewDesc("dnslb_pool_answers_total",
			"Answers for the pool's name, by the member they listed first; sum by pool for the pool's answers.",
			[]string{"pool", "member"}, nil),
		serial: prometheus.NewDesc("dnslb_zone_serial",
			"SOA serial of the zone being served.", []string{"zone"}, nil),
	}
}

func (c *runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.answers
	ch <- c.serial
}

func (c *runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.leads() {
		ch <- prometheus.MustNewConstMetric(c.answers, prometheus.CounterValue, float64(l.n), l.pool, l.member)
	}
	for _, z := range c.zones() {
		if z.LoadedAt.IsZero() { // never loaded: no serial to show
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.serial, prometheus.GaugeValue, float64(z.Serial), z.Origin)
	}
}

// weightCollector exports, at scrape time, each member's effective weight
// (what its answers follow now: health, live weight, slow start) and the
// load its agent reports, from the generation served and the current
// judgement and load snapshot.
type weightCollector struct {
	r      *Runtime
	weight *prometheus.Desc
	load   *prometheus.Desc
}

func newWeightCollector(r *Runtime) *weightCollector {
	labels := []string{"pool", "member"}
	return &weightCollector{
		r: r,
		weight: prometheus.NewDesc("dnslb_member_weight",
			"Weight the member is answered by now: 0 while not eligible, else its live weight (least-loaded) or configured weight, scaled while it ramps (slow_start).",
			labels, nil),
		load: prometheus.NewDesc("dnslb_member_load",
			"The percentage the member's load agent last reported (N%); absent without one, or while stale.",
			labels, nil),
	}
}

func (c *weightCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.weight
	ch <- c.load
}

func (c *weightCollector) Collect(ch chan<- prometheus.Metric) {
	h, _ := c.r.auth.Health()
	loads := c.r.loads.Snapshot()
	now := time.Now() // the pools' clock (pool.Pool.Now is unset)
	for name, p := range c.r.auth.View().Pools {
		for _, fam := range [][]pool.Member{p.V4, p.V6} {
			for i := range fam {
				m := &fam[i]
				addr := m.Addr.String()
				ch <- prometheus.MustNewConstMetric(c.weight, prometheus.GaugeValue, float64(p.EffectiveWeight(m, h, now)), name, addr)
				if !m.Agent.IsValid() {
					continue
				}
				if l, ok := loads.Get(m.Agent); ok && !l.Stale && l.Percent >= 0 {
					ch <- prometheus.MustNewConstMetric(c.load, prometheus.GaugeValue, float64(l.Percent), name, addr)
				}
			}
		}
	}
}
