package dnsserver

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/fuzzguard"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// echoHandler answers each message with itself and an empty one with
// nothing (which closes a TCP connection): the framing is all that is
// tested.
type echoHandler struct{}

func (echoHandler) ServeDNS(req *Request, out []byte) []byte {
	if len(req.Wire) == 0 {
		return nil
	}
	return append(out[:0], req.Wire...)
}

// FuzzTCPFraming sends arbitrary bytes over a real loopback connection to
// a Server with echoHandler, then half-closes: no input may panic or hang
// the connection (the server must close it soon after the client's EOF,
// not at the idle timeout); the replies are exactly the echoes of the
// whole messages in the input, in order, up to an empty one.
func FuzzTCPFraming(f *testing.F) {
	frame := dnstest.Frame
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	query, err := q.Pack()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{
		frame(query),
		frame(query, query, query),
		frame(query, nil, query), // the empty one closes
		frame(query)[:5],         // cut short
		{0xff, 0xff, 1, 2, 3},    // announces 65535 bytes, sends 3
		{0},                      // half a length
		frame(bytes.Repeat([]byte{1}, 3*tcpReadSize)), // longer than the read buffer
		frame(bytes.Repeat([]byte{2}, 65535)),
		append(frame(bytes.Repeat([]byte{3}, tcpReadSize-1)), frame(query)...),
		nil,
	} {
		f.Add(s)
	}
	srv := New(Options{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1}, echoHandler{}, zerolog.Nop())
	if err := srv.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	addr := srv.Addrs()[0]
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzguard.Run(t, "one connection", fuzzguard.Limit, func() { checkTCPFraming(t, addr, data) })
	})
}

func checkTCPFraming(t *testing.T, addr string, data []byte) {
	t.Helper()
	var want []byte
	for b := data; len(b) >= 2; {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n || n == 0 {
			break
		}
		want = append(want, b[:2+n]...)
		b = b[2+n:]
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Well below the idle timeout (10 s): a server that waits for it
	// after the client's EOF hangs here.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(c) // until the server closes
		got <- result{b, err}
	}()
	if _, err := c.Write(data); err == nil {
		c.(*net.TCPConn).CloseWrite()
	}
	r := <-got
	b := r.b
	if r.err != nil {
		t.Fatalf("after %d bytes of replies: %v (want the server to close the connection)", len(b), r.err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("replies (%d bytes) are not the echoes of the whole messages sent (%d bytes):\n got %x\nwant %x", len(b), len(want), short(b), short(want))
	}
}

func short(b []byte) []byte { return b[:min(len(b), 64)] }
