package integration

// The packed-response cache and DNS Cookies, through the real binary:
// dig's cookies are answered from the cache, cookies survive a restart
// and verify across a fleet sharing a secret, and memory stays bounded
// under a stream of random names.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const cacheCfg = "admin: ADMIN_ADDR\nlog: {level: info, format: json}\nzones:\n  - {origin: example.test., file: example.test.zone}\n"

var digCookieRE = regexp.MustCompile(`; COOKIE: ([0-9a-f]+)( \(good\))?`)

// digCookie runs dig (which sends a COOKIE by default) and returns the
// reply's status and COOKIE, failing unless dig calls it good (its client
// cookie came back). args may hold +cookie=HEX.
func digCookie(t *testing.T, dig, addr string, args ...string) (status, cookie string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	full := append([]string{"@" + host, "-p", port, "+time=2", "+tries=2", "+norec"}, args...)
	out, err := exec.Command(dig, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	m := digCookieRE.FindStringSubmatch(string(out))
	if m == nil || m[2] == "" {
		t.Fatalf("dig %s: no good COOKIE in the reply:\n%s", strings.Join(full, " "), out)
	}
	return parseDig(string(out)).status, m[1]
}

// TestDigCookieHitsTheCache: dig +cookie queries (dig's default) are
// answered from the cache (dnslb_cache_hits_total), each with a server
// cookie; sent back, the cookie is echoed as valid.
func TestDigCookieHitsTheCache(t *testing.T) {
	dig := requireTool(t, "dig")
	o := newOpServer(t, opZone(1, "www IN A 192.0.2.10\n"), cacheCfg)
	hits := func() float64 { v, _ := metricSum(o.metrics(), "dnslb_cache_hits_total", nil); return v }
	before := hits()
	var cookie string
	for range 4 {
		status, c := digCookie(t, dig, o.dnsAddr, "+cookie", "www.example.test", "A")
		if status != "NOERROR" || len(c) != 48 {
			t.Fatalf("status %s, cookie %q (want 8 + 16 bytes)", status, c)
		}
		cookie = c
	}
	if got := hits() - before; got < 3 {
		t.Errorf("dnslb_cache_hits_total went up by %v for 4 dig +cookie queries, want at least 3", got)
	}
	// dig +cookie=VALUE sends it back, as a resolver that learnt it does.
	before = hits()
	status, echoed := digCookie(t, dig, o.dnsAddr, "+cookie="+cookie, "www.example.test", "A")
	if status != "NOERROR" || echoed != cookie {
		t.Errorf("the server cookie sent back: status %s, cookie %s; want it echoed (valid and fresh): %s", status, echoed, cookie)
	}
	if hits() <= before {
		t.Error("a query with a valid server cookie was not a cache hit")
	}
}

// TestCookieSurvivesRestart: the generated secret is kept in the state
// file, so a cookie handed out before a restart is still valid after it
// (echoed, not replaced), and the secret is never logged.
func TestCookieSurvivesRestart(t *testing.T) {
	dig := requireTool(t, "dig")
	o := newOpServer(t, opZone(1, "www IN A 192.0.2.10\n"), cacheCfg)
	_, cookie := digCookie(t, dig, o.dnsAddr, "+cookie", "www.example.test", "A")
	o.Restart()
	_, after := digCookie(t, dig, o.dnsAddr, "+cookie="+cookie, "www.example.test", "A")
	if after != cookie {
		t.Errorf("after a restart the cookie %s came back as %s: the secret changed", cookie, after)
	}
	data, err := os.ReadFile(filepath.Join(o.dir, "dnslb.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	secret := regexp.MustCompile(`"cookie_secret": "([0-9a-f]{32})"`).FindSubmatch(data)
	if secret == nil {
		t.Fatalf("no cookie_secret in the state file:\n%s", data)
	}
	for i, p := range o.logs {
		if strings.Contains(p.out.String(), string(secret[1])) {
			t.Errorf("process %d logged the cookie secret", i+1)
		}
	}
}

// TestCookieSecretSharedByAFleet: two servers configured with one secret
// take each other's cookies as valid; a third with another secret hands
// out a fresh one.
func TestCookieSecretSharedByAFleet(t *testing.T) {
	dig := requireTool(t, "dig")
	zone := opZone(1, "www IN A 192.0.2.10\n")
	shared := cacheCfg + "cookies: {secret: e5e973e5a6b2a43f48e7dc849e37bfcf}\n"
	a := newOpServer(t, zone, shared)
	b := newOpServer(t, zone, shared)
	c := newOpServer(t, zone, cacheCfg+"cookies: {secret: 445536bcd2513298075a5d379663c962}\n")
	_, cookie := digCookie(t, dig, a.dnsAddr, "+cookie", "www.example.test", "A")
	if _, got := digCookie(t, dig, b.dnsAddr, "+cookie="+cookie, "www.example.test", "A"); got != cookie {
		t.Errorf("the other server of the fleet replaced the cookie %s with %s", cookie, got)
	}
	if _, got := digCookie(t, dig, c.dnsAddr, "+cookie="+cookie, "www.example.test", "A"); got == cookie || got[:16] != cookie[:16] {
		t.Errorf("a server with another secret answered cookie %s to %s: want a fresh one for the same client cookie", got, cookie)
	}
	for _, o := range []*opServer{a, b, c} {
		if strings.Contains(o.Log(), "e5e973e5a6b2a43f") || strings.Contains(o.Log(), "445536bcd2513298") {
			t.Error("the configured secret was logged")
		}
	}
}

// TestCacheMemoryBounded: 300,000 random names under a wildcard CNAME to
// a weighted pool of 8 members of weight 125 (1,000 rotation slots) took
// RSS from 18 MB to 1.38 GB when the cache was bounded by entry count.
// With cache.max_bytes the accounted bytes stay under the bound, and RSS
// under the baseline (the server after start-up and a warm-up) plus three
// times the bound, as the README documents: the collector lets the heap
// grow to twice what is live (GOGC=100) before it runs, and every query
// of the stream is a miss that leaves garbage. Measured: 24 MiB baseline,
// 64 MiB peak with a 16 MiB bound.
func TestCacheMemoryBounded(t *testing.T) {
	const bound = 16 << 20
	var records strings.Builder
	records.WriteString("*.w IN CNAME pool\n")
	var members strings.Builder
	for i := range 8 {
		fmt.Fprintf(&records, "pool IN A 192.0.2.%d\n", 10+i)
		fmt.Fprintf(&members, "      192.0.2.%d: {weight: 125}\n", 10+i)
	}
	cfg := cacheCfg + fmt.Sprintf("cache: {max_bytes: %d}\npools:\n  pool.example.test.:\n    policy: weighted\n    members:\n", bound) + members.String()
	o := newOpServer(t, opZone(1, records.String()), cfg)
	pid := o.p.cmd.Process.Pid

	flood(t, o.dnsAddr, 5000) // warm up: sockets, buffers, the collector's pace
	baseline := vmRSS(t, pid)
	var peak int64
	var mu sync.Mutex
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r, err := readVmRSS(pid); err == nil {
				mu.Lock()
				peak = max(peak, r)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond): // sampling RSS while the flood runs
			}
		}
	}()
	answered := flood(t, o.dnsAddr, 300000)
	close(stop)
	<-sampled
	final := vmRSS(t, pid)
	mfs := o.metrics()
	accounted, _ := metricSum(mfs, "dnslb_cache_bytes", nil)
	entries, _ := metricSum(mfs, "dnslb_cache_entries", nil)
	t.Logf("%d of 300000 answered; RSS baseline %d MiB, peak %d MiB, final %d MiB; cache %.1f MiB accounted, %.0f entries",
		answered, baseline>>20, peak>>20, final>>20, accounted/(1<<20), entries)
	if answered < 100000 {
		t.Fatalf("only %d of 300000 queries answered", answered)
	}
	if accounted > bound || entries < 1000 {
		t.Errorf("dnslb_cache_bytes %.0f (bound %d), dnslb_cache_entries %.0f", accounted, bound, entries)
	}
	if limit := baseline + 3*bound; peak > limit || final > limit {
		t.Errorf("RSS peak %d MiB, final %d MiB: above the baseline %d MiB plus three times the bound (%d MiB)",
			peak>>20, final>>20, baseline>>20, limit>>20)
	}
}

// flood sends n queries for random names under *.w.example.test. as fast
// as replies come back: four sockets, each with up to 64 queries in
// flight. It returns how many were answered.
func flood(t *testing.T, addr string, n int) int {
	t.Helper()
	const workers, window = 4, 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(n)))
			m := new(dns.Msg)
			buf := make([]byte, 1500)
			got := 0
			for sent := w; sent < n; {
				batch := 0
				for ; batch < window && sent < n; batch++ {
					m.SetQuestion(fmt.Sprintf("r%016x.w.example.test.", rng.Uint64()), dns.TypeA)
					m.Id = uint16(sent)
					wire, _ := m.Pack()
					if _, err := conn.Write(wire); err != nil {
						t.Error(err)
						return
					}
					sent += workers
				}
				_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				for range batch {
					k, err := conn.Read(buf)
					if err != nil {
						break // lost in the socket buffers: the next batch goes on
					}
					if k >= 4 && binary.BigEndian.Uint16(buf[2:])&0x8000 != 0 {
						got++
					}
				}
			}
			mu.Lock()
			answered += got
			mu.Unlock()
		}()
	}
	wg.Wait()
	return answered
}

func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	r, err := readVmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readVmRSS is the resident set of process pid, from /proc/PID/status.
func readVmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
