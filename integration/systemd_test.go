package integration

// systemd integration of the built binary: the sd_notify protocol that a
// Type=notify unit (contrib/systemd) relies on, and the build stamps.

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket listens where systemd would (NOTIFY_SOCKET) and hands on
// every datagram a service sends.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short path: sun_path holds 108 bytes and t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &notifySocket{path: path, msgs: make(chan string, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return // closed by the cleanup
			}
			select {
			case s.msgs <- string(buf[:n]):
			default: // a test that stopped reading: drop rather than block
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// next returns the next notification that is not a watchdog ping, failing
// the test when none comes within the start-up deadline.
func (s *notifySocket) next(t *testing.T) string {
	t.Helper()
	deadline := time.After(startupDeadline)
	for {
		select {
		case m := <-s.msgs:
			if m == "WATCHDOG=1" {
				continue
			}
			return m
		case <-deadline:
			t.Fatalf("no sd_notify message within %v", startupDeadline)
			return ""
		}
	}
}

// fields splits a notification into its KEY=value lines.
func notifyFields(m string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(m, "\n") {
		k, v, _ := strings.Cut(line, "=")
		out[k] = v
	}
	return out
}

// TestSdNotify: under a Type=notify unit, READY=1 once serving,
// RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a SIGHUP reload,
// STOPPING=1 on SIGTERM, and watchdog pings when WATCHDOG_USEC is set.
func TestSdNotify(t *testing.T) {
	ns := listenNotify(t)
	// 200 ms: a ping every 100 ms.
	o := newOpServerEnv(t, opZone(1, ""), opConfig(plainAdmin, "", ""),
		[]string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=200000"})

	// newOpServerEnv returned once DNS and the admin API answered, so READY
	// has been sent by now.
	ready := notifyFields(ns.next(t))
	if ready["READY"] != "1" || !strings.Contains(ready["STATUS"], o.dnsAddr) {
		t.Fatalf("first notification %v, want READY=1 with a STATUS naming %s", ready, o.dnsAddr)
	}

	// The watchdog pings on its own: wait for one (nothing else is due).
	select {
	case m := <-ns.msgs:
		if m != "WATCHDOG=1" {
			t.Fatalf("while idle: %q, want WATCHDOG=1", m)
		}
	case <-time.After(startupDeadline):
		t.Fatalf("no WATCHDOG=1 within %v with WATCHDOG_USEC=200000", startupDeadline)
	}

	before := o.reloads()
	o.Signal(syscall.SIGHUP)
	rl := notifyFields(ns.next(t))
	if rl["RELOADING"] != "1" || !regexp.MustCompile(`^[0-9]+$`).MatchString(rl["MONOTONIC_USEC"]) {
		t.Fatalf("after SIGHUP: %v, want RELOADING=1 with MONOTONIC_USEC", rl)
	}
	again := notifyFields(ns.next(t))
	if again["READY"] != "1" {
		t.Fatalf("after RELOADING: %v, want READY=1", again)
	}
	// READY came after the reload, not before it.
	if after := o.reloads(); after != before+1 {
		t.Errorf("dnslb_reloads_total went %v -> %v by READY=1; want one reload done", before, after)
	}

	if _, err := o.Term(stopDeadline + 3*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if st := notifyFields(ns.next(t)); st["STOPPING"] != "1" {
		t.Fatalf("after SIGTERM: %v, want STOPPING=1", st)
	}
}

// TestBuildStamps: ldflags stamps show in --version and in
// dnslb_build_info; without them the binary says dev.
func TestBuildStamps(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dnslb")
	const ldflags = "-X main.version=9.8.7 -X main.commit=feedc0de -X main.date=2026-01-02T03:04:05Z"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "../cmd/dnslb").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	for _, want := range []string{"dnslb version 9.8.7\n", "commit: feedc0de\n", "date: 2026-01-02T03:04:05Z\n", "go: " + runtime.Version()} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--version lacks %q:\n%s", want, out)
		}
	}

	// The package's binary: no stamps given. Its version is "dev", or the
	// pseudo-version the Go toolchain records from the git checkout it was
	// built in (unless -buildvcs=false, as some machines' go env sets).
	o := newOpServer(t, opZone(1, ""), opConfig(plainAdmin, "", ""))
	mfs := o.metrics()
	if v, n := metricSum(mfs, "dnslb_build_info", map[string]string{"goversion": runtime.Version()}); n != 1 || v != 1 {
		t.Fatalf("dnslb_build_info{goversion=%s} = %v (%d series); families: %v", runtime.Version(), v, n, mfs["dnslb_build_info"])
	}
	for _, l := range mfs["dnslb_build_info"].GetMetric()[0].GetLabel() {
		if l.GetName() == "version" && !regexp.MustCompile(`^(dev|v[0-9]+\.[0-9]+\.[0-9]+\S*)$`).MatchString(l.GetValue()) {
			t.Errorf("dnslb_build_info version %q: want dev or a module version", l.GetValue())
		}
	}
}

// TestVIPSdNotify: `dnslb vip` under a Type=notify unit says READY=1 once
// its sockets are open and STOPPING=1 on SIGTERM, before it gives the
// address up.
func TestVIPSdNotify(t *testing.T) {
	l := newLab(t)
	ns := listenNotify(t) // a path: reachable from the lab's network namespaces
	p := l.start("dnslb-lb1", "lb1", "env", "NOTIFY_SOCKET="+ns.path,
		dnslbBin, "vip", "--config", l.vipConfig("lb1", 150, ""))
	if m := notifyFields(ns.next(t)); m["READY"] != "1" {
		t.Fatalf("first notification %v, want READY=1", m)
	}
	l.waitHolders(t, settle, "lb1")
	p.kill(syscall.SIGTERM)
	if m := notifyFields(ns.next(t)); m["STOPPING"] != "1" {
		t.Fatalf("after SIGTERM: %v, want STOPPING=1", m)
	}
	p.wait(t, stopDeadline)
}
