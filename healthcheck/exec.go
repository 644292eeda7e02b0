package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
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

const (
	// execOutputMax is how much of a command's combined output is kept for
	// the error message.
	execOutputMax = 4 << 10
	// execWaitDelay bounds the wait for the output pipes once the command has
	// exited or been killed (a daemonised grandchild may hold them open).
	execWaitDelay = 250 * time.Millisecond
)

// execChecker runs a command; exit status 0 means healthy.
type execChecker struct {
	argv    []string
	timeout time.Duration
}

func newExecChecker(s Spec) *execChecker {
	return &execChecker{argv: append([]string(nil), s.Command...), timeout: s.Timeout}
}

func (c *execChecker) Check(ctx context.Context, addr netip.AddrPort) error {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(),
		EnvCheckAddress+"="+addr.Addr().String(),
		EnvCheckPort+"="+strconv.Itoa(int(addr.Port())),
	)
	out := &limitedBuffer{max: execOutputMax}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = execWaitDelay
	setProcessGroup(cmd) // Cancel kills the whole group

	err := cmd.Run()
	if cmd.Process != nil {
		// Whatever happened, leave nothing of the check running.
		killProcessGroup(cmd)
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil // exited 0; only a background child held the output open
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %s: process group killed (%w)", ErrTimeout, c.timeout, err)
	}
	if msg := out.lastLine(); msg != "" {
		return fmt.Errorf("exec check %q: %w: %s", c.argv[0], err, msg)
	}
	return fmt.Errorf("exec check %q: %w", c.argv[0], err)
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
