// Command failover measures how fast dnslb takes a failed backend out of its
// answers, and brings a recovered one back, on a given check configuration
// (the defaults unless told otherwise).
//
//	go run ./bench/failover [-kills 20] [-check '{type: http, port: 18080}']
//
// It starts real backend processes (HTTP servers, this same program in
// backend mode) on 127.0.0.11 and up, a dnslb serving one pool of them, and
// a client asking for the pool every few milliseconds. Then, one at a time
// and at a random moment, it fails a random backend:
//
//   - crash: SIGKILL; the kernel closes the process's sockets;
//   - hang: SIGSTOP; connections are still accepted by the kernel, but
//     nothing answers them (a wedged process, a full accept queue is next).
//
// It waits for the answers to lose the backend, revives it (a new process,
// or SIGCONT) and waits for the answers to carry it again. Detection is the
// time from the failure to the first answer without the backend after which
// no answer has it; revival, from the moment the backend serves again to the
// first answer with it. Stale answers are those that still carried a failed
// backend.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "backend" {
		backend(os.Args[2], len(os.Args) > 3 && os.Args[3] == "hits")
		return
	}
	kills := flag.Int("kills", 20, "failures of each kind (crash, hang)")
	members := flag.Int("members", 4, "backends in the pool")
	port := flag.Int("port", 18080, "backends' HTTP port")
	check := flag.String("check", "", "the pool's check, as YAML (default: {type: http, port: PORT})")
	extra := flag.String("pool", "", "more YAML keys of the pool, e.g. 'ttl: 10'")
	binary := flag.String("dnslb", "", "dnslb binary (default: build ./cmd/dnslb)")
	every := flag.Duration("every", 5*time.Millisecond, "query interval")
	flag.Parse()
	if *check == "" {
		*check = fmt.Sprintf("{type: http, port: %d}", *port)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, config{kills: *kills, members: *members, port: *port, check: *check, pool: *extra, binary: *binary, every: *every}); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

type config struct {
	kills, members, port int
	check, pool, binary  string
	every                time.Duration
}

// backend serves HTTP 200 on addr until killed. With hits it writes a
// line to stdout for every request (for tests that wait for checks).
func backend(addr string, hits bool) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
		if hits {
			fmt.Println("hit", r.URL.Path)
		}
	}), ReadHeaderTimeout: time.Minute}
	_ = srv.Serve(ln)
}

// sample is one answer: when it was received and which backends it held.
type sample struct {
	at    time.Time
	addrs []string
}

// event is one failure and its revival.
type event struct {
	kind                  string
	addr                  string
	failed, revived, stop time.Time // stop: when the next event may start
}

func run(ctx context.Context, c config) error {
	work, err := os.MkdirTemp("", "dnslb-failover.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := c.binary
	if bin == "" {
		bin = filepath.Join(work, "dnslb")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/dnslb").CombinedOutput(); err != nil {
			return fmt.Errorf("build dnslb: %v\n%s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	addrs := make([]string, c.members)
	var zone strings.Builder
	zone.WriteString("$ORIGIN fo.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n")
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.%d", 11+i)
		fmt.Fprintf(&zone, "www A %s\n", addrs[i])
	}
	dnsPort, err := freePort()
	if err != nil {
		return err
	}
	pool := "check: " + c.check
	if c.pool != "" {
		pool += ", " + c.pool
	}
	cfg := fmt.Sprintf("listen: [\"127.0.0.1:%d\"]\nlog: {level: info, format: json}\nzones: [{origin: fo.test., file: fo.test.zone}]\npools:\n  www.fo.test.: {%s}\n", dnsPort, pool)
	if err := os.WriteFile(filepath.Join(work, "fo.test.zone"), []byte(zone.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "dnslb.yaml"), []byte(cfg), 0o644); err != nil {
		return err
	}

	procs := make(map[string]*exec.Cmd)
	start := func(addr string) (time.Time, error) {
		cmd := exec.Command(self, "backend", fmt.Sprintf("%s:%d", addr, c.port))
		out, err := cmd.StdoutPipe()
		if err != nil {
			return time.Time{}, err
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return time.Time{}, err
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return time.Time{}, fmt.Errorf("backend %s did not start: %q %v", addr, line, err)
		}
		procs[addr] = cmd
		return time.Now(), nil
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGCONT)
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	for _, a := range addrs {
		if _, err := start(a); err != nil {
			return err
		}
	}

	server := exec.CommandContext(ctx, bin, "serve", "--config", filepath.Join(work, "dnslb.yaml"))
	logf, err := os.Create(filepath.Join(work, "dnslb.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	server.Stdout, server.Stderr = logf, logf
	if err := server.Start(); err != nil {
		return err
	}
	defer func() { _ = server.Process.Kill(); _ = server.Wait() }()

	var mu sync.Mutex
	var samples []sample
	qctx, qstop := context.WithCancel(ctx)
	var qwg sync.WaitGroup
	qwg.Add(1)
	go func() {
		defer qwg.Done()
		query(qctx, fmt.Sprintf("127.0.0.1:%d", dnsPort), c.every, func(s sample) {
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		})
	}()
	defer func() { qstop(); qwg.Wait() }()
	// waitFor polls the samples received after since until cond holds.
	waitFor := func(since time.Time, within time.Duration, cond func([]string) bool) bool {
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			mu.Lock()
			ok := len(samples) > 0 && samples[len(samples)-1].at.After(since) && cond(samples[len(samples)-1].addrs)
			mu.Unlock()
			if ok {
				return true
			}
			time.Sleep(c.every)
		}
		return false
	}
	all := func(got []string) bool { return len(got) == len(addrs) }
	if !waitFor(time.Now(), 15*time.Second, all) {
		return fmt.Errorf("the pool never answered all %d backends (see %s)", len(addrs), logf.Name())
	}
	time.Sleep(3 * time.Second) // every check has settled on its adaptive timeout

	kinds := make([]string, 0, 2*c.kills)
	for range c.kills {
		kinds = append(kinds, "crash", "hang")
	}
	rand.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var events []event
	for i, kind := range kinds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A random phase against the check interval.
		time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Second))))
		addr := addrs[rand.IntN(len(addrs))]
		ev := event{kind: kind, addr: addr}
		p := procs[addr]
		ev.failed = time.Now()
		if kind == "crash" {
			_ = p.Process.Kill()
			_ = p.Wait()
			delete(procs, addr)
		} else {
			_ = p.Process.Signal(syscall.SIGSTOP)
		}
		lost := waitFor(ev.failed, 10*time.Second, func(got []string) bool { return !slices.Contains(got, addr) })
		if lost {
			time.Sleep(time.Second) // absent answers stay absent?
		}
		if kind == "crash" {
			t, err := start(addr)
			if err != nil {
				return err
			}
			ev.revived = t
		} else {
			_ = p.Process.Signal(syscall.SIGCONT)
			ev.revived = time.Now()
		}
		if !waitFor(ev.revived, 15*time.Second, all) {
			return fmt.Errorf("event %d (%s %s): the backend never came back", i, kind, addr)
		}
		time.Sleep(500 * time.Millisecond)
		ev.stop = time.Now()
		events = append(events, ev)
		fmt.Fprintf(os.Stderr, "%2d/%d %-5s %s\n", i+1, len(kinds), kind, addr)
	}
	qstop()
	qwg.Wait()
	mu.Lock()
	defer mu.Unlock()
	report(os.Stdout, c, events, samples)
	return nil
}

// query asks for www.fo.test. A every interval until ctx is done.
func query(ctx context.Context, server string, every time.Duration, got func(sample)) {
	client := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	tick := time.NewTicker(every)
	defer tick.Stop()
	q := new(dns.Msg)
	q.SetQuestion("www.fo.test.", dns.TypeA)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r, _, err := client.Exchange(q, server)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			continue
		}
		var s sample
		s.at = time.Now()
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				s.addrs = append(s.addrs, a.A.String())
			}
		}
		got(s)
	}
}

// report prints detection and revival times per kind, and stale answers.
func report(w *os.File, c config, events []event, samples []sample) {
	detect := map[string][]time.Duration{}
	var revive []time.Duration
	undetected, stale, staleSecond, staleLong := 0, 0, 0, 0
	for _, ev := range events {
		var window []sample
		for _, s := range samples {
			if s.at.After(ev.failed) && s.at.Before(ev.stop) {
				window = append(window, s)
			}
		}
		// The last answer holding the backend before its revival.
		lastWith := time.Time{}
		for _, s := range window {
			if s.at.Before(ev.revived) && slices.Contains(s.addrs, ev.addr) {
				lastWith = s.at
				stale++
				if s.at.Sub(ev.failed) > time.Second {
					staleSecond++
				}
				if s.at.Sub(ev.failed) > 5*time.Second {
					staleLong++
				}
			}
		}
		firstWithout := time.Time{}
		for _, s := range window {
			if s.at.After(lastWith) && s.at.Before(ev.revived) && !slices.Contains(s.addrs, ev.addr) {
				firstWithout = s.at
				break
			}
		}
		if firstWithout.IsZero() {
			undetected++
			continue
		}
		d := firstWithout.Sub(ev.failed)
		detect[ev.kind] = append(detect[ev.kind], d)
		detect["mixed"] = append(detect["mixed"], d)
		for _, s := range window {
			if s.at.After(ev.revived) && slices.Contains(s.addrs, ev.addr) {
				revive = append(revive, s.at.Sub(ev.revived))
				break
			}
		}
	}
	fmt.Fprintf(w, "check: %s  pool: {%s}  %d backends, a query every %s\n", c.check, c.pool, c.members, c.every)
	fmt.Fprintf(w, "%-22s %4s %8s %8s %8s %8s\n", "", "n", "min", "median", "p95", "max")
	for _, k := range []string{"crash", "hang", "mixed"} {
		fmt.Fprintln(w, row("detection, "+k, detect[k]))
	}
	fmt.Fprintln(w, row("revival", revive))
	fmt.Fprintf(w, "undetected failures: %d of %d\n", undetected, len(events))
	fmt.Fprintf(w, "answers: %d; holding a failed backend: %d (%.2f %%), of which more than 1 s after the failure: %d (%.2f %%), more than 5 s: %d (%.2f %%)\n",
		len(samples), stale, pct(stale, len(samples)), staleSecond, pct(staleSecond, len(samples)), staleLong, pct(staleLong, len(samples)))
}

func row(name string, ds []time.Duration) string {
	if len(ds) == 0 {
		return fmt.Sprintf("%-22s %4d", name, 0)
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// Nearest rank: the smallest value with at least p of them at or below it.
	q := func(p float64) time.Duration { return s[max(0, int(math.Ceil(p*float64(len(s))))-1)] }
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("%-22s %4d %8s %8s %8s %8s", name, len(s), r(s[0]), r(q(0.5)), r(q(0.95)), r(s[len(s)-1]))
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

func freePort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	l, err := net.Listen("tcp", c.LocalAddr().String())
	if err != nil {
		return 0, errors.Join(errors.New("TCP port of a free UDP port is taken"), err)
	}
	l.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
