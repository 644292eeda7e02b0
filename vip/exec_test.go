package vip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/proctest"
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
				for _, pid := range proctest.PIDs(proctest.Marked(t, marker)) {
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
				pids := proctest.PIDs(proctest.Marked(t, marker))
				return len(pids) == 0, fmt.Sprint(pids)
			})
		})
	}
}
