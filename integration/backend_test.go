package integration

// Real HTTP backends for the pool tests: one server per loopback address
// (127.0.0.11, 127.0.0.12, … and optionally ::1), all on ONE port chosen at
// run time, so a pool's health check names a single port. Each backend can
// be stopped (listener and every connection closed: the next check gets
// "connection refused"), started again on the same address and port, put
// into a "hang" mode (connections are accepted, requests never answered: the
// check times out) or made to answer with another status code.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
)

const healthPath = "/healthz"

// backend is one HTTP server on ip:port.
type backend struct {
	ip   string // "127.0.0.11" or "::1"
	port int

	hits atomic.Int64 // health-check requests that reached the handler

	mu     sync.Mutex
	srv    *http.Server // nil while stopped
	done   chan struct{}
	status int           // status code answered (200 by default)
	delay  time.Duration // added before each answer
	hang   chan struct{} // non-nil while hanging; closed to release
	weight string        // the X-Weight header answered ("": none)
}

// backendSet is the backends of one test, sharing one port.
type backendSet struct {
	Port     int
	Backends []*backend
}

// startBackends starts an HTTP backend on each of ips (all on one port that
// is free on every one of them) and stops them all in t.Cleanup.
func startBackends(t testing.TB, ips ...string) *backendSet {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		// Let the kernel pick a port on the first address, then try to take
		// the same port on the others.
		first, err := listenTCP(ips[0], 0)
		if err != nil {
			t.Fatalf("listen on %s: %v", ips[0], err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		ok := true
		for _, ip := range ips[1:] {
			l, err := listenTCP(ip, port)
			if err != nil {
				lastErr = err
				ok = false
				break
			}
			lns = append(lns, l)
		}
		if !ok {
			for _, l := range lns {
				l.Close()
			}
			continue
		}
		set := &backendSet{Port: port}
		for i, ip := range ips {
			b := &backend{ip: ip, port: port, status: http.StatusOK}
			b.serve(lns[i])
			set.Backends = append(set.Backends, b)
		}
		t.Cleanup(func() {
			for _, b := range set.Backends {
				b.Stop()
			}
		})
		return set
	}
	t.Fatalf("no port free on all of %v: %v", ips, lastErr)
	return nil
}

func listenTCP(ip string, port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
}

// get returns the backend on ip.
func (s *backendSet) get(t testing.TB, ip string) *backend {
	t.Helper()
	for _, b := range s.Backends {
		if b.ip == ip {
			return b
		}
	}
	t.Fatalf("no backend on %s", ip)
	return nil
}

func (b *backend) String() string { return net.JoinHostPort(b.ip, strconv.Itoa(b.port)) }

func (b *backend) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(b.handle), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	b.mu.Lock()
	b.srv, b.done = srv, done
	b.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(l) // returns http.ErrServerClosed on Stop
	}()
}

func (b *backend) handle(w http.ResponseWriter, r *http.Request) {
	// Counted under the lock that decides hang or answer: a request
	// counted before a reading of Hits is decided before anything the
	// reader does next (Unhang), so no answer escapes the count.
	b.mu.Lock()
	b.hits.Add(1)
	hang, status, delay, weight := b.hang, b.status, b.delay, b.weight
	b.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		// Released by Unhang or Stop: drop the connection without an answer.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	if weight != "" {
		w.Header().Set("X-Weight", weight)
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s %d\n", b.ip, status)
}

// Hits is the number of requests that reached the backend so far.
func (b *backend) Hits() int64 { return b.hits.Load() }

// Running reports whether the backend is listening.
func (b *backend) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv != nil
}

// Stop closes the listener and every open connection: from now on a connect
// to the address is refused. Stopping a stopped backend does nothing.
func (b *backend) Stop() {
	b.mu.Lock()
	srv, done, hang := b.srv, b.done, b.hang
	b.srv, b.hang = nil, nil
	b.mu.Unlock()
	if hang != nil {
		close(hang)
	}
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-done
}

// Start listens again on the same address and port. The port may be taken
// by someone else in between (unlikely on these addresses): retry briefly.
func (b *backend) Start(t testing.TB) {
	t.Helper()
	if b.Running() {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := listenTCP(b.ip, b.port)
		if err == nil {
			b.serve(l)
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("restarting backend %s: %v", b, err)
		}
		time.Sleep(20 * time.Millisecond) // retry interval, not synchronisation
	}
}

// Hang makes the backend accept connections and read requests but never
// answer them, until Unhang or Stop.
func (b *backend) Hang() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hang == nil {
		b.hang = make(chan struct{})
	}
}

// Unhang makes the backend answer again (hung requests are dropped).
func (b *backend) Unhang() {
	b.mu.Lock()
	hang := b.hang
	b.hang = nil
	b.mu.Unlock()
	if hang != nil {
		close(hang)
	}
}

// SetDelay makes later answers wait d first (a slow but healthy backend).
func (b *backend) SetDelay(d time.Duration) {
	b.mu.Lock()
	b.delay = d
	b.mu.Unlock()
}

// SetWeight sets the X-Weight header of later answers ("": none), the
// load report of load: {type: http-header}.
func (b *backend) SetWeight(v string) {
	b.mu.Lock()
	b.weight = v
	b.mu.Unlock()
}

// SetStatus sets the status code of later answers.
func (b *backend) SetStatus(code int) {
	b.mu.Lock()
	b.status = code
	b.mu.Unlock()
}

// waitHits waits until every backend has answered at least n more requests
// than it had when called: the health checks are running.
func (s *backendSet) waitHits(t testing.TB, n int64, within time.Duration) {
	t.Helper()
	base := make([]int64, len(s.Backends))
	for i, b := range s.Backends {
		base[i] = b.Hits()
	}
	dnstest.Eventually(t, within, fmt.Sprintf("health checks reaching every backend %d times", n), func() (bool, string) {
		missing := ""
		for i, b := range s.Backends {
			if b.Running() && b.Hits()-base[i] < n {
				missing += " " + b.ip
			}
		}
		return missing == "", "not yet:" + missing
	})
}
