package integration

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// TestARCOUNTFlood: a stream of 40-byte queries claiming 65,535
// additional records gets FORMERR, and costs so little that valid queries
// beside it all get their answers (issue 12: each cost 6-8 ms of CPU, and
// at 400 a second half of the valid queries were lost). The stream comes
// from several source ports, so that it reaches every UDP socket of the
// SO_REUSEPORT group.
func TestARCOUNTFlood(t *testing.T) {
	lbAddr := startDNSLB(t, dnslbConfig(t, diffZones))
	flood := cat(hdr(rawID, 0x0100, 1, 0, 0, 65535), wireName("www.example.test."), []byte{0, 1, 0, 1})
	const (
		floodConns = 8
		perTick    = 2 // per millisecond and in all: about 2,000 a second
		minValid   = 300
		minFlood   = 2000 // about a second of it
		maxLost    = 3    // stop early: without the bound every query waits out its timeout
	)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg                     sync.WaitGroup
		sent, formErr, otherRc atomic.Int64
		conns                  []net.Conn
	)
	for range floodConns {
		c, err := net.Dial("udp", lbAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() { // count the replies to the flood
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return // closed below
				}
				if n == 12 && buf[3]&0xF == dns.RcodeFormatError {
					formErr.Add(1)
				} else {
					otherRc.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				for range perTick {
					if _, err := conns[i%floodConns].Write(flood); err == nil {
						sent.Add(1)
					}
					i++
				}
			}
		}
	}()
	stop := func() {
		cancel()
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}
	defer stop()

	lost, valid := 0, 0
	for ; (valid < minValid || sent.Load() < minFlood) && lost < maxLost; valid++ {
		i := valid
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		r, err := dnstest.Exchange("udp", lbAddr, wire, queryTimeout)
		if err != nil {
			lost++
			t.Logf("valid query %d: %v", i, err)
			continue
		}
		var resp dns.Msg
		if err := resp.Unpack(r); err != nil || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 2 {
			t.Errorf("valid query %d: %v %v", i, err, &resp)
		}
	}
	stop()
	if lost > 0 {
		t.Errorf("%d valid queries got no answer beside the ARCOUNT stream", lost)
	}
	if formErr.Load() == 0 || otherRc.Load() != 0 {
		t.Errorf("the stream (%d sent) got %d FORMERR and %d other replies; want FORMERR only", sent.Load(), formErr.Load(), otherRc.Load())
	}
	t.Logf("%d ARCOUNT=65535 queries sent beside %d valid ones, %d FORMERR read", sent.Load(), valid, formErr.Load())
}
