package vip

import (
	"github.com/dnslb/dnslb/healthcheck"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func goodInstance() InstanceConfig {
	return InstanceConfig{
		Name: "front", Interface: "eth0", VRID: 51, Priority: 150,
		Addresses: []string{"192.0.2.100/24", "2001:db8::100/64", "192.0.2.101"},
	}
}

func TestConfigDefaults(t *testing.T) {
	specs, err := Config{Instances: []InstanceConfig{goodInstance()}}.specs()
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if s.interval != DefaultAdvertInterval || !s.preempt || s.garpRepeat != 5 || s.garpDelay != 5*time.Second || !s.is4 {
		t.Fatalf("defaults %+v", s)
	}
	if len(s.vips) != 3 || s.vips[2] != netip.MustParsePrefix("192.0.2.101/32") {
		t.Fatalf("vips %v", s.vips)
	}
	// Only the IPv4 addresses (the first address's family) are advertised.
	if len(s.advertised) != 2 || s.advertised[1] != netip.MustParseAddr("192.0.2.101") {
		t.Fatalf("advertised %v", s.advertised)
	}
	zero, f := time.Duration(0), false
	ic := goodInstance()
	ic.GARPDelay, ic.Preempt = &zero, &f
	ic.Track = []TrackConfig{{Exec: "true", Weight: -20}}
	specs, err = Config{Instances: []InstanceConfig{ic}}.specs()
	if err != nil {
		t.Fatal(err)
	}
	if specs[0].garpDelay != 0 || specs[0].preempt {
		t.Fatalf("explicit values lost: %+v", specs[0])
	}
	if tr := specs[0].tracks[0]; tr.interval != time.Second || tr.timeout != time.Second || tr.rise != 1 || tr.fall != 1 {
		t.Fatalf("track defaults %+v", tr)
	}
}

func TestConfigErrors(t *testing.T) {
	f := false
	cases := []struct {
		name   string
		mutate func(*InstanceConfig)
		want   string
	}{
		{"vrid 0", func(c *InstanceConfig) { c.VRID = 0 }, "vip[0].vrid: 0 out of range"},
		{"vrid 256", func(c *InstanceConfig) { c.VRID = 256 }, "vip[0].vrid"},
		{"priority 0", func(c *InstanceConfig) { c.Priority = 0 }, "vip[0].priority"},
		{"no name", func(c *InstanceConfig) { c.Name = "" }, "vip[0].name: required"},
		{"no interface", func(c *InstanceConfig) { c.Interface = "" }, "vip[0].interface: required"},
		{"interval not cs", func(c *InstanceConfig) { c.AdvertInterval = 15 * time.Millisecond }, "advert_interval"},
		{"interval too long", func(c *InstanceConfig) { c.AdvertInterval = 41 * time.Second }, "advert_interval"},
		{"no addresses", func(c *InstanceConfig) { c.Addresses = nil }, "vip[0].addresses: at least one"},
		{"bad address", func(c *InstanceConfig) { c.Addresses = []string{"192.0.2.300/24"} }, "vip[0].addresses[0]"},
		{"duplicate address", func(c *InstanceConfig) { c.Addresses = []string{"192.0.2.1/24", "192.0.2.1/32"} }, "listed twice"},
		{"multicast address", func(c *InstanceConfig) { c.Addresses = []string{"224.0.0.1/32"} }, "not a usable unicast"},
		{"peer family", func(c *InstanceConfig) { c.UnicastPeers = []string{"2001:db8::2"} }, "vip[0].unicast_peers[0]"},
		{"peer garbage", func(c *InstanceConfig) { c.UnicastPeers = []string{"peer"} }, "vip[0].unicast_peers[0]"},
		{"accept false", func(c *InstanceConfig) { c.Accept = &f }, "vip[0].accept"},
		{"preempt delay", func(c *InstanceConfig) { c.PreemptDelay = -time.Second }, "preempt_delay"},
		{"track none", func(c *InstanceConfig) { c.Track = []TrackConfig{{Weight: 1}} }, "vip[0].track[0]: exactly one"},
		{"track two", func(c *InstanceConfig) { c.Track = []TrackConfig{{Exec: "x", Interface: "eth0"}} }, "exactly one"},
		{"track weight", func(c *InstanceConfig) { c.Track = []TrackConfig{{Exec: "x", Weight: 300}} }, "weight"},
		{"track timeout", func(c *InstanceConfig) {
			c.Track = []TrackConfig{{Exec: "x", Interval: time.Second, Timeout: 2 * time.Second}}
		}, "timeout"},
		{"check without type", func(c *InstanceConfig) { c.Track = []TrackConfig{{Check: &CheckConfig{Address: "127.0.0.1:53"}}} }, "check.type"},
		{"check without address", func(c *InstanceConfig) {
			c.Track = []TrackConfig{{Check: &CheckConfig{Config: healthcheck.Config{Type: "dns", Name: "a."}}}}
		}, "check.address"},
		{"check bad type", func(c *InstanceConfig) {
			c.Track = []TrackConfig{{Check: &CheckConfig{Config: healthcheck.Config{Type: "smtp"}, Address: "127.0.0.1:25"}}}
		}, "check.type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ic := goodInstance()
			c.mutate(&ic)
			err := Config{Instances: []InstanceConfig{ic}}.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// Each notify hook's program must be runnable when the file is loaded;
// problems carry the hook's key path (the CLI adds file:line).
func TestConfigNotifyHooks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("good.sh", "#!/bin/sh\n", 0o755)
	cases := []struct {
		key, cmd string
		want     string // "" = valid
	}{
		{"notify", good + " 'a b' c", ""},
		{"notify_master", good, ""},
		{"notify_backup", "true", ""}, // a bare name is looked up in PATH
		{"notify_fault", filepath.Join(dir, "missing.sh"), "vip[0].notify_fault: stat " + filepath.Join(dir, "missing.sh") + ": no such file or directory"},
		{"notify_stop", write("plain.sh", "#!/bin/sh\n", 0o644), "vip[0].notify_stop: " + filepath.Join(dir, "plain.sh") + " is not executable"},
		{"notify", write("noshebang.sh", "echo hi\n", 0o755), "vip[0].notify: " + filepath.Join(dir, "noshebang.sh") + " has no #! line"},
		{"notify_master", write("open.sh", "#!/bin/sh\n", 0o757), "vip[0].notify_master: " + filepath.Join(dir, "open.sh") + " is writable by every user"},
		{"notify_backup", dir, "vip[0].notify_backup: " + dir + " is not a regular file"},
		{"notify_fault", "dnslb-no-such-hook", "vip[0].notify_fault: dnslb-no-such-hook: not found in PATH"},
		{"notify_stop", good + " 'unterminated", "vip[0].notify_stop: unterminated ' quote"},
		{"notify", "   ", "vip[0].notify: empty command"},
	}
	for _, c := range cases {
		t.Run(c.key+" "+c.cmd, func(t *testing.T) {
			ic := goodInstance()
			*map[string]*string{
				"notify": &ic.Notify, "notify_master": &ic.NotifyMaster, "notify_backup": &ic.NotifyBackup,
				"notify_fault": &ic.NotifyFault, "notify_stop": &ic.NotifyStop,
			}[c.key] = c.cmd
			err := Config{Instances: []InstanceConfig{ic}}.Validate()
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
	ic := goodInstance()
	ic.Notify, ic.NotifyBackup = good+` 'a b' "c\"d" e\ f`, "true"
	specs, err := Config{Instances: []InstanceConfig{ic}}.specs()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := specs[0].hooks.notify, []string{good, "a b", `c"d`, "e f"}; !reflect.DeepEqual(got, want) {
		t.Errorf("notify argv %q, want %q", got, want)
	}
	if got := specs[0].hooks.backup; len(got) != 1 || !filepath.IsAbs(got[0]) {
		t.Errorf("notify_backup argv %q, want the absolute path of true", got)
	}
}

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"/bin/x", []string{"/bin/x"}},
		{"  /bin/x  a\tb  ", []string{"/bin/x", "a", "b"}},
		{`/bin/x 'a b' "c d"`, []string{"/bin/x", "a b", "c d"}},
		{`abcd" efg h jkl "mnop`, []string{"abcd efg h jkl mnop"}}, // keepalived's own example
		{`abcd "efg h jkl" mnop`, []string{"abcd", "efg h jkl", "mnop"}},
		{`a '' b`, []string{"a", "", "b"}},
		{`a "it's" 'say "hi"'`, []string{"a", "it's", `say "hi"`}},
		{`a\ b \'c\' "\"d\""`, []string{"a b", "'c'", `"d"`}},
		{`$HOME *`, []string{"$HOME", "*"}}, // no shell expansion
		{"", nil},
	}
	for _, c := range cases {
		got, err := splitWords(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{`a 'b`, `a "b`, `a \`} {
		if got, err := splitWords(in); err == nil {
			t.Errorf("splitWords(%q) = %q, want an error", in, got)
		}
	}
}

func TestConfigWholeFile(t *testing.T) {
	a, b := goodInstance(), goodInstance()
	err := Config{Instances: []InstanceConfig{a, b}, Log: LogConfig{Level: "loud", Format: "xml"}, Admin: "nope"}.Validate()
	for _, want := range []string{"vip[1].name: \"front\" used twice", "vip[1].vrid: 51 on eth0 already used", "log.level", "log.format", "admin"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v, want %q", err, want)
		}
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("empty config accepted")
	}
	b.Name, b.Addresses = "front6", []string{"2001:db8::100/64"} // same VRID, other family: allowed
	if err := (Config{Instances: []InstanceConfig{a, b}}).Validate(); err != nil {
		t.Fatal(err)
	}
	ok := goodInstance()
	ok.Track = []TrackConfig{{Check: &CheckConfig{Config: healthcheck.Config{Type: "dns", Name: "www.example.test."}, Address: "127.0.0.1:53"}, Weight: -60}}
	if err := (Config{Instances: []InstanceConfig{ok}}).Validate(); err != nil {
		t.Fatal(err)
	}
}
