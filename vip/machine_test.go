package vip

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	t0      = time.Unix(1_000_000, 0)
	lowAddr = netip.MustParseAddr("192.0.2.11")
	hiAddr  = netip.MustParseAddr("192.0.2.12")
)

func cfg(prio uint8) MachineConfig {
	return MachineConfig{VRID: 51, Priority: prio, Interval: time.Second, Preempt: true, Primary: lowAddr}
}

func adv(prio uint8, cs uint16) Advert {
	return Advert{VRID: 51, Priority: prio, Interval: cs, Addrs: []netip.Addr{vip4}}
}

func acts(as []Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

func expect(t *testing.T, got []Action, want string) {
	t.Helper()
	if g := acts(got); g != want {
		t.Fatalf("actions\n got: %s\nwant: %s", g, want)
	}
}

func TestTimersFromRFC(t *testing.T) {
	cases := []struct {
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		// Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{150, time.Second, 414062500 * time.Nanosecond, 3414062500 * time.Nanosecond},
		{254, time.Second, 7812500 * time.Nanosecond, 3007812500 * time.Nanosecond},
		{100, 200 * time.Millisecond, 121875 * time.Microsecond, 721875 * time.Microsecond},
		{1, 100 * time.Millisecond, 99609375 * time.Nanosecond, 399609375 * time.Nanosecond},
	}
	for _, c := range cases {
		m := NewMachine(MachineConfig{VRID: 1, Priority: c.prio, Interval: c.interval})
		if m.SkewTime() != c.skew || m.MasterDownInterval() != c.down {
			t.Errorf("prio %d interval %v: skew %v down %v, want %v %v", c.prio, c.interval, m.SkewTime(), m.MasterDownInterval(), c.skew, c.down)
		}
	}
}

func TestStartupBackupThenMaster(t *testing.T) {
	m := NewMachine(cfg(100))
	expect(t, m.Start(t0), "RemoveVIPs Notify(INIT->BACKUP)")
	if m.State() != StateBackup {
		t.Fatal(m.State())
	}
	down := t0.Add(m.MasterDownInterval())
	if m.Deadline() != down {
		t.Fatalf("deadline %v, want %v", m.Deadline(), down)
	}
	expect(t, m.Tick(down.Add(-time.Nanosecond)), "")
	expect(t, m.Tick(down), "AddVIPs SendAdvert(100) SendGARP Notify(BACKUP->MASTER)")
	if m.Deadline() != down.Add(time.Second) {
		t.Fatalf("advert timer %v", m.Deadline().Sub(down))
	}
	expect(t, m.Tick(down.Add(time.Second)), "SendAdvert(100)")
	expect(t, m.Start(down), "") // already started
}

func TestOwnerStartsAsMaster(t *testing.T) {
	m := NewMachine(cfg(255))
	expect(t, m.Start(t0), "RemoveVIPs AddVIPs SendAdvert(255) SendGARP Notify(INIT->MASTER)")
	expect(t, m.SetPriority(t0, 100), "") // tracking never lowers the owner
	if m.Priority() != 255 {
		t.Fatal(m.Priority())
	}
	// Only another owner with a higher address can displace it.
	expect(t, m.Receive(t0, lowAddr, adv(254, 100)), "SendAdvert(255) SendGARP")
	if m.State() != StateMaster {
		t.Fatal(m.State())
	}
}

func TestBackupLearnsMasterInterval(t *testing.T) {
	m := NewMachine(cfg(100))
	m.Start(t0)
	now := t0.Add(100 * time.Millisecond)
	expect(t, m.Receive(now, hiAddr, adv(150, 20)), "") // 200 ms master
	if m.MasterAdverInterval() != 200*time.Millisecond {
		t.Fatal(m.MasterAdverInterval())
	}
	want := now.Add(600*time.Millisecond + 156*200*time.Millisecond/256)
	if m.Deadline() != want || m.Master() != hiAddr {
		t.Fatalf("deadline +%v master %s", m.Deadline().Sub(now), m.Master())
	}
}

func TestBackupRepeatedAdvertsHoldOff(t *testing.T) {
	m := NewMachine(cfg(100))
	m.Start(t0)
	now := t0
	for range 20 {
		now = now.Add(time.Second)
		expect(t, m.Tick(now), "")
		expect(t, m.Receive(now, hiAddr, adv(150, 100)), "")
	}
	if m.State() != StateBackup {
		t.Fatal(m.State())
	}
}

func TestBackupPriorityZeroTakesOverAfterSkew(t *testing.T) {
	m := NewMachine(cfg(100))
	m.Start(t0)
	m.Receive(t0, hiAddr, adv(150, 100))
	now := t0.Add(500 * time.Millisecond)
	expect(t, m.Receive(now, hiAddr, adv(0, 100)), "")
	if got := m.Deadline().Sub(now); got != m.SkewTime() {
		t.Fatalf("timer %v, want skew %v", got, m.SkewTime())
	}
	expect(t, m.Tick(m.Deadline()), "AddVIPs SendAdvert(100) SendGARP Notify(BACKUP->MASTER)")
}

func TestPreemption(t *testing.T) {
	cases := []struct {
		name         string
		preempt      bool
		delay        time.Duration
		at           time.Duration // when the lower-priority advert arrives, after start
		wantMasterAt time.Duration // 0: stays backup while adverts keep coming
	}{
		{"preempt: ignore lower master, take over at down interval", true, 0, time.Second, 3414062500},
		{"no preempt: lower master accepted", false, 0, time.Second, 0},
		{"preempt delay not over: accepted", true, 10 * time.Second, time.Second, 0},
		{"preempt delay over: preempt", true, 2 * time.Second, 3 * time.Second, 3414062500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := cfg(150)
			conf.Preempt, conf.PreemptDelay = c.preempt, c.delay
			m := NewMachine(conf)
			m.Start(t0)
			now := t0.Add(c.at - time.Second)
			// keep receiving the lower master's adverts every second
			for i := 0; i < 4; i++ {
				now = now.Add(time.Second)
				if got := m.Tick(now); len(got) > 0 {
					t.Fatalf("tick at +%v: %s", now.Sub(t0), acts(got))
				}
				m.Receive(now, hiAddr, adv(100, 100))
				if c.wantMasterAt == 0 {
					continue
				}
				// the first ignored advert leaves the original timer running
				if i == 0 {
					if d := m.Deadline().Sub(t0); d != c.wantMasterAt {
						t.Fatalf("deadline +%v, want +%v", d, c.wantMasterAt)
					}
					break
				}
			}
			if c.wantMasterAt == 0 {
				if m.State() != StateBackup {
					t.Fatal(m.State())
				}
				return
			}
			expect(t, m.Tick(t0.Add(c.wantMasterAt)), "AddVIPs SendAdvert(150) SendGARP Notify(BACKUP->MASTER)")
		})
	}
}

func masterAt(t *testing.T, conf MachineConfig) *Machine {
	t.Helper()
	m := NewMachine(conf)
	m.Start(t0)
	m.Tick(m.Deadline())
	if m.State() != StateMaster {
		t.Fatal(m.State())
	}
	return m
}

func TestMasterReceives(t *testing.T) {
	cases := []struct {
		name string
		src  netip.Addr
		prio uint8
		want string
	}{
		{"higher priority", lowAddr, 101, "RemoveVIPs Notify(MASTER->BACKUP)"},
		{"equal priority, higher address", netip.MustParseAddr("192.0.2.200"), 100, "RemoveVIPs Notify(MASTER->BACKUP)"},
		{"equal priority, lower address", netip.MustParseAddr("192.0.2.5"), 100, "SendAdvert(100) SendGARP"},
		{"lower priority", hiAddr, 99, "SendAdvert(100) SendGARP"},
		{"priority zero", hiAddr, 0, "SendAdvert(100)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := cfg(100)
			conf.Primary = netip.MustParseAddr("192.0.2.100")
			m := masterAt(t, conf)
			now := m.Deadline().Add(-300 * time.Millisecond)
			expect(t, m.Receive(now, c.src, adv(c.prio, 50)), c.want)
			if m.State() == StateBackup {
				if m.MasterAdverInterval() != 500*time.Millisecond {
					t.Fatalf("learned %v", m.MasterAdverInterval())
				}
				if m.Deadline() != now.Add(m.MasterDownInterval()) {
					t.Fatal("master down timer not set")
				}
			} else if m.Deadline() != now.Add(time.Second) {
				t.Fatalf("advert timer +%v", m.Deadline().Sub(now))
			}
		})
	}
}

func TestOtherVRIDIgnored(t *testing.T) {
	m := masterAt(t, cfg(100))
	a := adv(200, 100)
	a.VRID = 52
	expect(t, m.Receive(t0, hiAddr, a), "")
}

func TestStopSendsPriorityZeroAndRemoves(t *testing.T) {
	m := masterAt(t, cfg(100))
	expect(t, m.Stop(t0.Add(5*time.Second)), "SendAdvert(0) RemoveVIPs Notify(MASTER->INIT)")
	if !m.Deadline().IsZero() {
		t.Fatal("timers left running")
	}
	b := NewMachine(cfg(100))
	b.Start(t0)
	expect(t, b.Stop(t0), "RemoveVIPs Notify(BACKUP->INIT)")
	expect(t, b.Stop(t0), "RemoveVIPs") // idempotent
}

func TestTrackingPriority(t *testing.T) {
	m := masterAt(t, cfg(150))
	now := m.Deadline().Add(-100 * time.Millisecond)
	expect(t, m.SetPriority(now, 90), "SendAdvert(90)")
	expect(t, m.SetPriority(now, 90), "")
	// Now a 100 backup's advert displaces us.
	expect(t, m.Receive(now, hiAddr, adv(100, 100)), "RemoveVIPs Notify(MASTER->BACKUP)")
	expect(t, m.SetPriority(now, 400), "")
	if m.Priority() != 254 {
		t.Fatal(m.Priority())
	}
	m.SetPriority(now, -5)
	if m.Priority() != 1 {
		t.Fatal(m.Priority())
	}
}

func TestFault(t *testing.T) {
	m := masterAt(t, cfg(100))
	now := t0.Add(10 * time.Second)
	expect(t, m.SetFault(now, true), "SendAdvert(0) RemoveVIPs Notify(MASTER->FAULT)")
	expect(t, m.Receive(now, hiAddr, adv(50, 100)), "")
	expect(t, m.Tick(now.Add(time.Hour)), "")
	expect(t, m.SetFault(now, false), "Notify(FAULT->BACKUP)")
	if m.Deadline() != now.Add(m.MasterDownInterval()) {
		t.Fatal("no master down timer after fault")
	}
	// Faulty at start: straight to Fault.
	f := NewMachine(cfg(100))
	f.SetFault(t0, true)
	expect(t, f.Start(t0), "RemoveVIPs Notify(INIT->FAULT)")
}

func TestGARPRepeat(t *testing.T) {
	conf := cfg(100)
	conf.GARPDelay = 5 * time.Second
	m := masterAt(t, conf)
	became := m.Deadline().Add(-time.Second)
	var got []string
	for now := became.Add(time.Second); !now.After(became.Add(6 * time.Second)); now = now.Add(time.Second) {
		if a := m.Tick(now); len(a) > 0 {
			got = append(got, fmt.Sprintf("+%v:%s", now.Sub(became), acts(a)))
		}
	}
	want := []string{"+1s:SendAdvert(100)", "+2s:SendAdvert(100)", "+3s:SendAdvert(100)", "+4s:SendAdvert(100)",
		"+5s:SendAdvert(100) SendGARP", "+6s:SendAdvert(100)"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
}

// Two machines wired back to back with a fake clock: election, crash,
// graceful stop, return with and without preemption.
func TestPairElection(t *testing.T) {
	type node struct {
		m     *Machine
		up    bool
		addr  netip.Addr
		since time.Time // became master
	}
	for _, preempt := range []bool{true, false} {
		t.Run(fmt.Sprint("preempt=", preempt), func(t *testing.T) {
			mk := func(p uint8, a netip.Addr) *node {
				c := MachineConfig{VRID: 51, Priority: p, Interval: 200 * time.Millisecond, Preempt: preempt, Primary: a}
				return &node{m: NewMachine(c), up: true, addr: a}
			}
			n1, n2 := mk(150, lowAddr), mk(100, hiAddr)
			nodes := []*node{n1, n2}
			now := t0
			holders := func() (h []netip.Addr) {
				for _, n := range nodes {
					if n.up && n.m.State() == StateMaster {
						h = append(h, n.addr)
					}
				}
				return h
			}
			var deliver func(from *node, as []Action)
			deliver = func(from *node, as []Action) {
				for _, a := range as {
					if a.Kind == ActNotify && a.To == StateMaster {
						from.since = now
					}
					if a.Kind != ActSendAdvert {
						continue
					}
					for _, to := range nodes {
						if to != from && to.up {
							deliver(to, to.m.Receive(now, from.addr, adv(a.Priority, 20)))
						}
					}
				}
			}
			run := func(d time.Duration) {
				end := now.Add(d)
				for {
					var next time.Time
					var who *node
					for _, n := range nodes {
						if dl := n.m.Deadline(); n.up && !dl.IsZero() && (next.IsZero() || dl.Before(next)) {
							next, who = dl, n
						}
					}
					if who == nil || next.After(end) {
						now = end
						return
					}
					now = next
					deliver(who, who.m.Tick(now))
				}
			}
			deliver(n1, n1.m.Start(now))
			deliver(n2, n2.m.Start(now))
			run(2 * time.Second)
			if h := holders(); len(h) != 1 || h[0] != lowAddr {
				t.Fatalf("holders %v", h)
			}
			// crash n1: n2 takes over after its Master_Down_Interval
			n1.up = false
			crash := now
			run(2 * time.Second)
			if h := holders(); len(h) != 1 || h[0] != hiAddr {
				t.Fatalf("after crash holders %v", h)
			}
			if d := n2.since.Sub(crash); d > n2.m.MasterDownInterval() || d < n2.m.MasterDownInterval()-200*time.Millisecond {
				t.Fatalf("takeover %v after crash", d)
			}
			// n1 comes back
			n1.m = NewMachine(n1.m.cfg)
			n1.up = true
			deliver(n1, n1.m.Start(now))
			run(3 * time.Second)
			want := hiAddr
			if preempt {
				want = lowAddr
			}
			if h := holders(); len(h) != 1 || h[0] != want {
				t.Fatalf("after return holders %v, want %v", h, want)
			}
			// graceful stop of the master: the other takes over after Skew_Time
			master, other := n1, n2
			if want == hiAddr {
				master, other = n2, n1
			}
			stop := now
			deliver(master, master.m.Stop(now))
			master.up = false
			run(time.Second)
			if other.m.State() != StateMaster {
				t.Fatal(other.m.State())
			}
			if d := other.since.Sub(stop); d != other.m.SkewTime() {
				t.Fatalf("graceful takeover after %v, want skew %v", d, other.m.SkewTime())
			}
		})
	}
}
