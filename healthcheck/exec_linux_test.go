package healthcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// markedProcesses returns the live (not zombie) processes whose argv or
// environment contains marker.
func markedProcesses(t *testing.T, marker string) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		found := false
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", d.Name(), f))
			if err == nil && bytes.Contains(b, []byte(marker)) {
				found = true
			}
		}
		if found && !processGone(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestExecCheckerReapsDetached runs checks whose commands leave processes
// behind in a new session (setsid) or orphaned by a double fork, and wants
// none of them alive once Check returns, whether the command exited 0 or
// timed out.
func TestExecCheckerReapsDetached(t *testing.T) {
	requireProc(t)
	if _, err := exec.LookPath("setsid"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no setsid: ", err)
		}
		t.Skip("needs setsid: ", err)
	}
	// Each detached shell starts two sleeps, then says so; the command waits
	// for that before it exits (or hangs), so the escape has happened.
	const spawn = `sleep 300 & sleep 300 & touch "$1"; wait`
	tests := []struct {
		name    string
		detach  string // shell that starts spawn detached; $1 is the flag file
		finish  string // what the command does once the escapees run
		timeout time.Duration
		wantErr string // "" (healthy), "timeout" or "exit"
	}{
		{name: "setsid, exit 0", detach: `setsid sh -c '` + spawn + `' sh "$1" &`, finish: "exit 0"},
		{name: "double fork, exit 0", detach: `(sh -c '` + spawn + `' sh "$1" &) &`, finish: "exit 0"},
		{name: "setsid, exit 1", detach: `setsid sh -c '` + spawn + `' sh "$1" &`, finish: "exit 1",
			wantErr: "exit"},
		{name: "setsid, timeout", detach: `setsid sh -c '` + spawn + `' sh "$1" &`, finish: "sleep 300",
			timeout: 300 * time.Millisecond, wantErr: "timeout"},
		{name: "double fork, timeout", detach: `(sh -c '` + spawn + `' sh "$1" &) &`, finish: "sleep 300",
			timeout: 300 * time.Millisecond, wantErr: "timeout"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := fmt.Sprintf("DNSLB_TEST_LEAK_MARKER=%d-%d-%d", os.Getpid(), i, time.Now().UnixNano())
			t.Cleanup(func() {
				for _, pid := range markedProcesses(t, marker) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			flag := filepath.Join(t.TempDir(), "started")
			script := tt.detach + `
while [ ! -e "$1" ]; do sleep 0.01; done
` + tt.finish
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			c := mustChecker(t, Spec{Type: "exec", Timeout: timeout, Interval: 20 * time.Second,
				Command: []string{"/usr/bin/env", marker, "/bin/sh", "-c", script, "sh", flag}})
			err := c.Check(context.Background(), netip.MustParseAddrPort("127.0.0.1:1"))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Check() = %v, want nil", err)
			case tt.wantErr == "timeout" && !errors.Is(err, ErrTimeout):
				t.Fatalf("Check() = %v, want ErrTimeout", err)
			case tt.wantErr == "exit":
				checkResult(t, err, "exit status 1")
			}
			if _, err := os.Stat(flag); err != nil {
				t.Fatalf("the detached processes never started: %v", err)
			}
			// Check returns only once everything it started is dead and
			// reaped: no poll.
			if pids := markedProcesses(t, marker); len(pids) > 0 {
				t.Errorf("processes left behind by the check: %v", pids)
			}
		})
	}
}
