package integration

// Load feedback end to end (issue 15): the built binary polls HAProxy-style
// agents on the members' addresses, and policy least-loaded gives first
// answers in proportion to the capacity they report.

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// loadAgent is an agent-check server on addr: it answers every connection
// with its current reply, until stopped.
type loadAgent struct {
	ln    net.Listener
	mu    sync.Mutex
	reply string
	done  chan struct{}
}

func startLoadAgent(t *testing.T, addr, reply string) *loadAgent {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("agent on %s: %v", addr, err)
	}
	a := &loadAgent{ln: ln, reply: reply, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			r := a.reply
			a.mu.Unlock()
			_, _ = c.Write([]byte(r + "\n"))
			c.Close()
		}
	}()
	t.Cleanup(a.stop)
	return a
}

func (a *loadAgent) set(reply string) {
	a.mu.Lock()
	a.reply = reply
	a.mu.Unlock()
}

// stop closes the listener: probes are refused from then on.
func (a *loadAgent) stop() {
	a.ln.Close()
	<-a.done
}

// firstShares sends n queries for name/A and returns the percentage of
// answers each address led.
func firstShares(t *testing.T, addr, name string, n int) map[string]float64 {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: queryTimeout}
	conn, err := c.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	count := map[string]int{}
	for i := 0; i < n; i++ {
		m.Id = dns.Id()
		var r *dns.Msg
		for try := 0; try < 3; try++ {
			if r, _, err = c.ExchangeWithConn(m, conn); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		got := addrsOf(r)
		if len(got) == 0 {
			t.Fatalf("query %d: empty answer\n%v", i, r)
		}
		count[got[0]]++
	}
	out := map[string]float64{}
	for a, k := range count {
		out[a] = 100 * float64(k) / float64(n)
	}
	return out
}

// sharesNear reports whether got is within tol points of want for every
// address of want (and nothing else leads).
func sharesNear(got, want map[string]float64, tol float64) bool {
	for a, g := range got {
		if w := want[a]; g < w-tol || g > w+tol {
			return false
		}
	}
	for a, w := range want {
		if w > 0 && got[a] == 0 {
			return false
		}
	}
	return true
}

func TestLoadAgentLeastLoaded(t *testing.T) {
	const a1, a2 = "127.0.0.21", "127.0.0.22"
	port := freePort(t)
	ag1 := startLoadAgent(t, fmt.Sprintf("%s:%d", a1, port), "up 25%")
	ag2 := startLoadAgent(t, fmt.Sprintf("%s:%d", a2, port), "up 100%")
	const interval = 200 * time.Millisecond
	addr := startPoolDNSLB(t, fmt.Sprintf(`www IN A %s
www IN A %s
`, a1, a2), fmt.Sprintf(`  www.example.test.:
    policy: least-loaded
    ttl: 5
    load: {type: agent, port: %d, interval: %s}
    members:
      %s: {weight: 100}
      %s: {weight: 100}
`, port, interval, a1, a2))

	const n = 4000
	within := 10*interval + 10*time.Second
	check := func(what string, want map[string]float64) {
		t.Helper()
		took := dnstest.Eventually(t, within, what, func() (bool, string) {
			got := firstShares(t, addr, "www.example.test.", n)
			return sharesNear(got, want, 3), fmt.Sprintf("first answers %v, want %v ± 3", got, want)
		})
		t.Logf("%s after %v", what, took.Round(time.Millisecond))
	}
	check("shares follow the reports 1:4", map[string]float64{a1: 20, a2: 80})

	ag1.set("drain")
	check("a drained member leads no answer", map[string]float64{a2: 100})
	waitAnswerSet(t, addr, "www.example.test.", dns.TypeA, within, a2)

	ag1.set("ready up 100%") // drain stays until the agent says ready
	ag2.set("up 25%")
	check("shares follow changed reports", map[string]float64{a1: 80, a2: 20})

	// Silent agents: after 3 intervals without a report the configured
	// weights (1:1) answer again.
	ag1.stop()
	ag2.stop()
	check("stale reports fall back to the configured weights", map[string]float64{a1: 50, a2: 50})
}

// TestLoadHTTPHeader: the same shares from reports in a header of the
// http health check's responses.
func TestLoadHTTPHeader(t *testing.T) {
	const a1, a2 = "127.0.0.23", "127.0.0.24"
	be := startBackends(t, a1, a2)
	be.get(t, a1).SetWeight("up 25%")
	be.get(t, a2).SetWeight("100%")
	addr := startPoolDNSLB(t, fmt.Sprintf(`www IN A %s
www IN A %s
`, a1, a2), fmt.Sprintf(`  www.example.test.:
    policy: least-loaded
    ttl: 5
    check: %s
    load: {type: http-header, header: X-Weight}
    members:
      %s: {weight: 100}
      %s: {weight: 100}
`, httpCheck(be.Port), a1, a2))

	const n = 4000
	within := 10*checkInterval + 10*time.Second
	check := func(what string, want map[string]float64) {
		t.Helper()
		took := dnstest.Eventually(t, within, what, func() (bool, string) {
			got := firstShares(t, addr, "www.example.test.", n)
			return sharesNear(got, want, 3), fmt.Sprintf("first answers %v, want %v ± 3", got, want)
		})
		t.Logf("%s after %v", what, took.Round(time.Millisecond))
	}
	check("shares follow the headers 1:4", map[string]float64{a1: 20, a2: 80})
	be.get(t, a1).SetWeight("drain")
	check("a drained member leads no answer", map[string]float64{a2: 100})
	be.get(t, a1).SetWeight("")
	be.get(t, a2).SetWeight("")
	check("without headers the configured weights answer", map[string]float64{a1: 50, a2: 50})
}
