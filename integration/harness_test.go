package integration

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// zoneFile is one zone served by a server under test.
type zoneFile struct {
	Origin string // "example.test."
	Path   string // zone file; relative paths are relative to the package dir
	// Secondary is more of the zone: block (request-xfr, allow-notify)
	// for a zone NSD transfers in; Path is then empty and NSD keeps its
	// copy in its own directory.
	Secondary string
}

const (
	startupDeadline = 15 * time.Second
	stopDeadline    = 5 * time.Second
	queryTimeout    = 2 * time.Second
	startAttempts   = 5
)

// lockedBuffer collects a child process's output safely.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort returns a loopback port that was free for both UDP and TCP a moment
// ago. Another process may take it before we use it: callers retry startup.
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen tcp: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatalf("no port free for both UDP and TCP")
	return 0
}

// proc is a started child process.
type proc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after exited is closed
}

func startProc(t testing.TB, name string, args ...string) (*proc, error) {
	t.Helper()
	return startProcEnv(t, nil, name, args...)
}

// startProcEnv is startProc with env (KEY=value) added to the test's
// environment.
func startProcEnv(t testing.TB, env []string, name string, args ...string) (*proc, error) {
	t.Helper()
	p := &proc{out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// Own process group, so that the children NSD forks can be signalled
	// together with it (by our child's pid only).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group we created, then SIGKILL if it
// does not go away in time.
func (p *proc) stop() {
	if p.hasExited() {
		return
	}
	pgid := p.cmd.Process.Pid
	// SIGTERM to the main process only: NSD's parent then stops its own
	// children (signalling the group makes it log "server died").
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopDeadline):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	// NSD's forked children may outlive the parent briefly; make sure the
	// group is gone (ignore ESRCH).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitAnswering polls addr until a query over both UDP and TCP gets any DNS
// reply, the process exits, or the deadline passes.
func waitAnswering(p *proc, addr, qname string) error {
	deadline := time.Now().Add(startupDeadline)
	probe := new(dns.Msg)
	probe.SetQuestion(qname, dns.TypeSOA)
	wire, err := probe.Pack()
	if err != nil {
		return err
	}
	udpOK, tcpOK := false, false
	for time.Now().Before(deadline) {
		if p.hasExited() {
			return fmt.Errorf("exited before answering: %v", p.err)
		}
		if !udpOK {
			if r, err := dnstest.Exchange("udp", addr, wire, 200*time.Millisecond); err == nil && r != nil {
				udpOK = true
			}
		}
		if udpOK && !tcpOK {
			if r, err := dnstest.Exchange("tcp", addr, wire, 200*time.Millisecond); err == nil && r != nil {
				tcpOK = true
			}
		}
		if udpOK && tcpOK {
			return nil
		}
		// Poll interval, not synchronisation: the loop's condition is the answer.
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s within %v (udp=%v tcp=%v)", addr, startupDeadline, udpOK, tcpOK)
}

func addrInUse(out string) bool {
	o := strings.ToLower(out)
	return strings.Contains(o, "address already in use") || strings.Contains(o, "eaddrinuse")
}

// startNSD runs nsd in the foreground on 127.0.0.1:<free port> serving zones
// and returns "127.0.0.1:port". It is stopped in t.Cleanup.
func startNSD(t testing.TB, zones []zoneFile) string {
	t.Helper()
	return startNSDWith(t, zones, "")
}

// startNSDWith is startNSD with more of nsd.conf after the server: block
// (key: blocks, say).
func startNSDWith(t testing.TB, zones []zoneFile, extra string) string {
	t.Helper()
	nsd := requireTool(t, "nsd")
	if len(zones) == 0 {
		t.Fatal("startNSD: no zones")
	}
	dir := t.TempDir()
	var lastOut string
	for attempt := 0; attempt < startAttempts; attempt++ {
		port := freePort(t)
		var conf strings.Builder
		fmt.Fprintf(&conf, `server:
    ip-address: 127.0.0.1@%d
    port: %d
    username: ""
    chroot: ""
    zonesdir: %q
    database: ""
    pidfile: %q
    xfrdfile: %q
    xfrdir: %q
    zonelistfile: %q
    server-count: 1
    verbosity: 0
    hide-version: no
    reuseport: no
    refuse-any: no
    minimal-responses: no
remote-control:
    control-enable: no
`, port, port, dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"),
			dir, filepath.Join(dir, "zone.list"))
		conf.WriteString(extra)
		for _, z := range zones {
			if z.Secondary != "" {
				fmt.Fprintf(&conf, "zone:\n    name: %q\n    zonefile: %q\n%s", z.Origin, filepath.Join(dir, z.Origin+"zone"), z.Secondary)
				continue
			}
			abs, err := filepath.Abs(z.Path)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&conf, "zone:\n    name: %q\n    zonefile: %q\n", z.Origin, abs)
		}
		confPath := filepath.Join(dir, "nsd.conf")
		if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "zone.list"))
		p, err := startProc(t, nsd, "-d", "-c", confPath)
		if err != nil {
			t.Fatalf("starting nsd: %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitAnswering(p, addr, zones[0].Origin); err != nil {
			p.stop()
			lastOut = p.out.String()
			if addrInUse(lastOut) {
				continue
			}
			t.Fatalf("nsd on %s: %v\nnsd output:\n%s", addr, err, lastOut)
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("nsd output:\n%s", p.out.String())
			}
		})
		return addr
	}
	t.Fatalf("nsd: no free port after %d attempts; last output:\n%s", startAttempts, lastOut)
	return ""
}

// startOnFreePort starts a server that argsFor configures for a free
// port (writing its config, returning the command's arguments), waits
// until it answers qname there, and returns its address and process; a
// port taken meanwhile is tried again with another. The process stops
// with the test, its output logged if the test failed.
func startOnFreePort(t testing.TB, name, bin, qname string, argsFor func(port int) []string) (string, *proc) {
	t.Helper()
	var lastOut string
	for range startAttempts {
		port := freePort(t)
		p, err := startProc(t, bin, argsFor(port)...)
		if err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := waitAnswering(p, addr, qname); err != nil {
			p.stop()
			lastOut = p.out.String()
			if addrInUse(lastOut) || strings.Contains(lastOut, "address in use") {
				continue
			}
			t.Fatalf("%s on %s: %v\noutput:\n%s", name, addr, err, lastOut)
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("%s output:\n%s", name, p.out.String())
			}
		})
		return addr, p
	}
	t.Fatalf("%s: no free port after %d attempts:\n%s", name, startAttempts, lastOut)
	return "", nil
}

// startDNSLB writes configYAML to a temp dir and runs
// `dnslb serve --config FILE --listen 127.0.0.1:PORT`; returns the address.
// Zone paths in the YAML should be absolute (or relative to the temp dir).
func startDNSLB(t testing.TB, configYAML string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dnslb.yaml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastOut string
	for attempt := 0; attempt < startAttempts; attempt++ {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		p, err := startProc(t, dnslbBin, "serve", "--config", cfg, "--listen", addr)
		if err != nil {
			t.Fatalf("starting dnslb: %v", err)
		}
		if err := waitAnswering(p, addr, "."); err != nil {
			p.stop()
			lastOut = p.out.String()
			if addrInUse(lastOut) {
				continue
			}
			t.Fatalf("dnslb on %s: %v\nconfig:\n%s\ndnslb output:\n%s", addr, err, configYAML, lastOut)
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("dnslb output:\n%s", p.out.String())
			}
		})
		return addr
	}
	t.Fatalf("dnslb: no free port after %d attempts; last output:\n%s", startAttempts, lastOut)
	return ""
}

// dnslbConfig renders a config serving zones (absolute paths).
func dnslbConfig(t testing.TB, zones []zoneFile) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("log: {level: info, format: json}\nzones:\n")
	for _, z := range zones {
		abs, err := filepath.Abs(z.Path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - origin: %s\n    file: %s\n", z.Origin, abs)
	}
	return b.String()
}

// sendRaw sends raw bytes (possibly garbage) and returns the raw reply, or
// nil if none came within timeout (UDP) or the connection was closed (TCP).
func sendRaw(t testing.TB, addr, network string, wire []byte, timeout time.Duration) []byte {
	t.Helper()
	r, err := dnstest.Exchange(network, addr, wire, timeout)
	if err != nil {
		if errors.Is(err, dnstest.ErrNoReply) || errors.Is(err, dnstest.ErrClosed) {
			return nil
		}
		t.Fatalf("sendRaw %s %s: %v", network, addr, err)
	}
	return r
}

// rawReply is a reply with its wire form (for size and byte-exact checks).
type rawReply struct {
	Msg  *dns.Msg
	Wire []byte
}

// queryRaw packs m, sends it, and returns the parsed reply with its bytes.
func queryRaw(t testing.TB, addr, network string, m *dns.Msg) rawReply {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("pack query: %v", err)
	}
	var lastErr error
	// UDP may lose a datagram on a busy machine: retry a few times.
	tries := 1
	if network == "udp" {
		tries = 3
	}
	for i := 0; i < tries; i++ {
		r, err := dnstest.Exchange(network, addr, wire, queryTimeout)
		if err != nil {
			lastErr = err
			continue
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(r); err != nil {
			t.Fatalf("%s %s: unpack reply to %v: %v (%x)", network, addr, m.Question, err, r)
		}
		if resp.Id != m.Id {
			t.Fatalf("%s %s: reply id %d, query id %d", network, addr, resp.Id, m.Id)
		}
		return rawReply{Msg: resp, Wire: r}
	}
	t.Fatalf("%s %s: no reply to %v: %v", network, addr, m.Question, lastErr)
	return rawReply{}
}

// query sends m over network ("udp" or "tcp") with the miekg/dns client and
// returns the reply. The UDP read buffer is 64 KiB, so an oversized UDP reply
// is seen (and flagged by the caller), not hidden by a short read.
func query(t testing.TB, addr, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: queryTimeout, UDPSize: 65535}
	var lastErr error
	tries := 1
	if network == "udp" {
		tries = 3
	}
	for i := 0; i < tries; i++ {
		r, _, err := c.Exchange(m, addr)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("%s %s: no reply to %v: %v", network, addr, m.Question, lastErr)
	return nil
}
