package dnsserver

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// streamHandler answers a TCP query with n copies of it ahead of the
// reply, their IDs 1..n (a transfer's messages), and marks the last with
// ID 0xFFFF. Over UDP Stream is nil and only the reply goes out.
type streamHandler struct{ n int }

func (h streamHandler) ServeDNS(req *Request, out []byte) []byte {
	if req.Stream != nil {
		msg := append([]byte(nil), req.Wire...)
		msg[2] |= 0x80
		for i := range h.n {
			binary.BigEndian.PutUint16(msg, uint16(i+1))
			if err := req.Stream(msg); err != nil {
				return nil
			}
		}
	}
	out = append(out[:0], req.Wire...)
	out[2] |= 0x80
	binary.BigEndian.PutUint16(out, 0xFFFF)
	return out
}

// TestTCPStream: every streamed message goes out, in order, before the
// handler's reply, and more than one write buffer's worth of them; the
// query pipelined after it is answered after all of them.
func TestTCPStream(t *testing.T) {
	const n = 2000 // about 66 KB: several flushes
	srv := New(Options{Listen: []string{"127.0.0.1:0"}}, streamHandler{n: n}, zerolog.Nop())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", srv.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeAXFR)
		dnstest.WriteMsgTCP(t, c, m)
	}
	for q := range 2 {
		for i := range n {
			if m := dnstest.ReadMsgTCP(t, c, 5*time.Second); m.Id != uint16(i+1) {
				t.Fatalf("query %d: message %d has ID %d", q, i, m.Id)
			}
		}
		if m := dnstest.ReadMsgTCP(t, c, 5*time.Second); m.Id != 0xFFFF {
			t.Fatalf("query %d: last message has ID %d", q, m.Id)
		}
	}
}
