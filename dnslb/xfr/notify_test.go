package xfr

import (
	"context"
	"encoding/base64"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestNotify: every new serial of a filtered zone is announced to its
// secondary, signed; a NOTIFY that goes unanswered is sent again.
func TestNotify(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("notify secret, 32 bytes long...!"))
	var mu sync.Mutex
	tries := 0
	got1 := make(chan uint32, 10)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if q.Opcode != dns.OpcodeNotify || q.IsTsig() == nil || w.TsigStatus() != nil || len(q.Answer) != 1 {
			return // unsigned or badly signed: dropped, as NSD drops them
		}
		tries++
		if tries == 1 {
			return // the first goes unanswered: it must come again
		}
		r := new(dns.Msg)
		r.SetReply(q)
		r.SetTsig(q.IsTsig().Hdr.Name, dns.HmacSHA256, 300, time.Now().Unix())
		w.WriteMsg(r)
		serial := q.Answer[0].(*dns.SOA).Serial
		got1 <- serial
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h, TsigSecret: map[string]string{"xfr-key.": secret}}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.ActivateAndServe() }()
	<-started
	defer func() { srv.Shutdown(); <-served }()

	f := newFiltered(t, 0, nil)
	f.s.opts.NotifyTimeout = 20 * time.Millisecond
	f.cfg[0].Notify = []Target{{Addr: netip.MustParseAddrPort(pc.LocalAddr().String()), Key: &Key{Name: "xfr-key.", Algorithm: dns.HmacSHA256, Secret: secret}}}
	f.s.Set(f.set, f.pools, f.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	want := func(serial uint32) {
		t.Helper()
		select {
		case s := <-got1:
			if s != serial {
				t.Fatalf("NOTIFY of serial %d, want %d", s, serial)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no NOTIFY of serial %d", serial)
		}
	}
	want(100)
	down := downHealth{netip.MustParseAddr("192.0.2.10"): true}
	f.health.Store(&down)
	f.s.Poke()
	want(101)
}

// TestNotifyStopsWithRun: a NOTIFY waiting for an answer that does not
// come stops when Run's context ends, not when its timeout does.
func TestNotifyStopsWithRun(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	f := newFiltered(t, 0, nil)
	f.s.opts.NotifyTimeout = time.Hour
	f.cfg[0].Notify = []Target{{Addr: netip.MustParseAddrPort(pc.LocalAddr().String())}}
	f.s.Set(f.set, f.pools, f.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.s.Run(ctx) }()
	buf := make([]byte, 512)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := pc.ReadFrom(buf); err != nil {
		t.Fatalf("no NOTIFY: %v", err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waits for the NOTIFY's answer after its context ended")
	}
}
