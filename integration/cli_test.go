package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestQuickStart runs what the README tells a newcomer: `dnslb serve` with
// no config serves the embedded example, and dig gets an answer. (The
// listen address is moved off 5353, which may be taken.)
func TestQuickStart(t *testing.T) {
	dig := requireTool(t, "dig")
	var p *proc
	var addr string
	for attempt := 0; attempt < startAttempts; attempt++ {
		port := freePort(t)
		addr = fmt.Sprintf("127.0.0.1:%d", port)
		var err error
		p, err = startProc(t, dnslbBin, "serve", "--listen", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := waitAnswering(p, addr, "example.test."); err != nil {
			p.stop()
			if addrInUse(p.out.String()) {
				continue
			}
			t.Fatalf("embedded example did not start: %v\n%s", err, p.out.String())
		}
		break
	}
	defer p.stop()
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command(dig, "@"+host, "-p", port, "+norec", "www.example.test").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"status: NOERROR", "flags: qr aa", "www.example.test.\t30\tIN\tA\t192.0.2.1"} {
		if !strings.Contains(text, want) {
			t.Errorf("dig output lacks %q:\n%s", want, text)
		}
	}

	// SIGTERM: a graceful stop with exit status 0.
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("dnslb did not stop within 10 s of SIGTERM")
	}
	if p.err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", p.err, p.out.String())
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestCheckCommand: `dnslb check` exits 1 and names file and line of every
// problem; a good config passes with exit 0.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("dnslb.yaml", "zones:\n  - {origin: example.test., file: zones/example.test.zone}\n")
	write("zones/example.test.zone", strings.Join([]string{
		"$TTL 300",
		"@ SOA ns1 hostmaster 1 3600 600 86400 60",
		"@ NS ns1",
		"ns1 A 192.0.2.1",
		"www A 192.0.2.10",
		"www CNAME elsewhere",              // line 6: CNAME and other data
		"outside.example.net. A 192.0.2.2", // line 7: out of zone
		"sub NS ns.sub",                    // line 8: no glue
		"$INCLUDE more.zone",
	}, "\n")+"\n")
	write("zones/more.zone", "; included\nok A 192.0.2.9\n")

	cmd := exec.Command(dnslbBin, "check", "--config", filepath.Join(dir, "dnslb.yaml"))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !(asExit(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("check of a broken zone: %v, want exit status 1\n%s", err, out)
	}
	zf := filepath.Join(dir, "zones", "example.test.zone")
	for _, want := range []string{
		zf + ":6: CNAME and other data at www.example.test.",
		zf + ":7: outside.example.net. is out of zone example.test.",
		zf + ":8: NS ns.sub.example.test. for sub.example.test. has no glue",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A syntax error in an included file names that file. (The parser
	// stops at its first syntax error, so it is the only problem shown.)
	write("zones/example.test.zone", "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n$INCLUDE more.zone\n")
	write("zones/more.zone", "; included\nbad A 1.2.3.400\n")
	out, err = exec.Command(dnslbBin, "check", "--config", filepath.Join(dir, "dnslb.yaml")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), filepath.Join(dir, "zones", "more.zone")+":2: bad A") {
		t.Errorf("syntax error in an included file: %v\n%s", err, out)
	}

	write("zones/more.zone", "ok A 192.0.2.9\n")
	out, err = exec.Command(dnslbBin, "check", "--config", filepath.Join(dir, "dnslb.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: 1 zones") {
		t.Errorf("check of a good config: %v\n%s", err, out)
	}

	// A broken zone keeps serve from starting, with the same messages.
	write("zones/more.zone", "; included\nbad A 1.2.3.400\n")
	out, err = exec.Command(dnslbBin, "serve", "--config", filepath.Join(dir, "dnslb.yaml"), "--listen", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "more.zone") || !strings.Contains(string(out), `"line":2`) {
		t.Errorf("serve with a broken zone: %v\n%s", err, out)
	}
}

// TestCheckStrictValues: `dnslb check` refuses a duration without a unit
// (issue 11: `interval: 2` passed and meant 2ns) and a weight of 0 (which
// silently became 1), exiting 1 with the file, line and key path.
func TestCheckStrictValues(t *testing.T) {
	const head = "zones:\n  - {origin: example.test., file: z.zone}\npools:\n  www.example.test.:\n"
	tests := []struct {
		name, file, yaml string
		want             string // a regexp of the line; FILE is the config's path
	}{
		{"interval without unit", "dnslb.yaml", head + "    check:\n      type: tcp\n      port: 80\n      interval: 2\n",
			`^FILE:8: pools\[www\.example\.test\.\]\.check\.interval: 2 has no unit \(write e\.g\. 2s or 500ms\)$`},
		{"weight 0", "dnslb.yaml", head + "    members:\n      192.0.2.10: {weight: 0}\n",
			`^FILE:6: pools\[www\.example\.test\.\]\.members\[192\.0\.2\.10\]\.weight: 0 is not allowed \(1-10000\); .*backup: true`},
		{"vip advert_interval without unit", "vip.yaml",
			"vip:\n  - name: a\n    interface: eth0\n    vrid: 51\n    priority: 100\n    addresses: [\"192.0.2.100/24\"]\n    advert_interval: 1\n",
			`^FILE:7: vip\[0\]\.advert_interval: 1 has no unit`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			for name, body := range map[string]string{tc.file: tc.yaml, "z.zone": "$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res := runCLI(t, "check", "--config", path)
			re := regexp.MustCompile(strings.ReplaceAll(tc.want, "FILE", regexp.QuoteMeta(path)))
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			if res.code != 1 || len(lines) != 1 || !re.MatchString(lines[0]) {
				t.Errorf("dnslb check: want exit 1 and one problem matching %s; %v", re, res)
			}
		})
	}
}

func asExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(dnslbBin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dnslb version") {
		t.Fatalf("--version: %v %s", err, out)
	}
}
