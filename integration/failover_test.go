package integration

// Failover on the default check settings (a pool that says only
// `check: {type: http, port: P}`), against backend processes that are
// really killed and hung: the backend mode of bench/failover, the tool that
// measures the same thing over many failures.

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// Detection bounds of issue 13 on the defaults: a crash is seen by the
// connection watch at once; a hang at the next probe (interval 1 s) plus
// Fall adaptive timeouts.
const (
	crashBound  = time.Second
	hangBound   = 3 * time.Second
	reviveBound = 3 * time.Second
)

var backendBin struct {
	once sync.Once
	path string
	err  error
}

// processBackendBinary builds bench/failover once for the package.
func processBackendBinary(t testing.TB) string {
	t.Helper()
	backendBin.once.Do(func() {
		backendBin.path = filepath.Join(filepath.Dir(dnslbBin), "failover")
		out, err := exec.Command("go", "build", "-o", backendBin.path, "../bench/failover").CombinedOutput()
		if err != nil {
			backendBin.err = fmt.Errorf("building bench/failover: %v\n%s", err, out)
		}
	})
	if backendBin.err != nil {
		t.Fatal(backendBin.err)
	}
	return backendBin.path
}

// procBackend is an HTTP backend in a process of its own.
type procBackend struct {
	t    testing.TB
	ip   string
	port int
	cmd  *exec.Cmd
	hits atomic.Int64 // requests it answered (from its output)
	done chan struct{}
}

func startProcBackend(t testing.TB, ip string, port int) *procBackend {
	t.Helper()
	b := &procBackend{t: t, ip: ip, port: port}
	b.start()
	t.Cleanup(b.kill)
	return b
}

func (b *procBackend) start() {
	b.t.Helper()
	var last string
	for range 50 { // the port may linger a moment after a kill
		cmd := exec.Command(processBackendBinary(b.t), "backend", net.JoinHostPort(b.ip, fmt.Sprint(b.port)), "hits")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			b.t.Fatal(err)
		}
		r := bufio.NewScanner(out)
		if r.Scan() && r.Text() == "ready" {
			b.cmd, b.done = cmd, make(chan struct{})
			go func(done chan struct{}) {
				defer close(done)
				for r.Scan() {
					b.hits.Add(1)
				}
			}(b.done)
			return
		}
		_ = cmd.Wait()
		last = stderr.String()
		time.Sleep(20 * time.Millisecond) // retry interval
	}
	b.t.Fatalf("backend %s:%d did not start: %s", b.ip, b.port, last)
}

// kill ends the process with SIGKILL: the kernel closes its sockets.
func (b *procBackend) kill() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGCONT)
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	<-b.done
	b.cmd = nil
}

// hang stops the process (SIGSTOP): the kernel still accepts connections
// for it, nothing answers them.
func (b *procBackend) hang()   { _ = b.cmd.Process.Signal(syscall.SIGSTOP) }
func (b *procBackend) unhang() { _ = b.cmd.Process.Signal(syscall.SIGCONT) }

// waitHit waits for the next request to reach b: a check has just run.
func (b *procBackend) waitHit(t testing.TB, within time.Duration) {
	t.Helper()
	n := b.hits.Load()
	dnstest.Until(t, within, "a health check reaching "+b.ip, func() bool { return b.hits.Load() > n })
}

// freePortOn returns a TCP port free on every one of ips.
func freePortOn(t testing.TB, ips ...string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		for _, ip := range ips[1:] {
			o, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
			if err != nil {
				ok = false
				break
			}
			o.Close()
		}
		l.Close()
		if ok {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", ips)
	return 0
}

// answerLog asks for a name every few milliseconds and keeps what the
// answers held, to tell when a backend left them and whether it came back
// in between.
type answerLog struct {
	mu      sync.Mutex
	samples []answerSample
	stop    chan struct{}
	done    chan struct{}
}

type answerSample struct {
	at    time.Time
	addrs []string
}

func startAnswerLog(addr, name string) *answerLog {
	l := &answerLog{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		c := &dns.Client{Net: "udp", Timeout: queryTimeout}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(5 * time.Millisecond): // pacing
			}
			m.Id = dns.Id()
			r, _, err := c.Exchange(m, addr)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				continue
			}
			s := answerSample{at: time.Now(), addrs: addrsOf(r)}
			l.mu.Lock()
			l.samples = append(l.samples, s)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *answerLog) close() {
	close(l.stop)
	<-l.done
}

// lostAfter waits until the answers lose ip and returns how long after
// since the first answer without it came. It fails when an answer after
// that one has ip again (the loss was not for good) or when none comes
// within within.
func (l *answerLog) lostAfter(t testing.TB, since time.Time, ip string, within time.Duration) time.Duration {
	t.Helper()
	var lost time.Duration
	dnstest.Eventually(t, within, ip+" out of the answers", func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i := len(l.samples) - 1; i >= 0 && l.samples[i].at.After(since); i-- {
			if slices.Contains(l.samples[i].addrs, ip) {
				return false, fmt.Sprintf("answered %v at +%v", l.samples[i].addrs, l.samples[i].at.Sub(since).Round(time.Millisecond))
			}
			if i == 0 || !l.samples[i-1].at.After(since) || slices.Contains(l.samples[i-1].addrs, ip) {
				lost = l.samples[i].at.Sub(since)
				return true, ""
			}
		}
		return false, "no answer yet"
	})
	return lost
}

// TestFailoverOnDefaults: on the default check settings, a crashed backend
// leaves the answers within a second (the connection watch sees its
// sockets close), a hung one within 3 s (the next probe and Fall adaptive
// timeouts), and both come back within 3 s of serving again.
func TestFailoverOnDefaults(t *testing.T) {
	ips := []string{"127.0.0.31", "127.0.0.32", "127.0.0.33"}
	port := freePortOn(t, ips...)
	var bes []*procBackend
	var records strings.Builder
	for _, ip := range ips {
		bes = append(bes, startProcBackend(t, ip, port))
		fmt.Fprintf(&records, "www IN A %s\n", ip)
	}
	addr := startPoolDNSLB(t, records.String(), fmt.Sprintf("  www.example.test.: {check: {type: http, port: %d}}\n", port))
	waitAnswerSet(t, addr, "www.example.test.", dns.TypeA, 15*time.Second, ips...)
	// Enough successful probes for the adaptive timeouts to be learned
	// (AdaptiveMinSamples): before that a probe waits out the full 1 s.
	for range 4 {
		for _, b := range bes {
			b.waitHit(t, 10*time.Second)
		}
	}
	log := startAnswerLog(addr, "www.example.test.")
	defer log.close()

	t.Run("crash", func(t *testing.T) {
		b := bes[0]
		// Right after a check: without the watch, the next one would come
		// only after the 2 s interval.
		b.waitHit(t, 10*time.Second)
		at := time.Now()
		b.kill()
		d := log.lostAfter(t, at, b.ip, crashBound)
		t.Logf("crashed backend out of the answers after %v", d.Round(time.Millisecond))
		b.start()
		d = waitAnswerSet(t, addr, "www.example.test.", dns.TypeA, reviveBound, ips...)
		t.Logf("restarted backend back after %v", d.Round(time.Millisecond))
	})
	t.Run("hang", func(t *testing.T) {
		b := bes[1]
		b.waitHit(t, 10*time.Second)
		at := time.Now()
		b.hang()
		d := log.lostAfter(t, at, b.ip, hangBound)
		t.Logf("hung backend out of the answers after %v", d.Round(time.Millisecond))
		b.unhang()
		d = waitAnswerSet(t, addr, "www.example.test.", dns.TypeA, reviveBound, ips...)
		t.Logf("resumed backend back after %v", d.Round(time.Millisecond))
	})
}

// TestFailoverSlowBackendStays: a backend whose latency jumps from about a
// millisecond to 400 ms, within the default 1 s timeout, is slow, not dead:
// the adaptive timeout must learn the new latency rather than mark it down.
func TestFailoverSlowBackendStays(t *testing.T) {
	be := startBackends(t, ip11, ip12)
	addr := startPoolDNSLB(t, "www IN A 127.0.0.11\nwww IN A 127.0.0.12\n",
		fmt.Sprintf("  www.example.test.: {check: {type: http, port: %d}}\n", be.Port))
	waitAnswerSet(t, addr, "www.example.test.", dns.TypeA, 15*time.Second, ip11, ip12)
	be.waitHits(t, 4, 20*time.Second) // the fast latency is learned
	slow := be.get(t, ip11)
	slow.SetDelay(400 * time.Millisecond)
	log := startAnswerLog(addr, "www.example.test.")
	// Fall (3) probes at the default interval, and a few more.
	be.waitHits(t, 6, 30*time.Second)
	log.close()
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.samples) < 100 {
		t.Fatalf("only %d answers in the window", len(log.samples))
	}
	for _, s := range log.samples {
		if !slices.Contains(s.addrs, ip11) {
			t.Fatalf("the slow backend left the answers at %v: %v", s.at.Format("15:04:05.000"), s.addrs)
		}
	}
}
