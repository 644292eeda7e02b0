package dnsserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// headerLen is the length of a DNS message header.
const headerLen = 12

// answerHandler answers a query with itself, flagged as an authoritative
// response, and drops a message with no question (a bare header; over TCP
// that closes the connection). It allocates nothing: what the tests see
// and measure is the transport's.
type answerHandler struct{}

func (answerHandler) ServeDNS(req *Request, out []byte) []byte {
	if len(req.Wire) <= headerLen {
		return nil
	}
	out = append(out[:0], req.Wire...)
	out[2] |= 0x84 // QR, AA
	return out
}

// startServer is the httptest-shaped helper: a server on 127.0.0.1:0 with
// UDP and TCP on one port, closed when the test ends.
func startServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	opts.Listen = []string{"127.0.0.1:0"}
	srv := New(opts, answerHandler{}, zerolog.Nop())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, srv.Addrs()[0]
}

func TestServeUDPAndTCP(t *testing.T) {
	_, addr := startServer(t, Options{})
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		resp, _, err := c.Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if !resp.Response || !resp.Authoritative || resp.Id != m.Id || resp.Question[0] != m.Question[0] {
			t.Errorf("%s: %v", proto, resp)
		}
	}
}

func TestUDPKeepsServingAfterGarbage(t *testing.T) {
	_, addr := startServer(t, Options{})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, junk := range [][]byte{{}, {1}, make([]byte, 12), {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		c.Write(junk)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("after garbage: %v %v", resp, err)
	}
}

func TestTCPPipelining(t *testing.T) {
	_, addr := startServer(t, Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	names := []string{"www.example.test.", "nope.example.test.", "mail.example.test."}
	for i, n := range names {
		m := new(dns.Msg)
		m.SetQuestion(n, dns.TypeA)
		m.Id = uint16(100 + i)
		dnstest.WriteMsgTCP(t, c, m)
	}
	for i, n := range names {
		resp := dnstest.ReadMsgTCP(t, c, 2*time.Second)
		if resp.Id != uint16(100+i) || resp.Question[0].Name != n {
			t.Errorf("reply %d: id %d for %s", i, resp.Id, resp.Question[0].Name)
		}
	}
}

// TestTCPFraming sends queries framed in ways a client may send them:
// hundreds in one write (more than one read buffer, more replies than one
// write gathers), one byte at a time, a message longer than the first
// read buffer, and a message that closes the connection after queries
// already sent. Every reply must come back whole and in order.
func TestTCPFraming(t *testing.T) {
	frame := func(id uint16, name string, pad int) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Id = id
		if pad > 0 {
			m.SetEdns0(1232, false)
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, pad)})
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return dnstest.Frame(b)
	}
	names := []string{"www.example.test.", "nope.example.test.", "mail.example.test."}
	bareHeader := []byte{0, 12, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

	for _, tc := range []struct {
		name    string
		queries int  // ids 1..queries, names in turn
		pad     int  // EDNS padding per query
		chunk   int  // write this many bytes at a time (0: all at once)
		closeBy bool // a bare header follows: answered, then closed
	}{
		{name: "500 in one write", queries: 500},
		{name: "byte by byte", queries: 3, chunk: 1},
		{name: "odd chunks", queries: 40, chunk: 7},
		{name: "longer than the read buffer", queries: 3, pad: 3 * tcpReadSize},
		{name: "long ones byte by byte", queries: 2, pad: tcpReadSize, chunk: 1},
		{name: "closed after answering", queries: 5, closeBy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startServer(t, Options{})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var stream []byte
			for i := range tc.queries {
				stream = append(stream, frame(uint16(i+1), names[i%len(names)], tc.pad)...)
			}
			if tc.closeBy {
				stream = append(stream, bareHeader...)
			}
			go func() {
				step := tc.chunk
				if step == 0 {
					step = len(stream)
				}
				for b := stream; len(b) > 0; b = b[min(step, len(b)):] {
					if _, err := c.Write(b[:min(step, len(b))]); err != nil {
						return
					}
				}
			}()
			for i := range tc.queries {
				resp := dnstest.ReadMsgTCP(t, c, 2*time.Second)
				if resp.Id != uint16(i+1) || resp.Question[0].Name != names[i%len(names)] {
					t.Fatalf("reply %d: id %d for %s", i, resp.Id, resp.Question[0].Name)
				}
			}
			if tc.closeBy {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := c.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("after a bare header: read %d bytes, %v; want EOF", n, err)
				}
			}
		})
	}
}

// TestTCPTrickleTimesOut checks that a client sending one message slowly
// does not extend the idle timeout byte by byte.
func TestTCPTrickleTimesOut(t *testing.T) {
	_, addr := startServer(t, Options{TCPIdleTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closed := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		closed <- err
	}()
	// 512 bytes announced, one sent every 20 ms: ten seconds in all.
	if _, err := c.Write([]byte{2, 0}); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range 512 {
		select {
		case err := <-closed:
			if err != io.EOF {
				t.Fatalf("read %v; want EOF from the server closing", err)
			}
			return
		case <-tick.C:
			c.Write([]byte{0})
		}
	}
	t.Fatal("the server kept a trickling connection open past its idle timeout")
}

func TestTCPIdleTimeout(t *testing.T) {
	_, addr := startServer(t, Options{TCPIdleTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read returned %v; want EOF from the server closing it", err)
	}
}

func TestTCPConnectionCap(t *testing.T) {
	_, addr := startServer(t, Options{MaxTCPConns: 2})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		dnstest.WriteMsgTCP(t, c, m)
		dnstest.ReadMsgTCP(t, c, 2*time.Second) // the connection is registered once it answered
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection was served; want it closed")
	}
	// Freeing a slot lets a new connection in.
	held[0].Close()
	held = held[1:]
	wire := dnstest.Query(t, "www.example.test.", dns.TypeA, 1)
	dnstest.Eventually(t, 5*time.Second, "a slot freed after closing a connection", func() (bool, string) {
		_, err := dnstest.Exchange("tcp", addr, wire, time.Second)
		return err == nil, fmt.Sprint(err)
	})
}

func TestShutdownClosesIdleAndIsIdempotent(t *testing.T) {
	srv, addr := startServer(t, Options{TCPIdleTimeout: time.Hour})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	dnstest.WriteMsgTCP(t, c, m)
	dnstest.ReadMsgTCP(t, c, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v (an idle connection held it up)", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting after shutdown")
	}
}

func TestStartFailsCleanly(t *testing.T) {
	_, addr := startServer(t, Options{})
	srv := New(Options{Listen: []string{"127.0.0.1:0", addr}}, answerHandler{}, zerolog.Nop())
	if err := srv.Start(); err == nil {
		srv.Close()
		t.Fatal("second bind of a used port succeeded")
	}
	// goleak in TestMain checks the first listener's goroutines stopped.
}

// dialOneSocketServer starts a server with one UDP socket and returns a UDP
// client connected to it and a query it answers.
func dialOneSocketServer(t *testing.T) (net.Conn, *dns.Msg) {
	t.Helper()
	_, addr := startServer(t, Options{UDPSockets: 1})
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	return conn, m
}

// TestUDPServingDoesNotAllocate sends queries over a real socket and counts
// the heap allocations of the whole process (client included, which reuses
// its buffers; the handler makes none): the serving loop, batch I/O
// included, makes none.
func TestUDPServingDoesNotAllocate(t *testing.T) {
	conn, m := dialOneSocketServer(t)
	query, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	exchange := func() {
		if _, err := conn.Write(query); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := conn.Read(buf); err != nil || n < len(query) {
			t.Fatalf("read: %d bytes, %v", n, err)
		}
	}
	exchange() // the first may allocate (the poller, buffers made lazily)
	if allocs := testing.AllocsPerRun(500, exchange); allocs > 0.1 {
		t.Errorf("%.2f allocations per UDP query, want 0", allocs)
	}
}

// TestUDPBurstAllAnswered sends bursts of queries without waiting and then
// expects every reply with nothing more sent: the serving loop must not go
// to sleep while datagrams are queued (it waits on its own after a batch
// smaller than the batch size, without asking the socket again).
func TestUDPBurstAllAnswered(t *testing.T) {
	conn, m := dialOneSocketServer(t)
	for _, burst := range []int{1, udpBatch - 1, udpBatch, udpBatch + 1, 2*udpBatch + 3, 100} {
		for i := range burst {
			m.Id = uint16(i)
			q, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(q); err != nil {
				t.Fatal(err)
			}
		}
		seen := make(map[uint16]bool)
		buf := make([]byte, 1500)
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		for len(seen) < burst {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("burst of %d: %d replies, then %v", burst, len(seen), err)
			}
			seen[binary.BigEndian.Uint16(buf[:n])] = true
		}
	}
}

// TestUDPCloseUnderFlood closes the server while clients keep it busy with
// full batches: Close must still return.
func TestUDPCloseUnderFlood(t *testing.T) {
	srv, addr := startServer(t, Options{UDPSockets: 1})
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	for range 4 {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
					conn.Write(q)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Error("Close did not return under a flood")
	}
	close(stop)
	for range 4 {
		<-done
	}
	<-closed
}
