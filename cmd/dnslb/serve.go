package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dnslb/dnslb/dnslb"
	"github.com/dnslb/dnslb/examples"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/zones"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// shutdownGrace bounds how long in-flight TCP queries may take on stop.
const shutdownGrace = 5 * time.Second

// serverConfig is a loaded, validated config plus where its files live.
type serverConfig struct {
	cfg  dnslb.Config
	file string // "" for the embedded example
	root dnslb.ZoneRoot
}

// loadServerConfig reads the config (or the embedded example when file is
// empty) and validates it.
func loadServerConfig(file string) (*serverConfig, error) {
	sc := &serverConfig{file: file}
	var fallback []byte
	if file == "" {
		b, err := fs.ReadFile(examples.FS, examples.ConfigFile)
		if err != nil {
			return nil, err
		}
		fallback = b
		sc.root = dnslb.ZoneRoot{FS: examples.FS, Display: "(embedded example)"}
	} else {
		dir := filepath.Dir(file)
		sc.root = dnslb.ZoneRoot{FS: os.DirFS(dir), Display: dir, Dir: dir}
	}
	defaults := map[string]any{
		"listen": []string{}, "log|level": "", "log|format": "", "admin": "", "udp_size": 0,
		"tcp|idle_timeout": "0s", "tcp|max_connections": 0,
	}
	if err := readConfig(file, fallback, defaults, &sc.cfg); err != nil {
		return nil, err
	}
	if err := sc.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", displayName(file), err)
	}
	sc.cfg.ApplyDefaults()
	return sc, nil
}

func newServeCommand() *cobra.Command {
	var (
		configFile string
		listen     []string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the configured zones (the embedded example without --config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := loadServerConfig(configFile)
			if err != nil {
				return err
			}
			if len(listen) > 0 {
				sc.cfg.Listen = listen
			}
			return runServer(cmd.Context(), sc)
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "config file (YAML); without it the embedded example is served")
	cmd.Flags().StringArrayVarP(&listen, "listen", "l", nil, "address:port to serve on, UDP and TCP (repeatable; overrides the config)")
	return cmd
}

func runServer(ctx context.Context, sc *serverConfig) error {
	log := newLogger(sc.cfg.Log.Level, sc.cfg.Log.Format, os.Stderr)
	set, err := dnslb.LoadZones(&sc.cfg, sc.root)
	if err != nil {
		for _, e := range zones.Errors(err) {
			log.Error().Str("file", e.File).Int("line", e.Line).Str("problem", e.Msg).Msg("zone not loaded")
		}
		return errors.New("zones did not load; nothing served")
	}
	for _, z := range set.Zones() {
		for _, w := range z.Warnings {
			log.Warn().Str("file", w.File).Int("line", w.Line).Str("problem", w.Msg).Msg("zone warning")
		}
		log.Info().Str("zone", z.Origin).Uint32("serial", z.Serial()).Int("records", z.Records()).Str("file", z.File).Msg("zone loaded")
	}
	view, err := dnslb.BuildView(&sc.cfg, set)
	if err != nil {
		for _, line := range splitJoined(err) {
			log.Error().Str("config", displayName(sc.file)).Str("problem", line).Msg("pool not built")
		}
		return errors.New("pools did not build; nothing served")
	}
	sched := healthcheck.NewScheduler()
	defer sched.Close()
	if err := sched.Set(view.Targets); err != nil {
		return fmt.Errorf("health checks: %w", err)
	}
	transitions, unsubscribe := sched.Subscribe()
	defer unsubscribe()
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		logTransitions(transitions, view, log)
	}()
	if err := sched.Start(ctx); err != nil {
		return fmt.Errorf("health checks: %w", err)
	}
	for name, p := range view.Pools {
		log.Info().Str("pool", name).Str("policy", p.Policy.String()).Int("members", len(p.V4)+len(p.V6)).Msg("pool ready")
	}
	auth := dnslb.NewAuthority(view, uint16(sc.cfg.UDPSize), sched)
	srv := dnslb.NewServer(dnslb.ServerOptions{
		Listen:         sc.cfg.Listen,
		TCPIdleTimeout: sc.cfg.TCP.IdleTimeout,
		MaxTCPConns:    sc.cfg.TCP.MaxConnections,
	}, auth, log)
	if err := srv.Start(); err != nil {
		return err
	}
	log.Info().Str("version", version).Strs("listen", srv.Addrs()).Msg("dnslb serving")
	<-ctx.Done()
	log.Info().Msg("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("shutdown cut short")
	}
	sched.Close()
	unsubscribe()
	<-logDone
	log.Info().Msg("stopped")
	return nil
}

// logTransitions logs every health transition until the channel closes.
func logTransitions(ch <-chan healthcheck.Transition, view *dnslb.View, log zerolog.Logger) {
	for tr := range ch {
		ev := log.Warn()
		if tr.To.Up {
			ev = log.Info()
		}
		ev = ev.Strs("pools", view.PoolsOf(tr.Key)).
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
	}
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}
