package healthcheck

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Environment variables set for exec checks.
const (
	EnvCheckAddress = "DNSLB_CHECK_ADDRESS"
	EnvCheckPort    = "DNSLB_CHECK_PORT"
)

// execChecker runs a command; exit status 0 means healthy.
type execChecker struct {
	argv    []string
	timeout time.Duration
	run     *Runner
}

func newExecChecker(s Spec) *execChecker {
	return &execChecker{argv: append([]string(nil), s.Command...), timeout: s.Timeout, run: new(Runner)}
}

func (c *execChecker) Check(ctx context.Context, addr netip.AddrPort) error {
	err := c.run.Run(ctx, c.argv, []string{
		EnvCheckAddress + "=" + addr.Addr().String(),
		EnvCheckPort + "=" + strconv.Itoa(int(addr.Port())),
	}, c.timeout)
	if err != nil {
		return fmt.Errorf("exec check %q: %w", c.argv[0], err)
	}
	return nil
}

// limitedBuffer keeps the last max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// lastLine returns the last non-empty line written, at most 200 bytes.
func (b *limitedBuffer) lastLine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(string(b.buf))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
