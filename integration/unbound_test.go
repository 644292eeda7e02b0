package integration

// Delegated use: unbound as a recursive resolver with a stub zone pointing at
// dnslb, as a site resolver would reach a delegated subdomain. The figure
// that matters to an operator is the stale window: from the moment a backend
// dies until a client asking the resolver no longer gets its address. It
// must stay within pool TTL + interval×fall + 1 s.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// startUnbound runs unbound in the foreground on 127.0.0.1:<free port>,
// recursing for example.test. to the dnslb at stubAddr ("127.0.0.1:port")
// and nowhere else; returns its address. Stopped in t.Cleanup.
func startUnbound(t testing.TB, stubAddr string) string {
	t.Helper()
	return startUnboundModules(t, stubAddr, "iterator", "")
}

// startUnboundModules is startUnbound with the given module-config and
// more server: lines (indented by four spaces).
func startUnboundModules(t testing.TB, stubAddr, modules, extra string) string {
	t.Helper()
	return startUnboundConf(t, stubAddr, modules, extra+"\n    domain-insecure: \"example.test.\"")
}

// startUnboundConf is startUnboundModules without example.test. marked
// insecure: extra may give it a trust anchor, for validation.
func startUnboundConf(t testing.TB, stubAddr, modules, extra string) string {
	t.Helper()
	unbound := requireTool(t, "unbound")
	host, port, _ := strings.Cut(stubAddr, ":")
	dir := t.TempDir()
	var lastOut string
	for attempt := 0; attempt < startAttempts; attempt++ {
		ubPort := freePort(t)
		conf := fmt.Sprintf(`server:
    interface: 127.0.0.1
    port: %d
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: %q
    pidfile: %q
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    so-reuseport: no
    do-not-query-localhost: no
    module-config: %q
%s
    # "test." is one of unbound's default local zones (RFC 6761, static):
    # let queries below it through to the stub.
    local-zone: "test." transparent
    qname-minimisation: no
    prefetch: no
    serve-expired: no
    cache-min-ttl: 0
    minimal-responses: no
stub-zone:
    name: "example.test."
    stub-addr: %s@%s
    stub-first: no
remote-control:
    control-enable: no
`, ubPort, dir, filepath.Join(dir, "unbound.pid"), modules, extra, host, port)
		confPath := filepath.Join(dir, "unbound.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := startProc(t, unbound, "-d", "-c", confPath)
		if err != nil {
			t.Fatalf("starting unbound: %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", ubPort)
		if err := waitResolving(p, addr, "example.test."); err != nil {
			p.stop()
			lastOut = p.out.String()
			if addrInUse(lastOut) {
				continue
			}
			t.Fatalf("unbound on %s: %v\nconfig:\n%s\nunbound output:\n%s", addr, err, conf, lastOut)
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("unbound output:\n%s", p.out.String())
			}
		})
		return addr
	}
	t.Fatalf("unbound: no free port after %d attempts; last output:\n%s", startAttempts, lastOut)
	return ""
}

// waitResolving polls the resolver until it resolves name/SOA (through the
// stub) with NOERROR and an answer.
func waitResolving(p *proc, addr, name string) error {
	deadline := time.Now().Add(startupDeadline)
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeSOA)
	var last string
	for time.Now().Before(deadline) {
		if p.hasExited() {
			return fmt.Errorf("exited before answering: %v", p.err)
		}
		r, _, err := c.Exchange(m, addr)
		switch {
		case err != nil:
			last = err.Error()
		case r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0:
			return nil
		default:
			last = fmt.Sprintf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	return fmt.Errorf("no resolution of %s SOA within %v: %s", name, startupDeadline, last)
}

// askResolver sends a recursive query for name/qtype to a resolver.
func askResolver(t testing.TB, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	return query(t, addr, "udp", m)
}

// TestUnboundStaleWindow: through a real resolver, a dead backend stops being
// handed out within pool TTL + interval×fall + 1 s.
func TestUnboundStaleWindow(t *testing.T) {
	requireTool(t, "unbound")
	const poolTTL = 2
	be := startBackends(t, ip11, ip12, ip13)
	dnslbAddr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
www IN A 127.0.0.13
`, fmt.Sprintf(`  www.example.test.:
    policy: round-robin
    ttl: %d
    check: %s
`, poolTTL, httpCheck(be.Port)))
	ub := startUnbound(t, dnslbAddr)
	waitChecksRunning(t, be)

	resolve := func() ([]string, *dns.Msg) {
		r := askResolver(t, ub, "www.example.test", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess {
			t.Fatalf("through unbound: rcode %s\n%v", dns.RcodeToString[r.Rcode], r)
		}
		return addrsOf(r), r
	}
	got, r := resolve()
	if !sameAddrs(got, ip11, ip12, ip13) {
		t.Fatalf("through unbound, all healthy: %v, want all three\n%v", got, r)
	}
	for _, rr := range r.Answer {
		if rr.Header().Ttl > poolTTL {
			t.Errorf("through unbound: TTL %d above the pool TTL %d: %v", rr.Header().Ttl, poolTTL, rr)
		}
	}
	if d := digShort(t, ub, "www.example.test", "A"); !sameAddrs(d, ip11, ip12, ip13) {
		t.Errorf("dig through unbound: %v, want all three", d)
	}

	// Make sure unbound holds a freshly cached copy when the backend dies
	// (the worst case for the window): wait for a cache refill — a reply
	// whose TTL is the full pool TTL again.
	dnstest.Eventually(t, 2*poolTTL*time.Second+5*time.Second, "unbound to refetch from dnslb", func() (bool, string) {
		_, r := resolve()
		return len(r.Answer) > 0 && r.Answer[0].Header().Ttl == poolTTL, fmt.Sprint(r.Answer)
	})

	victim := be.get(t, ip12)
	victim.Stop()
	t0 := time.Now()
	bound := poolTTL*time.Second + checkInterval*checkFall + time.Second
	var polls int
	var last []string
	for {
		polls++
		got, _ := resolve()
		last = got
		if !slices.Contains(got, victim.ip) {
			break
		}
		if time.Since(t0) > bound+10*time.Second {
			t.Fatalf("unbound still hands out %s %v after the backend died: %v", victim.ip, time.Since(t0), got)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	window := time.Since(t0)
	t.Logf("stale window through unbound: %v (%d polls every 50ms; pool ttl %ds, interval %v, fall %d, timeout %v; bound ttl+interval×fall+1s = %v); then %v",
		window.Round(time.Millisecond), polls, poolTTL, checkInterval, checkFall, checkTimeout, bound, last)
	if window > bound {
		t.Errorf("stale window %v through unbound, want within pool TTL + interval×fall + 1s = %v", window, bound)
	}
	if !sameAddrs(last, ip11, ip13) {
		t.Errorf("through unbound after the window: %v, want 11 and 13", last)
	}
	// It stays gone (no second cached copy with the dead member).
	for i := 0; i < 20; i++ {
		if got, _ := resolve(); slices.Contains(got, victim.ip) {
			t.Fatalf("through unbound, %s came back in %v while its backend is down", victim.ip, got)
		}
	}
	if d := digShort(t, ub, "www.example.test", "A"); !sameAddrs(d, ip11, ip13) {
		t.Errorf("dig through unbound after the window: %v, want 11 and 13", d)
	}

	// And it returns through the resolver once healthy: within interval×rise
	// + pool TTL + margin.
	victim.Start(t)
	back := dnstest.Eventually(t, riseBound()+poolTTL*time.Second+10*time.Second, ip12+" back through unbound", func() (bool, string) {
		got, _ := resolve()
		return slices.Contains(got, victim.ip), fmt.Sprint(got)
	})
	t.Logf("through unbound, %s back %v after its backend recovered", victim.ip, back.Round(time.Millisecond))
	// unbound counts TTLs in whole seconds: a copy lives up to TTL + 1 s.
	if b := riseBound() + poolTTL*time.Second + time.Second; back > b {
		t.Errorf("through unbound, %s back after %v, want within interval×rise + pool TTL + 1s + margin = %v", victim.ip, back, b)
	}
}

// TestUnboundEmptyRecovery: with when_all_down: empty, a resolver caches the
// NODATA; once a backend recovers, clients must get it back about as soon as
// they would lose a dead one — within pool TTL + interval×rise + 1 s — not
// after the zone's negative TTL (here 300 s). The NODATA is "so resolvers
// retry soon" (docs/design.md), which only holds if its negative TTL is capped by
// the pool TTL.
func TestUnboundEmptyRecovery(t *testing.T) {
	requireTool(t, "unbound")
	const poolTTL = 2
	be := startBackends(t, ip11, ip12)
	dnslbAddr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
`, fmt.Sprintf(`  www.example.test.:
    ttl: %d
    when_all_down: empty
    check: %s
`, poolTTL, httpCheck(be.Port)))
	ub := startUnbound(t, dnslbAddr)
	waitChecksRunning(t, be)
	resolve := func() *dns.Msg { return askResolver(t, ub, "www.example.test", dns.TypeA) }
	if got := addrsOf(resolve()); !sameAddrs(got, ip11, ip12) {
		t.Fatalf("through unbound, all healthy: %v", got)
	}
	for _, b := range be.Backends {
		b.Stop()
	}
	dnstest.Eventually(t, poolTTL*time.Second+fallBound()+5*time.Second, "NODATA through unbound", func() (bool, string) {
		r := resolve()
		return r.Rcode == dns.RcodeSuccess && len(r.Answer) == 0, fmt.Sprint(r)
	})
	// The authoritative NODATA's negative TTL, as a resolver will use it
	// (RFC 2308: min(SOA TTL, SOA MINIMUM)).
	if r := askAuth(t, dnslbAddr, "www.example.test", dns.TypeA); len(r.Ns) > 0 {
		if soa, ok := r.Ns[0].(*dns.SOA); ok {
			neg := min(soa.Hdr.Ttl, soa.Minttl)
			t.Logf("all down: dnslb's NODATA has negative TTL %d (pool ttl %d)", neg, poolTTL)
			if neg > poolTTL {
				t.Errorf("when_all_down: empty NODATA carries negative TTL %d (SOA TTL %d, minimum %d), want at most the pool TTL %d so that resolvers retry soon",
					neg, soa.Hdr.Ttl, soa.Minttl, poolTTL)
			}
		}
	}
	be.get(t, ip11).Start(t)
	bound := poolTTL*time.Second + riseBound() + time.Second
	start := time.Now()
	for {
		if got := addrsOf(resolve()); slices.Contains(got, ip11) {
			break
		}
		if time.Since(start) > bound+5*time.Second {
			t.Fatalf("through unbound, still NODATA %v after a backend recovered (bound %v): the resolver holds the negative answer", time.Since(start).Round(time.Millisecond), bound)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	back := time.Since(start)
	t.Logf("when_all_down: empty: back through unbound %v after a backend recovered (bound %v)", back.Round(time.Millisecond), bound)
	if back > bound {
		t.Errorf("through unbound, addresses back %v after a backend recovered, want within pool TTL + interval×rise + 1s + margin = %v", back, bound)
	}
}
