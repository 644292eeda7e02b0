package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/proctest"
	"github.com/miekg/dns"
)

// addrPort returns the netip.AddrPort of a net.Addr.
func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatalf("parse %s: %v", a, err)
	}
	return ap
}

// closedPort returns a loopback address on which nothing listens (a port
// that was just free).
func closedPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ap := addrPort(t, l.Addr())
		l.Close()
		return ap
	default:
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ap := addrPort(t, c.LocalAddr())
		c.Close()
		return ap
	}
}

func mustChecker(t *testing.T, s Spec) Checker {
	t.Helper()
	if s.Timeout == 0 {
		// Generous unless the test is about timeouts: a TLS handshake
		// under -race on a busy two-core machine can take over a second.
		s.Timeout, s.Interval = 10*time.Second, max(s.Interval, 20*time.Second)
	}
	c, err := NewChecker(s)
	if err != nil {
		t.Fatalf("NewChecker(%+v): %v", s, err)
	}
	return c
}

// checkResult compares err with want: "" = nil, else a substring.
func checkResult(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("Check() = %v, want nil", err)
	case want != "" && err == nil:
		t.Errorf("Check() = nil, want error containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("Check() = %q, want it to contain %q", err, want)
	}
}

func TestTCPChecker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	accepted := make(chan struct{}, 1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })

	c := mustChecker(t, Spec{Type: "tcp"})
	if err := c.Check(context.Background(), addrPort(t, l.Addr())); err != nil {
		t.Errorf("open port: %v", err)
	}
	<-accepted // the server saw the connection

	closed := closedPort(t, "tcp")
	err = c.Check(context.Background(), closed)
	checkResult(t, err, "connection refused")
	checkResult(t, err, "tcp check")
	if errors.Is(err, ErrTimeout) {
		t.Errorf("refused connection reported as timeout: %v", err)
	}
}

func TestHTTPChecker(t *testing.T) {
	type seen struct{ method, host, path string }
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = seen{r.Method, r.Host, r.URL.Path}
		mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/status/"):
			code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			w.WriteHeader(code)
		case r.URL.Path == "/redirect":
			http.Redirect(w, r, "/status/200", http.StatusFound)
		case r.URL.Path == "/body":
			fmt.Fprint(w, `{"status":"ready","version":3}`)
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	addr := addrPort(t, srv.Listener.Addr())

	tests := []struct {
		name     string
		spec     Spec
		want     string // "" = healthy, else a substring of the error
		wantSeen seen
	}{
		{name: "200 default", spec: Spec{Type: "http"}, wantSeen: seen{"GET", addr.String(), "/"}},
		{name: "503 default", spec: Spec{Type: "http", Path: "/status/503"}, want: "status 503 not in 200-299"},
		{name: "204 in list", spec: Spec{Type: "http", Path: "/status/204", Expect: "200,204,300-302"}},
		{name: "301 in range", spec: Spec{Type: "http", Path: "/status/301", Expect: "200,204,300-302"}},
		{name: "303 outside list", spec: Spec{Type: "http", Path: "/status/303", Expect: "200,204,300-302"}, want: "status 303 not in 200,204,300-302"},
		{name: "redirect not followed", spec: Spec{Type: "http", Path: "/redirect"}, want: "status 302 not in 200-299",
			wantSeen: seen{"GET", addr.String(), "/redirect"}},
		{name: "redirect expected", spec: Spec{Type: "http", Path: "/redirect", Expect: "302"}},
		{name: "body contains", spec: Spec{Type: "http", Path: "/body", Body: `"status":"ready"`}},
		{name: "body lacks", spec: Spec{Type: "http", Path: "/body", Body: "draining"}, want: `does not contain "draining"`},
		{name: "host header", spec: Spec{Type: "http", Path: "/h", Host: "www.example.test"},
			wantSeen: seen{"GET", "www.example.test", "/h"}},
		{name: "method", spec: Spec{Type: "http", Method: "HEAD", Path: "/m"}, wantSeen: seen{"HEAD", addr.String(), "/m"}},
		{name: "https to http server", spec: Spec{Type: "https", Insecure: true}, want: "https check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustChecker(t, tt.spec)
			err := c.Check(context.Background(), addr)
			checkResult(t, err, tt.want)
			if tt.wantSeen != (seen{}) {
				mu.Lock()
				got := last
				mu.Unlock()
				if got != tt.wantSeen {
					t.Errorf("server saw %+v, want %+v", got, tt.wantSeen)
				}
			}
		})
	}

	t.Run("closed port", func(t *testing.T) {
		err := mustChecker(t, Spec{Type: "http"}).Check(context.Background(), closedPort(t, "tcp"))
		checkResult(t, err, "connection refused")
	})
}

func TestHTTPSChecker(t *testing.T) {
	var mu sync.Mutex
	var sni, host string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sni, host = r.TLS.ServerName, r.Host
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := addrPort(t, srv.Listener.Addr())

	tests := []struct {
		name     string
		spec     Spec
		want     string
		wantSNI  string
		wantHost string
	}{
		{name: "self-signed fails verification", spec: Spec{Type: "https"}, want: "certificate"},
		{name: "insecure passes", spec: Spec{Type: "https", Insecure: true}, wantHost: addr.String()},
		{name: "host is SNI", spec: Spec{Type: "https", Insecure: true, Host: "www.example.test:8443"},
			wantSNI: "www.example.test", wantHost: "www.example.test:8443"},
		{name: "SNI overrides host", spec: Spec{Type: "https", Insecure: true, Host: "www.example.test", SNI: "backend.example.test"},
			wantSNI: "backend.example.test", wantHost: "www.example.test"},
		{name: "verification uses SNI", spec: Spec{Type: "https", SNI: "backend.example.test"}, want: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			sni, host = "", ""
			mu.Unlock()
			err := mustChecker(t, tt.spec).Check(context.Background(), addr)
			checkResult(t, err, tt.want)
			if tt.want != "" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if sni != tt.wantSNI || host != tt.wantHost {
				t.Errorf("server saw SNI %q Host %q, want %q %q", sni, host, tt.wantSNI, tt.wantHost)
			}
		})
	}
}

func TestHTTPCheckerTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the client gives up (or the test ends)
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	const timeout = 200 * time.Millisecond
	c := mustChecker(t, Spec{Type: "http", Timeout: timeout, Interval: time.Second})
	start := time.Now()
	err := c.Check(context.Background(), addrPort(t, srv.Listener.Addr()))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Check() = %v, want ErrTimeout", err)
	}
	checkResult(t, err, "timed out after 200ms")
	// Not a speed assertion: the probe must end at its timeout, not hang.
	if elapsed < timeout || elapsed > timeout+5*time.Second {
		t.Errorf("Check took %s with timeout %s", elapsed, timeout)
	}
}

// dnsServer is an in-process DNS server on 127.0.0.1, UDP and TCP on one
// port.
type dnsServer struct {
	Addr netip.AddrPort
	udp  *dns.Server
	tcp  *dns.Server
}

func newDNSServer(t *testing.T, h dns.Handler) *dnsServer {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	for range 10 { // the TCP port may be taken; try another UDP port
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no UDP+TCP port pair available")
	}
	s := &dnsServer{Addr: addrPort(t, pc.LocalAddr())}
	var started sync.WaitGroup
	started.Add(2)
	s.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: started.Done}
	s.tcp = &dns.Server{Listener: l, Handler: h, NotifyStartedFunc: started.Done}
	var done sync.WaitGroup
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		done.Add(1)
		go func() {
			defer done.Done()
			_ = srv.ActivateAndServe()
		}()
	}
	started.Wait()
	t.Cleanup(func() {
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
		done.Wait()
	})
	return s
}

func testZoneHandler(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	name, qtype := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	switch {
	case name == "www.example.test." && qtype == dns.TypeA:
		m.Answer = append(m.Answer, rr("www.example.test. 30 IN A 192.0.2.10"), rr("www.example.test. 30 IN A 192.0.2.12"))
	case name == "www.example.test." && qtype == dns.TypeAAAA:
		m.Answer = append(m.Answer, rr("www.example.test. 30 IN AAAA 2001:db8::10"))
	case name == "txt.example.test." && qtype == dns.TypeTXT:
		m.Answer = append(m.Answer, rr(`txt.example.test. 30 IN TXT "v=1 status=ok"`))
	case name == "big.example.test." && qtype == dns.TypeTXT:
		if udp { // pretend it does not fit
			m.Truncated = true
			break
		}
		m.Answer = append(m.Answer, rr(`big.example.test. 30 IN TXT "only-over-tcp"`))
	case name == "fail.example.test.":
		m.Rcode = dns.RcodeServerFailure
	case strings.HasSuffix(name, "example.test."):
		m.Rcode = dns.RcodeNameError
	default:
		m.Rcode = dns.RcodeRefused
	}
	_ = w.WriteMsg(m)
}

func TestDNSChecker(t *testing.T) {
	srv := newDNSServer(t, dns.HandlerFunc(testZoneHandler))

	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{name: "A noerror", spec: Spec{Type: "dns", Name: "www.example.test."}},
		{name: "name without dot", spec: Spec{Type: "dns", Name: "WWW.example.test"}},
		{name: "answer address", spec: Spec{Type: "dns", Name: "www.example.test.", Answer: "192.0.2.12"}},
		{name: "answer address is exact", spec: Spec{Type: "dns", Name: "www.example.test.", Answer: "192.0.2.1"},
			want: `no answer record matches "192.0.2.1" (2 answer records)`},
		{name: "AAAA answer", spec: Spec{Type: "dns", Name: "www.example.test.", QType: "aaaa", Answer: "2001:db8::10"}},
		{name: "TXT substring", spec: Spec{Type: "dns", Name: "txt.example.test.", QType: "TXT", Answer: "status=ok"}},
		{name: "TXT owner name not matched", spec: Spec{Type: "dns", Name: "txt.example.test.", QType: "TXT", Answer: "txt.example"},
			want: "no answer record matches"},
		{name: "NXDOMAIN unexpected", spec: Spec{Type: "dns", Name: "nope.example.test."}, want: "rcode NXDOMAIN, want NOERROR"},
		{name: "NXDOMAIN expected", spec: Spec{Type: "dns", Name: "nope.example.test.", Rcode: "NXDOMAIN"}},
		{name: "SERVFAIL", spec: Spec{Type: "dns", Name: "fail.example.test."}, want: "rcode SERVFAIL"},
		{name: "REFUSED expected", spec: Spec{Type: "dns", Name: "other.test.", Rcode: "refused"}},
		{name: "truncated retried over TCP", spec: Spec{Type: "dns", Name: "big.example.test.", QType: "TXT", Answer: "only-over-tcp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mustChecker(t, tt.spec).Check(context.Background(), srv.Addr)
			checkResult(t, err, tt.want)
			if tt.want != "" {
				checkResult(t, err, "dns check")
			}
		})
	}

	t.Run("closed port", func(t *testing.T) {
		err := mustChecker(t, Spec{Type: "dns", Name: "www.example.test."}).Check(context.Background(), closedPort(t, "udp"))
		checkResult(t, err, "connection refused")
	})
}

func TestDNSCheckerTimeout(t *testing.T) {
	// A UDP server that reads queries and never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); wg.Wait() })

	const timeout = 200 * time.Millisecond
	c := mustChecker(t, Spec{Type: "dns", Name: "www.example.test.", Timeout: timeout})
	start := time.Now()
	err = c.Check(context.Background(), addrPort(t, pc.LocalAddr()))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Check() = %v, want ErrTimeout", err)
	}
	<-got // the query did reach the server
	if elapsed < timeout || elapsed > timeout+5*time.Second {
		t.Errorf("Check took %s with timeout %s", elapsed, timeout)
	}

	// Cancellation (not only the deadline) interrupts the read.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	c = mustChecker(t, Spec{Type: "dns", Name: "www.example.test.", Timeout: 30 * time.Second, Interval: time.Minute})
	start = time.Now()
	if err := c.Check(ctx, addrPort(t, pc.LocalAddr())); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Check() = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("cancelled Check took %s", elapsed)
	}
}

func TestExecChecker(t *testing.T) {
	addr := netip.MustParseAddrPort("127.0.0.1:8080")
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{name: "exit 0", argv: []string{"/bin/sh", "-c", "exit 0"}},
		{name: "environment", argv: []string{"/bin/sh", "-c",
			`test "$DNSLB_CHECK_ADDRESS" = 127.0.0.1 && test "$DNSLB_CHECK_PORT" = 8080`}},
		{name: "exit 3 with output", argv: []string{"/bin/sh", "-c", "echo starting; echo backend is sad >&2; exit 3"},
			want: "exit status 3: backend is sad"},
		{name: "arguments passed", argv: []string{"/bin/sh", "-c", `test "$1" = "a b"`, "sh", "a b"}},
		{name: "missing command", argv: []string{"/nonexistent/check-backend"}, want: `exec check "/nonexistent/check-backend"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mustChecker(t, Spec{Type: "exec", Command: tt.argv}).Check(context.Background(), addr)
			checkResult(t, err, tt.want)
		})
	}
}

// waitUnmarked polls until no process with marker in its argv or
// environment is alive, or fails the test after a deadline. (Pids the
// command writes are no use: it may run in its own PID namespace.)
func waitUnmarked(t *testing.T, marker string) {
	t.Helper()
	// Polling external processes: there is no event to wait on.
	dnstest.Eventually(t, 10*time.Second, "no process marked "+marker, func() (bool, string) {
		pids := proctest.PIDs(proctest.Marked(t, marker))
		return len(pids) == 0, fmt.Sprintf("still running: %v", pids)
	})
}

// testMarker returns an environment assignment unique to this test run,
// to find the processes a command started.
func testMarker(t *testing.T) string {
	return fmt.Sprintf("DNSLB_TEST_MARKER=%d-%d", os.Getpid(), time.Now().UnixNano())
}

func TestExecCheckerTimeoutKillsGroup(t *testing.T) {
	requireProc(t)
	marker := testMarker(t)
	const timeout = 300 * time.Millisecond
	// The script starts a grandchild and waits for it: killing only the shell
	// would leave the sleep running.
	c := mustChecker(t, Spec{Type: "exec", Timeout: timeout,
		Command: []string{"/usr/bin/env", marker, "/bin/sh", "-c", `sleep 30 & wait`}})
	start := time.Now()
	err := c.Check(context.Background(), netip.MustParseAddrPort("127.0.0.1:1"))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Check() = %v, want ErrTimeout", err)
	}
	checkResult(t, err, "killed with what it started")
	if elapsed > timeout+5*time.Second {
		t.Errorf("Check took %s with timeout %s", elapsed, timeout)
	}
	waitUnmarked(t, marker)
}

func TestExecCheckerBackgroundChild(t *testing.T) {
	requireProc(t)
	marker := testMarker(t)
	// Exits 0 at once, leaving a child that holds stdout open: healthy, and
	// the child is cleaned up.
	c := mustChecker(t, Spec{Type: "exec", Timeout: 5 * time.Second, Interval: 10 * time.Second,
		Command: []string{"/usr/bin/env", marker, "/bin/sh", "-c", `sleep 30 & exit 0`}})
	start := time.Now()
	if err := c.Check(context.Background(), netip.MustParseAddrPort("127.0.0.1:1")); err != nil {
		t.Fatalf("Check() = %v, want nil", err)
	}
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Errorf("Check took %s: it waited for the background child", elapsed)
	}
	waitUnmarked(t, marker)
}

func TestNoneChecker(t *testing.T) {
	if err := mustChecker(t, Spec{Type: "none"}).Check(context.Background(), netip.AddrPort{}); err != nil {
		t.Errorf("none: %v", err)
	}
}

// requireProc skips where there is no /proc to inspect processes (not
// Linux), and fails in CI, where there always is.
func requireProc(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no /proc to inspect processes")
		}
		t.Skip("needs /proc")
	}
}
