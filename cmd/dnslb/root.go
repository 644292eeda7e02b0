package main

import (
	"strings"

	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	build := currentBuild()
	root := &cobra.Command{
		Use:           "dnslb",
		Short:         "Authoritative DNS load balancer with health checks, and a VRRPv3 agent",
		Version:       build.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// The template is printed as is: the build's text has no template
	// actions.
	root.SetVersionTemplate(strings.ReplaceAll(build.String(), "{{", ""))
	root.AddCommand(newServeCommand(), newCheckCommand(), newVIPCommand(),
		newStatusCommand(), newDrainCommand(), newUndrainCommand(), newReloadCommand(),
		newDNSSECCommand())
	return root
}
