package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newVIPCommand is a placeholder until the vip package lands.
func newVIPCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "vip",
		Short: "Run the VRRPv3 virtual-IP agent",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("vip: not built yet")
		},
	}
}
