package integration

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// configMap lays files out as the kubelet does a ConfigMap volume: the
// files in a timestamped directory, DIR/..data a link to it and each file
// DIR/name a link to ..data/name. Every change publishes all the files
// anew: a new timestamped directory, ..data_tmp linked to it and renamed
// over ..data (the one atomic step), then the old directory removed.
type configMap struct {
	t     testing.TB
	dir   string
	gen   int
	files map[string]string
}

// asConfigMap makes the opServer's config and zone a ConfigMap volume in
// its directory: `dnslb serve --config DIR/dnslb.yaml` reads them through
// DIR/..data.
func asConfigMap(o *opServer) { o.cm = &configMap{t: o.t, dir: o.dir, files: map[string]string{}} }

// set publishes the files with name's content replaced.
func (c *configMap) set(name, content string) {
	c.t.Helper()
	files := maps.Clone(c.files)
	files[name] = content
	c.gen++
	ts := fmt.Sprintf("..2026_12_02_10_00_%02d.%09d", c.gen, 123456789+c.gen)
	c.must(os.Mkdir(filepath.Join(c.dir, ts), 0o755))
	for n, text := range files {
		c.must(os.WriteFile(filepath.Join(c.dir, ts, n), []byte(text), 0o644))
	}
	data := filepath.Join(c.dir, "..data")
	old, _ := os.Readlink(data)
	c.must(os.Symlink(ts, data+"_tmp"))
	c.must(os.Rename(data+"_tmp", data))
	for n := range files {
		if _, err := os.Lstat(filepath.Join(c.dir, n)); err != nil {
			c.must(os.Symlink(filepath.Join("..data", n), filepath.Join(c.dir, n)))
		}
	}
	if old != "" {
		c.must(os.RemoveAll(filepath.Join(c.dir, old)))
	}
	c.files = files
}

// current is the timestamped directory ..data leads to.
func (c *configMap) current() string {
	c.t.Helper()
	ts, err := os.Readlink(filepath.Join(c.dir, "..data"))
	c.must(err)
	return filepath.Join(c.dir, ts)
}

func (c *configMap) must(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// TestOperateConfigMapReload: config and zone in a Kubernetes ConfigMap
// volume, reached through DIR/..data. An update swaps ..data to a new
// timestamped directory (the names DIR/dnslb.yaml and
// DIR/example.test.zone never change) and the file watcher serves the new
// data without SIGHUP, for a zone change and for a config change.
func TestOperateConfigMapReload(t *testing.T) {
	pools := func(ttl int) string { return fmt.Sprintf("  a.example.test.:\n    ttl: %d\n", ttl) }
	// Debug logging names each directory watched.
	config := func(ttl int) string {
		return strings.Replace(opConfig(plainAdmin, "", pools(ttl)), "level: info", "level: debug", 1)
	}
	o := newOpServer(t, opZone(1, "a       IN A    192.0.2.10\n"), config(30), asConfigMap)
	addr := o.dnsAddr
	if link, err := os.Readlink(o.cfgPath); err != nil || link != filepath.Join("..data", "dnslb.yaml") {
		t.Fatalf("the config is not a ConfigMap key: readlink %s = %q, %v", o.cfgPath, link, err)
	}
	if got := poolAddrs(t, addr, "a.example.test", dns.TypeA); !slices.Equal(got, []string{"192.0.2.10"}) {
		t.Fatalf("at start: a.example.test A = %v, want [192.0.2.10]", got)
	}
	// An update made before the watcher watches ..data's directory would
	// go unseen; it logs each directory it watches.
	watching := func(dir string) func() (bool, string) {
		return func() (bool, string) {
			var dirs []string
			for _, l := range o.findLog("watching") {
				dirs = append(dirs, l.str("dir"))
			}
			return slices.Contains(dirs, dir), fmt.Sprint(dirs)
		}
	}
	dnstest.Eventually(t, 10*time.Second, "the watcher watches "+o.cm.current(), watching(o.cm.current()))

	t.Run("zone", func(t *testing.T) {
		before := o.reloads()
		o.writeZone(opZone(2, "a       IN A    192.0.2.20\n"))
		took := dnstest.Eventually(t, 10*time.Second, "the swapped zone is served", func() (bool, string) {
			got := poolAddrs(t, addr, "a.example.test", dns.TypeA)
			return slices.Equal(got, []string{"192.0.2.20"}), fmt.Sprint(got)
		})
		t.Logf("..data swap: new record answered %v after the swap", took.Round(time.Millisecond))
		if s := soaSerial(t, addr); s != 2 {
			t.Errorf("SOA serial %d after the swap, want 2", s)
		}
		// A reload is counted just after its data is served.
		dnstest.Eventually(t, 10*time.Second, "dnslb_reloads_total grows", func() (bool, string) {
			n := o.reloads()
			return n > before, fmt.Sprintf("%v -> %v", before, n)
		})
		if z := o.zoneStatus(); z.Error != "" {
			t.Errorf("zone error after the swap: %s", z.Error)
		}
	})

	t.Run("config", func(t *testing.T) {
		// The watcher has moved on to the new timestamped directory.
		dnstest.Eventually(t, 10*time.Second, "the watcher watches "+o.cm.current(), watching(o.cm.current()))
		o.SetConfig(config(45))
		dnstest.Eventually(t, 10*time.Second, "the swapped config is served (TTL 45)", func() (bool, string) {
			r := askAuth(t, addr, "a.example.test.", dns.TypeA)
			return len(r.Answer) > 0 && r.Answer[0].Header().Ttl == 45, fmt.Sprint(r.Answer)
		})
	})

	if len(o.findLog("SIGHUP")) != 0 {
		t.Errorf("a SIGHUP was logged; the test sends none")
	}
	if n := len(o.findLog("zone or config file changed")); n < 2 {
		t.Errorf("%d watcher reloads logged, want one per swap (2)", n)
	}
}
