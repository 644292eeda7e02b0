package dnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Errors of Exchange that tests often expect rather than fail on.
var (
	// ErrNoReply: nothing came back in time.
	ErrNoReply = errors.New("no reply (timeout)")
	// ErrClosed: the server closed the TCP connection without a reply.
	ErrClosed = errors.New("connection closed without a reply")
)

// WriteTCP writes one DNS message with its two-byte length prefix, in one
// write.
func WriteTCP(w io.Writer, wire []byte) error {
	_, err := w.Write(Frame(wire))
	return err
}

// Frame is msgs as a TCP stream carries them, each after its two-byte
// length, for tests that write a stream in pieces of their choosing.
func Frame(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// WriteMsgTCP packs m and writes it framed to c, failing the test on error.
func WriteMsgTCP(t testing.TB, c io.Writer, m *dns.Msg) {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("dnstest: pack: %v", err)
	}
	if err := WriteTCP(c, wire); err != nil {
		t.Fatalf("dnstest: write: %v", err)
	}
}

// ReadMsgTCP reads one framed message from c within timeout and unpacks
// it, failing the test when none comes or it does not parse.
func ReadMsgTCP(t testing.TB, c net.Conn, timeout time.Duration) *dns.Msg {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	wire, err := ReadTCP(c)
	if err != nil {
		t.Fatalf("dnstest: read a TCP reply: %v", err)
	}
	return Unpack(t, wire)
}

// ReadTCP reads one length-prefixed DNS message. A timeout is ErrNoReply; a
// close or reset before a whole message is ErrClosed.
func ReadTCP(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, classify(err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, classify(err)
	}
	return buf, nil
}

func classify(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrNoReply
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return ErrClosed
	}
	return err
}

// Exchange sends wire to addr over network ("udp" or "tcp") and returns the
// raw reply, whatever it holds: wire may be any bytes. It never returns a nil
// reply with a nil error: no reply within timeout is ErrNoReply, a TCP close
// before a reply ErrClosed. UDP replies are read into 64 KiB, so an
// oversized one is seen, not cut short.
func Exchange(network, addr string, wire []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if network == "tcp" {
		if err := WriteTCP(conn, wire); err != nil {
			return nil, err
		}
		return ReadTCP(conn)
	}
	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, classify(err)
	}
	return buf[:n], nil
}

// Query packs a query for name and qtype with the given ID, without
// recursion desired and without EDNS, as a resolver asks an authority.
func Query(t testing.TB, name string, qtype uint16, id uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("dnstest: pack query %s: %v", name, err)
	}
	return b
}

// EDNSQuery packs a query for name and qtype with the given ID and an OPT
// record (1232 bytes, DO clear) carrying opts. An empty name makes a query
// with no question, as a client asking for a cookie only sends (RFC 7873
// section 5.4).
func EDNSQuery(t testing.TB, name string, qtype uint16, id uint16, opts ...dns.EDNS0) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if name == "" {
		m.Question = nil
	}
	m.Id = id
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	o.Option = opts
	m.Extra = append(m.Extra, o)
	w, err := m.Pack()
	if err != nil {
		t.Fatalf("dnstest: pack query %q: %v", name, err)
	}
	return w
}

// Cookie is a COOKIE option from its hex form (client cookie, then server
// cookie if any).
func Cookie(hex string) *dns.EDNS0_COOKIE {
	return &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex}
}

// ReplyCookie returns the COOKIE option of m in hex, "" without one.
func ReplyCookie(m *dns.Msg) string {
	if o := m.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if c, ok := e.(*dns.EDNS0_COOKIE); ok {
				return c.Cookie
			}
		}
	}
	return ""
}

// Unpack parses a reply, failing the test when it does not parse.
func Unpack(t testing.TB, wire []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatalf("dnstest: unpack reply %x: %v", wire, err)
	}
	return m
}

// Pack packs m, failing the test when it does not pack.
func Pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("dnstest: pack %v: %v", m.Question, err)
	}
	return wire
}
