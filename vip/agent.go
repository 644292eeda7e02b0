package vip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"time"

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
		a.instances = append(a.instances, newInstance(s, n, probes, log))
	}
	return a, nil
}

func buildProbes(s instanceSpec, opts Options) ([]Probe, error) {
	var out []Probe
	for i, t := range s.tracks {
		var p Probe
		switch t.kind {
		case trackExec:
			p = execProbe(t.exec)
		case trackInterface:
			p = interfaceProbe(t.ifname)
		case trackCheck:
			mk := opts.CheckProbe
			if mk == nil {
				mk = newCheckProbe
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
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		st := a.Status()
		fmt.Fprintln(w, "# HELP dnslb_vip_state 1 for the instance's current state.")
		fmt.Fprintln(w, "# TYPE dnslb_vip_state gauge")
		for _, s := range st {
			for _, state := range []State{StateInit, StateBackup, StateMaster, StateFault} {
				v := 0
				if s.State == state.String() {
					v = 1
				}
				fmt.Fprintf(w, "dnslb_vip_state{instance=%q,state=%q} %d\n", s.Name, state, v)
			}
		}
		fmt.Fprintln(w, "# TYPE dnslb_vip_priority gauge")
		for _, s := range st {
			fmt.Fprintf(w, "dnslb_vip_priority{instance=%q} %d\n", s.Name, s.Priority)
		}
		fmt.Fprintln(w, "# TYPE dnslb_vip_adverts_received_total counter")
		for _, s := range st {
			fmt.Fprintf(w, "dnslb_vip_adverts_received_total{instance=%q} %d\n", s.Name, s.RxAdverts)
		}
		fmt.Fprintln(w, "# TYPE dnslb_vip_adverts_sent_total counter")
		for _, s := range st {
			fmt.Fprintf(w, "dnslb_vip_adverts_sent_total{instance=%q} %d\n", s.Name, s.TxAdverts)
		}
		fmt.Fprintln(w, "# TYPE dnslb_vip_packets_dropped_total counter")
		for _, s := range st {
			reasons := make([]string, 0, len(s.Drops))
			for r := range s.Drops {
				reasons = append(reasons, r)
			}
			slices.Sort(reasons)
			for _, r := range reasons {
				fmt.Fprintf(w, "dnslb_vip_packets_dropped_total{instance=%q,reason=%q} %d\n", s.Name, r, s.Drops[r])
			}
		}
	})
	return mux
}

// execProbe runs a shell command; exit status 0 means up.
func execProbe(command string) Probe {
	return ProbeFunc(func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.WaitDelay = 100 * time.Millisecond
		if out, err := cmd.CombinedOutput(); err != nil {
			if len(out) > 200 {
				out = out[:200]
			}
			return fmt.Errorf("%s: %w: %s", command, err, out)
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
