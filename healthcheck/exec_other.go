//go:build !unix

package healthcheck

import "os/exec"

// fallbackContainment kills the command only: there are no process groups.
// Cancelling the context kills the command's own process (exec's default).
func fallbackContainment() containment {
	return containment{name: ContainNone, prepare: func(*exec.Cmd) {}}
}
