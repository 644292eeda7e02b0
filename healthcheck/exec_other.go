//go:build !unix

package healthcheck

import "os/exec"

// setProcessGroup is a no-op where process groups do not exist; cancelling
// the context kills the command's own process only.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills cmd's process if it is still running.
func killProcessGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
