package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "dnslb",
		Short:         "Authoritative DNS load balancer with health checks, and a VRRPv3 agent",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newCheckCommand(), newVIPCommand(),
		newStatusCommand(), newDrainCommand(), newUndrainCommand(), newReloadCommand())
	return root
}
