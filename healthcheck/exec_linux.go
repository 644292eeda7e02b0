package healthcheck

// On Linux an exec check runs under a helper: this binary re-executed (via
// /proc/self/exe) with execHelperArg0 as argv[0] and execHelperEnv set. The
// helper makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), runs the
// command, and when the command exits or the helper is told to stop (SIGTERM
// from Cancel on timeout, or from Pdeathsig when dnslb dies) it kills and
// reaps every process left below it before it exits. Whatever a check's
// children do (setsid, double fork), they re-parent to the helper, never to
// init, so none outlives the check. Why not the alternatives:
//   - a process group (other unix systems) is escaped by setsid;
//   - a cgroup v2 with cgroup.kill needs a writable, delegated cgroup, which a
//     service under systemd without Delegate= or a container does not have;
//   - PR_SET_CHILD_SUBREAPER on dnslb itself makes every orphan dnslb's child,
//     and a reaper calling wait4(-1) would steal the exit status os/exec is
//     waiting for; the helper keeps that effect in a process of its own,
//     whose only direct child is the command.
// The helper runs from an init function so that every binary linking this
// package (dnslb and its test binaries) can serve as it without a hook in
// main.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	execHelperArg0 = "dnslb-exec-check"
	execHelperEnv  = "DNSLB_EXEC_HELPER"
)

func init() {
	if len(os.Args) > 1 && os.Args[0] == execHelperArg0 && os.Getenv(execHelperEnv) == "1" {
		os.Exit(runExecHelper(os.Args[1:]))
	}
}

// checkCommand returns a command that runs argv under the helper.
func checkCommand(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = append([]string{execHelperArg0}, argv...)
	return cmd
}

// setProcessGroup puts the helper in a process group of its own, has it told
// to clean up when dnslb dies, and makes cancelling the context tell it to
// stop (it then kills everything below it).
func setProcessGroup(cmd *exec.Cmd) {
	// Set here, after the caller has set cmd.Env, so as not to be lost.
	cmd.Env = append(cmd.Environ(), execHelperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
}

// killProcessGroup kills what is left of the helper's process group: by the
// time Wait returns the helper has reaped everything below it, so this only
// matters if the helper itself was killed (WaitDelay expired).
func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// runExecHelper runs argv, then kills and reaps every descendant, and
// returns the exit code to leave with: the command's, or 128+signal.
func runExecHelper(argv []string) int {
	// Signals first, so a SIGTERM that arrives while the command starts is
	// not lost.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "exec check helper: PR_SET_CHILD_SUBREAPER: %v\n", err)
		return 126
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, execHelperEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 127
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
			_ = cmd.Process.Kill()
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	reapDescendants()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exit.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, err)
		return 126
	}
}

// reapDescendants kills every child of this process and reaps it, until none
// is left. As a subreaper the helper inherits the children of each process it
// reaps (the kernel re-parents them before the parent becomes reapable), so
// the loop ends only when every descendant is gone. It is called only after
// cmd.Wait has returned: no exit status os/exec waits for can be stolen.
func reapDescendants() {
	self := os.Getpid()
	for {
		for _, pid := range childrenOf(self) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_, err := syscall.Wait4(-1, nil, 0, nil)
		if errors.Is(err, syscall.ECHILD) {
			return
		}
	}
}

// childrenOf lists the processes whose parent is ppid, from /proc/*/stat
// (which, unlike /proc/<pid>/task/*/children, needs no kernel option).
func childrenOf(ppid int) []int {
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(ppid) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
