package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// safetyZone has a pool name (www) and, with broken, a bad address on
// line 8.
func safetyZone(broken bool) string {
	z := opZone(2024010101, "www     IN A    192.0.2.10\nwww     IN A    192.0.2.11\n")
	if broken {
		z += "bad     IN A    300.1.1.1\n"
	}
	return z
}

const safetyPools = `  www.example.test.:
    policy: round-robin
`

// `dnslb serve` with a broken zone names the zone's file and line, and not
// the pool that fails only because of it.
func TestServeBrokenZoneNamesFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, zone, want string
	}{
		{name: "bad record", zone: safetyZone(true), want: opZoneName + ":8: bad A A: \"300.1.1.1\""},
		{name: "missing file", want: opZoneName + ": open " + opZoneName + ": no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.zone != "" {
				writeFileAtomic(t, filepath.Join(dir, opZoneName), tc.zone)
			}
			cfgPath := filepath.Join(dir, "dnslb.yaml")
			writeFileAtomic(t, cfgPath, opConfig(`""`, "", safetyPools))
			res := runCLI(t, "serve", "--config", cfgPath, "--listen", "127.0.0.1:0")
			if res.code == 0 {
				t.Fatalf("serve started with a broken zone: %v", res)
			}
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			found := false
			for _, l := range lines {
				if strings.Contains(l, `"level":"error"`) && strings.HasSuffix(problemOf(t, l), tc.want) &&
					strings.Contains(l, `"file":"`+filepath.Join(dir, opZoneName)+`"`) {
					found = true
				}
				// The pool over the zone fails only because the zone
				// did: its problem would send the operator to the
				// wrong place.
				if strings.Contains(l, "pools[www.example.test.]") || strings.Contains(l, "none of the configured zones") {
					t.Errorf("a problem derived from the zone's: %s", l)
				}
			}
			if !found {
				t.Fatalf("no log line names %s:\n%s", tc.want, res.stderr)
			}
		})
	}
}

// problemOf renders a JSON log line's file, line and problem fields as
// "file:line: problem".
func problemOf(t *testing.T, line string) string {
	t.Helper()
	var l logLine
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	loc := l.str("file")
	if n, ok := l["line"].(float64); ok {
		loc += ":" + strconv.Itoa(int(n))
	}
	if k := l.str("key"); k != "" {
		loc += ": " + k
	}
	return loc + ": " + l.str("problem")
}

// `dnslb check` and `dnslb reload` print the same lines for the same broken
// files: a config value problem, a pool member missing from the zone, and
// a zone problem, each with its file and line.
func TestCheckAndReloadPrintTheSameProblems(t *testing.T) {
	o := newOpServer(t, safetyZone(false), opConfig(plainAdmin, "", safetyPools))
	brokenPools := `  www.example.test.:
    policy: round-robbin
    ttl: -1
`
	o.SetConfig(opConfig(plainAdmin, "", brokenPools))
	check := runCLI(t, "check", "--config", o.cfgPath)
	if check.code != 1 {
		t.Fatalf("check of a broken config: %v", check)
	}
	wantCheck := o.cfgPath + ":8: pools[www.example.test.].policy: \"round-robbin\" is not one of round-robin, weighted, sticky, first-healthy, least-loaded\n" +
		o.cfgPath + ":9: pools[www.example.test.].ttl: -1 is out of range\n"
	if check.stderr != wantCheck {
		t.Errorf("check output:\n%s\nwant:\n%s", check.stderr, wantCheck)
	}
	reload := o.cli("reload")
	if reload.code != 1 {
		t.Fatalf("reload of a broken config: %v", reload)
	}
	got := strings.SplitN(strings.TrimSpace(reload.stderr), "\n", 2)
	if len(got) != 2 || strings.TrimSpace(got[1]) != strings.TrimSpace(check.stderr) {
		t.Fatalf("reload and check differ:\nreload:\n%s\ncheck:\n%s", reload.stderr, check.stderr)
	}

	// The same for a zone problem.
	o.SetConfig(opConfig(plainAdmin, "", safetyPools))
	o.writeZone(safetyZone(true))
	check = runCLI(t, "check", "--config", o.cfgPath)
	if want := filepath.Join(o.dir, opZoneName) + ":8: bad A A: \"300.1.1.1\""; check.code != 1 || strings.TrimSpace(check.stderr) != want {
		t.Fatalf("check of a broken zone: want %q, got %v", want, check)
	}
	reload = o.cli("reload")
	got = strings.SplitN(strings.TrimSpace(reload.stderr), "\n", 2)
	if reload.code != 1 || len(got) != 2 || got[1] != strings.TrimSpace(check.stderr) {
		t.Fatalf("reload and check differ:\nreload: %v\ncheck:\n%s", reload, check.stderr)
	}
}

// A zone file replaced by a FIFO (which blocks a reader until something
// writes to it) fails the reload at once, naming the file; the admin API
// and /metrics keep answering, and SIGTERM ends the process.
func TestFIFOZoneDoesNotWedge(t *testing.T) {
	o := newOpServer(t, safetyZone(false), opConfig(plainAdmin, "", safetyPools))
	zonePath := filepath.Join(o.dir, opZoneName)
	if err := os.Remove(zonePath); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(zonePath, 0o644); err != nil {
		t.Fatal(err)
	}
	// The watcher sees the change and reloads; the CLI reload must also
	// come back with the problem.
	res := o.cli("reload")
	if res.code != 1 || !strings.Contains(res.stderr, zonePath+": open "+opZoneName+": a named pipe (FIFO), not a regular file") {
		t.Fatalf("reload with a FIFO zone: %v", res)
	}
	code, body := o.do(http.MethodGet, "/metrics", "", nil)
	if code != http.StatusOK || !strings.Contains(string(body), `dnslb_zone_load_error{zone="example.test."} 1`) {
		t.Fatalf("/metrics with a FIFO zone: %d\n%.2000s", code, body)
	}
	if r := askAuth(t, o.dnsAddr, "www.example.test.", 1); len(r.Answer) != 2 {
		t.Fatalf("the old zone is not served: %v", r)
	}
	if _, err := o.Term(stopDeadline + 3*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}
