package answer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/dnslb/dnslb/internal/dnstest/handlertest"
	"github.com/miekg/dns"
)

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
	rd := new(dns.Msg)
	rd.SetQuestion("mail.example.test.", dns.TypeA) // RD set
	rd.Id = 1
	first := handlertest.Exchange(t, auth, rd, false)
	second := serve(t, auth, dnstest.Query(t, "MaIl.ExAmPlE.tEsT.", dns.TypeA, 2), false)
	if hits, _ := auth.CacheStats(); hits != 1 {
		t.Fatalf("hits = %d, want 1", hits)
	}
	if second.Id != 2 || second.RecursionDesired || second.Question[0].Name != "MaIl.ExAmPlE.tEsT." {
		t.Errorf("hit not patched: id %d rd %v question %s", second.Id, second.RecursionDesired, second.Question[0].Name)
	}
	if !first.RecursionDesired || first.Id != 1 {
		t.Errorf("first reply header %+v", first.MsgHdr)
	}
	if !dnstest.SameSection(first.Answer, second.Answer) {
		t.Errorf("answers differ:\n%v\n%v", first.Answer, second.Answer)
	}
}

func TestCacheKeepsTransportsApart(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	q := dnstest.Query(t, "big.example.test.", dns.TypeTXT, 7)
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
	view := poolView(t, map[string]poolSpec{"www.example.test.": {policy: "round-robin"}})
	auth := NewAuthority(view, 0, nil)
	first := map[string]int{}
	for i := range 300 {
		resp := serve(t, auth, dnstest.Query(t, "www.example.test.", dns.TypeA, uint16(i)), false)
		first[dnstest.AnswerA(resp)[0]]++
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
	view := poolView(t, map[string]poolSpec{"www.example.test.": {policy: "round-robin",
		check: &healthcheck.Config{Type: "tcp", Port: 80, Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond, Rise: 1, Fall: 1}}})
	if err := sched.Set(view.Targets); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	auth := NewAuthority(view, 0, sched)
	ask := func() []string {
		return dnstest.AnswerA(serve(t, auth, dnstest.Query(t, "www.example.test.", dns.TypeA, 1), false))
	}
	for range 4 {
		if got := ask(); len(got) != 2 {
			t.Fatalf("warm-up answer %v", got)
		}
	}

	// Drain: the next answer.
	auth.Serve(auth.View().WithOverrides(NewOverrides(map[netip.Addr]Override{netip.MustParseAddr("192.0.2.10"): {Mode: OverrideDrain}}, 1)))
	if got := ask(); len(got) != 1 || got[0] != "192.0.2.11" {
		t.Fatalf("after drain: %v", got)
	}
	auth.Serve(auth.View().WithOverrides(NewOverrides(nil, 2)))
	if got := ask(); len(got) != 2 {
		t.Fatalf("after undrain: %v", got)
	}

	// Health: wait until the snapshot says down, then the next answer.
	down.Store(true)
	key := view.Pools["www.example.test."].V4[1].Target
	dnstest.Until(t, 5*time.Second, "the target going down", func() bool { return !sched.Snapshot().Up(key) })
	for range 3 {
		if got := ask(); len(got) != 1 || got[0] != "192.0.2.10" {
			t.Fatalf("after the transition: %v", got)
		}
	}

	// Reload: a new view, the next answer.
	next := poolView(t, map[string]poolSpec{"www.example.test.": {policy: "round-robin", maxAnswers: 1}})
	next.gen = view.gen + 1 // a build of its own
	auth.Serve(next)
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

// heavyView serves a wildcard CNAME to a weighted pool of 8 members of
// weight 125: 1,000 rotation slots, 8 distinct answers.
func heavyView(t testing.TB) *View {
	t.Helper()
	zone := "$ORIGIN heavy.test.\n$TTL 300\n@ SOA ns1 host 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\n*.w CNAME pool\n"
	weights := map[string]int{}
	for i := range 8 {
		addr := fmt.Sprintf("192.0.2.%d", 10+i)
		zone += "pool A " + addr + "\n"
		weights[addr] = 125
	}
	set := loadSet(t, fstest.MapFS{"heavy.zone": {Data: []byte(zone)}}, map[string]string{"heavy.test.": "heavy.zone"})
	return buildView(t, set, map[string]poolSpec{"pool.heavy.test.": {policy: "weighted", weights: weights}})
}

// floodRandomNames asks n random names under the wildcard, each a few
// times from a few clients (so that several of the pool's answers get
// packed), and calls each (may be nil) after every 1,000 names.
func floodRandomNames(t testing.TB, auth *Authority, n int, each func(i int)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]byte, 0, 4096)
	m := new(dns.Msg)
	for i := range n {
		m.SetQuestion(fmt.Sprintf("r%016x.w.heavy.test.", rng.Uint64()), dns.TypeA)
		m.Id = uint16(i)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		for k := range 4 {
			client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(k)}), 53)
			if auth.ServeDNS(&Request{Wire: wire, Remote: client}, out) == nil {
				t.Fatal("no reply")
			}
		}
		if each != nil && i%1000 == 999 {
			each(i)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestCacheBoundedInBytes drives the cache with random names under a
// wildcard CNAME to a heavily weighted pool (the stream that took RSS from
// 18 MB to 1.38 GB when entries were counted and pool entries held a slot
// per unit of weight): the accounted bytes never pass the bound, and the
// heap grows by no more than it.
func TestCacheBoundedInBytes(t *testing.T) {
	const bound = 4 << 20
	auth := NewAuthority(heavyView(t), 0, nil)
	auth.SetCacheBytes(bound)
	before := heapInUse()
	floodRandomNames(t, auth, 40000, func(i int) {
		if b, _ := auth.CacheUse(); b > bound {
			t.Fatalf("after %d names: %d bytes accounted, bound %d", i+1, b, bound)
		}
	})
	grown := int64(heapInUse()) - int64(before)
	b, n := auth.CacheUse()
	t.Logf("%d entries, %d bytes accounted, heap grew %d", n, b, grown)
	if b < bound/2 || n < 1000 {
		t.Errorf("the cache holds %d entries, %d bytes: it should be full", n, b)
	}
	if grown > bound+bound/8 {
		t.Errorf("the heap grew %d bytes, bound %d: the accounting misses memory", grown, bound)
	}
	if hits, misses := auth.CacheStats(); hits+misses != 4*40000 || hits < 40000 {
		t.Errorf("%d hits + %d misses for %d queries", hits, misses, 4*40000)
	}
}

// TestWeightedPoolEntryIsSmall: a pool of 1,000 slots keeps one packed
// answer per member, however many slots are asked.
func TestWeightedPoolEntryIsSmall(t *testing.T) {
	auth := NewAuthority(heavyView(t), 0, nil)
	m := new(dns.Msg)
	m.SetQuestion("one.w.heavy.test.", dns.TypeA)
	firsts := map[string]int{}
	for i := range 3000 {
		m.Id = uint16(i)
		resp, _ := handlertest.ServeFrom(t, auth, dnstest.Pack(t, m), "198.51.100.1", false)
		firsts[dnstest.AnswerA(resp)[0]]++
	}
	b, n := auth.CacheUse()
	if n != 1 || b-int64(len(auth.cache.front))*8 > 8*1024 {
		t.Errorf("%d entries, %d bytes (front table aside): want one entry of at most 8 KiB", n, b-int64(len(auth.cache.front))*8)
	}
	if len(firsts) != 8 {
		t.Errorf("answers led by %v: want all 8 members", firsts)
	}
	if hits, _ := auth.CacheStats(); hits < 2900 {
		t.Errorf("%d of 3000 from the cache", hits)
	}
}

// TestFrontHoldsOnlyCachedEntries: after a stream that evicts most of
// what it caches, every entry the lock-free front table points to is in
// the LRU: evicted memory is not kept alive by it.
func TestFrontHoldsOnlyCachedEntries(t *testing.T) {
	auth := NewAuthority(heavyView(t), 0, nil)
	auth.SetCacheBytes(1 << 20)
	floodRandomNames(t, auth, 20000, nil)
	c := auth.cache
	held := 0
	for i := range c.front {
		e := c.front[i].Load()
		if e == nil {
			continue
		}
		held++
		s := c.shard(e.hash)
		s.mu.Lock()
		cur, ok := s.lru.Peek(e.hash)
		s.mu.Unlock()
		if !ok || cur != e {
			t.Fatalf("front slot %d holds an entry the LRU dropped (%q)", i, e.key)
		}
	}
	if held == 0 {
		t.Fatal("the front table is empty")
	}
}

// TestCacheAccountingMatchesTheHeap: what an entry is accounted at is
// what it takes, within an eighth, for static and pool entries alike.
func TestCacheAccountingMatchesTheHeap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		qname func(i int) string
	}{
		{"pool answers", func(i int) string { return fmt.Sprintf("n%d.w.heavy.test.", i) }},
		{"NXDOMAIN", func(i int) string { return fmt.Sprintf("n%d.heavy.test.", i) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := NewAuthority(heavyView(t), 0, nil)
			auth.SetCacheBytes(256 << 20) // nothing evicted
			out := make([]byte, 0, 4096)
			wires := make([][]byte, 20000)
			for i := range wires {
				wires[i] = dnstest.Query(t, tc.qname(i), dns.TypeA, uint16(i))
			}
			empty, _ := auth.CacheUse()
			before := heapInUse()
			for _, w := range wires {
				for k := range 3 {
					auth.ServeDNS(&Request{Wire: w, Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(k)}), 53)}, out)
				}
			}
			grown := float64(int64(heapInUse()) - int64(before))
			b, n := auth.CacheUse()
			accounted := float64(b - empty)
			t.Logf("%d entries: %.0f bytes accounted, heap grew %.0f (%.2f)", n, accounted, grown, grown/accounted)
			if n != int64(len(wires)) || grown > accounted*1.125 || grown < accounted*0.6 {
				t.Errorf("%d entries: %.0f bytes accounted, heap grew %.0f", n, accounted, grown)
			}
		})
	}
}

// TestCacheConcurrent: answers, fills, evictions and the metrics' reads
// at once, for the race detector; the bound holds throughout.
func TestCacheConcurrent(t *testing.T) {
	const bound = 1 << 20
	auth := NewAuthority(heavyView(t), 0, nil)
	auth.SetCacheBytes(bound)
	auth.SetCookies(cookiesAt(t, "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559731985))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]byte, 0, 4096)
			for i := range 3000 {
				var opts []dns.EDNS0
				if i%2 == 0 {
					opts = append(opts, dnstest.Cookie("2464c4abcf10c957"))
				}
				w := dnstest.EDNSQuery(t, fmt.Sprintf("n%d.w.heavy.test.", i%700), dns.TypeA, uint16(i), opts...)
				client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(g), byte(i)}), 53)
				if auth.ServeDNS(&Request{Wire: w, Remote: client}, out) == nil {
					t.Error("no reply")
					return
				}
			}
		}()
	}
	finished, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if b, _ := auth.CacheUse(); b > bound {
				t.Errorf("%d bytes accounted, bound %d", b, bound)
			}
			select {
			case <-time.After(time.Millisecond): // sample the gauge as a scrape would
			case <-finished:
				return
			}
		}
	}()
	wg.Wait()
	close(finished)
	<-done
}
