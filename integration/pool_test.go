package integration

// End-to-end tests of pools (docs/design.md, "Pools: the answer
// contract"): the built binary, real HTTP backends on 127.0.0.11… that the
// tests stop, start and hang, and real clients (dig and the miekg/dns
// client).
//
// Timing figures (detection of a refused and of a hung backend, return after
// rise) are logged with t.Log; bounds are generous multiples of the
// configured interval so that a loaded CI machine does not flake, and every
// wait is a poll with a deadline.

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// Health-check settings of the pool tests.
const (
	checkInterval = 500 * time.Millisecond
	checkTimeout  = 300 * time.Millisecond
	checkRise     = 2
	checkFall     = 2
	// margin added to interval×fall (and interval×rise) for scheduling,
	// jitter, process start and the polling step.
	detectMargin = 500 * time.Millisecond
	pollStep     = 20 * time.Millisecond
)

var ip11, ip12, ip13, ip14 = "127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"

// httpCheck is the check block of the pool tests, on port.
func httpCheck(port int) string {
	return fmt.Sprintf(`{type: http, port: %d, path: %s, expect: "200-299", interval: %s, timeout: %s, rise: %d, fall: %d}`,
		port, healthPath, checkInterval, checkTimeout, checkRise, checkFall)
}

// zoneHead is the apex of the test zone; pool tests append their records.
const zoneHead = `$ORIGIN example.test.
$TTL 3600
@       IN SOA  ns1.example.test. hostmaster.example.test. (
                2024010101 7200 900 1209600 300 )
        IN NS   ns1.example.test.
ns1     IN A    192.0.2.53
`

// writePoolConfig writes zone (records after zoneHead) and a config with the
// given pools block into dir; it returns the config's path. The zone file is
// named relative to the config file, as an operator writes it.
func writePoolConfig(t testing.TB, dir, records, pools string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(zoneHead+records), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`log: {level: debug, format: json}
zones:
  - origin: example.test.
    file: example.test.zone
pools:
%s`, pools)
	path := filepath.Join(dir, "dnslb.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startPoolDNSLB runs dnslb serving the zone records and pools. startDNSLB
// writes the config into its own directory, so the zone path is absolute.
func startPoolDNSLB(t testing.TB, records, pools string) string {
	t.Helper()
	dir := t.TempDir()
	zone := filepath.Join(dir, "example.test.zone")
	if err := os.WriteFile(zone, []byte(zoneHead+records), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`log: {level: debug, format: json}
zones:
  - origin: example.test.
    file: %s
pools:
%s`, zone, pools)
	return startDNSLB(t, cfg)
}

// ask queries addr over UDP for name/qtype.
func askAuth(t testing.TB, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	return query(t, addr, "udp", m)
}

// addrsOf lists the A and AAAA addresses of the answer section, in order.
// IPv4-mapped AAAA records print as "::ffff:a.b.c.d", as dig prints them.
func addrsOf(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(r.AAAA.To16())
			out = append(out, a.String())
		}
	}
	return out
}

// poolAddrs asks for name/qtype and returns the addresses, checking that the
// reply is an authoritative NOERROR.
func poolAddrs(t testing.TB, addr, name string, qtype uint16) []string {
	t.Helper()
	r := askAuth(t, addr, name, qtype)
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("%s %s: rcode %s aa=%v, want NOERROR aa\n%v", name, dns.TypeToString[qtype],
			dns.RcodeToString[r.Rcode], r.Authoritative, r)
	}
	return addrsOf(r)
}

// sameAddrs reports whether got holds exactly the addresses of want (any order).
func sameAddrs(got []string, want ...string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// digShort runs `dig @127.0.0.1 -p PORT +short name type` and returns the lines.
func digShort(t testing.TB, addr, name, qtype string) []string {
	t.Helper()
	dig := requireTool(t, "dig")
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"@" + host, "-p", port, "+short", "+time=2", "+tries=2", name, qtype}
	out, err := exec.Command(dig, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.Fields(string(out))
}

// waitAnswerSet waits until name/qtype answers exactly want.
func waitAnswerSet(t testing.TB, addr, name string, qtype uint16, within time.Duration, want ...string) time.Duration {
	t.Helper()
	return dnstest.Eventually(t, within, fmt.Sprintf("%s %s answers %v", name, dns.TypeToString[qtype], want), func() (bool, string) {
		got := poolAddrs(t, addr, name, qtype)
		return sameAddrs(got, want...), fmt.Sprint(got)
	})
}

// neverAnswers sends n queries and fails if any answer contains ip.
func neverAnswers(t testing.TB, addr, name string, qtype uint16, n int, ip string) {
	t.Helper()
	for i := 0; i < n; i++ {
		if got := poolAddrs(t, addr, name, qtype); slices.Contains(got, ip) {
			t.Fatalf("query %d of %d: %s answered %v, which contains %s", i+1, n, name, got, ip)
		}
	}
}

func fallBound() time.Duration { return checkInterval*checkFall + detectMargin }
func riseBound() time.Duration { return checkInterval*checkRise + detectMargin }

// waitChecksRunning waits until every backend has answered rise checks: all
// members are then up by a real result, not by the cold-start default.
func waitChecksRunning(t testing.TB, be *backendSet) {
	t.Helper()
	be.waitHits(t, checkRise, 10*checkInterval+5*time.Second)
}

// TestPoolBackendDownAndUp: a stopped backend (connection refused) and a hung
// one (timeout) leave the answers within interval×fall (+ timeout for the
// hung one) + margin, and return after rise successes.
func TestPoolBackendDownAndUp(t *testing.T) {
	be := startBackends(t, ip11, ip12, ip13)
	addr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
www IN A 127.0.0.13
`, fmt.Sprintf(`  www.example.test.:
    policy: round-robin
    ttl: 5
    check: %s
`, httpCheck(be.Port)))
	waitChecksRunning(t, be)
	if got := poolAddrs(t, addr, "www.example.test", dns.TypeA); !sameAddrs(got, ip11, ip12, ip13) {
		t.Fatalf("all healthy: answer %v, want all of 11, 12, 13", got)
	}
	// Background load through every transition below: no query may fail or
	// come back empty while health snapshots are swapped under it.
	h := startHammer(addr, "www.example.test.", dns.TypeA)
	defer func() {
		n, bad, sample := h.stop()
		t.Logf("background queries during the transitions: %d, bad: %d", n, bad)
		if bad > 0 {
			t.Errorf("%d of %d background queries failed or were empty during health transitions; e.g. %s", bad, n, sample)
		}
	}()
	if got := digShort(t, addr, "www.example.test", "A"); !sameAddrs(got, ip11, ip12, ip13) {
		t.Fatalf("all healthy: dig +short %v, want all of 11, 12, 13", got)
	}

	// downUp takes b out with stop, measures how long until the answers
	// lose it, then brings it back with start and measures the return.
	downUp := func(t *testing.T, kind string, b *backend, bound time.Duration, stop, start func()) {
		others := []string{}
		for _, x := range be.Backends {
			if x != b {
				others = append(others, x.ip)
			}
		}
		stop()
		t0 := time.Now()
		dnstest.Eventually(t, bound+5*time.Second, b.ip+" leaves the answers", func() (bool, string) {
			got := poolAddrs(t, addr, "www.example.test", dns.TypeA)
			return !slices.Contains(got, b.ip), fmt.Sprint(got)
		})
		detect := time.Since(t0)
		t.Logf("%s backend %s: detected in %v (interval %v × fall %d = %v, timeout %v)",
			kind, b.ip, detect.Round(time.Millisecond), checkInterval, checkFall, checkInterval*checkFall, checkTimeout)
		if detect > bound {
			t.Errorf("%s backend %s left the answers after %v, want within %v", kind, b.ip, detect, bound)
		}
		if got := poolAddrs(t, addr, "www.example.test", dns.TypeA); !sameAddrs(got, others...) {
			t.Errorf("with %s down: answer %v, want exactly %v", b.ip, got, others)
		}
		if got := digShort(t, addr, "www.example.test", "A"); !sameAddrs(got, others...) {
			t.Errorf("with %s down: dig +short %v, want exactly %v", b.ip, got, others)
		}
		tm := new(dns.Msg)
		tm.SetQuestion("www.example.test.", dns.TypeA)
		if got := addrsOf(query(t, addr, "tcp", tm)); !sameAddrs(got, others...) {
			t.Errorf("with %s down: answer over TCP %v, want exactly %v", b.ip, got, others)
		}
		// Volume: no query sees the dead member again (no stale cache entry,
		// no listener with an old snapshot).
		neverAnswers(t, addr, "www.example.test", dns.TypeA, 300, b.ip)

		hits0 := b.Hits()
		start()
		t1 := time.Now()
		var hitsAtReturn int64
		dnstest.Eventually(t, riseBound()+5*time.Second, b.ip+" returns", func() (bool, string) {
			got := poolAddrs(t, addr, "www.example.test", dns.TypeA)
			// Read after the answer: a check the backend counts ends
			// before dnslb learns its result, so the checks dnslb had seen
			// when it answered are at most this many. Read before the
			// query, a check finishing in between was seen but not counted.
			hitsAtReturn = b.Hits() - hits0
			return slices.Contains(got, b.ip), fmt.Sprint(got)
		})
		back := time.Since(t1)
		t.Logf("%s backend %s: back in the answers %v after it recovered, after %d successful checks (rise %d)",
			kind, b.ip, back.Round(time.Millisecond), hitsAtReturn, checkRise)
		if hitsAtReturn < checkRise {
			t.Errorf("%s returned after %d checks since it recovered, want at least rise=%d", b.ip, hitsAtReturn, checkRise)
		}
		if back > riseBound() {
			t.Errorf("%s returned %v after it recovered, want within interval×rise + margin = %v", b.ip, back, riseBound())
		}
		if got := digShort(t, addr, "www.example.test", "A"); !sameAddrs(got, ip11, ip12, ip13) {
			t.Errorf("all healthy again: dig +short %v, want all of 11, 12, 13", got)
		}
	}

	t.Run("refused", func(t *testing.T) {
		b := be.get(t, ip12)
		downUp(t, "refused", b, fallBound(), b.Stop, func() { b.Start(t) })
	})
	t.Run("hung", func(t *testing.T) {
		b := be.get(t, ip13)
		// A hung check costs its timeout before it counts as failed.
		downUp(t, "hung", b, fallBound()+checkTimeout, b.Hang, b.Unhang)
	})
	t.Run("status503", func(t *testing.T) {
		b := be.get(t, ip11)
		downUp(t, "503", b, fallBound(), func() { b.SetStatus(503) }, func() { b.SetStatus(200) })
	})
}

// hammer sends queries in a loop on one UDP socket until stopped and counts
// the replies that are not NOERROR with at least one address.
type hammer struct {
	quit   chan struct{}
	done   chan struct{}
	n, bad int
	sample string
}

func startHammer(addr, name string, qtype uint16) *hammer {
	h := &hammer{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		c := &dns.Client{Net: "udp", Timeout: queryTimeout}
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		for {
			select {
			case <-h.quit:
				return
			default:
			}
			m.Id = dns.Id()
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				// One retry: a lost datagram on a busy machine is not dnslb's fault.
				r, _, err = c.Exchange(m, addr)
			}
			h.n++
			switch {
			case err != nil:
				h.bad++
				h.sample = err.Error()
			case r.Rcode != dns.RcodeSuccess || len(addrsOf(r)) == 0:
				h.bad++
				h.sample = r.String()
			}
			time.Sleep(2 * time.Millisecond) // pacing, leave CPU to the rest
		}
	}()
	return h
}

func (h *hammer) stop() (n, bad int, sample string) {
	close(h.quit)
	<-h.done
	return h.n, h.bad, h.sample
}

// TestPoolWhenAllDown: what a pool answers when no member is healthy.
func TestPoolWhenAllDown(t *testing.T) {
	records := `www IN A 127.0.0.11
www IN A 127.0.0.12
www IN A 127.0.0.13
`
	t.Run("all", func(t *testing.T) {
		be := startBackends(t, ip11, ip12, ip13)
		addr := startPoolDNSLB(t, records, fmt.Sprintf(`  www.example.test.:
    ttl: 5
    when_all_down: all
    check: %s
`, httpCheck(be.Port)))
		waitChecksRunning(t, be)
		// Down to one first, so that "all again" is visibly fail-open and
		// not the cold-start state.
		be.get(t, ip11).Stop()
		be.get(t, ip12).Stop()
		waitAnswerSet(t, addr, "www.example.test", dns.TypeA, fallBound()+5*time.Second, ip13)
		be.get(t, ip13).Stop()
		d := waitAnswerSet(t, addr, "www.example.test", dns.TypeA, fallBound()+5*time.Second, ip11, ip12, ip13)
		t.Logf("all down: fail-open answer after %v", d.Round(time.Millisecond))
		if got := digShort(t, addr, "www.example.test", "A"); !sameAddrs(got, ip11, ip12, ip13) {
			t.Errorf("all down, fail open: dig +short %v, want all three", got)
		}
		// One comes back: only it is answered.
		be.get(t, ip12).Start(t)
		waitAnswerSet(t, addr, "www.example.test", dns.TypeA, riseBound()+5*time.Second, ip12)
	})

	t.Run("empty", func(t *testing.T) {
		be := startBackends(t, ip11, ip12, ip13)
		addr := startPoolDNSLB(t, records, fmt.Sprintf(`  www.example.test.:
    ttl: 5
    when_all_down: empty
    check: %s
`, httpCheck(be.Port)))
		waitChecksRunning(t, be)
		for _, b := range be.Backends {
			b.Stop()
		}
		var last *dns.Msg
		d := dnstest.Eventually(t, fallBound()+5*time.Second, "NODATA once all are down", func() (bool, string) {
			last = askAuth(t, addr, "www.example.test", dns.TypeA)
			return last.Rcode == dns.RcodeSuccess && len(last.Answer) == 0, fmt.Sprint(last)
		})
		t.Logf("all down: NODATA after %v", d.Round(time.Millisecond))
		if !last.Authoritative {
			t.Errorf("NODATA without AA:\n%v", last)
		}
		var soa *dns.SOA
		for _, rr := range last.Ns {
			if s, ok := rr.(*dns.SOA); ok {
				soa = s
			}
		}
		if soa == nil || !strings.EqualFold(soa.Hdr.Name, "example.test.") {
			t.Errorf("NODATA: want the zone's SOA in authority, got:\n%v", last)
		} else {
			// RFC 2308: a resolver caches the NODATA for min(SOA TTL, MINIMUM).
			// "NODATA with the SOA, so resolvers retry soon" (docs/design.md) holds
			// only when that is capped by the pool TTL: a pool coming back must
			// not stay invisible for the zone's negative TTL (300 s here).
			neg := min(soa.Hdr.Ttl, soa.Minttl)
			t.Logf("NODATA negative TTL %d (SOA TTL %d, minimum %d; pool ttl 5)", neg, soa.Hdr.Ttl, soa.Minttl)
			if neg > 5 {
				t.Errorf("when_all_down: empty: NODATA negative TTL %d, want at most the pool TTL 5 (see TestUnboundEmptyRecovery)", neg)
			}
		}
		r := runDig(t, addr, "www.example.test", "A")
		if r.status != "NOERROR" || !r.flags["aa"] || len(r.sections["ANSWER"]) != 0 ||
			len(r.sections["AUTHORITY"]) != 1 || !strings.Contains(r.sections["AUTHORITY"][0], " soa ") {
			t.Errorf("dig, all down with when_all_down: empty: want NOERROR, aa, no answer, SOA in authority; got\n%s", r.raw)
		}
		be.get(t, ip13).Start(t)
		waitAnswerSet(t, addr, "www.example.test", dns.TypeA, riseBound()+5*time.Second, ip13)
	})

	t.Run("backup", func(t *testing.T) {
		be := startBackends(t, ip11, ip12, ip13, ip14)
		addr := startPoolDNSLB(t, records+"www IN A 127.0.0.14\n", fmt.Sprintf(`  www.example.test.:
    ttl: 5
    when_all_down: backup
    check: %s
    members:
      127.0.0.14: {backup: true}
`, httpCheck(be.Port)))
		waitChecksRunning(t, be)
		// While primaries are healthy the backup is never answered — not
		// even at cold start.
		neverAnswers(t, addr, "www.example.test", dns.TypeA, 200, ip14)
		if got := poolAddrs(t, addr, "www.example.test", dns.TypeA); !sameAddrs(got, ip11, ip12, ip13) {
			t.Errorf("primaries healthy: answer %v, want 11, 12, 13", got)
		}
		for _, ip := range []string{ip11, ip12, ip13} {
			be.get(t, ip).Stop()
		}
		d := waitAnswerSet(t, addr, "www.example.test", dns.TypeA, fallBound()+5*time.Second, ip14)
		t.Logf("all primaries down: backup only after %v", d.Round(time.Millisecond))
		if got := digShort(t, addr, "www.example.test", "A"); !sameAddrs(got, ip14) {
			t.Errorf("all primaries down: dig +short %v, want only the backup %s", got, ip14)
		}
		be.get(t, ip11).Start(t)
		waitAnswerSet(t, addr, "www.example.test", dns.TypeA, riseBound()+5*time.Second, ip11)
	})
}

// TestPoolWeighted: weights 3:1:1 put the first record on each member
// 60/20/20 (±2 percentage points) over 10,000 queries.
func TestPoolWeighted(t *testing.T) {
	be := startBackends(t, ip11, ip12, ip13)
	addr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
www IN A 127.0.0.13
`, fmt.Sprintf(`  www.example.test.:
    policy: weighted
    ttl: 5
    check: %s
    members:
      127.0.0.11: {weight: 3}
`, httpCheck(be.Port)))
	waitChecksRunning(t, be)

	const n = 10000
	c := &dns.Client{Net: "udp", Timeout: queryTimeout}
	conn, err := c.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	first := map[string]int{}
	incomplete := 0
	start := time.Now()
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	for i := 0; i < n; i++ {
		m.Id = dns.Id()
		var r *dns.Msg
		for try := 0; try < 3; try++ {
			r, _, err = c.ExchangeWithConn(m, conn)
			if err == nil {
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
		first[got[0]]++
		if !sameAddrs(got, ip11, ip12, ip13) {
			incomplete++
		}
	}
	el := time.Since(start)
	t.Logf("%d queries in %v (%.0f/s): first record %v", n, el.Round(time.Millisecond), n/el.Seconds(), first)
	for ip, want := range map[string]float64{ip11: 60, ip12: 20, ip13: 20} {
		pct := 100 * float64(first[ip]) / n
		t.Logf("%s first in %.2f%% (want %.0f%%)", ip, pct, want)
		if pct < want-2 || pct > want+2 {
			t.Errorf("%s first in %.2f%% of answers, want %.0f%% ± 2", ip, pct, want)
		}
	}
	if incomplete > 0 {
		t.Errorf("%d answers did not hold all three members (max_answers 0: the rest follow the first)", incomplete)
	}
}

// TestPoolTTL: pool answers carry the pool TTL (default 30), never above the
// zone TTL of the RRset.
func TestPoolTTL(t *testing.T) {
	be := startBackends(t, ip11, ip12)
	addr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
low 10 IN A 127.0.0.11
low 10 IN A 127.0.0.12
def IN A 127.0.0.11
def IN A 127.0.0.12
`, fmt.Sprintf(`  www.example.test.:
    ttl: 5
    check: %[1]s
  low.example.test.:
    ttl: 60
    check: %[1]s
  def.example.test.:
    check: %[1]s
`, httpCheck(be.Port)))
	for _, c := range []struct {
		name string
		want uint32
		why  string
	}{
		{"www.example.test.", 5, "pool ttl 5, zone TTL 3600"},
		{"low.example.test.", 10, "pool ttl 60 above the zone TTL 10: the zone TTL wins"},
		{"def.example.test.", 30, "no pool ttl: default 30, zone TTL 3600"},
	} {
		r := askAuth(t, addr, c.name, dns.TypeA)
		if len(r.Answer) != 2 {
			t.Errorf("%s: %d answers, want 2\n%v", c.name, len(r.Answer), r)
		}
		for _, rr := range r.Answer {
			if rr.Header().Ttl != c.want {
				t.Errorf("%s: TTL %d, want %d (%s)", c.name, rr.Header().Ttl, c.want, c.why)
			}
		}
		d := runDig(t, addr, c.name, "A")
		for _, line := range d.sections["ANSWER"] {
			if f := strings.Fields(line); len(f) < 2 || f[1] != fmt.Sprint(c.want) {
				t.Errorf("dig %s: answer line %q, want TTL %d (%s)", c.name, line, c.want, c.why)
			}
		}
	}
}

// TestPoolTTLDegraded: while a backend is down the pool's answers carry
// ttl_degraded (default min(ttl, 5)), and the pool TTL again once it is
// back after rise; a pool of other backends keeps its TTL throughout.
func TestPoolTTLDegraded(t *testing.T) {
	be := startBackends(t, ip11, ip12, ip13)
	addr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
def IN A 127.0.0.11
def IN A 127.0.0.12
other IN A 127.0.0.13
`, fmt.Sprintf(`  www.example.test.:
    ttl: 20
    ttl_degraded: 2
    check: %[1]s
  def.example.test.:
    check: %[1]s
  other.example.test.:
    ttl: 20
    ttl_degraded: 2
    check: %[1]s
`, httpCheck(be.Port)))
	waitChecksRunning(t, be)
	// ttlOf asks name and returns its members and their one TTL (it fails
	// on records of different TTLs).
	ttlOf := func(name string) ([]string, uint32) {
		t.Helper()
		r := askAuth(t, addr, name, dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("%s: rcode %s, %d answers\n%v", name, dns.RcodeToString[r.Rcode], len(r.Answer), r)
		}
		ttl := r.Answer[0].Header().Ttl
		for _, rr := range r.Answer {
			if rr.Header().Ttl != ttl {
				t.Fatalf("%s: records of different TTLs\n%v", name, r)
			}
		}
		return addrsOf(r), ttl
	}
	// want checks one answer of each pool: healthy pools answer every
	// member at their ttl, a degraded one the rest at its ttl_degraded.
	want := func(state string, down bool) {
		t.Helper()
		for _, c := range []struct {
			name                string
			members             []string
			ttl, degraded       uint32
			degradedWhenIP12Out bool
		}{
			{"www.example.test.", []string{ip11, ip12}, 20, 2, true},
			{"def.example.test.", []string{ip11, ip12}, 30, 5, true},
			{"other.example.test.", []string{ip13}, 20, 2, false},
		} {
			members, ttl := c.members, c.ttl
			if down && c.degradedWhenIP12Out {
				members, ttl = []string{ip11}, c.degraded
			}
			got, gotTTL := ttlOf(c.name)
			if !sameAddrs(got, members...) || gotTTL != ttl {
				t.Errorf("%s: %s answers %v at TTL %d, want %v at %d", state, c.name, got, gotTTL, members, ttl)
			}
		}
	}
	want("all healthy", false)

	b := be.get(t, ip12)
	b.Stop()
	took := dnstest.Eventually(t, fallBound()+5*time.Second, ip12+" leaves the answers", func() (bool, string) {
		got, ttl := ttlOf("www.example.test.")
		return !slices.Contains(got, ip12), fmt.Sprintf("%v at TTL %d", got, ttl)
	})
	t.Logf("%s stopped: out of the answers after %v", ip12, took.Round(time.Millisecond))
	want(ip12+" down", true)

	b.Start(t)
	took = dnstest.Eventually(t, riseBound()+5*time.Second, ip12+" returns", func() (bool, string) {
		got, ttl := ttlOf("www.example.test.")
		return slices.Contains(got, ip12), fmt.Sprintf("%v at TTL %d", got, ttl)
	})
	t.Logf("%s started: back in the answers after %v", ip12, took.Round(time.Millisecond))
	want(ip12+" back", false)
}

// TestPoolMaxAnswers: max_answers caps the answer; all members still get
// their turn.
func TestPoolMaxAnswers(t *testing.T) {
	be := startBackends(t, ip11, ip12, ip13)
	addr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
www IN A 127.0.0.13
one IN A 127.0.0.11
one IN A 127.0.0.12
one IN A 127.0.0.13
`, fmt.Sprintf(`  www.example.test.:
    ttl: 5
    max_answers: 2
    check: %[1]s
  one.example.test.:
    ttl: 5
    max_answers: 1
    check: %[1]s
`, httpCheck(be.Port)))
	for _, c := range []struct {
		name string
		max  int
	}{{"www.example.test", 2}, {"one.example.test", 1}} {
		seen := map[string]bool{}
		for i := 0; i < 30; i++ {
			got := poolAddrs(t, addr, c.name, dns.TypeA)
			if len(got) != c.max || len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
				t.Fatalf("%s query %d: answer %v, want %d distinct members (max_answers %d)", c.name, i, got, c.max, c.max)
			}
			for _, a := range got {
				seen[a] = true
			}
		}
		if len(seen) != 3 {
			t.Errorf("%s: 30 capped answers only ever held %v, want every member to get its turn", c.name, seen)
		}
		if got := digShort(t, addr, c.name, "A"); len(got) != c.max {
			t.Errorf("dig +short %s: %v, want %d records", c.name, got, c.max)
		}
	}
	// With one member down, the cap applies to the healthy ones.
	waitChecksRunning(t, be)
	be.get(t, ip12).Stop()
	dnstest.Eventually(t, fallBound()+5*time.Second, "12 leaves the capped answers", func() (bool, string) {
		for i := 0; i < 6; i++ {
			if got := poolAddrs(t, addr, "www.example.test", dns.TypeA); slices.Contains(got, ip12) {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
	for i := 0; i < 20; i++ {
		if got := poolAddrs(t, addr, "www.example.test", dns.TypeA); !sameAddrs(got, ip11, ip13) {
			t.Fatalf("12 down, max_answers 2: answer %v, want 11 and 13", got)
		}
	}
}

// TestPoolRoundRobin: the first record changes from one query to the next
// and every member comes first in turn.
func TestPoolRoundRobin(t *testing.T) {
	be := startBackends(t, ip11, ip12, ip13)
	addr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
www IN A 127.0.0.13
`, fmt.Sprintf(`  www.example.test.:
    ttl: 5
    check: %s
`, httpCheck(be.Port)))
	firsts := map[string]int{}
	prev := ""
	same := 0
	var seq []string
	for i := 0; i < 30; i++ {
		got := poolAddrs(t, addr, "www.example.test", dns.TypeA)
		if !sameAddrs(got, ip11, ip12, ip13) {
			t.Fatalf("query %d: answer %v, want all three", i, got)
		}
		firsts[got[0]]++
		seq = append(seq, strings.TrimPrefix(got[0], "127.0.0."))
		if got[0] == prev {
			same++
		}
		prev = got[0]
	}
	t.Logf("first records of 30 consecutive queries: %v", seq)
	if same > 0 {
		t.Errorf("round-robin: %d of 29 consecutive queries had the same first record as the one before: %v", same, seq)
	}
	for _, ip := range []string{ip11, ip12, ip13} {
		if firsts[ip] < 5 {
			t.Errorf("round-robin: %s first in %d of 30 answers, want about 10: %v", ip, firsts[ip], seq)
		}
	}
	// dig sees the rotation too.
	d1 := digShort(t, addr, "www.example.test", "A")
	d2 := digShort(t, addr, "www.example.test", "A")
	if len(d1) != 3 || len(d2) != 3 || d1[0] == d2[0] {
		t.Errorf("two dig +short in a row: %v then %v, want three records each and different first records", d1, d2)
	}
}

// TestPoolFirstHealthy: only the first healthy member in zone order (the
// zone lists 12, 11, 13 — not sorted); with max_answers 2 the first two.
func TestPoolFirstHealthy(t *testing.T) {
	be := startBackends(t, ip11, ip12, ip13)
	addr := startPoolDNSLB(t, `www IN A 127.0.0.12
www IN A 127.0.0.11
www IN A 127.0.0.13
two IN A 127.0.0.12
two IN A 127.0.0.11
two IN A 127.0.0.13
`, fmt.Sprintf(`  www.example.test.:
    policy: first-healthy
    ttl: 5
    check: %[1]s
  two.example.test.:
    policy: first-healthy
    max_answers: 2
    ttl: 5
    check: %[1]s
`, httpCheck(be.Port)))
	waitChecksRunning(t, be)
	exact := func(name string, want ...string) {
		t.Helper()
		for i := 0; i < 10; i++ {
			if got := poolAddrs(t, addr, name, dns.TypeA); !slices.Equal(got, want) {
				t.Fatalf("%s: answer %v, want exactly %v in this order", name, got, want)
			}
		}
	}
	exact("www.example.test", ip12)
	exact("two.example.test", ip12, ip11)
	if got := digShort(t, addr, "www.example.test", "A"); !slices.Equal(got, []string{ip12}) {
		t.Errorf("dig +short: %v, want [%s]", got, ip12)
	}

	be.get(t, ip12).Stop()
	d := dnstest.Eventually(t, fallBound()+5*time.Second, "failover 12 → 11", func() (bool, string) {
		got := poolAddrs(t, addr, "www.example.test", dns.TypeA)
		return slices.Equal(got, []string{ip11}), fmt.Sprint(got)
	})
	t.Logf("first-healthy: failover 12 → 11 in %v", d.Round(time.Millisecond))
	exact("www.example.test", ip11)
	exact("two.example.test", ip11, ip13)

	be.get(t, ip11).Stop()
	dnstest.Eventually(t, fallBound()+5*time.Second, "failover 11 → 13", func() (bool, string) {
		got := poolAddrs(t, addr, "www.example.test", dns.TypeA)
		return slices.Equal(got, []string{ip13}), fmt.Sprint(got)
	})
	exact("two.example.test", ip13)

	// The first member back takes over again (after rise).
	be.get(t, ip12).Start(t)
	d = dnstest.Eventually(t, riseBound()+5*time.Second, "12 takes over again", func() (bool, string) {
		got := poolAddrs(t, addr, "www.example.test", dns.TypeA)
		return slices.Equal(got, []string{ip12}), fmt.Sprint(got)
	})
	t.Logf("first-healthy: failback to 12 in %v", d.Round(time.Millisecond))
	exact("two.example.test", ip12, ip13)
}

// TestPoolCNAME: a CNAME to a pool name gets the pool's selection, with the
// pool's TTL on the addresses.
func TestPoolCNAME(t *testing.T) {
	be := startBackends(t, ip11, ip12, ip13)
	addr := startPoolDNSLB(t, `www IN A 127.0.0.11
www IN A 127.0.0.12
www IN A 127.0.0.13
api IN CNAME www
`, fmt.Sprintf(`  www.example.test.:
    ttl: 5
    max_answers: 2
    check: %s
`, httpCheck(be.Port)))
	waitChecksRunning(t, be)
	check := func(r *dns.Msg) []string {
		t.Helper()
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
			t.Fatalf("api A: want NOERROR, AA, an answer; got\n%v", r)
		}
		cn, ok := r.Answer[0].(*dns.CNAME)
		if !ok || !strings.EqualFold(cn.Target, "www.example.test.") {
			t.Fatalf("api A: answer should start with the CNAME to www; got\n%v", r)
		}
		for _, rr := range r.Answer[1:] {
			if _, ok := rr.(*dns.A); ok && rr.Header().Ttl != 5 {
				t.Errorf("api A: pool record %v, want the pool TTL 5", rr)
			}
		}
		got := addrsOf(r)
		if len(got) != 2 {
			t.Fatalf("api A: %d addresses, want max_answers 2\n%v", len(got), r)
		}
		return got
	}
	firsts := map[string]bool{}
	for i := 0; i < 12; i++ {
		firsts[check(askAuth(t, addr, "api.example.test", dns.TypeA))[0]] = true
	}
	if len(firsts) != 3 {
		t.Errorf("api A: first address over 12 queries %v, want rotation over all three", firsts)
	}
	be.get(t, ip13).Stop()
	// max_answers 2 answers {11, 12} now and then anyway: 13 is gone when
	// a full rotation's worth of answers in a row lacks it.
	dnstest.Eventually(t, fallBound()+5*time.Second, "13 leaves the answers via the CNAME", func() (bool, string) {
		for i := 0; i < 6; i++ {
			if got := check(askAuth(t, addr, "api.example.test", dns.TypeA)); slices.Contains(got, ip13) {
				return false, fmt.Sprint(got)
			}
		}
		return true, ""
	})
	for i := 0; i < 20; i++ {
		if got := check(askAuth(t, addr, "api.example.test", dns.TypeA)); !sameAddrs(got, ip11, ip12) {
			t.Fatalf("13 down: api answered %v, want 11 and 12", got)
		}
	}
	if got := digShort(t, addr, "api.example.test", "A"); len(got) != 3 || !strings.EqualFold(got[0], "www.example.test.") || !sameAddrs(got[1:], ip11, ip12) {
		t.Errorf("dig +short api: %v, want www.example.test. then 11 and 12", got)
	}
}

// TestPoolAAAA: an AAAA RRset at a pool name is filtered the same way. The
// members are ::1 and ::ffff:127.0.0.12 (both reachable on this host); the A
// RRset at the same name is a pool too.
func TestPoolAAAA(t *testing.T) {
	be := startBackends(t, ip11, ip12, "::1")
	addr := startPoolDNSLB(t, `dual IN A    127.0.0.11
dual IN A    127.0.0.12
dual IN AAAA ::1
dual IN AAAA ::ffff:127.0.0.12
`, fmt.Sprintf(`  dual.example.test.:
    ttl: 5
    check: %s
`, httpCheck(be.Port)))
	waitChecksRunning(t, be)
	if got := poolAddrs(t, addr, "dual.example.test", dns.TypeAAAA); !sameAddrs(got, "::1", "::ffff:127.0.0.12") {
		t.Fatalf("AAAA, all healthy: %v", got)
	}
	r := askAuth(t, addr, "dual.example.test", dns.TypeAAAA)
	for _, rr := range r.Answer {
		if rr.Header().Ttl != 5 {
			t.Errorf("AAAA record %v: want the pool TTL 5", rr)
		}
	}
	be.get(t, "::1").Stop()
	d := waitAnswerSet(t, addr, "dual.example.test", dns.TypeAAAA, fallBound()+5*time.Second, "::ffff:127.0.0.12")
	t.Logf("AAAA member ::1 left the answers in %v", d.Round(time.Millisecond))
	if got := digShort(t, addr, "dual.example.test", "AAAA"); !sameAddrs(got, "::ffff:127.0.0.12") {
		t.Errorf("dig +short AAAA with ::1 down: %v", got)
	}
	if got := poolAddrs(t, addr, "dual.example.test", dns.TypeA); !sameAddrs(got, ip11, ip12) {
		t.Errorf("A at the same name: %v, want both (their backends are up)", got)
	}
	be.get(t, ip11).Stop()
	waitAnswerSet(t, addr, "dual.example.test", dns.TypeA, fallBound()+5*time.Second, ip12)
	if got := poolAddrs(t, addr, "dual.example.test", dns.TypeAAAA); !sameAddrs(got, "::ffff:127.0.0.12") {
		t.Errorf("AAAA after 11 went down: %v, want ::ffff:127.0.0.12 only", got)
	}
}

// TestPoolCheckConfig: `dnslb check` validates pool configs.
func TestPoolCheckConfig(t *testing.T) {
	records := `www IN A 127.0.0.11
www IN A 127.0.0.12
api IN CNAME www
`
	run := func(t *testing.T, pools string) (int, string) {
		t.Helper()
		cfg := writePoolConfig(t, t.TempDir(), records, pools)
		out, err := exec.Command(dnslbBin, "check", "--config", cfg).CombinedOutput()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("dnslb check: %v", err)
			}
			code = ee.ExitCode()
		}
		t.Logf("dnslb check: exit %d\n%s", code, out)
		return code, string(out)
	}
	check := `{type: http, port: 18080, path: /healthz, expect: "200-299", interval: 500ms, timeout: 300ms, rise: 2, fall: 2}`

	t.Run("valid", func(t *testing.T) {
		code, out := run(t, fmt.Sprintf(`  www.example.test.:
    policy: weighted
    ttl: 5
    max_answers: 2
    when_all_down: backup
    check: %s
    members:
      127.0.0.11: {weight: 3}
      127.0.0.12: {backup: true}
`, check))
		if code != 0 {
			t.Fatalf("a valid pool config: exit %d, want 0\n%s", code, out)
		}
	})
	t.Run("member not in zone", func(t *testing.T) {
		code, out := run(t, fmt.Sprintf(`  www.example.test.:
    policy: weighted
    check: %s
    members:
      127.0.0.11: {weight: 3}
      127.0.0.99: {weight: 2}
`, check))
		if code != 1 {
			t.Errorf("member 127.0.0.99 not in the zone: exit %d, want 1", code)
		}
		if !strings.Contains(out, "127.0.0.99") {
			t.Errorf("the error should name the address 127.0.0.99:\n%s", out)
		}
		if !strings.Contains(strings.ToLower(out), "www.example.test") {
			t.Errorf("the error should name the pool www.example.test:\n%s", out)
		}
	})
	t.Run("pool without addresses", func(t *testing.T) {
		code, out := run(t, fmt.Sprintf(`  nothere.example.test.:
    check: %s
`, check))
		if code != 1 {
			t.Errorf("pool for a name with no A/AAAA RRset: exit %d, want 1", code)
		}
		if !strings.Contains(strings.ToLower(out), "nothere.example.test") {
			t.Errorf("the error should name the pool nothere.example.test:\n%s", out)
		}
	})
	t.Run("unknown policy", func(t *testing.T) {
		code, out := run(t, fmt.Sprintf(`  www.example.test.:
    policy: fastest
    check: %s
`, check))
		if code != 1 {
			t.Errorf("policy: fastest: exit %d, want 1", code)
		}
		if !strings.Contains(out, "fastest") {
			t.Errorf("the error should name the bad value:\n%s", out)
		}
	})
}

// TestPoolAllDownVisible: with every backend stopped the pool fails open,
// and says so: dnslb_pool_all_down is 1 on /metrics, the API shows
// all_down with the fallback, and one warning is logged; when a backend
// comes back the gauge returns to 0 and the leaving is logged.
func TestPoolAllDownVisible(t *testing.T) {
	const pool = "www.example.test."
	be := startBackends(t, ip11, ip12)
	zone := opZone(1, "www     IN A    127.0.0.11\nwww     IN A    127.0.0.12\n")
	o := newOpServer(t, zone, opConfig(plainAdmin, "", fmt.Sprintf(`  %s:
    ttl: 5
    check: %s
`, pool, httpCheck(be.Port))))
	gauge := func() (float64, int) {
		return metricSum(o.metrics(), "dnslb_pool_all_down", map[string]string{"pool": pool})
	}
	status := func() admin.PoolStatus {
		var ps admin.PoolStatus
		o.getJSON("/api/v1/pools/"+pool, &ps)
		return ps
	}
	waitChecksRunning(t, be)
	if v, n := gauge(); n != 1 || v != 0 {
		t.Fatalf("healthy pool: dnslb_pool_all_down = %v (%d series), want 0 (1 series)", v, n)
	}
	if ps := status(); ps.AllDown || ps.Fallback != "" {
		t.Fatalf("healthy pool: all_down %v fallback %q", ps.AllDown, ps.Fallback)
	}

	for _, b := range be.Backends {
		b.Stop()
	}
	d := dnstest.Eventually(t, fallBound()+5*time.Second, "dnslb_pool_all_down 1", func() (bool, string) {
		v, n := gauge()
		return v == 1 && n == 1, fmt.Sprintf("%v (%d series)", v, n)
	})
	t.Logf("every backend stopped: dnslb_pool_all_down 1 after %v", d.Round(time.Millisecond))
	if ps := status(); !ps.AllDown || ps.Fallback != "all" || !slices.Equal(ps.AllDownFamilies, []string{"A"}) {
		t.Errorf("all down: all_down %v fallback %q families %v, want true, all, [A]", ps.AllDown, ps.Fallback, ps.AllDownFamilies)
	}
	if got := poolAddrs(t, o.dnsAddr, pool, dns.TypeA); !sameAddrs(got, ip11, ip12) {
		t.Errorf("all down, fail open: answer %v, want both", got)
	}
	const enter, leave = "pool all down: answering by its when_all_down fallback", "pool no longer all down"
	var lines []logLine
	dnstest.Eventually(t, 5*time.Second, "the all-down warning", func() (bool, string) {
		lines = o.findLog(enter)
		return len(lines) == 1, fmt.Sprint(lines)
	})
	if l := lines[0]; l.str("level") != "warn" || l.str("pool") != pool || l.str("fallback") != "all" ||
		l["members"] != 2.0 || l["up"] != 0.0 || l["down"] != 2.0 {
		t.Errorf("all-down line %v: want warn, pool %s, fallback all, members 2, up 0, down 2", l, pool)
	}

	be.get(t, ip12).Start(t)
	d = dnstest.Eventually(t, riseBound()+5*time.Second, "dnslb_pool_all_down 0", func() (bool, string) {
		v, n := gauge()
		return v == 0 && n == 1, fmt.Sprintf("%v (%d series)", v, n)
	})
	t.Logf("one backend back: dnslb_pool_all_down 0 after %v", d.Round(time.Millisecond))
	dnstest.Eventually(t, 5*time.Second, "the leaving line", func() (bool, string) {
		lines = o.findLog(leave)
		return len(lines) == 1, fmt.Sprint(lines)
	})
	if l := lines[0]; l.str("level") != "info" || l.str("pool") != pool || l["up"] != 1.0 {
		t.Errorf("leaving line %v: want info, pool %s, up 1", l, pool)
	}
	if n := len(o.findLog(enter)); n != 1 {
		t.Errorf("%d all-down lines for one outage, want 1", n)
	}
	if ps := status(); ps.AllDown || ps.Fallback != "" {
		t.Errorf("recovered: all_down %v fallback %q", ps.AllDown, ps.Fallback)
	}
	waitAnswerSet(t, o.dnsAddr, pool, dns.TypeA, 5*time.Second, ip12)
}
