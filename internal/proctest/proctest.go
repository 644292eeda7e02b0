// Package proctest finds the processes a test started, by a marker in
// their command line or environment, through /proc: what a test of
// process containment needs to prove that nothing was left behind.
package proctest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Proc is a live process that carries the marker.
type Proc struct {
	PID int
	// Cmdline is the argv joined by spaces.
	Cmdline string
	// Environ is the environment, one KEY=value a string.
	Environ []string
}

// Marked returns the live processes (zombies count as gone) whose command
// line or environment contains marker, other than the test itself.
func Marked(t testing.TB, marker string) []Proc {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	var out []Proc
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, errC := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		env, errE := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if errC != nil && errE != nil {
			continue // gone, or not ours to read
		}
		if !bytes.Contains(cmd, []byte(marker)) && !bytes.Contains(env, []byte(marker)) {
			continue
		}
		if Gone(pid) {
			continue
		}
		p := Proc{PID: pid, Cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if len(kv) > 0 {
				p.Environ = append(p.Environ, string(kv))
			}
		}
		out = append(out, p)
	}
	return out
}

// PIDs returns the process IDs of ps.
func PIDs(ps []Proc) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.PID
	}
	return out
}

// Gone reports whether pid has exited; a zombie counts as gone (it runs
// nothing, and its parent reaps it).
func Gone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may
	// itself hold them.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}
