package dnslb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// faultFS is the real filesystem with faults injected on demand, counting
// what the state writer does.
type faultFS struct {
	osStateFS
	mu sync.Mutex
	// Faults: nil for none.
	readErr, writeErr, syncErr, renameErr, syncDirErr error
	ops                                               []string // "create", "write", "sync", "close", "rename", "syncdir"
	renames                                           int      // renames that succeeded
}

func (f *faultFS) record(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
}

func (f *faultFS) fault(p *error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *p
}

func (f *faultFS) set(change func(f *faultFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// writes counts the state files renamed into place.
func (f *faultFS) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renames
}

func (f *faultFS) takeOps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

func (f *faultFS) ReadFile(name string) ([]byte, error) {
	if err := f.fault(&f.readErr); err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return f.osStateFS.ReadFile(name)
}

func (f *faultFS) CreateTemp(dir, pattern string) (stateTemp, error) {
	f.record("create")
	t, err := f.osStateFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultTemp{stateTemp: t, fs: f}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	f.record("rename")
	if err := f.fault(&f.renameErr); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	if err := f.osStateFS.Rename(oldpath, newpath); err != nil {
		return err
	}
	f.mu.Lock()
	f.renames++
	f.mu.Unlock()
	return nil
}

func (f *faultFS) SyncDir(dir string) error {
	f.record("syncdir")
	if err := f.fault(&f.syncDirErr); err != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: err}
	}
	return f.osStateFS.SyncDir(dir)
}

type faultTemp struct {
	stateTemp
	fs *faultFS
}

func (t *faultTemp) Write(p []byte) (int, error) {
	t.fs.record("write")
	if err := t.fs.fault(&t.fs.writeErr); err != nil {
		return 0, &fs.PathError{Op: "write", Path: t.Name(), Err: err}
	}
	return t.stateTemp.Write(p)
}

func (t *faultTemp) Sync() error {
	t.fs.record("sync")
	if err := t.fs.fault(&t.fs.syncErr); err != nil {
		return &fs.PathError{Op: "sync", Path: t.Name(), Err: err}
	}
	return t.stateTemp.Sync()
}

func (t *faultTemp) Close() error {
	t.fs.record("close")
	return t.stateTemp.Close()
}

// stateT0 is the clock of the state tests.
var stateT0 = time.Date(2026, 12, 2, 3, 45, 1, 0, time.UTC)

var (
	member10 = netip.MustParseAddr("192.0.2.10")
	member11 = netip.MustParseAddr("192.0.2.11")
)

// newStateRuntime builds (does not start: no housekeeping runs behind the
// test's back) a Runtime over dir, with its state file read and written
// through ffs unless that is nil.
func newStateRuntime(t *testing.T, dir string, ffs *faultFS, ignore bool, log zerolog.Logger) (*Runtime, error) {
	t.Helper()
	writeZone(t, dir, "1", "")
	opts := RuntimeOptions{Load: baseConfig(dir).load, Log: log, IgnoreState: ignore, Now: func() time.Time { return stateT0 }}
	if ffs != nil {
		opts.stateFS = ffs
	}
	return NewRuntime(opts)
}

func memberState(t *testing.T, rt *Runtime, addr netip.Addr) admin.MemberStatus {
	t.Helper()
	for _, p := range rt.Pools() {
		for _, m := range p.Members {
			if m.Address == addr.String() {
				return m
			}
		}
	}
	t.Fatalf("no member %s in %+v", addr, rt.Pools())
	return admin.MemberStatus{}
}

// diskOverrides reads the overrides in the state file in dir.
func diskOverrides(t *testing.T, dir string) map[string]stateOverride {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, DefaultStateFile))
	if err != nil {
		t.Fatal(err)
	}
	var sf stateFile
	if err := json.Unmarshal(data, &sf); err != nil {
		t.Fatalf("state file: %v\n%s", err, data)
	}
	return sf.Overrides
}

// tempFiles lists the state writer's temporary files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "."+DefaultStateFile+".*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSetOverrideNotPersisted: a change the state file cannot take is
// refused with an error wrapping admin.ErrNotPersisted and the reason, and
// is not applied; the failure of the best-effort saves that follow is
// logged once, and their recovery once.
func TestSetOverrideNotPersisted(t *testing.T) {
	tests := []struct {
		name  string
		fault func(f *faultFS, err error)
		errno syscall.Errno
		want  string // in the error
		// The file was renamed into place before the failure: the change
		// is on disk though refused, until the next save rewrites it.
		renamed bool
	}{
		{"write ENOSPC", func(f *faultFS, err error) { f.writeErr = err }, syscall.ENOSPC, "no space left on device", false},
		{"fsync EIO", func(f *faultFS, err error) { f.syncErr = err }, syscall.EIO, "input/output error", false},
		{"rename EROFS", func(f *faultFS, err error) { f.renameErr = err }, syscall.EROFS, "read-only file system", false},
		{"directory fsync EIO", func(f *faultFS, err error) { f.syncDirErr = err }, syscall.EIO, "syncing directory", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := &faultFS{}
			logs := &logLines{}
			rt, err := newStateRuntime(t, dir, ffs, false, zerolog.New(logs))
			if err != nil {
				t.Fatal(err)
			}
			if err := rt.SetOverride(member11, admin.OverrideDrain, time.Time{}, "before"); err != nil {
				t.Fatal(err)
			}
			ffs.set(func(f *faultFS) { tc.fault(f, tc.errno) })

			for _, c := range []struct {
				addr netip.Addr
				mode admin.OverrideMode
			}{{member10, admin.OverrideDrain}, {member10, admin.OverrideForceDown}, {member11, admin.OverrideNone}} {
				err := rt.SetOverride(c.addr, c.mode, time.Time{}, "refused")
				if !errors.Is(err, admin.ErrNotPersisted) || !errors.Is(err, tc.errno) {
					t.Fatalf("SetOverride(%s, %q) = %v, want an error wrapping ErrNotPersisted and %v", c.addr, c.mode, err, tc.errno)
				}
				for _, s := range []string{"NOT applied", c.addr.String(), DefaultStateFile, tc.want} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
			}
			// Nothing changed: not in memory, not in the answers' overrides,
			// not in what the API shows.
			ovs := maps2slice(rt.cur.Load().Overrides().Clone())
			if len(ovs) != 1 || ovs[0] != member11.String()+" drain" {
				t.Errorf("overrides after refused changes: %v, want only %s drained", ovs, member11)
			}
			if _, ov := rt.auth.Health(); ov.Has(member10) || !ov.Drained(member11) {
				t.Errorf("answer path's overrides changed by a refused change")
			}
			if m := memberState(t, rt, member10); m.State != "up" || m.Override != nil {
				t.Errorf("%s after a refused drain: %+v, want up without override", member10, m)
			}
			if m := memberState(t, rt, member11); m.State != "drained" {
				t.Errorf("%s after a refused undrain: %+v, want drained", member11, m)
			}
			if !tc.renamed {
				if ov := diskOverrides(t, dir); len(ov) != 1 || ov[member11.String()].Reason != "before" {
					t.Errorf("state file after refused changes: %+v", ov)
				}
			}
			if tmp := tempFiles(t, dir); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}

			// Housekeeping retries; a failing disk is logged once, not
			// each second, and its recovery once.
			for range 3 {
				rt.saveIfDirty()
			}
			ffs.set(func(f *faultFS) { tc.fault(f, nil) })
			before := ffs.writes()
			rt.saveIfDirty()
			rt.saveIfDirty()
			if n := ffs.writes() - before; n != 1 {
				t.Errorf("%d writes once the disk works again, want 1 (the retry)", n)
			}
			if n := logs.count("state file not written"); n != 1 {
				t.Errorf("%d warnings for failed saves, want 1", n)
			}
			if n := logs.count("state file written again"); n != 1 {
				t.Errorf("%d recovery messages, want 1", n)
			}
			// The retry wrote what is in memory.
			if ov := diskOverrides(t, dir); len(ov) != 1 || ov[member11.String()].Reason != "before" {
				t.Errorf("state file after the retry: %+v, want only %s drained", ov, member11)
			}
		})
	}
}

func maps2slice(m map[netip.Addr]answer.Override) []string {
	var out []string
	for a, ov := range m {
		out = append(out, a.String()+" "+ov.Mode.String())
	}
	slices.Sort(out)
	return out
}

func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// TestSetOverrideWritesOnce: each change is one write (temp file, write,
// fsync, close, rename, directory fsync), and housekeeping does not write
// the same state again; a later change of health still gets its save.
func TestSetOverrideWritesOnce(t *testing.T) {
	dir := t.TempDir()
	ffs := &faultFS{}
	rt, err := newStateRuntime(t, dir, ffs, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if n := ffs.writes(); n != 0 {
		t.Fatalf("%d writes by NewRuntime, want 0", n)
	}
	rt.saveIfDirty() // the serials of the first load
	if n := ffs.writes(); n != 1 {
		t.Fatalf("%d writes of the loaded state, want 1", n)
	}
	rt.saveIfDirty()
	if n := ffs.writes(); n != 1 {
		t.Fatalf("%d writes with nothing changed, want 1", n)
	}
	ffs.takeOps()

	steps := []struct {
		name   string
		addr   netip.Addr
		mode   admin.OverrideMode
		writes int // writes after the step and a housekeeping round
	}{
		{"drain", member10, admin.OverrideDrain, 2},
		{"force-down", member11, admin.OverrideForceDown, 3},
		{"undrain", member10, admin.OverrideNone, 4},
		{"undrain of a member with no override", member10, admin.OverrideNone, 4},
	}
	for _, s := range steps {
		if err := rt.SetOverride(s.addr, s.mode, time.Time{}, s.name); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n := ffs.writes(); n != s.writes {
			t.Errorf("%s: %d writes, want %d", s.name, n, s.writes)
		}
		rt.saveIfDirty() // housekeeping's next tick
		if n := ffs.writes(); n != s.writes {
			t.Errorf("%s: %d writes after housekeeping, want %d (the change was saved already)", s.name, n, s.writes)
		}
	}
	want := []string{"create", "write", "sync", "close", "rename", "syncdir"}
	if ops := ffs.takeOps(); !slices.Equal(ops, slices.Concat(want, want, want)) {
		t.Errorf("filesystem calls of three changes:\n%v\nwant three times %v", ops, want)
	}
	if ov := diskOverrides(t, dir); len(ov) != 1 || ov[member11.String()].Mode != "force-down" {
		t.Errorf("state file: %+v, want %s forced down", ov, member11)
	}

	// What a health transition does: its own save, once.
	rt.stateDirty.Store(true)
	rt.saveIfDirty()
	rt.saveIfDirty()
	if n := ffs.writes(); n != 5 {
		t.Errorf("%d writes after a health change, want 5", n)
	}
}

// TestLoadStateRemovesStaleTemps: temporary files of writes a crash cut
// short are removed at start; nothing else is.
func TestLoadStateRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale := []string{"." + DefaultStateFile + ".123456", "." + DefaultStateFile + ".987"}
	keep := []string{DefaultStateFile + ".corrupt-20260101T000000Z", "other.json", ".other.json.123"}
	for _, n := range slices.Concat(stale, keep) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logs := &logLines{}
	if _, err := newStateRuntime(t, dir, nil, false, zerolog.New(logs)); err != nil {
		t.Fatal(err)
	}
	for _, n := range stale {
		if _, err := os.Lstat(filepath.Join(dir, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale %s not removed: %v", n, err)
		}
	}
	for _, n := range keep {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed: %v", n, err)
		}
	}
	if n := logs.count("stale temporary state file removed"); n != len(stale) {
		t.Errorf("%d log lines for removed temporary files, want %d", n, len(stale))
	}
}

// TestLoadStateUnusable: a state file that exists but cannot be read or
// parsed is never overwritten. Without IgnoreState NewRuntime refuses,
// naming the file and the problem, and touches nothing; with it the file
// is renamed aside as PATH.corrupt-TIMESTAMP, an error is logged, and the
// runtime starts without its drains.
func TestLoadStateUnusable(t *testing.T) {
	good := fmt.Sprintf(`{"version": 1, "overrides": {"%s": {"mode": "drain", "reason": "maint"}}}`, member10)
	tests := []struct {
		name    string
		content string // the state file's; "" with dir: a directory
		dir     bool
		readErr error
		want    string
	}{
		{name: "truncated", content: good[:len(good)/2], want: "cannot be parsed"},
		{name: "corrupt", content: "\x00\x00\x00\x00garbage", want: "cannot be parsed"},
		{name: "empty", content: "", want: "cannot be parsed"},
		{name: "unknown version", content: `{"version": 2, "overrides": {}}`, want: "version 2"},
		// Entries dnslb never writes: restored, they half applied (an
		// unknown mode) or vanished at the next save.
		{name: "unknown mode", content: `{"version": 1, "overrides": {"192.0.2.10": {"mode": "drained"}}}`, want: `overrides["192.0.2.10"]: mode "drained" is not "drain" or "force-down"`},
		{name: "no mode", content: `{"version": 1, "overrides": {"192.0.2.10": {"reason": "x"}}}`, want: `mode "" is not`},
		{name: "override of a name", content: `{"version": 1, "overrides": {"www": {"mode": "drain"}}}`, want: `overrides["www"]: not an IP address`},
		{name: "override with a zone", content: `{"version": 1, "overrides": {"fe80::1%eth0": {"mode": "drain"}}}`, want: "not an IP address"},
		{name: "mapped address", content: `{"version": 1, "overrides": {"::ffff:192.0.2.10": {"mode": "drain"}}}`, want: "IPv4-mapped address; write it as 192.0.2.10"},
		{name: "one address twice", content: `{"version": 1, "overrides": {"2001:db8::10": {"mode": "drain"}, "2001:DB8::10": {"mode": "force-down"}}}`, want: `overrides["2001:db8::10"]: the same address as overrides["2001:DB8::10"]`},
		{name: "health without port", content: `{"version": 1, "health": [{"address": "192.0.2.10", "check": "tcp", "up": true}]}`, want: `health[0]: address "192.0.2.10" is not address:port`},
		{name: "directory", dir: true, want: "is a directory"},
		{name: "EACCES", content: good, readErr: syscall.EACCES, want: "permission denied"},
		{name: "EIO", content: good, readErr: syscall.EIO, want: "input/output error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, ignore := range []bool{false, true} {
				t.Run(fmt.Sprintf("IgnoreState=%v", ignore), func(t *testing.T) {
					dir := t.TempDir()
					path := filepath.Join(dir, DefaultStateFile)
					if tc.dir {
						if err := os.Mkdir(path, 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(filepath.Join(path, "inside"), []byte(good), 0o644); err != nil {
							t.Fatal(err)
						}
					} else if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
						t.Fatal(err)
					}
					// A stale temporary file: left alone when refusing.
					tmp := filepath.Join(dir, "."+DefaultStateFile+".42")
					if err := os.WriteFile(tmp, []byte("{"), 0o644); err != nil {
						t.Fatal(err)
					}
					ffs := &faultFS{readErr: tc.readErr}
					logs := &logLines{}
					rt, err := newStateRuntime(t, dir, ffs, ignore, zerolog.New(logs))
					aside := path + ".corrupt-20261202T034501Z"
					if !ignore {
						var se *StateFileError
						if !errors.As(err, &se) || se.Path != path {
							t.Fatalf("NewRuntime: %v, want a *StateFileError for %s", err, path)
						}
						if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
							t.Errorf("error %q, want it to name %s and say %q", err, path, tc.want)
						}
						checkUntouched(t, path, tc.dir, tc.content)
						if _, err := os.Lstat(tmp); err != nil {
							t.Errorf("refusing to start removed the temporary file: %v", err)
						}
						if _, err := os.Lstat(aside); !errors.Is(err, fs.ErrNotExist) {
							t.Errorf("set aside without IgnoreState: %v", err)
						}
						return
					}
					if err != nil {
						t.Fatalf("NewRuntime with IgnoreState: %v", err)
					}
					if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("state file still at %s: %v", path, err)
					}
					checkUntouched(t, aside, tc.dir, tc.content)
					if _, err := os.Lstat(tmp); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("stale temporary file not removed: %v", err)
					}
					if !logs.contains(`"level":"error"`) || !logs.contains(aside) || !logs.contains("NOT restored") || !logs.contains(jsonQuoted(tc.want)) {
						t.Errorf("no error log line naming %s, the problem and that its drains were NOT restored:\n%s", aside, strings.Join(logs.lines, ""))
					}
					if m := memberState(t, rt, member10); m.State != "up" {
						t.Errorf("%s restored from an unusable file: %+v", member10, m)
					}
					// The runtime writes its own state from now on.
					if err := rt.SetOverride(member11, admin.OverrideDrain, time.Time{}, "after"); err != nil {
						t.Fatal(err)
					}
					if ov := diskOverrides(t, dir); len(ov) != 1 || ov[member11.String()].Reason != "after" {
						t.Errorf("new state file: %+v", ov)
					}
					checkUntouched(t, aside, tc.dir, tc.content)
				})
			}
		})
	}
}

func checkUntouched(t *testing.T, path string, isDir bool, content string) {
	t.Helper()
	if isDir {
		if st, err := os.Stat(path); err != nil || !st.IsDir() {
			t.Errorf("%s: not the directory it was: %v", path, err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, []byte(content)) {
		t.Errorf("%s: %q, %v; want it unchanged: %q", path, got, err, content)
	}
}

// TestLoadStateSetAsideNeverReplaces: a second unusable file set aside in
// the same second does not replace the first copy; one that cannot be set
// aside is refused even with IgnoreState.
func TestLoadStateSetAsideNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultStateFile)
	aside := path + ".corrupt-20261202T034501Z"
	for _, f := range []struct{ name, content string }{{aside, "first"}, {path, "second"}} {
		if err := os.WriteFile(f.name, []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ffs := &faultFS{renameErr: syscall.EACCES}
	if _, err := newStateRuntime(t, dir, ffs, true, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "could not be set aside") {
		t.Fatalf("NewRuntime with a file that cannot be set aside: %v", err)
	}
	checkUntouched(t, path, false, "second")

	ffs.set(func(f *faultFS) { f.renameErr = nil })
	if _, err := newStateRuntime(t, dir, ffs, true, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	checkUntouched(t, aside, false, "first")
	checkUntouched(t, aside+"-2", false, "second")
}

// TestLoadStateMissing: no state file is a normal first start.
func TestLoadStateMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := newStateRuntime(t, dir, nil, false, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 { // the zone
		t.Errorf("files after a start without state: %v", entries)
	}
}

// jsonQuoted is s as it appears inside a JSON string (its quotes escaped).
func jsonQuoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// TestCookieSecretKept: the generated cookie secret goes into the state
// file with the next save and comes back on the next start, so a cookie
// handed out before a restart verifies after it; an unusable one is
// replaced, and neither is logged.
func TestCookieSecretKept(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	rt, err := newStateRuntime(t, dir, nil, false, log)
	if err != nil {
		t.Fatal(err)
	}
	secret := rt.cookieSecret
	if _, err := answer.ParseCookieSecret(secret); err != nil {
		t.Fatalf("generated secret: %v", err)
	}
	ask := func(rt *Runtime, cookie string) string {
		got, _ := handlertest.ServeFrom(t, rt.Authority(), dnstest.EDNSQuery(t, "www.example.test.", dns.TypeA, 1, dnstest.Cookie(cookie)), "198.51.100.1", false)
		return dnstest.ReplyCookie(got)
	}
	cookie := ask(rt, "2464c4abcf10c957")
	rt.saveState()

	again, err := newStateRuntime(t, dir, nil, false, log)
	if err != nil {
		t.Fatal(err)
	}
	if again.cookieSecret != secret || ask(again, cookie) != cookie {
		t.Fatalf("after a restart: secret kept %v, cookie %s echoed %v", again.cookieSecret == secret, cookie, ask(again, cookie) == cookie)
	}

	path := filepath.Join(dir, DefaultStateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(secret), []byte("not hex"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	third, err := newStateRuntime(t, dir, nil, false, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := answer.ParseCookieSecret(third.cookieSecret); err != nil || third.cookieSecret == secret {
		t.Fatalf("an unusable secret in the state file: replaced by %v (%v)", third.cookieSecret != secret, err)
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), third.cookieSecret) {
		t.Error("a cookie secret was logged")
	}
	if !strings.Contains(logs.String(), "cookie secret is not 32 hex digits") {
		t.Errorf("no warning about the unusable secret:\n%s", logs.String())
	}
}
