package dnslb

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/dnslb/dnslb/fleet"
)

// FleetConfig is the fleet: block: the other dnslb nodes this one shares
// drains, force-downs and health observations with, over
// hashicorp/memberlist.
type FleetConfig struct {
	// Name is the cluster's name; nodes of another name are refused.
	Name string `mapstructure:"name"`
	// Node is this node's name in the fleet (default: the host name).
	Node string `mapstructure:"node"`
	// Bind is the gossip address, host:port, UDP and TCP.
	Bind string `mapstructure:"bind"`
	// Advertise is the address the others reach this node at, if not Bind
	// (NAT, a wildcard Bind).
	Advertise string `mapstructure:"advertise"`
	// Join lists seed nodes, host:port.
	Join []string `mapstructure:"join"`
	// Key is the gossip encryption key: base64 of 16, 24 or 32 bytes.
	// Required unless Bind is a loopback address.
	Key Secret `mapstructure:"key"`
	// Health is how the fleet decides a member's health: local (each
	// node alone, the default), majority or any-up.
	Health string `mapstructure:"health"`
	// ProbesPerTarget is how many nodes probe each target (rendezvous
	// hashing); 0 is every node.
	ProbesPerTarget int `mapstructure:"probes_per_target"`
}

// DefaultFleetPort is memberlist's (and Serf's) usual port.
const DefaultFleetPort = "7946"

// policy returns the health policy; Validate has checked it.
func (f *FleetConfig) policy() fleet.HealthPolicy {
	if f.Health == "" {
		return fleet.Local
	}
	return fleet.HealthPolicy(f.Health)
}

// keys decodes Key; Validate has checked it.
func (f *FleetConfig) keys() [][]byte {
	if f.Key == "" {
		return nil
	}
	k, _ := base64.StdEncoding.DecodeString(string(f.Key))
	return [][]byte{k}
}

func validateFleet(bad func(key, format string, args ...any), f *FleetConfig) {
	if f.Name == "" {
		bad("fleet.name", "missing: name the fleet (nodes of another name are refused)")
	}
	loopback, bindOK := false, false
	if host, _, err := net.SplitHostPort(f.Bind); err != nil {
		bad("fleet.bind", "%q is not host:port", f.Bind)
	} else if a, err := netip.ParseAddr(host); err != nil {
		bad("fleet.bind", "%q: the host must be an IP address", f.Bind)
	} else {
		loopback, bindOK = a.IsLoopback(), true
	}
	if f.Advertise != "" {
		if host, _, err := net.SplitHostPort(f.Advertise); err != nil {
			bad("fleet.advertise", "%q is not host:port", f.Advertise)
		} else if a, err := netip.ParseAddr(host); err != nil || a.IsUnspecified() {
			bad("fleet.advertise", "%q: the host must be an IP address the others can reach", f.Advertise)
		}
	}
	for i, j := range f.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad(fmt.Sprintf("fleet.join[%d]", i), "%q is not host:port", j)
		}
	}
	if f.Key == "" {
		if bindOK && !loopback {
			bad("fleet.key", "missing: gossip off loopback must be encrypted and authenticated (base64 of 32 random bytes: head -c32 /dev/urandom | base64)")
		}
	} else if k, err := base64.StdEncoding.DecodeString(string(f.Key)); err != nil || !slices.Contains([]int{16, 24, 32}, len(k)) {
		bad("fleet.key", "not base64 of 16, 24 or 32 bytes") // never the value
	}
	switch fleet.HealthPolicy(f.Health) {
	case "", fleet.Local, fleet.Majority, fleet.AnyUp:
	default:
		bad("fleet.health", "%q is not local, majority or any-up", f.Health)
	}
	if f.ProbesPerTarget < 0 {
		bad("fleet.probes_per_target", "must not be negative (0: every node probes every target)")
	}
}
