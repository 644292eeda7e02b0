package main

import (
	"context"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
)

// sdNotifier tells systemd how a Type=notify service is doing (see
// contrib/systemd). Outside systemd (no NOTIFY_SOCKET) every call does
// nothing.
type sdNotifier struct{ log zerolog.Logger }

// send delivers one notification. A failure is logged and otherwise
// ignored: systemd's own timeouts act on a service that cannot say it is
// ready, and serving matters more than telling.
func (n sdNotifier) send(lines ...string) {
	state := strings.Join(lines, "\n")
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn().Err(err).Str("state", lines[0]).Msg("sd_notify failed")
	}
}

// ready says start-up (or a reload) has finished: every socket listens.
func (n sdNotifier) ready(status string) {
	n.send(daemon.SdNotifyReady, "STATUS="+status)
}

// reloading says a reload has begun; ready ends it. systemd 253 and later
// want the monotonic time with it, to match the reload to its request.
func (n sdNotifier) reloading() {
	n.send(daemon.SdNotifyReloading, daemon.SdNotifyMonotonicUsec(), "STATUS=reloading")
}

// stopping says shutdown has begun.
func (n sdNotifier) stopping() {
	n.send(daemon.SdNotifyStopping, "STATUS=stopping")
}

// watchdog pings systemd's watchdog (WatchdogSec=) at half its interval
// until ctx ends; wait returns once the pinging goroutine has stopped.
// Without a watchdog it starts nothing.
func (n sdNotifier) watchdog(ctx context.Context) (wait func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn().Err(err).Msg("systemd watchdog not pinged")
	}
	if err != nil || interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.send(daemon.SdNotifyWatchdog)
			}
		}
	}()
	return func() { <-done }
}
