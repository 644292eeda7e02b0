package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dnslb/dnslb/dnslb"
	"github.com/dnslb/dnslb/zones"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func newCheckCommand() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate a config and its zone files; print every problem as file:line: message",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if n := runCheck(configFile, cmd.OutOrStdout(), cmd.ErrOrStderr()); n > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "config file to check (default: the embedded example)")
	return cmd
}

// runCheck prints problems to errw and a summary to out; it returns the
// number of problems.
func runCheck(configFile string, out, errw io.Writer) int {
	if isVIPConfig(configFile) {
		cfg, err := loadVIPConfig(configFile)
		if err != nil {
			lines := splitJoined(err)
			for _, line := range lines {
				fmt.Fprintln(errw, line)
			}
			return len(lines)
		}
		fmt.Fprintf(out, "%s: ok: %d vip instances\n", configFile, len(cfg.Instances))
		return 0
	}
	sc, err := loadServerConfig(configFile)
	if err != nil {
		var n int
		for _, line := range splitJoined(err) {
			fmt.Fprintln(errw, line)
			n++
		}
		return n
	}
	set, err := dnslb.LoadZones(&sc.cfg, sc.root)
	if err != nil {
		problems := zones.Errors(err)
		for _, e := range problems {
			fmt.Fprintln(errw, e.Error())
		}
		return len(problems)
	}
	if _, err := dnslb.BuildView(&sc.cfg, set); err != nil {
		var n int
		for _, line := range splitJoined(err) {
			fmt.Fprintln(errw, locateConfigProblem(configFile, line))
			n++
		}
		return n
	}
	records := 0
	for _, z := range set.Zones() {
		for _, w := range z.Warnings {
			fmt.Fprintf(errw, "%s (warning)\n", w.Error())
		}
		records += z.Records()
	}
	fmt.Fprintf(out, "%s: ok: %d zones, %d records\n", displayName(configFile), len(set.Zones()), records)
	return 0
}

// locateConfigProblem prefixes a "key.path: what" problem found after
// decoding (e.g. a pool member that is not in the zone) with the config
// file and the line of that key.
func locateConfigProblem(file, problem string) string {
	path, _, _ := strings.Cut(problem, ": ")
	if file != "" {
		if data, err := os.ReadFile(file); err == nil {
			var root yaml.Node
			if yaml.Unmarshal(data, &root) == nil {
				if line := yamlLine(&root, keyPath(path)); line > 0 {
					return fmt.Sprintf("%s:%d: %s", file, line, problem)
				}
			}
		}
	}
	return fmt.Sprintf("%s: %s", displayName(file), problem)
}

// isVIPConfig reports whether file is a `dnslb vip` config (a top-level
// vip: key) rather than a server config.
func isVIPConfig(file string) bool {
	if file == "" {
		return false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	var top map[string]any
	if yaml.Unmarshal(data, &top) != nil {
		return false
	}
	_, ok := top["vip"]
	return ok
}

// splitJoined turns an errors.Join tree into one line per problem, each
// prefixed like its parent ("file: key: problem").
func splitJoined(err error) []string {
	var prefix string
	for {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			var out []string
			for _, e := range j.Unwrap() {
				for _, line := range splitJoined(e) {
					out = append(out, prefix+line)
				}
			}
			return out
		}
		w := errors.Unwrap(err)
		if w == nil {
			return []string{prefix + err.Error()}
		}
		// fmt.Errorf("%s: %w") chains: keep the text before the wrapped one.
		outer := err.Error()
		inner := w.Error()
		if len(outer) > len(inner) && outer[len(outer)-len(inner):] == inner {
			prefix += outer[:len(outer)-len(inner)]
		}
		err = w
	}
}
