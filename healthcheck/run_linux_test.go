package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/proctest"
)

// requireSetsid skips without the setsid program, and fails in CI.
func requireSetsid(t *testing.T) {
	t.Helper()
	requireProc(t)
	if _, err := exec.LookPath("setsid"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no setsid: ", err)
		}
		t.Skip("needs setsid: ", err)
	}
}

// namespaceRunners returns a Runner for each PID namespace containment this
// machine permits, by name; it fails in CI if there is none.
func namespaceRunners(t *testing.T) map[string]*Runner {
	t.Helper()
	out := map[string]*Runner{}
	for _, c := range platformContainments() {
		r := &Runner{candidates: []containment{c}}
		if got := r.Containment(); got == c.name {
			out[c.name] = r
		} else {
			t.Logf("%s not permitted here: %v", c.name, c.probe())
		}
	}
	if len(out) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no PID namespaces permitted")
		}
		t.Skip("PID namespaces not permitted")
	}
	return out
}

// TestExecCheckerReapsDetached runs checks whose commands leave processes
// behind in a new session (setsid) or orphaned by a double fork, and wants
// none of them alive once Check returns, whether the command exited 0,
// failed or timed out, under each containment the machine permits.
func TestExecCheckerReapsDetached(t *testing.T) {
	requireSetsid(t)
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
		{name: "traps TERM, timeout", detach: `setsid sh -c '` + spawn + `' sh "$1" &`,
			finish: `trap "" TERM INT HUP; sleep 300`, timeout: 300 * time.Millisecond, wantErr: "timeout"},
	}
	for name, r := range namespaceRunners(t) {
		for i, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				marker := fmt.Sprintf("DNSLB_TEST_LEAK_MARKER=%d-%d-%d", os.Getpid(), i, time.Now().UnixNano())
				t.Cleanup(func() {
					for _, pid := range proctest.PIDs(proctest.Marked(t, marker)) {
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
				c, err := r.NewChecker(Spec{Type: "exec", Timeout: timeout, Interval: 20 * time.Second,
					Command: []string{"/usr/bin/env", marker, "/bin/sh", "-c", script, "sh", flag}})
				if err != nil {
					t.Fatal(err)
				}
				err = c.Check(context.Background(), netip.MustParseAddrPort("127.0.0.1:1"))
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
				if pids := proctest.PIDs(proctest.Marked(t, marker)); len(pids) > 0 {
					t.Errorf("processes left behind by the check: %v", pids)
				}
			})
		}
	}
}

// TestRunnerContainment: the probe picks the first containment that works
// and falls back to the process group when none does.
func TestRunnerContainment(t *testing.T) {
	works := containment{name: "works", probe: func() error { return nil }}
	fails := containment{name: "fails", probe: func() error { return errors.New("not permitted") }}
	tests := []struct {
		name  string
		cands []containment
		want  string
	}{
		{name: "first works", cands: []containment{works, fails}, want: "works"},
		{name: "second works", cands: []containment{fails, works}, want: "works"},
		{name: "none works", cands: []containment{fails}, want: ContainProcessGroup},
		{name: "none to try", cands: []containment{}, want: ContainProcessGroup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{candidates: tt.cands}
			if got := r.Containment(); got != tt.want {
				t.Errorf("Containment() = %q, want %q", got, tt.want)
			}
		})
	}
	// The real probe, as root in CI, finds a PID namespace.
	if os.Getenv("CI") == "true" {
		if got := new(Runner).Containment(); got != ContainPIDNamespace && got != ContainUserPIDNamespace {
			t.Errorf("CI: Containment() = %q, want a PID namespace", got)
		}
	}
}

// TestRunnerUserNamespaceIDs: in a user namespace the command still sees
// dnslb's own uid and gid.
func TestRunnerUserNamespaceIDs(t *testing.T) {
	r, ok := namespaceRunners(t)[ContainUserPIDNamespace]
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no user namespaces permitted")
		}
		t.Skip("no user namespaces here")
	}
	script := fmt.Sprintf(`test "$(id -u)" = %d && test "$(id -g)" = %d && test $$ = 1 || { echo "uid $(id -u) gid $(id -g) pid $$"; exit 1; }`,
		os.Getuid(), os.Getgid())
	if err := r.Run(context.Background(), []string{"/bin/sh", "-c", script}, nil, 10*time.Second); err != nil {
		t.Error(err)
	}
}

// BenchmarkRunTrue measures one run of /bin/true under each containment:
// what an exec check costs on top of the command itself.
func BenchmarkRunTrue(b *testing.B) {
	runners := []*Runner{{candidates: []containment{}}} // process group
	for _, c := range platformContainments() {
		runners = append(runners, &Runner{candidates: []containment{c}})
	}
	for _, r := range runners {
		b.Run(r.Containment(), func(b *testing.B) {
			if r.Containment() == ContainProcessGroup && len(r.candidates) > 0 {
				b.Skip("not permitted here")
			}
			for b.Loop() {
				if err := r.Run(context.Background(), []string{"/bin/true"}, nil, 10*time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
