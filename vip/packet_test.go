package vip

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/dnslb/dnslb/internal/fuzzguard"
)

// keepalivedFrame is frame 1 of the reference capture (keepalived 2.2.7,
// vrrp_version 3, advert_int 1): Ethernet + IPv4 + VRRPv3, 192.0.2.11 ->
// 224.0.0.18, VRID 51, priority 150, interval 100 cs, VIP 192.0.2.100.
const keepalivedFrame = `
01 00 5e 00 00 12 aa 1a 00 22 60 82 08 00 45 c0
00 20 00 02 00 00 ff 70 18 8e c0 00 02 0b e0 00
00 12 31 33 96 01 00 64 d3 67 c0 00 02 64`

// keepalivedStop is the VRRP message of the priority-0 advertisement keepalived
// sent on SIGTERM (frame 7 of the same capture).
const keepalivedStop = `31 33 00 01 00 64 69 68 c0 00 02 64`

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	src4 = netip.MustParseAddr("192.0.2.11")
	vip4 = netip.MustParseAddr("192.0.2.100")
)

func TestParseKeepalivedCapture(t *testing.T) {
	frame := unhex(t, keepalivedFrame)
	ip := frame[14:]
	if ip[9] != IPProtocol {
		t.Fatalf("protocol %d", ip[9])
	}
	src, _ := netip.AddrFromSlice(ip[12:16])
	dst, _ := netip.AddrFromSlice(ip[16:20])
	ttl := int(ip[8])
	msg := ip[20:]
	a, err := Parse(msg, src, dst, ttl)
	if err != nil {
		t.Fatal(err)
	}
	want := Advert{VRID: 51, Priority: 150, Interval: 100, Addrs: []netip.Addr{vip4}}
	if a.VRID != want.VRID || a.Priority != want.Priority || a.Interval != want.Interval ||
		len(a.Addrs) != 1 || a.Addrs[0] != vip4 {
		t.Fatalf("got %+v, want %+v", a, want)
	}
	if dst != GroupIPv4 {
		t.Fatalf("dst %s", dst)
	}
	if d := a.IntervalDuration().String(); d != "1s" {
		t.Fatalf("interval %s", d)
	}
	// Encoding the decoded advert gives back keepalived's exact bytes.
	out, err := want.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, msg) {
		t.Fatalf("marshal\n got % x\nwant % x", out, msg)
	}
}

func TestMarshalPriorityZeroGolden(t *testing.T) {
	want := unhex(t, keepalivedStop)
	got, err := Advert{VRID: 51, Priority: PriorityStop, Interval: 100, Addrs: []netip.Addr{vip4}}.Marshal(src4, GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	if c := Checksum(src4, GroupIPv4, got); c != 0x6968 {
		t.Fatalf("checksum %#x, want 0x6968", c)
	}
}

// A VRRPv2-style checksum (no pseudo-header) must be rejected: the capture
// notes it would be 0x7602 for frame 1.
func TestRejectChecksumWithoutPseudoHeader(t *testing.T) {
	msg := unhex(t, keepalivedFrame)[34:]
	binary.BigEndian.PutUint16(msg[6:], 0x7602)
	_, err := Parse(msg, src4, GroupIPv4, 255)
	if ReasonOf(err) != DropChecksum {
		t.Fatalf("err %v", err)
	}
}

// refChecksum6 builds the IPv6 pseudo-header byte by byte (RFC 8200 8.1) and
// sums it independently of Checksum.
func refChecksum6(src, dst netip.Addr, msg []byte) uint16 {
	var buf []byte
	buf = append(buf, src.AsSlice()...)
	buf = append(buf, dst.AsSlice()...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, 0, 0, 0, IPProtocol)
	m := append([]byte(nil), msg...)
	m[6], m[7] = 0, 0
	buf = append(buf, m...)
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var s uint64
	for i := 0; i < len(buf); i += 2 {
		s += uint64(buf[i])<<8 | uint64(buf[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestIPv6RoundTrip(t *testing.T) {
	src := netip.MustParseAddr("fe80::a81a:ff:fe22:6082")
	a := Advert{VRID: 7, Priority: 100, Interval: 20, Addrs: []netip.Addr{
		netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8::101"),
	}}
	b, err := a.Marshal(src, GroupIPv6)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 8+32 {
		t.Fatalf("len %d", len(b))
	}
	if got, want := binary.BigEndian.Uint16(b[6:]), refChecksum6(src, GroupIPv6, b); got != want {
		t.Fatalf("checksum %#x, reference %#x", got, want)
	}
	back, err := Parse(b, src, GroupIPv6, 255)
	if err != nil {
		t.Fatal(err)
	}
	if back.VRID != 7 || back.Priority != 100 || back.Interval != 20 || len(back.Addrs) != 2 || back.Addrs[1] != a.Addrs[1] {
		t.Fatalf("round trip %+v", back)
	}
	// The same bytes claimed from another source fail the pseudo-header check.
	if _, err := Parse(b, netip.MustParseAddr("fe80::1"), GroupIPv6, 255); ReasonOf(err) != DropChecksum {
		t.Fatalf("other source: %v", err)
	}
}

func TestParseValidation(t *testing.T) {
	good := func() []byte { return unhex(t, keepalivedFrame)[34:] }
	fix := func(b []byte) []byte { // recompute the checksum after a change
		binary.BigEndian.PutUint16(b[6:], Checksum(src4, GroupIPv4, b))
		return b
	}
	cases := []struct {
		name string
		msg  []byte
		src  netip.Addr
		ttl  int
		want DropReason
	}{
		{"ok", good(), src4, 255, DropNone},
		{"ttl 254", good(), src4, 254, DropTTL},
		{"ttl 64", good(), src4, 64, DropTTL},
		{"short", good()[:7], src4, 255, DropTooShort},
		{"version 2", fix(func() []byte { b := good(); b[0] = 0x21; return b }()), src4, 255, DropVersion},
		{"type 2", fix(func() []byte { b := good(); b[0] = 0x32; return b }()), src4, 255, DropType},
		{"zero count", fix(func() []byte { b := good(); b[3] = 0; return b }()), src4, 255, DropAddrCount},
		{"count 2 for 1 address", fix(func() []byte { b := good(); b[3] = 2; return b }()), src4, 255, DropLength},
		{"trailing byte", fix(append(good(), 0)), src4, 255, DropLength},
		{"bad checksum", func() []byte { b := good(); b[7] ^= 1; return b }(), src4, 255, DropChecksum},
		{"changed priority", func() []byte { b := good(); b[2] = 254; return b }(), src4, 255, DropChecksum},
		{"zero interval", fix(func() []byte { b := good(); b[4], b[5] = 0xf0, 0; return b }()), src4, 255, DropInterval},
		{"family", good(), netip.MustParseAddr("fe80::1"), 255, DropFamily},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.msg, c.src, GroupIPv4, c.ttl)
			if got := ReasonOf(err); got != c.want {
				t.Fatalf("reason %v (err %v), want %v", got, err, c.want)
			}
			if c.want != DropNone && err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestReservedBitsIgnored(t *testing.T) {
	b := unhex(t, keepalivedFrame)[34:]
	b[4] |= 0xf0 // the 4 reserved bits before Max Adver Int
	binary.BigEndian.PutUint16(b[6:], Checksum(src4, GroupIPv4, b))
	a, err := Parse(b, src4, GroupIPv4, 255)
	if err != nil || a.Interval != 100 {
		t.Fatalf("%+v %v", a, err)
	}
}

func TestMarshalRejects(t *testing.T) {
	for name, a := range map[string]Advert{
		"no addresses":   {VRID: 1, Priority: 100, Interval: 100},
		"zero interval":  {VRID: 1, Priority: 100, Addrs: []netip.Addr{vip4}},
		"interval 4096":  {VRID: 1, Priority: 100, Interval: 4096, Addrs: []netip.Addr{vip4}},
		"mixed families": {VRID: 1, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip4, netip.MustParseAddr("2001:db8::1")}},
	} {
		if _, err := a.Marshal(src4, GroupIPv4); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	seed, err := hex.DecodeString(strings.Join(strings.Fields(keepalivedFrame), ""))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed[34:])
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Advert
		var err error
		fuzzguard.Run(t, "Parse", fuzzguard.Limit, func() { a, err = Parse(b, src4, GroupIPv4, 255) })
		if err != nil {
			return
		}
		out, err := a.Marshal(src4, GroupIPv4)
		if err != nil {
			t.Fatalf("parsed but cannot marshal: %v", err)
		}
		if len(out) != len(b) {
			t.Fatalf("length changed %d -> %d", len(b), len(out))
		}
	})
}
