package proctest

import (
	"os/exec"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
)

func TestMarkedFindsAndForgets(t *testing.T) {
	const marker = "PROCTEST_MARK=7f3a"
	cmd := exec.Command("sleep", "30")
	cmd.Env = append(cmd.Environ(), marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := Marked(t, marker)
	if len(got) != 1 || got[0].PID != cmd.Process.Pid || got[0].Cmdline != "sleep 30" {
		t.Fatalf("Marked = %+v, want the sleep %d", got, cmd.Process.Pid)
	}
	_ = cmd.Process.Kill()
	// Killed but not yet reaped: a zombie, which counts as gone.
	dnstest.Until(t, 5*time.Second, "a killed process leaves the list", func() bool { return len(Marked(t, marker)) == 0 })
	_ = cmd.Wait()
	if !Gone(cmd.Process.Pid) {
		t.Error("a reaped process is not Gone")
	}
}
