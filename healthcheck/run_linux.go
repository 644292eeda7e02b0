package healthcheck

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// platformContainments returns the PID namespace containments to try, best
// first: a plain PID namespace needs CAP_SYS_ADMIN; without it, a user
// namespace mapping only our own ids makes the PID namespace permitted
// where unprivileged user namespaces are.
func platformContainments() []containment {
	var out []containment
	if os.Geteuid() == 0 {
		out = append(out, nsContainment(ContainPIDNamespace, false))
	}
	return append(out, nsContainment(ContainUserPIDNamespace, true))
}

// nsContainment starts each command as PID 1 of a new PID namespace. When
// the namespace's init exits or is killed the kernel SIGKILLs every other
// process in it and reaps them before the init's exit is reported, so once
// Wait returns nothing the command started is left, setsid or not. PID 1
// ignores the signals it has no handler for, except SIGKILL from outside
// the namespace: Cancel kills the process group with SIGKILL. The command
// also leads its own process group, as with the fallback, so a terminal's
// signals do not reach it.
func nsContainment(name string, userNS bool) containment {
	attr := func() *syscall.SysProcAttr {
		a := &syscall.SysProcAttr{Setpgid: true, Cloneflags: syscall.CLONE_NEWPID}
		if userNS {
			a.Cloneflags |= syscall.CLONE_NEWUSER
			a.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}}
			a.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}}
			a.GidMappingsEnableSetgroups = false
		}
		return a
	}
	return containment{
		name: name,
		prepare: func(cmd *exec.Cmd) {
			cmd.SysProcAttr = attr()
			cmd.Cancel = func() error {
				killProcessGroup(cmd)
				return nil
			}
		},
		probe: func() error {
			if userNS {
				// Go writes the id maps through /proc: without it the
				// probe below could not tell their failure from exec's.
				if _, err := os.Stat("/proc/self/uid_map"); err != nil {
					return err
				}
			}
			return probeNamespace(attr())
		},
	}
}

// probeNamespace starts a process in the namespaces attr asks for whose
// exec must fail with ENOTDIR (a path under /dev/null): the kernel has
// created the namespaces and Go has written the id maps by then, so that
// error means they work, and any other (EPERM, EINVAL, ENOSPC, EUSERS) that
// the clone failed. No program runs, and os.StartProcess reaps the child.
func probeNamespace(attr *syscall.SysProcAttr) error {
	const path = "/dev/null/dnslb-namespace-probe"
	p, err := os.StartProcess(path, []string{path}, &os.ProcAttr{Sys: attr})
	if err == nil {
		// Cannot happen (/dev/null is no directory); do not leave it running.
		_ = p.Kill()
		_, _ = p.Wait()
		return nil
	}
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return fmt.Errorf("namespaces not permitted: %w", err)
}
