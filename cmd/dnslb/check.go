package main

import (
	"fmt"
	"io"

	"github.com/dnslb/dnslb/dnslb"
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
// number of problems. A server config goes through the same build as
// `serve` and every reload, so each command names a problem the same way.
func runCheck(configFile string, out, errw io.Writer) int {
	if isVIPConfig(configFile) {
		cfg, err := loadVIPConfig(configFile)
		if err != nil {
			return printProblems(errw, err)
		}
		fmt.Fprintf(out, "%s: ok: %d vip instances\n", configFile, len(cfg.Instances))
		return 0
	}
	g, err := dnslb.Check(func() (*dnslb.Loaded, error) { return loadServerConfig(configFile) })
	if err == nil && len(g.Failed) > 0 {
		err = g.Failed
	}
	if err != nil {
		return printProblems(errw, err)
	}
	records := 0
	for _, z := range g.View.Zones.Zones() {
		records += z.Records()
	}
	for _, w := range g.Warnings {
		fmt.Fprintf(errw, "%s (warning)\n", w)
	}
	fmt.Fprintf(out, "%s: ok: %d zones, %d records\n", displayName(configFile), len(g.View.Zones.Zones()), records)
	return 0
}

// printProblems prints one line per problem; it returns how many.
func printProblems(w io.Writer, err error) int {
	problems := dnslb.ProblemsOf(err)
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
	return len(problems)
}

// reportProblems prints the problems of a config that did not load and
// ends the command with exit status 1.
func reportProblems(w io.Writer, err error) error {
	printProblems(w, err)
	return exitError{code: 1}
}

// locator returns the line of a key path in the config's text; 0 when
// the key is not in it.
func locator(data []byte) func(key string) int {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return nil
	}
	return func(key string) int { return yamlLine(&root, keyPath(key)) }
}

// isVIPConfig reports whether file is a `dnslb vip` config (a top-level
// vip: key) rather than a server config.
func isVIPConfig(file string) bool {
	if file == "" {
		return false
	}
	data, err := readRegularFile(file)
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
