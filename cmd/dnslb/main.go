// Command dnslb is an authoritative DNS server that load-balances names across
// health-checked backends, plus a VRRPv3 agent (dnslb vip) for its own failover.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCommand().ExecuteContext(ctx)
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "dnslb:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a code after the command has already
// reported what went wrong (e.g. `check` printing every problem).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
