package dnstest

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestServerExchange(t *testing.T) {
	srv := NewServer(t, HandlerFunc(func(q, r *dns.Msg) *dns.Msg {
		if q.Question[0].Name == "silent.test." {
			return nil
		}
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.1")
		r.Answer = append(r.Answer, rr)
		return r
	}))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion("a.test.", dns.TypeA)
			wire, err := q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := Exchange(network, srv.Addr, wire, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			want, _ := dns.NewRR("A.TEST. 60 IN A 192.0.2.1")
			if r.Id != q.Id || !SameSection(r.Answer, []dns.RR{want}) {
				t.Fatalf("reply %v", r)
			}
			q.SetQuestion("silent.test.", dns.TypeA)
			wire, _ = q.Pack()
			_, err = Exchange(network, srv.Addr, wire, 200*time.Millisecond)
			if !errors.Is(err, ErrNoReply) {
				t.Fatalf("unanswered query: %v, want ErrNoReply", err)
			}
		})
	}
}

func TestTCPFramingSplitReads(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	msg := bytes.Repeat([]byte{7}, 300)
	go func() {
		// One byte at a time: a reader must assemble length and body.
		var buf bytes.Buffer
		_ = WriteTCP(&buf, msg)
		for _, c := range buf.Bytes() {
			if _, err := a.Write([]byte{c}); err != nil {
				return
			}
		}
		a.Close()
	}()
	got, err := ReadTCP(b)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("ReadTCP = %d bytes, %v", len(got), err)
	}
	if _, err := ReadTCP(b); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v, want ErrClosed", err)
	}
}

func TestDiff(t *testing.T) {
	for _, c := range []struct {
		want, got      []string
		missing, extra int
	}{
		{[]string{"a", "b"}, []string{"b", "a"}, 0, 0},
		{[]string{"a", "a"}, []string{"a"}, 1, 0},
		{[]string{"a"}, []string{"a", "c"}, 0, 1},
		{nil, nil, 0, 0},
	} {
		m, e := Diff(c.want, c.got)
		if len(m) != c.missing || len(e) != c.extra {
			t.Errorf("Diff(%v, %v) = %v, %v", c.want, c.got, m, e)
		}
	}
}

func TestEventuallyReturnsOnceTrue(t *testing.T) {
	n := 0
	Eventually(t, 5*time.Second, "third call", func() (bool, string) { n++; return n == 3, "" })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}
