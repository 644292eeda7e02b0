package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dnslb/dnslb/dnslb"
	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/examples"
	"github.com/spf13/cobra"
)

// shutdownGrace bounds how long in-flight TCP queries may take on stop.
const shutdownGrace = 5 * time.Second

// loadServerConfig reads the config (or the embedded example when file is
// empty): decoding problems come back as dnslb.Problems with their lines;
// the values are validated by the build, which places its problems with
// the returned Locate.
func loadServerConfig(file string) (*dnslb.Loaded, error) {
	l := &dnslb.Loaded{Config: &dnslb.Config{}, File: displayName(file)}
	var fallback []byte
	if file == "" {
		b, err := fs.ReadFile(examples.FS, examples.ConfigFile)
		if err != nil {
			return nil, err
		}
		fallback = b
		l.Root = dnslb.ZoneRoot{FS: examples.FS, Display: "(embedded example)"}
	} else {
		dir := filepath.Dir(file)
		l.Root = dnslb.ZoneRoot{FS: os.DirFS(dir), Display: dir, Dir: dir}
	}
	data, err := readConfig(file, fallback, l.Config)
	if err != nil {
		return nil, err
	}
	l.Locate = locator(data)
	return l, nil
}

func newServeCommand() *cobra.Command {
	var (
		configFile string
		listen     []string
	)
	var ignoreState bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the configured zones (the embedded example without --config)",
		Long: `Serve the configured zones and pools over UDP and TCP, with health checks and
the admin API. Without --config it serves the embedded example on
127.0.0.1:5353.

SIGHUP re-reads the config and every zone (a broken file keeps the previous
data served); SIGTERM or SIGINT stops gracefully, saving the state file
(drains, last health, managed serials). Under a systemd Type=notify unit
(contrib/systemd/dnslb.service) it reports READY=1 once serving,
RELOADING=1/READY=1 around a reload and STOPPING=1, and pings the watchdog
when WatchdogSec= is set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			load := func() (*dnslb.Loaded, error) {
				l, err := loadServerConfig(configFile)
				if err != nil {
					return nil, err
				}
				if len(listen) > 0 {
					l.Config.Listen = listen
				}
				return l, nil
			}
			return runServer(cmd.Context(), configFile, load, ignoreState)
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "config file (YAML); without it the embedded example is served")
	cmd.Flags().StringArrayVarP(&listen, "listen", "l", nil, "address:port to serve on, UDP and TCP (repeatable; overrides the config)")
	cmd.Flags().BoolVar(&ignoreState, "ignore-state", false,
		"start even if the state file cannot be read or parsed: it is renamed aside (.corrupt-TIME) and its drains are not restored")
	return cmd
}

// runServer runs dnslb until ctx ends: SIGHUP reloads config and zones.
func runServer(ctx context.Context, configFile string, load dnslb.Loader, ignoreState bool) error {
	started := time.Now()
	// The logger comes first, so that every later problem is logged; a
	// config that does not even decode is reported as it is.
	l, err := load()
	if err != nil {
		return reportProblems(os.Stderr, err)
	}
	log := newLogger(l.Config.Log.Level, l.Config.Log.Format, os.Stderr)
	rt, err := dnslb.NewRuntime(dnslb.RuntimeOptions{
		Load:       load,
		Log:        log,
		Watch:      configFile != "",
		ConfigFile: configFile,
		// An unreadable state file: set it aside rather than not start.
		IgnoreState: ignoreState,
	})
	if err != nil {
		var se *dnslb.StateFileError
		if errors.As(err, &se) {
			// Not started rather than started without the drains the file
			// may hold: the operator decides.
			return fmt.Errorf("%w; it may hold drains, so it is left as it is and nothing is served: "+
				"fix or remove it, or start with --ignore-state to set it aside (its drains are then not restored)", se)
		}
		problems := dnslb.ProblemsOf(err)
		for _, p := range problems {
			p.Log(log.Error()).Msg("not started")
		}
		return fmt.Errorf("not started: %d problems in the config and zones (listed above); nothing served", len(problems))
	}
	cfg := rt.Config()
	build := currentBuild()
	if err := rt.Metrics().SetBuildInfo(build.Version, build.Commit, build.GoVersion); err != nil {
		log.Warn().Err(err).Msg("build info not exported")
	}
	if err := rt.Start(ctx); err != nil {
		return err
	}
	var adminSrv *admin.Server
	if cfg.Admin.Listen != "" {
		adminSrv = admin.NewServer(cfg.Admin.Listen, rt, rt.Metrics().Registry, admin.Options{Token: cfg.Admin.Token, AllowedHosts: cfg.Admin.AllowedHosts,
			About: admin.About{Version: build.pageVersion(), Listen: rt.Addrs(), Started: started}}, log)
		if err := adminSrv.Start(); err != nil {
			log.Error().Err(err).Str("admin", cfg.Admin.Listen).Msg("admin server not started")
			adminSrv = nil
		} else {
			log.Info().Str("admin", adminSrv.Addr()).Msg("admin http listening")
		}
	}
	log.Info().Str("version", build.Version).Str("commit", build.Commit).Strs("listen", rt.Addrs()).Msg("dnslb serving")
	sd := sdNotifier{log: log}
	serving := "serving on " + strings.Join(rt.Addrs(), " ")
	sd.ready(serving)
	wdCtx, stopWatchdog := context.WithCancel(ctx)
	waitWatchdog := sd.watchdog(wdCtx)
	defer func() {
		stopWatchdog()
		waitWatchdog()
	}()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-hup:
			log.Info().Msg("SIGHUP: reloading")
			// Reloaded here rather than requested, so that systemd hears
			// when the reload is over (Reload logs its own problems; the
			// old data stays served). A reload is bounded by its timeout.
			sd.reloading()
			status := serving
			if err := rt.Reload(); err != nil {
				status += "; the last reload failed (see the log), serving the previous data"
			}
			sd.ready(status)
		}
	}
	sd.stopping()
	log.Info().Msg("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if adminSrv != nil {
		_ = adminSrv.Shutdown(sctx)
	}
	if err := rt.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("shutdown cut short")
	}
	log.Info().Msg("stopped")
	return nil
}
