package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ErrTimeout is wrapped by the error of a probe that did not finish within
// its Spec.Timeout.
var ErrTimeout = errors.New("timed out")

// Checker runs one probe against one address. A nil error means healthy; an
// error says why not.
//
// Check must return promptly once ctx is done: the Scheduler cancels ctx at
// the probe's timeout and waits for Check to return before the next probe of
// the same target (at most one probe in flight). Checkers made by NewChecker
// also apply their Spec.Timeout themselves, so they can be used alone.
// A Checker must be safe for concurrent use: targets with the same check on
// different addresses share one Checker.
type Checker interface {
	Check(ctx context.Context, addr netip.AddrPort) error
}

// CheckerFunc adapts a function to the Checker interface.
type CheckerFunc func(ctx context.Context, addr netip.AddrPort) error

// Check calls f(ctx, addr).
func (f CheckerFunc) Check(ctx context.Context, addr netip.AddrPort) error { return f(ctx, addr) }

// NewChecker returns the Checker for s (with its defaults applied), or an
// error if s is not valid. The address passed to Check is probed as is: port
// selection (Spec.Port) is done by Target.
func NewChecker(s Spec) (Checker, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.Type {
	case TypeTCP:
		return newTCPChecker(s.Timeout), nil
	case TypeHTTP, TypeHTTPS:
		return newHTTPChecker(s)
	case TypeDNS:
		return newDNSChecker(s)
	case TypeExec:
		return newExecChecker(s), nil
	case TypeNone:
		return noneChecker{}, nil
	}
	// Unreachable: Validate rejects unknown types.
	return nil, fmt.Errorf("check.type: unknown check type %q", s.Type)
}

// withTimeout bounds ctx by timeout.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, timeout)
}

// timeoutErr marks err with ErrTimeout when ctx's deadline has passed, so
// that callers can test errors.Is(err, ErrTimeout) whatever layer noticed
// the deadline first.
func timeoutErr(ctx context.Context, err error, timeout time.Duration) error {
	if err == nil || errors.Is(err, ErrTimeout) {
		return err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, err)
	}
	return err
}

// tcpChecker is healthy when a TCP connection can be established.
type tcpChecker struct {
	timeout time.Duration
	poller  *connectPoller // nil: the Go dialer
}

func (c *tcpChecker) Check(ctx context.Context, addr netip.AddrPort) error {
	if c.poller != nil {
		if handled, err := c.poller.connect(ctx, addr, c.timeout); handled {
			if err != nil {
				return fmt.Errorf("tcp check: %w", err)
			}
			return nil
		}
	}
	// The dialer's own timeout: cheaper than a context per probe. No
	// keep-alive (a probe's connection lives for microseconds: setting it
	// up is three wasted system calls), and an address, not a string, so
	// nothing is parsed or resolved.
	d := net.Dialer{Timeout: c.timeout, KeepAlive: -1}
	conn, err := d.DialTCP(ctx, "tcp", netip.AddrPort{}, addr)
	if err != nil {
		return fmt.Errorf("tcp check: %w", timeoutErr(ctx, err, c.timeout))
	}
	// Reset rather than close gracefully: a prober that connects thousands of
	// times a second must not fill its port range with TIME_WAIT sockets.
	_ = conn.SetLinger(0)
	_ = conn.Close()
	return nil
}

// selfTimed is implemented by the checkers of this package, which enforce
// their Spec.Timeout themselves: the Scheduler does not wrap their context
// in another timeout, which would cost a timer and allocations per probe.
type selfTimed interface{ selfTimed() }

func (*tcpChecker) selfTimed()  {}
func (*httpChecker) selfTimed() {}
func (*dnsChecker) selfTimed()  {}
func (*execChecker) selfTimed() {}
func (noneChecker) selfTimed()  {}

// noneChecker is always healthy.
type noneChecker struct{}

func (noneChecker) Check(context.Context, netip.AddrPort) error { return nil }
