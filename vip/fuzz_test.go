package vip

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/fuzzguard"
	"github.com/rs/zerolog"
)

// FuzzReceive feeds one arbitrary packet to an instance that is master or
// backup, through the whole receive path (Parse, the instance's checks,
// the state machine): no input may panic; the addresses are held exactly
// while master; an advert that is not for our VRID and our addresses
// changes nothing; a timer always runs afterwards (a backup that stopped
// its Master_Down_Timer would never take over). With fixSum the checksum
// is made right, so that inputs get past it.
func FuzzReceive(f *testing.F) {
	seed := func(a Advert, src netip.Addr) []byte {
		dst := GroupIPv4
		if !src.Is4() {
			dst = GroupIPv6
		}
		b, err := a.Marshal(src, dst)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	peer4, peer6 := netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("2001:db8::12")
	for _, s := range []struct {
		data   []byte
		v6     bool
		master bool
	}{
		{seed(Advert{VRID: 51, Priority: 200, Interval: 20, Addrs: []netip.Addr{vip4}}, peer4), false, true},
		{seed(Advert{VRID: 51, Priority: 100, Interval: 20, Addrs: []netip.Addr{vip4}}, peer4), false, true},
		{seed(Advert{VRID: 51, Priority: 0, Interval: 20, Addrs: []netip.Addr{vip4}}, peer4), false, false},
		{seed(Advert{VRID: 51, Priority: 255, Interval: 1, Addrs: []netip.Addr{vip4}}, peer4), false, false},
		{seed(Advert{VRID: 51, Priority: 255, Interval: MaxAdvertCentis, Addrs: []netip.Addr{vip4}}, peer4), false, false},
		{seed(Advert{VRID: 51, Priority: 200, Interval: 20, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.200")}}, peer4), false, true},
		{seed(Advert{VRID: 52, Priority: 200, Interval: 20, Addrs: []netip.Addr{vip4}}, peer4), false, true},
		{seed(Advert{VRID: 51, Priority: 200, Interval: 20, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::100")}}, peer6), true, true},
		{[]byte{0x31, 0x33, 0x96, 0x00, 0x00, 0x64, 0, 0}, false, true},
		{nil, false, false},
	} {
		f.Add(s.data, uint8(255), s.v6, uint8(12), s.master, true)
	}
	f.Add(unhexF(f, keepalivedStop), uint8(255), false, uint8(11), true, false)
	f.Fuzz(func(t *testing.T, data []byte, ttl uint8, v6 bool, host uint8, master, fixSum bool) {
		fuzzguard.Run(t, "receive", fuzzguard.Limit, func() { checkReceive(t, data, ttl, v6, host, master, fixSum) })
	})
}

func unhexF(f *testing.F, s string) []byte {
	f.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func checkReceive(t *testing.T, data []byte, ttl uint8, v6 bool, host uint8, master, fixSum bool) {
	t.Helper()
	src := netip.AddrFrom4([4]byte{192, 0, 2, host})
	dst := GroupIPv4
	if v6 {
		src = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: host})
		dst = GroupIPv6
	}
	data = append([]byte(nil), data...)
	if fixSum && len(data) >= headerLen {
		binary.BigEndian.PutUint16(data[6:], Checksum(src, dst, data))
	}

	sw := &fakeSwitch{}
	n := sw.attach("192.0.2.11")
	prio := uint8(100)
	if master {
		prio = 150
	}
	in := newInstance(testSpec(prio), n, nil, zerolog.Nop())
	notes := newNotifyQueue()
	now := time.Now() // receive reads the clock itself
	in.exec(in.m.Start(now), notes)
	if master {
		now = in.m.Deadline()
		in.exec(in.m.Tick(now), notes) // Master_Down_Interval without a master
	}
	if want := map[bool]State{true: StateMaster, false: StateBackup}[master]; in.m.State() != want {
		t.Fatalf("set-up: %s, want %s", in.m.State(), want)
	}
	before := in.m.State()

	in.receive(Packet{Src: src, Dst: dst, TTL: int(ttl), Data: data}, notes)

	st := in.m.State()
	if n.holding() != (st == StateMaster) {
		t.Fatalf("state %s, holding the addresses: %v", st, n.holding())
	}
	if a, err := Parse(data, src, dst, int(ttl)); err != nil || a.VRID != 51 || !SameAddrs(a.Addrs, []netip.Addr{vip4}) || src == n.primary {
		if st != before {
			t.Fatalf("%s -> %s on a packet that is not a valid advert for us (%v)", before, st, err)
		}
	}
	if in.m.Deadline().IsZero() {
		t.Fatalf("%s with no timer running", st)
	}
	// The timers that follow run.
	in.exec(in.m.Tick(in.m.Deadline()), notes)
}
