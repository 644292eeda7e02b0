package vip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// ErrPermission is returned (wrapped) when the process lacks CAP_NET_ADMIN or
// CAP_NET_RAW.
var ErrPermission = errors.New("needs CAP_NET_ADMIN and CAP_NET_RAW (run as root, or `setcap cap_net_admin,cap_net_raw+ep dnslb`)")

// Options adjusts how an Agent is built.
type Options struct {
	// CheckProbe builds the probe of a `check:` track; nil uses the
	// healthcheck package.
	CheckProbe func(CheckConfig) (Probe, error)
	// Runner runs the exec tracks, the exec checks and the notify hooks;
	// nil: one of the agent's own.
	Runner *healthcheck.Runner
}

// Agent runs every configured VRRP instance.
type Agent struct {
	log       zerolog.Logger
	admin     string
	instances []*instance
	closeOnce sync.Once
}

// New validates cfg and opens every instance's sockets, so permission and
// interface errors surface before Run. Close releases them if Run is never
// called.
func New(cfg Config, log zerolog.Logger, opts Options) (*Agent, error) {
	specs, err := cfg.specs()
	if err != nil {
		return nil, err
	}
	if opts.Runner == nil {
		opts.Runner = new(healthcheck.Runner)
	}
	// One logger for the agent and its instances, as each of the server's
	// components has (runtime, dnsserver, admin).
	log = log.With().Str("component", "vip").Logger()
	a := &Agent{log: log, admin: cfg.Admin}
	for _, s := range specs {
		probes, err := buildProbes(s, opts)
		if err != nil {
			a.Close()
			return nil, err
		}
		n, err := openNet(s, log)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("vip: instance %s: %w", s.name, err)
		}
		in := newInstance(s, n, probes, log)
		in.runner = opts.Runner
		a.instances = append(a.instances, in)
	}
	if usesRunner(specs) {
		log.Info().Str("containment", opts.Runner.Containment()).Msg("vip: exec tracks and notify hooks run contained")
	}
	return a, nil
}

func buildProbes(s instanceSpec, opts Options) ([]Probe, error) {
	var out []Probe
	for i, t := range s.tracks {
		var p Probe
		switch t.kind {
		case trackExec:
			p = execProbe(opts.Runner, t.exec)
		case trackInterface:
			p = interfaceProbe(t.ifname)
		case trackCheck:
			mk := opts.CheckProbe
			if mk == nil {
				mk = func(c CheckConfig) (Probe, error) { return newCheckProbe(opts.Runner, c) }
			}
			var err error
			if p, err = mk(*t.check); err != nil {
				return nil, fmt.Errorf("vip: instance %s: track[%d].check: %w", s.name, i, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// Run runs every instance until ctx ends, then stops them gracefully
// (priority-0 adverts, addresses removed) and returns when all have stopped.
// It returns the first instance error, if any.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(a.instances))
	for i, in := range a.instances {
		wg.Go(func() {
			errs[i] = in.run(ctx)
			if errs[i] != nil {
				cancel() // one failed instance stops the agent: let a supervisor restart it
			}
		})
	}
	if a.admin != "" {
		srv := &http.Server{Addr: a.admin, Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
		ln, err := net.Listen("tcp", a.admin)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("vip: admin: %w", err)
		}
		wg.Go(func() { _ = srv.Serve(ln) })
		wg.Go(func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			defer c()
			_ = srv.Shutdown(sctx)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close releases the sockets of an agent whose Run was never called. It is
// idempotent; after Run it does nothing harmful.
func (a *Agent) Close() error {
	var errs []error
	a.closeOnce.Do(func() {
		for _, in := range a.instances {
			errs = append(errs, in.net.Close())
		}
	})
	return errors.Join(errs...)
}

// Status returns a snapshot of every instance.
func (a *Agent) Status() []Status {
	out := make([]Status, 0, len(a.instances))
	for _, in := range a.instances {
		out = append(out, in.Status())
	}
	return out
}

// Handler serves /healthz, /api/v1/vip (JSON) and /metrics (Prometheus text).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /api/v1/vip", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.Status())
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(statusCollector{a})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

var (
	descState = prometheus.NewDesc("dnslb_vip_state", "1 for the instance's current state, 0 for the others.", []string{"instance", "state"}, nil)
	descPrio  = prometheus.NewDesc("dnslb_vip_priority", "The instance's effective priority (after tracking).", []string{"instance"}, nil)
	descRx    = prometheus.NewDesc("dnslb_vip_adverts_received_total", "Valid advertisements received.", []string{"instance"}, nil)
	descTx    = prometheus.NewDesc("dnslb_vip_adverts_sent_total", "Advertisements sent.", []string{"instance"}, nil)
	descDrops = prometheus.NewDesc("dnslb_vip_packets_dropped_total", "Received packets dropped, by reason.", []string{"instance", "reason"}, nil)
)

// statusCollector exports the instances' status at scrape time.
type statusCollector struct{ a *Agent }

func (statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descPrio, descRx, descTx, descDrops} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.a.Status() {
		for _, state := range []State{StateInit, StateBackup, StateMaster, StateFault} {
			v := 0.0
			if s.State == state.String() {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, s.Name, state.String())
		}
		ch <- prometheus.MustNewConstMetric(descPrio, prometheus.GaugeValue, float64(s.Priority), s.Name)
		ch <- prometheus.MustNewConstMetric(descRx, prometheus.CounterValue, float64(s.RxAdverts), s.Name)
		ch <- prometheus.MustNewConstMetric(descTx, prometheus.CounterValue, float64(s.TxAdverts), s.Name)
		for r, n := range s.Drops {
			ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(n), s.Name, r)
		}
	}
}

// usesRunner reports whether any instance runs commands.
func usesRunner(specs []instanceSpec) bool {
	for _, s := range specs {
		if s.hooks.any() {
			return true
		}
		for _, t := range s.tracks {
			if t.kind == trackExec || t.kind == trackCheck && t.check.Type == healthcheck.TypeExec {
				return true
			}
		}
	}
	return false
}

// execProbe runs a shell command; exit status 0 means up. At the probe's
// timeout the shell is killed with everything it started.
func execProbe(r *healthcheck.Runner, command string) Probe {
	return ProbeFunc(func(ctx context.Context) error {
		if err := r.Run(ctx, []string{"/bin/sh", "-c", command}, nil, 0); err != nil {
			return fmt.Errorf("%s: %w", command, err)
		}
		return nil
	})
}

// interfaceProbe is up while the link is administratively up and running
// (carrier present).
func interfaceProbe(name string) Probe {
	return ProbeFunc(func(context.Context) error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagRunning == 0 {
			return fmt.Errorf("interface %s is down (flags %v)", name, ifi.Flags)
		}
		return nil
	})
}
