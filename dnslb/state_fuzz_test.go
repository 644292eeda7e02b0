package dnslb

import (
	"errors"
	"fmt"
	"github.com/dnslb/dnslb/dnslb/answer"
	"io/fs"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/fuzzguard"
	"github.com/rs/zerolog"
)

// memStateFS is a state directory in memory: one file, written through
// CreateTemp and Rename as the real one is.
type memStateFS struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (m *memStateFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return b, nil
}

func (m *memStateFS) Lstat(name string) (fs.FileInfo, error) {
	return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
}
func (m *memStateFS) ReadDir(string) ([]fs.DirEntry, error) { return nil, nil }
func (m *memStateFS) SyncDir(string) error                  { return nil }
func (m *memStateFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, name)
	return nil
}

func (m *memStateFS) Rename(oldpath, newpath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[oldpath]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	delete(m.files, oldpath)
	m.files[newpath] = b
	return nil
}

func (m *memStateFS) CreateTemp(dir, pattern string) (stateTemp, error) {
	return &memTemp{fs: m, name: dir + "/" + pattern + "tmp"}, nil
}

type memTemp struct {
	fs   *memStateFS
	name string
	data []byte
}

func (t *memTemp) Name() string                { return t.name }
func (t *memTemp) Write(p []byte) (int, error) { t.data = append(t.data, p...); return len(p), nil }
func (t *memTemp) Sync() error                 { return nil }
func (t *memTemp) Close() error {
	t.fs.mu.Lock()
	defer t.fs.mu.Unlock()
	t.fs.files[t.name] = t.data
	return nil
}

// stateOnly is a Runtime with just what loadState and writeStateLocked
// use, its state file holding data.
func stateOnly(data []byte) *Runtime {
	const path = "/etc/dnslb/" + DefaultStateFile
	fsys := &memStateFS{files: map[string][]byte{}}
	if data != nil {
		fsys.files[path] = data
	}
	return &Runtime{
		opts:      RuntimeOptions{Now: func() time.Time { return stateT0 }},
		log:       zerolog.Nop(),
		statePath: path,
		stateFS:   fsys,
	}
}

// FuzzLoadState reads arbitrary state files: no input may panic; a file
// dnslb cannot use is a *StateFileError naming it (and so is refused, not
// overwritten); what a file restores, dnslb saves and restores again
// unchanged.
func FuzzLoadState(f *testing.F) {
	for _, s := range []string{
		fmt.Sprintf(`{"version": 1, "saved_at": "2026-12-02T03:00:00Z", "overrides": {"%s": {"mode": "drain", "reason": "maint", "since": "2026-12-02T02:00:00Z"}, "2001:db8::10": {"mode": "force-down", "until": "2027-01-01T00:00:00Z"}}, "health": [{"address": "192.0.2.10:80", "check": "tcp", "up": true, "since": "2026-12-02T01:00:00Z"}], "serials": {"example.test.": {"serial": 7, "digest": "ab"}}}`, member10),
		`{"version": 1, "overrides": {"192.0.2.10": {"mode": "drain", "until": "2020-01-01T00:00:00Z"}}}`, // expired
		`{"version": 1, "overrides": {"192.0.2.10": {"mode": "drained"}}}`,
		`{"version": 1, "overrides": {"192.0.2.10": {"mode": ""}}}`,
		`{"version": 1, "overrides": {"not an address": {"mode": "drain"}}}`,
		`{"version": 1, "overrides": {"::ffff:192.0.2.10": {"mode": "drain"}, "192.0.2.10": {"mode": "force-down"}}}`,
		`{"version": 1, "overrides": {"fe80::1%eth0": {"mode": "drain"}}}`,
		`{"version": 1, "health": [{"address": "192.0.2.10", "check": "tcp", "up": true}]}`,
		`{"version": 1, "serials": {"": {"serial": 1}}}`,
		`{"version": 1, "overrides": null, "health": null, "serials": null}`,
		`{"version": 2}`, `{"version": "1"}`, `{}`, `null`, `[]`, `{"version": 1}{`, `{"version": 1`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzguard.Run(t, "loadState", fuzzguard.Limit, func() { checkState(t, data) })
	})
}

func checkState(t *testing.T, data []byte) {
	t.Helper()
	r := stateOnly(data)
	rs, err := r.loadState()
	if err != nil {
		var se *StateFileError
		if !errors.As(err, &se) || se.Path != r.statePath {
			t.Fatalf("loadState: %v, want a *StateFileError for %s", err, r.statePath)
		}
		return
	}
	for a, ov := range rs.overrides {
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() || (ov.Mode != answer.OverrideDrain && ov.Mode != answer.OverrideForceDown) {
			t.Fatalf("restored an override dnslb could not have made: %s %+v", a, ov)
		}
	}
	// Save what was restored, restore it again: the same state. The
	// serials saved are the generation's, which starts from those restored.
	r.cur.Store(&Generation{serials: rs.serials})
	if err := r.writeStateLocked(rs.overrides); err != nil {
		t.Fatal(err)
	}
	saved, _ := r.stateFS.ReadFile(r.statePath)
	again := stateOnly(saved)
	rs2, err := again.loadState()
	if err != nil {
		t.Fatalf("dnslb cannot read the state it saved: %v\n%s", err, saved)
	}
	if !maps.Equal(rs2.overrides, rs.overrides) || !maps.Equal(rs2.serials, rs.serials) {
		t.Fatalf("restored again: overrides %v serials %v, want %v %v", rs2.overrides, rs2.serials, rs.overrides, rs.serials)
	}
}
