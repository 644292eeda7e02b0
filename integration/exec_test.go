package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/proctest"
)

// TestExecCheckReapsDetached runs a pool whose exec check starts a `setsid
// sleep` and a double-forked sleep on every run, then exits 0 (member .11)
// or hangs past its timeout (member .12). Processes are found by a marker
// in their environment that names the member and the run: while dnslb
// runs, nothing of an earlier run may be alive, and once dnslb has stopped
// nothing at all.
func TestExecCheckReapsDetached(t *testing.T) {
	requireTool(t, "setsid")
	marker := fmt.Sprintf("DNSLB_LEAK_MARKER=%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		for _, p := range markedProcs(t, marker) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
	runs := t.TempDir()
	script := filepath.Join(runs, "check.sh")
	// Each run counts itself in a file per member, and marks what it starts
	// with the member and its run number.
	if err := os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
f=%q/runs.$DNSLB_CHECK_ADDRESS
echo >> "$f"
export %s:$DNSLB_CHECK_ADDRESS:$(wc -l < "$f")
setsid sleep 300 &
(sleep 300 &) &
[ "$DNSLB_CHECK_ADDRESS" = 127.0.0.12 ] && sleep 300
exit 0
`, runs, marker)), 0o755); err != nil {
		t.Fatal(err)
	}
	o := newOpServer(t, opZone(1, "www IN A 127.0.0.11\nwww IN A 127.0.0.12\n"), cacheCfg+fmt.Sprintf(`pools:
  www.example.test.:
    check: {type: exec, command: [%q], interval: 200ms, timeout: 150ms, rise: 1, fall: 1}
`, script))

	runCount := func(member string) int {
		b, _ := os.ReadFile(filepath.Join(runs, "runs."+member))
		return bytes.Count(b, []byte("\n"))
	}
	dnstest.Eventually(t, 30*time.Second, "six runs of each member's check", func() (bool, string) {
		a, b := runCount(ip11), runCount(ip12)
		return a >= 6 && b >= 6, fmt.Sprintf("%d and %d runs", a, b)
	})
	// Read the counts first: a process of run n is alive only while run n
	// is the last one counted (or, briefly, the one before it).
	counts := map[string]int{ip11: runCount(ip11), ip12: runCount(ip12)}
	for _, p := range markedProcs(t, marker) {
		if p.run < counts[p.member]-1 {
			t.Errorf("process %d (%s) of run %d of %s's check still alive after %d runs", p.pid, p.cmd, p.run, p.member, counts[p.member])
		}
	}

	if took, err := o.Term(stopDeadline + 3*time.Second); err != nil {
		t.Fatalf("dnslb exited with %v after SIGTERM (took %v)", err, took)
	}
	// dnslb waits for its checks, and a check returns once everything it
	// started is dead: no poll.
	if left := markedProcs(t, marker); len(left) > 0 {
		t.Errorf("processes left behind after dnslb stopped: %+v", left)
	}
	if lines := o.findLog("exec checks run contained"); len(lines) != 1 {
		t.Errorf("log lines on containment: %v, want 1", lines)
	} else {
		t.Logf("containment: %s", lines[0].str("containment"))
	}
}

// markedProc is a live process whose environment has the test's marker.
type markedProc struct {
	pid    int
	cmd    string
	member string
	run    int
}

// markedProcs returns the live (not zombie) processes whose environment has
// marker=value, value being "member:run".
func markedProcs(t *testing.T, marker string) []markedProc {
	t.Helper()
	var out []markedProc
	for _, p := range proctest.Marked(t, marker) {
		for _, kv := range p.Environ {
			rest, ok := strings.CutPrefix(kv, marker+":")
			if !ok {
				continue
			}
			member, run, _ := strings.Cut(rest, ":")
			n, _ := strconv.Atoi(strings.TrimSpace(run))
			out = append(out, markedProc{pid: p.PID, cmd: p.Cmdline, member: member, run: n})
		}
	}
	return out
}
