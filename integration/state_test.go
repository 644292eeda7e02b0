package integration

// End-to-end tests of the state file (issue 11): a drain the server cannot
// save is refused and not applied (a full tmpfs), and a state file that
// cannot be read or parsed is never overwritten: serve refuses to start
// over it, and with --ignore-state sets it aside and says so.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// statePool is a pool of the zone's two www records without health checks
// (static members: always up unless drained).
const statePool = "  www.example.test.:\n    policy: round-robin\n"

func stateZone() string {
	return opZone(1, "www     IN A    127.0.0.11\nwww     IN A    127.0.0.12\n")
}

// mountTmpfs mounts a tmpfs of the given size on a fresh directory,
// unmounted when the test ends (after the servers it started are stopped:
// cleanups run last-registered first).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		skipOrFail(t, fmt.Sprintf("mount -t tmpfs on %s: %v", dir, err))
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fillFS writes dir/fill until the filesystem is full (ENOSPC) and returns
// the file's path.
func fillFS(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "fill")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	for {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling %s: %v, want ENOSPC", dir, err)
	}
	// Whatever a partial write left: the filesystem has no page free now.
	if _, err := f.Write([]byte{'x'}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%s not full: %v", dir, err)
	}
	return p
}

// TestStateFullDisk: with the state file on a full tmpfs, `dnslb drain` and
// `dnslb undrain` exit 1 saying the change was NOT applied and why, and the
// server is as it was (status, API, DNS answers). Once there is room the
// same drain works and is in the state file.
func TestStateFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, "1m")
	statePath := filepath.Join(mnt, "dnslb.state.json")
	cfg := opConfig(plainAdmin, "", statePool) + "state_file: " + statePath + "\n"
	o := newOpServer(t, stateZone(), cfg)
	dnstest.Eventually(t, startupDeadline, "the state file is written on the tmpfs", func() (bool, string) {
		_, err := os.Stat(statePath)
		return err == nil, fmt.Sprint(err)
	})

	notApplied := func(t *testing.T, res cliResult, what string) {
		t.Helper()
		t.Logf("%s on a full disk: exit %d: %s", what, res.code, strings.TrimSpace(res.stderr))
		if res.code != 1 {
			t.Errorf("%s on a full disk: want exit 1; %v", what, res)
		}
		for _, want := range []string{"NOT applied", "no space left on device", ip11} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%s on a full disk: stderr does not say %q:\n%s", what, want, res.stderr)
			}
		}
	}
	// wantState checks ip11's state in `dnslb status`, the API and DNS.
	wantState := func(t *testing.T, when, state string) {
		t.Helper()
		res := o.cli("status")
		if res.code != 0 {
			t.Fatalf("%s: dnslb status: %v", when, res)
		}
		if f := strings.Fields(statusRow(t, res.stdout, ip11)); f[2] != state {
			t.Errorf("%s: `dnslb status` shows %s %s, want %s:\n%s", when, ip11, f[2], state, res.stdout)
		}
		m := o.poolMember("www.example.test.", ip11)
		if m.State != state || (m.Override == nil) != (state == "up") {
			t.Errorf("%s: API member %s: %+v (override %+v), want %s", when, ip11, m, m.Override, state)
		}
		want := []string{ip11, ip12}
		if state != "up" {
			want = want[1:]
		}
		if got := poolAddrs(t, o.dnsAddr, "www.example.test", dns.TypeA); !sameAddrs(got, want...) {
			t.Errorf("%s: www answers %v, want %v", when, got, want)
		}
	}

	fill := fillFS(t, mnt)
	notApplied(t, o.cli("drain", ip11, "--reason", "full disk"), "dnslb drain")
	wantState(t, "after the refused drain", "up")
	if len(o.findLog("member override refused")) == 0 {
		t.Errorf("the server did not log the refused drain")
	}
	_, ov, _ := readState(t, mnt)
	if _, ok := ov[ip11]; ok {
		t.Errorf("the state file has the refused drain: %+v", ov)
	}

	// Room again: the drain works and is saved.
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	if res := o.cli("drain", ip11, "--reason", "room again"); res.code != 0 {
		t.Fatalf("dnslb drain with room on the disk: %v", res)
	}
	wantState(t, "after the drain", "drained")
	if _, ov, _ := readState(t, mnt); ov[ip11].Mode != admin.OverrideDrain {
		t.Errorf("state file overrides %+v, want %s drained", ov, ip11)
	}

	// Full again: the undrain is refused and the member stays drained.
	fillFS(t, mnt)
	notApplied(t, o.cli("undrain", ip11), "dnslb undrain")
	wantState(t, "after the refused undrain", "drained")
}

// serveRefused runs `dnslb serve` on o's directory (o stopped) and wants
// it to exit non-zero without serving; it returns the output.
func (o *opServer) serveRefused(t *testing.T) string {
	t.Helper()
	o.writeConfig()
	p, err := startProc(t, dnslbBin, "serve", "--config", o.cfgPath, "--listen", o.dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	err = waitAnswering(p, o.dnsAddr, "example.test.")
	p.stop()
	out := p.out.String()
	var ee *exec.ExitError
	if err == nil || !errors.As(p.err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("dnslb serve over an unusable state file: want a non-zero exit before serving; answering: %v, exit: %v\n%s", err, p.err, out)
	}
	return out
}

// TestStateUnusableFile: a state file that cannot be parsed (truncated, with
// a drain in it) or read (a directory) is never overwritten. serve refuses
// to start, naming the file and the problem, and leaves the file as it is;
// with --ignore-state it starts, with the file kept aside as
// PATH.corrupt-TIMESTAMP and an error in the log saying its drains were not
// restored.
func TestStateUnusableFile(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, path string, raw []byte) // raw: the good file, with a drain
		want  string
		isDir bool
	}{
		{name: "truncated", want: "cannot be parsed", spoil: func(t *testing.T, path string, raw []byte) {
			if err := os.WriteFile(path, raw[:len(raw)/2], 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "directory", want: "is a directory", isDir: true, spoil: func(t *testing.T, path string, raw []byte) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(path, "inside"), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := newOpServer(t, stateZone(), opConfig(plainAdmin, "", statePool))
			if res := o.cli("drain", ip11, "--reason", "maint"); res.code != 0 {
				t.Fatalf("dnslb drain: %v", res)
			}
			if took, err := o.Term(stopDeadline + 3*time.Second); err != nil {
				t.Fatalf("dnslb exited with %v after SIGTERM (took %v)", err, took)
			}
			raw, ov, _ := readState(t, o.dir)
			if ov[ip11].Mode != admin.OverrideDrain {
				t.Fatalf("state file before spoiling it has no drain of %s:\n%s", ip11, raw)
			}
			path := filepath.Join(o.dir, "dnslb.state.json")
			tc.spoil(t, path, raw)
			snapshot := func(p string) string {
				t.Helper()
				if tc.isDir {
					p = filepath.Join(p, "inside")
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				return string(b)
			}
			before := snapshot(path)

			out := o.serveRefused(t)
			t.Logf("dnslb serve over a %s state file:\n%s", tc.name, strings.TrimSpace(out))
			for _, want := range []string{path, tc.want, "--ignore-state"} {
				if !strings.Contains(out, want) {
					t.Errorf("dnslb serve refusing: output does not say %q", want)
				}
			}
			if st, err := os.Stat(path); err != nil || st.IsDir() != tc.isDir || snapshot(path) != before {
				t.Errorf("the refused start changed %s: %v", path, err)
			}
			if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
				t.Errorf("set aside without --ignore-state: %v", m)
			}

			o.serveArgs = []string{"--ignore-state"}
			o.Start()
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 || !regexp.MustCompile(`\.corrupt-\d{8}T\d{6}Z$`).MatchString(aside[0]) {
				t.Fatalf("--ignore-state: files set aside %v, want one PATH.corrupt-YYYYMMDDThhmmssZ", aside)
			}
			if got := snapshot(aside[0]); got != before {
				t.Errorf("%s: %q, want what the state file held: %q", aside[0], got, before)
			}
			logged := false
			for _, l := range o.findLog("NOT restored") {
				if l.str("level") == "error" && l.str("file") == path && l.str("moved_to") == aside[0] && strings.Contains(l.str("problem"), tc.want) {
					logged = true
				}
			}
			if !logged {
				t.Errorf("no error log line saying %s was set aside as %s (%s) and its drains were NOT restored", path, aside[0], tc.want)
			}
			// Started without it, as asked: the drain is gone, and new
			// changes go to a new file.
			if m := o.poolMember("www.example.test.", ip11); m.State != "up" {
				t.Errorf("--ignore-state: %s %+v, want up", ip11, m)
			}
			if res := o.cli("drain", ip12, "--reason", "after"); res.code != 0 {
				t.Fatalf("dnslb drain: %v", res)
			}
			if _, ov, _ := readState(t, o.dir); ov[ip12].Reason != "after" || len(ov) != 1 {
				t.Errorf("new state file overrides %+v, want only %s", ov, ip12)
			}
			o.serveArgs = nil
			o.Restart()
			if m := o.poolMember("www.example.test.", ip12); m.State != "drained" {
				t.Errorf("after a restart on the new state file: %s %+v, want drained", ip12, m)
			}
			if _, err := os.Lstat(aside[0]); err != nil {
				t.Errorf("the copy set aside is gone: %v", err)
			}
		})
	}
}
