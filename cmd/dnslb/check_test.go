package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodZone = "$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n"

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		want   []string // lines on stderr, each relative to the temp dir
		stdout string
	}{
		{
			name: "ok",
			files: map[string]string{
				"dnslb.yaml":   "zones:\n  - {origin: example.test., file: zones/z.zone}\n",
				"zones/z.zone": goodZone,
			},
			stdout: "ok: 1 zones, 4 records",
		},
		{
			name: "every zone problem with its line",
			files: map[string]string{
				"dnslb.yaml":   "zones:\n  - {origin: example.test., file: zones/z.zone}\n  - {origin: other.test., file: zones/o.zone}\n",
				"zones/z.zone": goodZone + "www CNAME other\nsub NS ns.sub\n",
				"zones/o.zone": "$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1.example.test.\nx A 999.1.1.1\n",
			},
			want: []string{
				"zones/z.zone:6: CNAME and other data at www.example.test. (A)",
				"zones/z.zone:7: NS ns.sub.example.test. for sub.example.test. has no glue (A or AAAA) in the zone",
				"zones/o.zone:4: bad A A: \"999.1.1.1\"",
			},
		},
		{
			name: "config problems with key paths and lines",
			files: map[string]string{
				"dnslb.yaml": "listen: [\"nope\"]\nlog: {level: loud}\nzones:\n  - {origin: example.test., file: z.zone}\n",
			},
			want: []string{
				"dnslb.yaml:1: listen[0]: \"nope\" is not host:port",
				"dnslb.yaml:2: log.level: \"loud\" is not one of debug, info, warn, error",
			},
		},
		{
			name: "unknown keys",
			files: map[string]string{
				"dnslb.yaml": "zones:\n  - {origin: example.test., file: z.zone}\nlog:\n  level: info\n  colour: red\n",
			},
			want: []string{"dnslb.yaml:5: log.colour: unknown key"},
		},
		{
			name:  "missing zone file",
			files: map[string]string{"dnslb.yaml": "zones:\n  - {origin: example.test., file: nothere.zone}\n"},
			want:  []string{"nothere.zone: open nothere.zone: no such file or directory"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			var out, errw bytes.Buffer
			n := runCheck(filepath.Join(dir, "dnslb.yaml"), &out, &errw)
			got := strings.Split(strings.TrimSpace(strings.ReplaceAll(errw.String(), dir+"/", "")), "\n")
			if len(tc.want) == 0 {
				if n != 0 || !strings.Contains(out.String(), tc.stdout) {
					t.Fatalf("problems=%d stdout=%q stderr=%q", n, out.String(), errw.String())
				}
				return
			}
			if n != len(tc.want) || strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got %d problems:\n%s\nwant:\n%s", n, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestPoolProblemsHaveLines(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"dnslb.yaml": "zones:\n  - {origin: example.test., file: z.zone}\npools:\n  www.example.test.:\n    members:\n      192.0.2.99: {weight: 2}\n",
		"z.zone":     goodZone,
	})
	var out, errw bytes.Buffer
	if n := runCheck(filepath.Join(dir, "dnslb.yaml"), &out, &errw); n != 1 {
		t.Fatalf("%d problems: %s", n, errw.String())
	}
	want := filepath.Join(dir, "dnslb.yaml") + ":6: pools[www.example.test.].members[192.0.2.99]: not among"
	if !strings.HasPrefix(errw.String(), want) {
		t.Errorf("got %q, want prefix %q", errw.String(), want)
	}
}

func TestEmbeddedExampleChecks(t *testing.T) {
	var out, errw bytes.Buffer
	if n := runCheck("", &out, &errw); n != 0 {
		t.Fatalf("embedded example has %d problems: %s", n, errw.String())
	}
	// The same files on disk, as the README tells users to check them.
	if n := runCheck("../../examples/dnslb.yaml", &out, &errw); n != 0 {
		t.Fatalf("examples/dnslb.yaml has %d problems: %s", n, errw.String())
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"dnslb.yaml": "zones:\n  - {origin: example.test., file: z.zone}\n",
		"z.zone":     goodZone,
	})
	t.Setenv("DNSLB_LOG_LEVEL", "debug")
	t.Setenv("DNSLB_LISTEN", "127.0.0.1:1053,[::1]:1053")
	sc, err := loadServerConfig(filepath.Join(dir, "dnslb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Config.Log.Level != "debug" {
		t.Errorf("log.level = %q, want debug from DNSLB_LOG_LEVEL", sc.Config.Log.Level)
	}
	if strings.Join(sc.Config.Listen, " ") != "127.0.0.1:1053 [::1]:1053" {
		t.Errorf("listen = %v, want both addresses from DNSLB_LISTEN", sc.Config.Listen)
	}
}

func TestCheckVIPConfig(t *testing.T) {
	var out, errw bytes.Buffer
	if n := runCheck("../../examples/vip.yaml", &out, &errw); n != 0 || !strings.Contains(out.String(), "ok: 1 vip instances") {
		t.Fatalf("examples/vip.yaml: %d problems: %s %s", n, out.String(), errw.String())
	}
	dir := writeFiles(t, map[string]string{"vip.yaml": "vip:\n  - {name: a, interface: eth0, vrid: 300, priority: 0, addresses: [\"192.0.2.1/24\"]}\n"})
	out.Reset()
	errw.Reset()
	if n := runCheck(filepath.Join(dir, "vip.yaml"), &out, &errw); n == 0 || !strings.Contains(errw.String(), "vrid") {
		t.Fatalf("bad vip file passed: %d %s", n, errw.String())
	}
}

// A FIFO in place of the config is refused, not read: reading it would
// block until something wrote to it.
func TestCheckFIFOConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dnslb.yaml")
	if err := syscall.Mkfifo(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		var out, errw bytes.Buffer
		runCheck(cfg, &out, &errw)
		done <- errw.String()
	}()
	select {
	case got := <-done:
		if want := cfg + ": " + cfg + " is not a regular file"; !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q…", got, want)
		}
	case <-time.After(10 * time.Second):
		if f, err := os.OpenFile(cfg, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("check blocked reading a FIFO config")
	}
}

// TestCacheSizeDeprecated: cache_size still works, and check says what it
// is taken as.
func TestCacheSizeDeprecated(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"dnslb.yaml": "zones:\n  - {origin: example.test., file: z.zone}\ncache_size: 65536\n",
		"z.zone":     goodZone,
	})
	var out, errw bytes.Buffer
	if n := runCheck(filepath.Join(dir, "dnslb.yaml"), &out, &errw); n != 0 {
		t.Fatalf("%d problems: %s", n, errw.String())
	}
	want := "dnslb.yaml:3: cache_size: deprecated: taken as cache.max_bytes: 64MiB (1 KiB per entry); write cache.max_bytes instead (warning)"
	if got := strings.TrimSpace(strings.ReplaceAll(errw.String(), dir+"/", "")); got != want {
		t.Errorf("check said %q\nwant %q", got, want)
	}
}
