package dnstest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
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

// fakeTB records a failure and stops the goroutine, as testing.T does, so
// that the kit's own failures can be checked. Methods it does not override
// panic (the embedded TB is nil): the kit must not call them.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls body with a fakeTB on a goroutine of its own, as a test runs,
// and returns the failure, "" when there was none.
func run(body func(tb testing.TB)) string {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(f)
	}()
	<-done
	return f.failed
}

func TestEventuallyFailsWithTheLastState(t *testing.T) {
	n := 0
	var took time.Duration
	failed := run(func(tb testing.TB) {
		took = Eventually(tb, 50*time.Millisecond, "the answer", func() (bool, string) {
			n++
			return false, fmt.Sprintf("try %d", n)
		})
	})
	if n < 2 {
		t.Fatalf("cond called %d times in 50ms, want it polled", n)
	}
	if want := fmt.Sprintf("the answer: not within 50ms; last: try %d", n); failed != want {
		t.Fatalf("failure %q, want %q", failed, want)
	}
	if took != 0 {
		t.Fatalf("returned %v after failing", took)
	}
}

func TestUntilFailsWithWhat(t *testing.T) {
	failed := run(func(tb testing.TB) {
		Until(tb, 20*time.Millisecond, "never", func() bool { return false })
	})
	if failed != "never: not within 20ms" {
		t.Fatalf("failure %q", failed)
	}
	if failed := run(func(tb testing.TB) { Until(tb, time.Minute, "now", func() bool { return true }) }); failed != "" {
		t.Fatalf("a condition already true failed: %q", failed)
	}
}

func TestNormLines(t *testing.T) {
	got := []dns.RR{}
	for _, s := range []string{"WWW.Example.TEST. 60 IN CNAME Target.Example.TEST.", "www.example.test. 60 IN TXT \"Mixed Case\""} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rr)
	}
	want := NormLines(t, "www.example.test.   60 in txt \"Mixed Case\"", "www.example.test. 60 in cname target.example.test.")
	if strings.Join(NormSection(got), "\n") != strings.Join(want, "\n") {
		t.Fatalf("NormSection %q\nNormLines %q", NormSection(got), want)
	}
	// Text is data: its case is compared.
	if other := NormLines(t, "www.example.test. 60 in txt \"mixed case\"", "www.example.test. 60 in cname target.example.test."); strings.Join(other, "") == strings.Join(want, "") {
		t.Fatal("TXT compared without case")
	}
	if failed := run(func(tb testing.TB) { NormLines(tb, "not a record") }); !strings.Contains(failed, `"not a record"`) {
		t.Fatalf("a bad line: %q", failed)
	}
}

func TestEDNSQueryAndCookie(t *testing.T) {
	m := Unpack(t, EDNSQuery(t, "a.test.", dns.TypeAAAA, 7, Cookie("2464c4abcf10c957")))
	if m.Id != 7 || len(m.Question) != 1 || m.Question[0].Qtype != dns.TypeAAAA || m.RecursionDesired != true {
		t.Fatalf("query %v", m)
	}
	if o := m.IsEdns0(); o == nil || o.UDPSize() != 1232 || o.Do() {
		t.Fatalf("OPT %v", o)
	}
	if c := ReplyCookie(m); c != "2464c4abcf10c957" {
		t.Fatalf("cookie %q", c)
	}
	bare := Unpack(t, EDNSQuery(t, "", 0, 8))
	if len(bare.Question) != 0 || ReplyCookie(bare) != "" {
		t.Fatalf("cookie-only query %v", bare)
	}
	if failed := run(func(tb testing.TB) { Unpack(tb, []byte{1, 2, 3}) }); !strings.Contains(failed, "010203") {
		t.Fatalf("unpacking garbage: %q", failed)
	}
}

func TestFrameAndMsgTCP(t *testing.T) {
	if got := Frame([]byte{1}, nil, []byte{2, 3}); !bytes.Equal(got, []byte{0, 1, 1, 0, 0, 0, 2, 2, 3}) {
		t.Fatalf("Frame = %v", got)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA)
	var framed bytes.Buffer
	WriteMsgTCP(t, &framed, q)
	go a.Write(framed.Bytes())
	if got := ReadMsgTCP(t, b, 2*time.Second); got.Id != q.Id || got.Question[0] != q.Question[0] {
		t.Fatalf("read %v", got)
	}
	failed := run(func(tb testing.TB) { ReadMsgTCP(tb, b, 10*time.Millisecond) })
	if !strings.Contains(failed, ErrNoReply.Error()) {
		t.Fatalf("nothing sent: %q", failed)
	}
}

func TestSignQuery(t *testing.T) {
	const secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	at := time.Now().Truncate(time.Second)
	q := SignQuery(t, "a.test.", dns.TypeA, true, "k.", dns.HmacSHA256, secret, at, nil)
	m := Unpack(t, q.Wire) // before TsigVerify, which strips the TSIG in place
	if err := dns.TsigVerify(q.Wire, secret, "", false); err != nil || q.MAC == "" {
		t.Fatalf("signed query does not verify: %v (MAC %q)", err, q.MAC)
	}
	if m.Id != 0x4242 || m.IsEdns0() == nil || m.IsTsig() == nil || m.IsTsig().TimeSigned != uint64(at.Unix()) {
		t.Fatalf("signed query %v", m)
	}
	bad := SignQuery(t, "a.test.", dns.TypeA, false, "k.", dns.HmacSHA256, secret, at, func(ts *dns.TSIG) { ts.Fudge = 1 })
	if err := dns.TsigVerify(bad.Wire, secret, "", false); err == nil {
		t.Fatal("an edited TSIG still verifies")
	}
}

func TestAnswerA(t *testing.T) {
	m := new(dns.Msg)
	for _, s := range []string{"a. 1 IN A 192.0.2.2", "a. 1 IN AAAA 2001:db8::1", "a. 1 IN A 192.0.2.1"} {
		rr, _ := dns.NewRR(s)
		m.Answer = append(m.Answer, rr)
	}
	if got := fmt.Sprint(AnswerA(m)); got != "[192.0.2.2 192.0.2.1]" {
		t.Fatalf("AnswerA = %s", got)
	}
}

func TestSectionKeepsCase(t *testing.T) {
	var rrs []dns.RR
	for _, s := range []string{"b.Test. 60 IN A 192.0.2.1", "a.test. 60 IN CNAME B.test.", ". 0 CLASS1232 OPT"} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	if got := fmt.Sprint(Section(rrs)); got != "[a.test. 60 IN CNAME B.test. b.Test. 60 IN A 192.0.2.1]" {
		t.Fatalf("Section = %s", got)
	}
}
