package dnslb

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/miekg/dns"
)

func rawQuery(t *testing.T, name string, qtype uint16, rd bool, id uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = rd
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func serve(t *testing.T, auth *Authority, wire []byte, tcp bool) *dns.Msg {
	t.Helper()
	out := auth.ServeDNS(&Request{Wire: wire, TCP: tcp, Remote: netip.MustParseAddrPort("192.0.2.1:53")}, make([]byte, 0, 4096))
	var m dns.Msg
	if err := m.Unpack(out); err != nil {
		t.Fatal(err)
	}
	return &m
}

func TestCacheHitsArePatchedPerQuery(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	first := serve(t, auth, rawQuery(t, "mail.example.test.", dns.TypeA, true, 1), false)
	second := serve(t, auth, rawQuery(t, "MaIl.ExAmPlE.tEsT.", dns.TypeA, false, 2), false)
	if hits, _ := auth.CacheStats(); hits != 1 {
		t.Fatalf("hits = %d, want 1", hits)
	}
	if second.Id != 2 || second.RecursionDesired || second.Question[0].Name != "MaIl.ExAmPlE.tEsT." {
		t.Errorf("hit not patched: id %d rd %v question %s", second.Id, second.RecursionDesired, second.Question[0].Name)
	}
	if !first.RecursionDesired || first.Id != 1 {
		t.Errorf("first reply header %+v", first.MsgHdr)
	}
	if section(first.Answer) != section(second.Answer) {
		t.Errorf("answers differ:\n%s\n%s", section(first.Answer), section(second.Answer))
	}
}

func TestCacheKeepsTransportsApart(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	q := rawQuery(t, "big.example.test.", dns.TypeTXT, false, 7)
	for range 2 {
		if udp := serve(t, auth, q, false); !udp.Truncated || len(udp.Answer) != 0 {
			t.Fatalf("UDP: TC=%v answers=%d", udp.Truncated, len(udp.Answer))
		}
		if tcp := serve(t, auth, q, true); tcp.Truncated || len(tcp.Answer) != 6 {
			t.Fatalf("TCP: TC=%v answers=%d", tcp.Truncated, len(tcp.Answer))
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("big.example.test.", dns.TypeTXT)
	m.SetEdns0(1232, true)
	w, _ := m.Pack()
	for range 2 {
		resp := serve(t, auth, w, false)
		if resp.Truncated || len(resp.Answer) != 6 || resp.IsEdns0() == nil || !resp.IsEdns0().Do() {
			t.Fatalf("EDNS+DO: %v", resp)
		}
	}
}

func TestCachedPoolRotates(t *testing.T) {
	view := poolView(t, map[string]PoolConfig{"www.example.test.": {Policy: "round-robin"}})
	auth := NewAuthority(view, 0, nil)
	first := map[string]int{}
	for i := range 300 {
		resp := serve(t, auth, rawQuery(t, "www.example.test.", dns.TypeA, false, uint16(i)), false)
		first[answerAddrs(resp)[0]]++
	}
	if first["192.0.2.10"] != 150 || first["192.0.2.11"] != 150 {
		t.Errorf("rotation through the cache: %v", first)
	}
	if hits, _ := auth.CacheStats(); hits < 290 {
		t.Errorf("only %d of 300 from the cache", hits)
	}
}

// TestNoStaleAnswerAfterChange: a drain, a health transition and a reload
// each show in the very next answer, although the answer was cached.
func TestNoStaleAnswerAfterChange(t *testing.T) {
	var down atomic.Bool
	sched := healthcheck.NewScheduler(healthcheck.WithCheckerFactory(func(healthcheck.Spec) (healthcheck.Checker, error) {
		return healthcheck.CheckerFunc(func(_ context.Context, addr netip.AddrPort) error {
			if down.Load() && addr.Addr() == netip.MustParseAddr("192.0.2.11") {
				return errors.New("refused")
			}
			return nil
		}), nil
	}))
	defer sched.Close()
	view := poolView(t, map[string]PoolConfig{"www.example.test.": {Policy: "round-robin",
		Check: &CheckConfig{Type: "tcp", Port: 80, Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond, Rise: 1, Fall: 1}}})
	if err := sched.Set(view.Targets); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	auth := NewAuthority(view, 0, sched)
	ask := func() []string {
		return answerAddrs(serve(t, auth, rawQuery(t, "www.example.test.", dns.TypeA, false, 1), false))
	}
	for range 4 {
		if got := ask(); len(got) != 2 {
			t.Fatalf("warm-up answer %v", got)
		}
	}

	// Drain: the next answer.
	auth.SetOverrides(NewOverrides(map[netip.Addr]admin.Override{netip.MustParseAddr("192.0.2.10"): {Mode: admin.OverrideDrain}}, 1))
	if got := ask(); len(got) != 1 || got[0] != "192.0.2.11" {
		t.Fatalf("after drain: %v", got)
	}
	auth.SetOverrides(NewOverrides(nil, 2))
	if got := ask(); len(got) != 2 {
		t.Fatalf("after undrain: %v", got)
	}

	// Health: wait until the snapshot says down, then the next answer.
	down.Store(true)
	key := view.Pools["www.example.test."].V4[1].Target
	deadline := time.Now().Add(5 * time.Second)
	for sched.Snapshot().Up(key) {
		if time.Now().After(deadline) {
			t.Fatal("target never went down")
		}
		time.Sleep(5 * time.Millisecond) // polling a real scheduler
	}
	for range 3 {
		if got := ask(); len(got) != 1 || got[0] != "192.0.2.10" {
			t.Fatalf("after the transition: %v", got)
		}
	}

	// Reload: a new view, the next answer.
	next := poolView(t, map[string]PoolConfig{"www.example.test.": {Policy: "round-robin", MaxAnswers: 1}})
	auth.SetView(next)
	if got := ask(); len(got) != 1 {
		t.Fatalf("after reload: %v", got)
	}
}

// BenchmarkServeDNSParallel answers on every core at once, each goroutine
// with a query ID of its own, as clients randomise them (the ID picks the
// counter stripe), and a client address of its own, as resolvers (it
// picks the pool's rotation counter): compare -cpu 1,2.
func BenchmarkServeDNSParallel(b *testing.B) {
	for _, tc := range []struct{ name, qname string }{
		{"static-A", "mail.example.test."},
		{"pool-A", "www.example.test."},
	} {
		b.Run(tc.name, func(b *testing.B) {
			auth := NewAuthority(benchView(b), 0, nil)
			wire := benchWire(b, tc.qname, dns.TypeA, false)
			var ids atomic.Uint32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				out := make([]byte, 0, 4096)
				own := append([]byte(nil), wire...)
				id := ids.Add(1)
				binary.BigEndian.PutUint16(own, uint16(id))
				client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(id)}), 5353)
				req := &Request{Wire: own, Remote: client}
				for pb.Next() {
					auth.ServeDNS(req, out)
				}
			})
		})
	}
}
