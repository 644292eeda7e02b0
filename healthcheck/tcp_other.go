//go:build !linux

package healthcheck

import (
	"context"
	"net/netip"
	"time"
)

// connectPoller is Linux's (tcp_linux.go); elsewhere the Go dialer probes.
type connectPoller struct{}

func (*connectPoller) connect(context.Context, netip.AddrPort, time.Duration) (bool, error) {
	return false, nil
}

func newTCPChecker(timeout time.Duration) *tcpChecker { return &tcpChecker{timeout: timeout} }
