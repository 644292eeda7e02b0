//go:build !unix

package healthcheck

import (
	"context"
	"os/exec"
)

// setProcessGroup is a no-op where process groups do not exist; cancelling
// the context kills the command's own process only.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills cmd's process if it is still running.
func killProcessGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

// checkCommand returns the command for argv.
func checkCommand(ctx context.Context, argv []string) *exec.Cmd {
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}
