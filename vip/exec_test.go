package vip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/dnstest"
)

// An exec track that hangs past its timeout is killed with everything its
// shell started, also what left the process group with setsid.
func TestExecProbeTimeoutKillsAll(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no /proc to inspect processes")
		}
		t.Skip("needs /proc")
	}
	tests := []struct{ name, command string }{
		{name: "child", command: "sleep 300 & wait"},
		{name: "setsid", command: "setsid sleep 300 & sleep 300"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := fmt.Sprintf("DNSLB_VIP_TEST_MARKER=%d-%d", os.Getpid(), time.Now().UnixNano())
			t.Cleanup(func() {
				for _, pid := range markedPids(t, marker) {
					p, _ := os.FindProcess(pid)
					_ = p.Kill()
				}
			})
			p := execProbe(new(healthcheck.Runner), "export "+marker+"; "+tt.command)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if err := p.Check(ctx); !errors.Is(err, healthcheck.ErrTimeout) {
				t.Fatalf("Check() = %v, want ErrTimeout", err)
			}
			// With a PID namespace nothing is left once Check returns;
			// the process group's SIGKILL may take a moment.
			// Polling external processes: there is no event to wait on.
			dnstest.Eventually(t, 5*time.Second, "no process left running", func() (bool, string) {
				pids := markedPids(t, marker)
				return len(pids) == 0, fmt.Sprint(pids)
			})
		})
	}
}

// markedPids returns the live (not zombie) processes with marker in their
// environment.
func markedPids(t *testing.T, marker string) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(marker)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); err == nil && i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids
}
