//go:build !linux

package vip

import (
	"errors"

	"github.com/rs/zerolog"
)

// openNet: the agent's sockets, netlink and ARP code are Linux-only.
func openNet(instanceSpec, zerolog.Logger) (Net, error) {
	return nil, errors.New("vip: the VRRP agent runs on Linux only")
}
