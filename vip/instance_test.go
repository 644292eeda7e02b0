package vip

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

// fakeSwitch connects fakeNets: a multicast advert reaches every other
// attached net, a unicast one only its destination.
type fakeSwitch struct {
	mu   sync.Mutex
	nets []*fakeNet
}

type fakeNet struct {
	sw      *fakeSwitch
	primary netip.Addr
	in      chan Packet
	done    chan struct{}
	once    sync.Once
	cut     atomic.Bool // link cut: nothing in or out

	mu        sync.Mutex
	holds     bool
	added     []time.Time // when AddVIPs was called
	removes   int
	announces int
	sent      []Advert
}

func (sw *fakeSwitch) attach(addr string) *fakeNet {
	n := &fakeNet{sw: sw, primary: netip.MustParseAddr(addr), in: make(chan Packet, 64), done: make(chan struct{})}
	sw.mu.Lock()
	sw.nets = append(sw.nets, n)
	sw.mu.Unlock()
	return n
}

func (n *fakeNet) Primary() netip.Addr { return n.primary }

func (n *fakeNet) Recv() (Packet, error) {
	select {
	case p := <-n.in:
		return p, nil
	case <-n.done:
		return Packet{}, net.ErrClosed
	}
}

func (n *fakeNet) Send(b []byte, dst netip.Addr) error {
	a, err := Parse(b, n.primary, dst, 255)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.sent = append(n.sent, a)
	n.mu.Unlock()
	if n.cut.Load() {
		return nil
	}
	n.sw.mu.Lock()
	defer n.sw.mu.Unlock()
	for _, o := range n.sw.nets {
		if o == n || o.cut.Load() || (!dst.IsMulticast() && dst != o.primary) {
			continue
		}
		select {
		case o.in <- Packet{Src: n.primary, Dst: dst, TTL: 255, Data: append([]byte(nil), b...)}:
		case <-o.done:
		}
	}
	return nil
}

func (n *fakeNet) AddVIPs() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.holds = true
	n.added = append(n.added, time.Now())
	return nil
}

func (n *fakeNet) RemoveVIPs() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.holds = false
	n.removes++
	return nil
}

func (n *fakeNet) Announce() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.announces++
	return nil
}

func (n *fakeNet) Close() error {
	n.once.Do(func() { close(n.done) })
	return nil
}

func (n *fakeNet) holding() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.holds
}

func (n *fakeNet) lastAdded() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.added) == 0 {
		return time.Time{}
	}
	return n.added[len(n.added)-1]
}

func (n *fakeNet) lastSent() Advert {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent[len(n.sent)-1]
}

func testSpec(prio uint8) instanceSpec {
	return instanceSpec{
		name: "front", ifname: "eth0", vrid: 51, priority: prio, interval: 200 * time.Millisecond,
		preempt: true, vips: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")},
		advertised: []netip.Addr{vip4}, is4: true, garpRepeat: 5,
	}
}

// running is an instance started in the background; stop cancels and waits.
type running struct {
	in   *instance
	stop func() error
}

func start(t *testing.T, spec instanceSpec, n Net, probes ...Probe) *running {
	t.Helper()
	in := newInstance(spec, n, probes, zerolog.Nop())
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- in.run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return &running{in: in, stop: stop}
}

func (r *running) state() string { return r.in.Status().State }

func TestInstancePairFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &fakeSwitch{}
		n1, n2 := sw.attach("192.0.2.11"), sw.attach("192.0.2.12")
		r1 := start(t, testSpec(150), n1)
		r2 := start(t, testSpec(100), n2)
		t0 := time.Now()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !n1.holding() || n2.holding() || r1.state() != "MASTER" || r2.state() != "BACKUP" {
			t.Fatalf("election: n1 %v %s, n2 %v %s", n1.holding(), r1.state(), n2.holding(), r2.state())
		}
		// lb1 became master after its own Master_Down_Interval at start.
		if got, want := n1.lastAdded().Sub(t0), 3*200*time.Millisecond+106*200*time.Millisecond/256; got != want {
			t.Fatalf("first master after %v, want %v", got, want)
		}
		if st := r2.in.Status(); st.Master != "192.0.2.11" || st.RxAdverts < 5 {
			t.Fatalf("backup status %+v", st)
		}

		// Crash: lb1's link is cut; lb2 takes over after its Master_Down_Interval.
		n1.cut.Store(true)
		crash := time.Now()
		time.Sleep(time.Second)
		synctest.Wait()
		mdi2 := 3*200*time.Millisecond + 156*200*time.Millisecond/256
		if !n2.holding() || r2.state() != "MASTER" {
			t.Fatalf("no takeover after crash: %s", r2.state())
		}
		if got := n2.lastAdded().Sub(crash); got > mdi2 || got < mdi2-200*time.Millisecond {
			t.Fatalf("takeover %v after crash, want within (%v-interval, %v]", got, mdi2, mdi2)
		}
		// lb1 keeps its (stale) copy while cut off: the test double has no
		// peer to hear. Link back: lb1 hears lb2 (lower) and re-asserts;
		// lb2 hears 150 and steps down at once.
		n1.cut.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		if !n1.holding() || n2.holding() || r1.state() != "MASTER" || r2.state() != "BACKUP" {
			t.Fatalf("after heal: n1 %v %s, n2 %v %s", n1.holding(), r1.state(), n2.holding(), r2.state())
		}

		// Graceful stop: priority 0, addresses removed, lb2 master after Skew_Time.
		stop := time.Now()
		if err := r1.stop(); err != nil {
			t.Fatal(err)
		}
		if n1.holding() || n1.lastSent().Priority != 0 {
			t.Fatalf("stopped master still holds (%v) or sent %+v", n1.holding(), n1.lastSent())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := n2.lastAdded().Sub(stop), 156*200*time.Millisecond/256; got != want {
			t.Fatalf("graceful takeover after %v, want skew %v", got, want)
		}

		// lb1 returns and preempts after its Master_Down_Interval; lb2 drops the VIP.
		n1b := sw.attach("192.0.2.11")
		n1.cut.Store(true) // the old net is closed; keep the switch from using it
		back := time.Now()
		start(t, testSpec(150), n1b)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !n1b.holding() || n2.holding() {
			t.Fatalf("no preempt back: n1 %v n2 %v", n1b.holding(), n2.holding())
		}
		if got, want := n1b.lastAdded().Sub(back), 3*200*time.Millisecond+106*200*time.Millisecond/256; got != want {
			t.Fatalf("preempted after %v, want %v", got, want)
		}
	})
}

func TestInstanceNoPreempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &fakeSwitch{}
		n1, n2 := sw.attach("192.0.2.11"), sw.attach("192.0.2.12")
		start(t, testSpec(100), n2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		spec := testSpec(150)
		spec.preempt = false
		start(t, spec, n1)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n1.holding() || !n2.holding() {
			t.Fatalf("preempted with preempt off: n1 %v n2 %v", n1.holding(), n2.holding())
		}
		n1.mu.Lock()
		removes := n1.removes
		n1.mu.Unlock()
		if removes == 0 {
			t.Fatal("stale addresses not removed at start")
		}
	})
}

func TestInstanceDropsCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &fakeSwitch{}
		n1 := sw.attach("192.0.2.11")
		r := start(t, testSpec(100), n1)
		good, _ := Advert{VRID: 51, Priority: 200, Interval: 20, Addrs: []netip.Addr{vip4}}.Marshal(hiAddr, GroupIPv4)
		other, _ := Advert{VRID: 52, Priority: 200, Interval: 20, Addrs: []netip.Addr{vip4}}.Marshal(hiAddr, GroupIPv4)
		bad := append([]byte(nil), good...)
		binary.BigEndian.PutUint16(bad[6:], 0x7602)
		for _, p := range []Packet{
			{Src: hiAddr, Dst: GroupIPv4, TTL: 254, Data: good},
			{Src: hiAddr, Dst: GroupIPv4, TTL: 1, Data: good},
			{Src: hiAddr, Dst: GroupIPv4, TTL: 255, Data: bad},
			{Src: hiAddr, Dst: GroupIPv4, TTL: 255, Data: other},
			{Src: n1.primary, Dst: GroupIPv4, TTL: 255, Data: good},
			{Src: hiAddr, Dst: GroupIPv4, TTL: 255, Data: good[:5]},
		} {
			n1.in <- p
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		st := r.in.Status()
		want := map[string]uint64{"bad_ttl": 2, "bad_checksum": 1, "other_vrid": 1, "own": 1, "too_short": 1}
		for k, v := range want {
			if st.Drops[k] != v {
				t.Errorf("drops[%s] = %d, want %d (all %v)", k, st.Drops[k], v, st.Drops)
			}
		}
		if st.RxAdverts != 0 {
			t.Fatalf("accepted %d", st.RxAdverts)
		}
		// None of them counted as a master: we still become master on time.
		time.Sleep(time.Second)
		synctest.Wait()
		if r.state() != "MASTER" {
			t.Fatal(r.state())
		}
	})
}

func TestInstanceTracking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &fakeSwitch{}
		n1, n2 := sw.attach("192.0.2.11"), sw.attach("192.0.2.12")
		var dnsDown, linkDown atomic.Bool
		spec := testSpec(150)
		spec.tracks = []trackSpec{
			{kind: trackCheck, desc: "dns", weight: -60, interval: 100 * time.Millisecond, timeout: 50 * time.Millisecond, rise: 2, fall: 2},
			{kind: trackInterface, desc: "link", weight: 0, interval: 100 * time.Millisecond, timeout: 50 * time.Millisecond, rise: 1, fall: 1},
		}
		probe := func(b *atomic.Bool) Probe {
			return ProbeFunc(func(context.Context) error {
				if b.Load() {
					return os.ErrNotExist
				}
				return nil
			})
		}
		r1 := start(t, spec, n1, probe(&dnsDown), probe(&linkDown))
		start(t, testSpec(100), n2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !n1.holding() {
			t.Fatal("lb1 not master")
		}
		// DNS down: priority 90 < 100, lb2 preempts.
		dnsDown.Store(true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n1.holding() || !n2.holding() || r1.in.Status().Priority != 90 {
			t.Fatalf("after DNS failure: n1 %v n2 %v prio %d", n1.holding(), n2.holding(), r1.in.Status().Priority)
		}
		// DNS back: 150 again, lb1 preempts back.
		dnsDown.Store(false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !n1.holding() || n2.holding() {
			t.Fatalf("after DNS recovery: n1 %v n2 %v", n1.holding(), n2.holding())
		}
		// Link tracked with weight 0: FAULT, priority-0 advert, lb2 takes over after skew.
		linkDown.Store(true)
		time.Sleep(time.Second)
		synctest.Wait()
		if r1.state() != "FAULT" || n1.holding() || !n2.holding() {
			t.Fatalf("link down: %s n1 %v n2 %v", r1.state(), n1.holding(), n2.holding())
		}
		st := r1.in.Status()
		if len(st.Tracks) != 2 || st.Tracks[1].Up {
			t.Fatalf("tracks %+v", st.Tracks)
		}
		linkDown.Store(false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if r1.state() != "MASTER" || !n1.holding() || n2.holding() {
			t.Fatalf("link back: %s", r1.state())
		}
	})
}

func TestInstanceUnicastPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &fakeSwitch{}
		n1, n2, n3 := sw.attach("192.0.2.11"), sw.attach("192.0.2.12"), sw.attach("192.0.2.13")
		s1 := testSpec(150)
		s1.peers = []netip.Addr{hiAddr} // only lb2 is told
		s2 := testSpec(100)
		s2.peers = []netip.Addr{lowAddr}
		start(t, s1, n1)
		start(t, s2, n2)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !n1.holding() || n2.holding() {
			t.Fatalf("unicast election: n1 %v n2 %v", n1.holding(), n2.holding())
		}
		if len(n3.in) != 0 {
			t.Fatalf("a non-peer got %d adverts", len(n3.in))
		}
	})
}

// An advert for our VRID whose address list is not ours (another cluster
// misconfigured with our VRID, or a forged packet) is dropped and counted
// as keepalived does, instead of making the master step down; the same
// addresses in another order are ours.
func TestInstanceForeignAddressList(t *testing.T) {
	ours := []netip.Addr{vip4, netip.MustParseAddr("192.0.2.101")}
	other := netip.MustParseAddr("192.0.2.200")
	cases := []struct {
		name  string
		prio  uint8
		addrs []netip.Addr
		want  string // state after the advert
		drops uint64
	}{
		{"other address", 200, []netip.Addr{other}, "MASTER", 1},
		{"one of ours missing", 200, ours[:1], "MASTER", 1},
		{"one more than ours", 200, []netip.Addr{ours[0], ours[1], other}, "MASTER", 1},
		{"one of ours twice", 200, []netip.Addr{ours[0], ours[0]}, "MASTER", 1},
		{"one of ours replaced", 200, []netip.Addr{ours[0], other}, "MASTER", 1},
		{"priority 0 with other addresses", 0, []netip.Addr{other}, "MASTER", 1},
		{"ours reordered", 200, []netip.Addr{ours[1], ours[0]}, "BACKUP", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sw := &fakeSwitch{}
				n1 := sw.attach("192.0.2.11")
				spec := testSpec(150)
				spec.vips = []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24"), netip.MustParsePrefix("192.0.2.101/24")}
				spec.advertised = ours
				r := start(t, spec, n1)
				time.Sleep(2 * time.Second)
				synctest.Wait()
				if r.state() != "MASTER" {
					t.Fatalf("alone: %s", r.state())
				}
				b, err := Advert{VRID: 51, Priority: c.prio, Interval: 20, Addrs: c.addrs}.Marshal(hiAddr, GroupIPv4)
				if err != nil {
					t.Fatal(err)
				}
				n1.in <- Packet{Src: hiAddr, Dst: GroupIPv4, TTL: 255, Data: b}
				time.Sleep(10 * time.Millisecond)
				synctest.Wait()
				st := r.in.Status()
				if st.State != c.want || n1.holding() != (c.want == "MASTER") {
					t.Fatalf("state %s, holding %v; want %s", st.State, n1.holding(), c.want)
				}
				if got := st.Drops["address_mismatch"]; got != c.drops {
					t.Fatalf("drops[address_mismatch] = %d, want %d (all %v)", got, c.drops, st.Drops)
				}
				if wantRx := 1 - c.drops; st.RxAdverts != wantRx {
					t.Fatalf("rx_adverts %d, want %d", st.RxAdverts, wantRx)
				}
			})
		})
	}
}

// brokenNet is a Net whose socket fails at once.
type brokenNet struct {
	*fakeNet
	err error
}

func (n brokenNet) Recv() (Packet, error) { return Packet{}, n.err }

// TestInstanceReceiveFailure: an instance whose socket fails stops and
// returns the socket's error for its caller to report; it logs no error
// itself, so the failure is reported once.
func TestInstanceReceiveFailure(t *testing.T) {
	errBroken := errors.New("socket broken")
	sw := &fakeSwitch{}
	var logs bytes.Buffer
	in := newInstance(testSpec(100), brokenNet{sw.attach("192.0.2.11"), errBroken}, nil, zerolog.New(&logs))
	err := in.run(t.Context())
	if !errors.Is(err, errBroken) {
		t.Fatalf("run returned %v, want the receive error %q", err, errBroken)
	}
	if strings.Contains(logs.String(), `"level":"error"`) {
		t.Errorf("the receive error was logged as well as returned:\n%s", logs.String())
	}
}
