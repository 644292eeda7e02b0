//go:build unix

package healthcheck

import (
	"os/exec"
	"syscall"
)

// fallbackContainment kills the command's process group.
func fallbackContainment() containment {
	return containment{name: ContainProcessGroup, prepare: setProcessGroup, afterWait: killProcessGroup}
}

// setProcessGroup makes cmd the leader of a new process group, and makes
// cancelling cmd's context kill the whole group, so that children of a shell
// script die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		killProcessGroup(cmd)
		return nil
	}
}

// killProcessGroup kills what is left of cmd's process group. While the
// group has members its id cannot be reused (a pid is not recycled while a
// process group of that id exists); once it is empty the call fails with
// ESRCH, unless the pids wrapped around in between, which the kernel's pid
// allocator makes practically impossible in the microseconds after Wait.
func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
