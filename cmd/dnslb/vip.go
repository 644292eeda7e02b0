package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/dnslb/dnslb/dnslb"

	"github.com/dnslb/dnslb/vip"
	"github.com/spf13/cobra"
)

// loadVIPConfig reads and validates the VIP agent's file. `dnslb check` can
// use it to check a vip file.
func loadVIPConfig(file string) (vip.Config, error) {
	var cfg vip.Config
	if file == "" {
		return cfg, fmt.Errorf("vip: --config is required")
	}
	data, err := readConfig(file, nil, &cfg)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, placeKeyed(file, locator(data), err)
	}
	return cfg, nil
}

func newVIPCommand() *cobra.Command {
	var configFile string
	var checkOnly bool
	cmd := &cobra.Command{
		Use:   "vip --config FILE",
		Short: "Run the VRRPv3 virtual-IP agent (interoperates with keepalived)",
		Long: `Run the VRRPv3 (RFC 5798) agent: elect a master among the hosts that share a
virtual router ID and move the virtual addresses to it. Needs CAP_NET_ADMIN and
CAP_NET_RAW. On SIGTERM/SIGINT a master sends a priority-0 advertisement and
removes its addresses, so a backup takes over after Skew_Time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadVIPConfig(configFile)
			if err != nil {
				return err
			}
			if checkOnly {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d vip instances\n", configFile, len(cfg.Instances))
				return nil
			}
			log := newLogger(cfg.Log.Level, cfg.Log.Format, cmd.ErrOrStderr())
			agent, err := vip.New(cfg, log, vip.Options{})
			if err != nil {
				return err
			}
			defer agent.Close()
			// Its sockets are open: systemd may go on. On SIGTERM it is
			// told before the priority-0 advertisement goes out.
			ctx := cmd.Context()
			sd := sdNotifier{log: log}
			sd.ready(fmt.Sprintf("running %d vip instances", len(cfg.Instances)))
			// The agent stops only once STOPPING=1 is sent: sent from
			// an AfterFunc of ctx alone, it raced the agent's return and
			// the process's exit.
			runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
			defer stopRun()
			unstop := context.AfterFunc(ctx, func() {
				sd.stopping()
				stopRun()
			})
			defer unstop()
			wdCtx, stopWatchdog := context.WithCancel(ctx)
			waitWatchdog := sd.watchdog(wdCtx)
			defer func() {
				stopWatchdog()
				waitWatchdog()
			}()
			return agent.Run(runCtx)
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "VIP agent config file (YAML)")
	cmd.Flags().BoolVar(&checkOnly, "check", false, "validate the config and exit")
	return cmd
}

// placeKeyed turns "key.path: what" errors into problems at the key's line.
func placeKeyed(file string, locate func(string) int, err error) dnslb.Problems {
	var out dnslb.Problems
	for _, p := range dnslb.ProblemsOf(err) {
		key, msg, ok := strings.Cut(p.Msg, ": ")
		if ok && !strings.ContainsAny(key, " \"") {
			p.Key, p.Msg = key, msg
			if locate != nil {
				p.Line = locate(key)
			}
		}
		p.File = displayName(file)
		out = append(out, p)
	}
	return out
}
