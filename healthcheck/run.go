package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Containments a Runner reports.
const (
	// ContainPIDNamespace: each command is PID 1 of a new PID namespace
	// (dnslb has CAP_SYS_ADMIN, e.g. runs as root).
	ContainPIDNamespace = "pid-namespace"
	// ContainUserPIDNamespace: each command is PID 1 of a new PID namespace
	// inside a new user namespace that maps only dnslb's own uid and gid
	// (unprivileged). Set-uid and file-capability programs run without
	// their privilege there.
	ContainUserPIDNamespace = "user+pid-namespace"
	// ContainProcessGroup: the command's process group is killed; what
	// leaves the group (setsid) escapes. Used where namespaces are not
	// permitted.
	ContainProcessGroup = "process-group"
	// ContainNone: only the command itself is killed (no process groups).
	ContainNone = "none"
)

// Runner runs commands (exec checks, VRRP tracks and hooks) so that nothing
// they start outlives them, where the kernel allows: on Linux each command
// is PID 1 of a new PID namespace, and when it exits or is killed the kernel
// kills every process left in the namespace, also those that called setsid
// or were orphaned by a double fork. Elsewhere, or where namespaces are not
// permitted, the command's process group is killed.
//
// The zero value is ready to use and safe for concurrent use. The first run
// (or Containment) probes once which containment works; share one Runner
// per process rather than probing per command.
type Runner struct {
	once sync.Once
	c    containment
	// candidates overrides the platform's containments, tried in order
	// (tests); nil: platformContainments.
	candidates []containment
}

// Containment says how the commands run by r are contained: one of the
// Contain* names. It probes the kernel on first use.
func (r *Runner) Containment() string { return r.containment().name }

// containment is one way of running commands.
type containment struct {
	name string
	// prepare sets cmd up; cancelling cmd's context must SIGKILL it.
	prepare func(cmd *exec.Cmd)
	// afterWait, if set, kills what is left once cmd has been waited for.
	afterWait func(cmd *exec.Cmd)
	// probe, if set, reports whether this containment works here.
	probe func() error
}

func (r *Runner) containment() containment {
	r.once.Do(func() {
		cands := r.candidates
		if cands == nil {
			cands = platformContainments()
		}
		r.c = fallbackContainment()
		for _, c := range cands {
			if c.probe == nil || c.probe() == nil {
				r.c = c
				break
			}
		}
	})
	return r.c
}

// NewChecker is NewChecker with exec checks run by r.
func (r *Runner) NewChecker(s Spec) (Checker, error) {
	c, err := NewChecker(s)
	if ec, ok := c.(*execChecker); ok {
		ec.run = r
	}
	return c, err
}

const (
	// runOutputMax is how much of a command's combined output is kept for
	// the error message.
	runOutputMax = 4 << 10
	// runWaitDelay bounds the wait for the output pipes once the command has
	// exited or been killed (a process that escaped the containment may
	// hold them open).
	runWaitDelay = 250 * time.Millisecond
)

// Run runs argv with env added to dnslb's environment, and returns nil if it
// exits 0. When it ends (exit, failure, or ctx done or timeout, if > 0,
// passed: the command is killed with SIGKILL) the command is killed with
// everything it started, as Containment says. The error includes the last
// line of the command's output, and wraps ErrTimeout after a deadline.
func (r *Runner) Run(ctx context.Context, argv, env []string, timeout time.Duration) error {
	if len(argv) == 0 {
		return errors.New("no command")
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	out := &limitedBuffer{max: runOutputMax}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = runWaitDelay
	c := r.containment()
	c.prepare(cmd) // also makes cancelling ctx SIGKILL the command

	err := cmd.Run()
	if cmd.Process != nil && c.afterWait != nil {
		c.afterWait(cmd) // whatever happened, leave nothing running
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil // exited 0; only an escaped child held the output open
	}
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && timeout > 0:
		err = fmt.Errorf("%w after %s: killed with what it started (%w)", ErrTimeout, timeout, err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("%w: killed with what it started (%w)", ErrTimeout, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: killed with what it started (%w)", ctx.Err(), err)
	}
	if msg := out.lastLine(); msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}
