package dnslb

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// The watcher tests' config file holds only the pool's TTL: a change to it
// is a config change that the answers show.
const (
	watchCfgName  = "dnslb.conf"
	watchZoneName = "z.zone"
)

// watchLoader reads the config at cfgPath (through its links, as the CLI
// does) with the zone file beside it.
func watchLoader(cfgPath string) Loader {
	return func() (*Loaded, error) {
		b, err := os.ReadFile(cfgPath)
		if err != nil {
			return nil, err
		}
		ttl, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfgPath, err)
		}
		c := Config{
			Listen: []string{"127.0.0.1:0"},
			Zones:  []ZoneConfig{{Origin: "example.test.", File: watchZoneName}},
			Pools:  map[string]PoolConfig{"www.example.test.": {TTL: ttl}},
		}
		dir := filepath.Dir(cfgPath)
		return &Loaded{Config: &c, Root: ZoneRoot{FS: os.DirFS(dir), Display: dir, Dir: dir}, File: cfgPath}, nil
	}
}

func zoneText(serial, extra string) string {
	return strings.Replace(rtZone, "%s", serial, 1) + extra
}

// newWatchedRuntime starts a Runtime that watches cfgPath and its zone,
// as `dnslb serve --config` does, and waits until the watcher watches the
// directories dirs.
func newWatchedRuntime(t *testing.T, cfgPath string, dirs []string) (*Runtime, *logLines) {
	t.Helper()
	logs := &logLines{}
	rt, err := NewRuntime(RuntimeOptions{Load: watchLoader(cfgPath), Log: zerolog.New(logs), Watch: true, ConfigFile: cfgPath})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	// Changes made before the directories are watched would go unseen.
	dnstest.Until(t, 10*time.Second, "the watcher watches "+strings.Join(dirs, ", "), func() bool {
		return !slices.ContainsFunc(dirs, func(d string) bool { return !slices.Contains(logs.values("watching", "dir"), d) })
	})
	return rt, logs
}

// values lists the field key of the lines logged with message msg.
func (l *logLines) values(msg, key string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["message"] != msg {
			continue
		}
		if v, ok := m[key].(string); ok {
			out = append(out, v)
		}
	}
	return out
}

// configMap lays files out as the kubelet does a ConfigMap volume: the
// files in a timestamped directory, dir/..data a link to it and each file
// dir/name a link to ..data/name. publish writes a new timestamped
// directory, links ..data_tmp to it, renames that over ..data and removes
// the old directory.
type configMap struct {
	t     *testing.T
	dir   string
	gen   int
	files map[string]string
}

func (c *configMap) publish(files map[string]string) {
	c.t.Helper()
	c.gen++
	ts := fmt.Sprintf("..2026_12_02_10_00_%02d.%d", c.gen, 100+c.gen)
	must(c.t, os.Mkdir(filepath.Join(c.dir, ts), 0o755))
	for name, text := range files {
		must(c.t, os.WriteFile(filepath.Join(c.dir, ts, name), []byte(text), 0o644))
	}
	old, _ := os.Readlink(filepath.Join(c.dir, "..data"))
	must(c.t, os.Symlink(ts, filepath.Join(c.dir, "..data_tmp")))
	must(c.t, os.Rename(filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data")))
	for name := range files {
		if _, err := os.Lstat(filepath.Join(c.dir, name)); err != nil {
			must(c.t, os.Symlink(filepath.Join("..data", name), filepath.Join(c.dir, name)))
		}
	}
	if old != "" {
		must(c.t, os.RemoveAll(filepath.Join(c.dir, old)))
	}
	c.files = files
}

// current is the timestamped directory ..data leads to.
func (c *configMap) current() string {
	c.t.Helper()
	ts, err := os.Readlink(filepath.Join(c.dir, "..data"))
	must(c.t, err)
	return filepath.Join(c.dir, ts)
}

// update publishes the files with name's content replaced.
func (c *configMap) update(name, text string) {
	c.t.Helper()
	files := maps.Clone(c.files)
	files[name] = text
	c.publish(files)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func replaceByRename(t *testing.T, path, text string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	must(t, os.WriteFile(tmp, []byte(text), 0o644))
	must(t, os.Rename(tmp, path))
}

// tempRoot is a temporary directory by its path without links, as the
// watcher names the directories it watches.
func tempRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	return root
}

func wwwTTL(t *testing.T, rt *Runtime) uint32 {
	t.Helper()
	resp := askRT(t, rt, "www.example.test.", dns.TypeA)
	if len(resp.Answer) == 0 {
		t.Fatalf("no answer for www: %v", resp)
	}
	return resp.Answer[0].Header().Ttl
}

func hasNew(t *testing.T, rt *Runtime) bool {
	t.Helper()
	return len(askRT(t, rt, "new.example.test.", dns.TypeA).Answer) == 1
}

const newRecord = "new A 192.0.2.99\n"

// TestWatchFollowsLinks: a config or zone file reached through symlinks
// is reloaded when what the links lead to changes: a ConfigMap's ..data
// swapped, a link's target in another directory edited or replaced, links
// chained through several directories.
func TestWatchFollowsLinks(t *testing.T) {
	// lay writes the config (TTL 30) and the zone (serial 1) in etc, the
	// config's directory, reached as the case says. It returns the
	// directories the watcher must watch and the change of the case: the
	// new config (TTL 45) or zone (with newRecord), written the same way.
	type layout func(t *testing.T, root, etc string) (watched []string, change func())
	cfg1, zone1 := "30\n", zoneText("1", "")
	cfg2, zone2 := "45\n", zoneText("2", newRecord)
	configMapLayout := func(name, text string) layout {
		return func(t *testing.T, root, etc string) ([]string, func()) {
			cm := &configMap{t: t, dir: etc}
			cm.publish(map[string]string{watchCfgName: cfg1, watchZoneName: zone1})
			return []string{etc, cm.current()}, func() { cm.update(name, text) }
		}
	}
	// zoneIn writes the config in etc and the zone as path, linked from
	// etc/z.zone.
	zoneIn := func(t *testing.T, etc, path string) {
		must(t, os.WriteFile(filepath.Join(etc, watchCfgName), []byte(cfg1), 0o644))
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte(zone1), 0o644))
		must(t, os.Symlink(path, filepath.Join(etc, watchZoneName)))
	}
	for _, tc := range []struct {
		name string
		lay  layout
		// what the answers show of the change
		changed func(t *testing.T, rt *Runtime) bool
	}{
		{"ConfigMap ..data swap of the zone", configMapLayout(watchZoneName, zone2), hasNew},
		{"ConfigMap ..data swap of the config", configMapLayout(watchCfgName, cfg2),
			func(t *testing.T, rt *Runtime) bool { return wwwTTL(t, rt) == 45 }},
		{"zone linked from another directory, edited in place", func(t *testing.T, root, etc string) ([]string, func()) {
			target := filepath.Join(root, "zones", "example.zone")
			zoneIn(t, etc, target)
			return []string{etc, filepath.Dir(target)}, func() { must(t, os.WriteFile(target, []byte(zone2), 0o644)) }
		}, hasNew},
		{"zone linked from another directory, replaced by rename", func(t *testing.T, root, etc string) ([]string, func()) {
			target := filepath.Join(root, "zones", "example.zone")
			zoneIn(t, etc, target)
			return []string{etc, filepath.Dir(target)}, func() { replaceByRename(t, target, zone2) }
		}, hasNew},
		{"zone linked from another directory, which is removed and made anew", func(t *testing.T, root, etc string) ([]string, func()) {
			target := filepath.Join(root, "zones", "example.zone")
			zoneIn(t, etc, target)
			return []string{etc, filepath.Dir(target)}, func() {
				must(t, os.RemoveAll(filepath.Dir(target)))
				must(t, os.Mkdir(filepath.Dir(target), 0o755))
				must(t, os.WriteFile(target, []byte(zone2), 0o644))
			}
		}, hasNew},
		{"zone linked through a chain of links in three directories", func(t *testing.T, root, etc string) ([]string, func()) {
			// etc/z.zone -> ../current/z.zone -> root/zones/example.zone,
			// current itself a link to the directory releases/1.
			target := filepath.Join(root, "zones", "example.zone")
			must(t, os.MkdirAll(filepath.Join(root, "releases", "1"), 0o755))
			must(t, os.Symlink(filepath.Join("releases", "1"), filepath.Join(root, "current")))
			zoneIn(t, etc, target)
			must(t, os.Symlink(target, filepath.Join(root, "releases", "1", watchZoneName)))
			must(t, os.Remove(filepath.Join(etc, watchZoneName)))
			must(t, os.Symlink(filepath.Join("..", "current", watchZoneName), filepath.Join(etc, watchZoneName)))
			return []string{etc, root, filepath.Join(root, "releases", "1"), filepath.Dir(target)},
				func() { must(t, os.WriteFile(target, []byte(zone2), 0o644)) }
		}, hasNew},
		{"config linked from another directory, replaced by rename", func(t *testing.T, root, etc string) ([]string, func()) {
			target := filepath.Join(root, "shared", "dnslb.conf")
			must(t, os.MkdirAll(filepath.Dir(target), 0o755))
			must(t, os.WriteFile(target, []byte(cfg1), 0o644))
			must(t, os.Symlink(target, filepath.Join(etc, watchCfgName)))
			must(t, os.WriteFile(filepath.Join(etc, watchZoneName), []byte(zone1), 0o644))
			return []string{etc, filepath.Dir(target)}, func() { replaceByRename(t, target, cfg2) }
		}, func(t *testing.T, rt *Runtime) bool { return wwwTTL(t, rt) == 45 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tempRoot(t)
			etc := filepath.Join(root, "etc")
			must(t, os.Mkdir(etc, 0o755))
			watched, change := tc.lay(t, root, etc)
			rt, _ := newWatchedRuntime(t, filepath.Join(etc, watchCfgName), watched)
			if hasNew(t, rt) || wwwTTL(t, rt) != 30 {
				t.Fatal("the new data is served before the change")
			}
			change()
			dnstest.Until(t, 10*time.Second, "the change is served without an explicit reload", func() bool { return tc.changed(t, rt) })
		})
	}
}

// TestWatchIgnoresOtherFiles: writes to other files in the watched
// directories (the state file, editors' swap files) do not reload. The
// watcher handles events in order, so by the time the real change is
// served every write before it has been seen: the log of what triggered a
// reload names the changed file only, and one reload happened.
func TestWatchIgnoresOtherFiles(t *testing.T) {
	root := tempRoot(t)
	etc := filepath.Join(root, "etc")
	must(t, os.Mkdir(etc, 0o755))
	cm := &configMap{t: t, dir: etc}
	cm.publish(map[string]string{watchCfgName: "30\n"})
	target := filepath.Join(root, "zones", "example.zone")
	must(t, os.MkdirAll(filepath.Dir(target), 0o755))
	must(t, os.WriteFile(target, []byte(zoneText("1", "")), 0o644))
	must(t, os.Symlink(target, filepath.Join(etc, watchZoneName)))
	rt, logs := newWatchedRuntime(t, filepath.Join(etc, watchCfgName), []string{etc, cm.current(), filepath.Dir(target)})

	for _, dir := range []string{etc, cm.current(), filepath.Dir(target)} {
		for _, name := range []string{DefaultStateFile, "." + watchCfgName + ".swp", ".example.zone.swp", "notes"} {
			p := filepath.Join(dir, name)
			must(t, os.WriteFile(p+".tmp", []byte("x"), 0o644))
			must(t, os.Rename(p+".tmp", p))
			must(t, os.WriteFile(p, []byte("y"), 0o644))
		}
		must(t, os.Remove(filepath.Join(dir, "notes")))
	}
	replaceByRename(t, target, zoneText("2", newRecord))
	reloads := func() float64 {
		var m dto.Metric
		must(t, rt.Metrics().Reloads.WithLabelValues("ok").Write(&m))
		return m.GetCounter().GetValue()
	}
	// The new data is served before the reload is counted.
	dnstest.Until(t, 10*time.Second, "the change is served", func() bool { return hasNew(t, rt) && reloads() > 0 })

	if got := logs.values("watched file changed", "file"); !slices.Equal(got, []string{target}) {
		t.Errorf("reloads triggered by %q, want only the zone file %s", got, target)
	}
	if n := reloads(); n != 1 {
		t.Errorf("%v reloads, want 1", n)
	}
}

// TestLinkChain: the names a file's resolution goes through, link by link.
func TestLinkChain(t *testing.T) {
	root := tempRoot(t)
	etc, ts := filepath.Join(root, "etc"), filepath.Join(root, "etc", "..2026_12_02_10_00_01.101")
	must(t, os.MkdirAll(ts, 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "zones"), 0o755))
	for _, f := range []string{filepath.Join(etc, "plain"), filepath.Join(ts, "cm"), filepath.Join(root, "zones", "z")} {
		must(t, os.WriteFile(f, nil, 0o644))
	}
	links := map[string]string{
		"etc/..data": filepath.Base(ts), "etc/cm": "../etc/./..data/cm", // relative, through ..
		"etc/abs": filepath.Join(root, "zones", "z"), "dirlink": "etc",
		"etc/gone": "../missing/z", "etc/dangling": "nothing",
		"etc/loop1": "loop2", "etc/loop2": "loop1",
	}
	for name, to := range links {
		must(t, os.Symlink(to, filepath.Join(root, name)))
	}
	in := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	for _, tc := range []struct {
		file   string
		chain  []string
		target string
	}{
		{file: in("etc", "plain"), chain: []string{in("etc", "plain")}, target: in("etc", "plain")},
		{file: in("etc", "cm"), chain: []string{in("etc", "cm"), in("etc", "..data"), filepath.Join(ts, "cm")}, target: filepath.Join(ts, "cm")},
		{file: in("etc", "abs"), chain: []string{in("etc", "abs"), in("zones", "z")}, target: in("zones", "z")},
		{file: in("dirlink", "plain"), chain: []string{in("dirlink"), in("etc", "plain")}, target: in("etc", "plain")},
		{file: in("etc", "gone"), chain: []string{in("etc", "gone"), in("missing")}, target: in("missing", "z")},
		{file: in("etc", "dangling"), chain: []string{in("etc", "dangling"), in("etc", "nothing")}, target: in("etc", "nothing")},
		{file: in("missing", "deeper", "z"), chain: []string{in("missing")}, target: in("missing", "deeper", "z")},
	} {
		chain, target := linkChain(tc.file)
		if !slices.Equal(chain, tc.chain) || target != tc.target {
			t.Errorf("linkChain(%s) = %q, %s; want %q, %s", tc.file, chain, target, tc.chain, tc.target)
		}
	}
	// A loop ends after maxLinks links rather than never.
	chain, _ := linkChain(in("etc", "loop1"))
	if len(chain) != maxLinks+1 {
		t.Errorf("a loop of links gave a chain of %d, want %d", len(chain), maxLinks+1)
	}
}
