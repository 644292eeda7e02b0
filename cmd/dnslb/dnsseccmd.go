package main

import (
	"fmt"
	"time"

	"github.com/dnslb/dnslb/dnslb"
	"github.com/spf13/cobra"
)

func newDNSSECCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dnssec",
		Short: "DNSSEC of the zones signed online",
	}
	var configFile string
	var withKeys bool
	ds := &cobra.Command{
		Use:   "ds ZONE",
		Short: "Print the DS records to give the parent zone (the registrar)",
		Long: `Print the DS records (SHA-256) of the key-signing keys the parent of ZONE
should point at now, from the zone's key directory (dnssec.keys). dnslb
makes the keys when it first serves a signed zone; a parent that reads
CDS/CDNSKEY (RFC 7344, RFC 8078) follows key rollovers by itself.`,
		Example: `  dnslb dnssec ds example.com. --config /etc/dnslb/dnslb.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := loadServerConfig(configFile)
			if err != nil {
				return err
			}
			ds, keys, err := dnslb.ParentRecords(l, args[0], time.Now())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, rr := range ds {
				fmt.Fprintln(out, rr.String())
			}
			if withKeys {
				for _, rr := range keys {
					fmt.Fprintln(out, rr.String())
				}
			}
			return nil
		},
	}
	ds.Flags().StringVarP(&configFile, "config", "c", "", "the server's config file")
	ds.Flags().BoolVar(&withKeys, "dnskey", false, "also print the DNSKEY records (for registrars that take those)")
	cmd.AddCommand(ds)
	return cmd
}
