package integration

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rrlCounts is what one client got back.
type rrlCounts struct {
	sent, full, truncated int
}

// udpFrom opens a UDP socket bound to local (any port) and connected to
// the server.
func udpFrom(t *testing.T, local, server string) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(local), 0)),
		net.UDPAddrFromAddrPort(netip.MustParseAddrPort(server)))
	if err != nil {
		t.Fatalf("udp socket on %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readReplies counts the replies on c until none has come for quiet.
func readReplies(t *testing.T, c *net.UDPConn, quiet time.Duration, counts *rrlCounts) {
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("read: %v", err)
			}
			return
		}
		var m dns.Msg
		if err := m.Unpack(buf[:n]); err != nil {
			t.Errorf("unpack reply: %v", err)
			continue
		}
		switch {
		case m.Truncated && len(m.Answer) == 0:
			counts.truncated++
		case !m.Truncated && len(m.Answer) == 1:
			counts.full++
		default:
			t.Errorf("neither a full answer nor a slip:\n%v", &m)
		}
	}
}

// TestRRLFlood: a flood from one source (127.0.0.2) gets mostly slips and
// drops, while a client in another /24 (127.0.1.1) asking at a normal rate
// at the same time keeps its answers, and the flooded source still gets
// the answer over TCP, as a real resolver would after a slip.
func TestRRLFlood(t *testing.T) {
	// Loopback holds all of 127/8. 127.0.0.1 stays exempt for the
	// harness's own queries; the two clients are not.
	cfg := opConfig(plainAdmin, "", "") + `rrl:
  responses_per_second: 20
  slip: 2
  exempt: ["127.0.0.1/32"]
`
	o := newOpServer(t, opZone(1, "www IN A 192.0.2.10\n"), cfg)
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}

	var flood, normal rrlCounts
	var wg sync.WaitGroup
	flooder := udpFrom(t, "127.0.0.2", o.dnsAddr)
	wg.Go(func() { readReplies(t, flooder, time.Second, &flood) })
	client := udpFrom(t, "127.0.1.1", o.dnsAddr)
	done := make(chan struct{})
	wg.Go(func() {
		// The client: ten queries a second, each waiting for its answer,
		// until the flood is over.
		buf := make([]byte, 4096)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			normal.sent++
			if _, err := client.Write(wire); err != nil {
				t.Errorf("client write: %v", err)
				return
			}
			client.SetReadDeadline(time.Now().Add(time.Second))
			n, err := client.Read(buf)
			if err != nil {
				continue // lost: counted as not answered
			}
			var r dns.Msg
			if r.Unpack(buf[:n]) == nil && !r.Truncated && len(r.Answer) == 1 {
				normal.full++
			}
		}
	})
	// The flood: 6000 queries in bursts of 30, a few thousand a second.
	for range 200 {
		for range 30 {
			if _, err := flooder.Write(wire); err != nil {
				t.Fatalf("flood write: %v", err)
			}
			flood.sent++
		}
		time.Sleep(5 * time.Millisecond) // pacing, not a wait for anything
	}
	close(done)
	wg.Wait()

	t.Logf("flooder: sent %d, full %d, truncated %d, nothing %d", flood.sent, flood.full, flood.truncated,
		flood.sent-flood.full-flood.truncated)
	t.Logf("client: sent %d, full %d", normal.sent, normal.full)
	// 20 a second, after a burst of 20: however slowly this machine
	// sent, a small share of 6000.
	if flood.full == 0 || flood.full > flood.sent/10 {
		t.Errorf("flooder got %d full answers of %d; want some, and at most a tenth", flood.full, flood.sent)
	}
	// Slip 2: about half of the limited replies go out truncated.
	if limited := flood.sent - flood.full; flood.truncated < limited/4 || flood.truncated > limited*3/4 {
		t.Errorf("flooder got %d truncated replies of %d limited; want about half", flood.truncated, limited)
	}
	if normal.sent < 4 || normal.full*4 < normal.sent*3 {
		t.Errorf("the other client got %d full answers of %d; want at least 75%%", normal.full, normal.sent)
	}

	mfs := o.metrics()
	slips, _ := metricSum(mfs, "dnslb_rrl_actions_total", map[string]string{"action": "slip", "category": "answer"})
	drops, _ := metricSum(mfs, "dnslb_rrl_actions_total", map[string]string{"action": "drop", "category": "answer"})
	if int(slips) < flood.truncated || slips+drops < float64(flood.sent-flood.full)*0.9 {
		t.Errorf("metrics: %v slips, %v drops; the flooder saw %d truncated of %d limited", slips, drops, flood.truncated, flood.sent-flood.full)
	}
	if _, n := metricSum(mfs, "dnslb_rrl_table_entries", nil); n != 1 {
		t.Errorf("dnslb_rrl_table_entries: %d series", n)
	}

	// The flooded source is still limited over UDP (it only just stopped),
	// but a retry over TCP is answered.
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}}}
	truncated := false
	for i := 0; i < 60 && !truncated; i++ { // its budget refilled while the flood's replies were counted
		r, _, err := c.Exchange(m, o.dnsAddr)
		if err == nil && r.Truncated {
			truncated = true
		}
	}
	if !truncated {
		t.Fatal("no truncated reply to the flooded source in 60 tries")
	}
	c = &dns.Client{Net: "tcp", Timeout: 2 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}}
	r, _, err := c.Exchange(m, o.dnsAddr)
	if err != nil {
		t.Fatalf("TCP retry: %v", err)
	}
	if r.Truncated || len(r.Answer) != 1 || !r.Authoritative {
		t.Errorf("TCP retry after a slip:\n%v", r)
	}
}
