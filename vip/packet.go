package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Protocol numbers and groups fixed by RFC 5798.
const (
	// IPProtocol is the IP protocol number of VRRP.
	IPProtocol = 112
	// Version is the only VRRP version this package speaks.
	Version = 3
	// TypeAdvertisement is the only VRRPv3 packet type.
	TypeAdvertisement = 1
	// HopLimit is the TTL / hop limit every advertisement must carry.
	HopLimit = 255
	// headerLen is the fixed part of an advertisement before the addresses.
	headerLen = 8
	// MaxAdvertCentis is the largest Max Adver Int (12 bits), in centiseconds.
	MaxAdvertCentis = 0x0fff
	// PriorityStop is sent by a master that stops participating.
	PriorityStop = 0
	// PriorityOwner is the priority of the virtual addresses' owner.
	PriorityOwner = 255
)

// Multicast groups for advertisements.
var (
	GroupIPv4 = netip.MustParseAddr("224.0.0.18")
	GroupIPv6 = netip.MustParseAddr("ff02::12")
)

// Advert is a decoded VRRPv3 advertisement.
type Advert struct {
	VRID     uint8
	Priority uint8
	// Interval is the Max Adver Int in centiseconds (1..4095).
	Interval uint16
	// Addrs are the virtual addresses, all of one family.
	Addrs []netip.Addr
}

// IntervalDuration returns the advertised interval as a duration.
func (a Advert) IntervalDuration() time.Duration { return centis(a.Interval) }

func centis(cs uint16) time.Duration { return time.Duration(cs) * 10 * time.Millisecond }

// Marshal encodes a with the checksum computed over the pseudo-header of an IP
// packet from src to dst. src, dst and every address must be of one family.
func (a Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	if len(a.Addrs) == 0 || len(a.Addrs) > 255 {
		return nil, fmt.Errorf("vrrp: %d addresses (want 1-255)", len(a.Addrs))
	}
	if a.Interval == 0 || a.Interval > MaxAdvertCentis {
		return nil, fmt.Errorf("vrrp: interval %d cs out of range 1-%d", a.Interval, MaxAdvertCentis)
	}
	is4 := src.Is4()
	if dst.Is4() != is4 {
		return nil, fmt.Errorf("vrrp: source %s and destination %s differ in family", src, dst)
	}
	alen := 16
	if is4 {
		alen = 4
	}
	b := make([]byte, headerLen, headerLen+alen*len(a.Addrs))
	b[0] = Version<<4 | TypeAdvertisement
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addrs))
	binary.BigEndian.PutUint16(b[4:], a.Interval&MaxAdvertCentis)
	for _, ad := range a.Addrs {
		if ad.Is4() != is4 {
			return nil, fmt.Errorf("vrrp: address %s differs in family from source %s", ad, src)
		}
		b = append(b, ad.AsSlice()...)
	}
	binary.BigEndian.PutUint16(b[6:], Checksum(src, dst, b))
	return b, nil
}

// Checksum returns the VRRPv3 checksum of msg (whose checksum field is taken
// as zero) with the IPv4 or IPv6 pseudo-header of src and dst (RFC 5798 5.2.8).
func Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	if src.Is4() {
		sum += IPProtocol + uint32(len(msg)) // zero, protocol, 16-bit length
	} else {
		sum += uint32(len(msg)>>16) + uint32(len(msg)&0xffff) + IPProtocol // 32-bit length, 3 zero bytes, next header
	}
	add(msg[:6])
	add(msg[8:])
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// DropReason says why a received packet was discarded.
type DropReason int

// Reasons a received packet is dropped (RFC 5798 7.1), one counter each.
const (
	DropNone DropReason = iota
	DropTooShort
	DropVersion
	DropType
	DropTTL
	DropLength
	DropAddrCount
	DropChecksum
	DropInterval
	DropFamily
	DropVRID
	DropOwn
	// DropAddrList: the advert's address list is not ours (RFC 5798 7.1
	// lets a receiver check it; keepalived does and ignores the advert).
	DropAddrList
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropNone:      "none",
	DropTooShort:  "too_short",
	DropVersion:   "bad_version",
	DropType:      "bad_type",
	DropTTL:       "bad_ttl",
	DropLength:    "bad_length",
	DropAddrCount: "zero_addresses",
	DropChecksum:  "bad_checksum",
	DropInterval:  "zero_interval",
	DropFamily:    "bad_family",
	DropVRID:      "other_vrid",
	DropOwn:       "own",
	DropAddrList:  "address_mismatch",
}

func (r DropReason) String() string {
	if r >= 0 && r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("drop(%d)", int(r))
}

// DropReasons lists every reason, for metrics.
func DropReasons() []DropReason {
	out := make([]DropReason, 0, numDropReasons-1)
	for r := DropNone + 1; r < numDropReasons; r++ {
		out = append(out, r)
	}
	return out
}

// DropError is the error Parse returns for an invalid packet.
type DropError struct {
	Reason DropReason
	Detail string
}

func (e *DropError) Error() string { return "vrrp: dropped (" + e.Reason.String() + "): " + e.Detail }

func drop(r DropReason, format string, args ...any) error {
	return &DropError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the drop reason of an error from Parse, or DropNone.
func ReasonOf(err error) DropReason {
	var de *DropError
	if errors.As(err, &de) {
		return de.Reason
	}
	return DropNone
}

// Parse validates and decodes the VRRP message b (the IP payload) received
// from src to dst with the given TTL / hop limit. Every rule of RFC 5798
// section 7.1 that does not need local state is checked here; the VRID is left
// to the caller. Errors are *DropError.
func Parse(b []byte, src, dst netip.Addr, ttl int) (Advert, error) {
	if ttl != HopLimit {
		return Advert{}, drop(DropTTL, "TTL/hop limit %d from %s, want 255", ttl, src)
	}
	if len(b) < headerLen {
		return Advert{}, drop(DropTooShort, "%d bytes from %s", len(b), src)
	}
	if v := b[0] >> 4; v != Version {
		return Advert{}, drop(DropVersion, "version %d from %s", v, src)
	}
	if t := b[0] & 0x0f; t != TypeAdvertisement {
		return Advert{}, drop(DropType, "type %d from %s", t, src)
	}
	if src.Is4() != dst.Is4() {
		return Advert{}, drop(DropFamily, "source %s destination %s", src, dst)
	}
	alen := 16
	if src.Is4() {
		alen = 4
	}
	n := int(b[3])
	if n == 0 {
		return Advert{}, drop(DropAddrCount, "no addresses from %s", src)
	}
	if len(b) != headerLen+n*alen {
		return Advert{}, drop(DropLength, "%d bytes for %d addresses from %s", len(b), n, src)
	}
	if got, want := binary.BigEndian.Uint16(b[6:]), Checksum(src, dst, b); got != want {
		return Advert{}, drop(DropChecksum, "checksum %#04x, want %#04x, from %s", got, want, src)
	}
	a := Advert{
		VRID:     b[1],
		Priority: b[2],
		Interval: binary.BigEndian.Uint16(b[4:]) & MaxAdvertCentis,
		Addrs:    make([]netip.Addr, 0, n),
	}
	if a.Interval == 0 {
		return Advert{}, drop(DropInterval, "max advert interval 0 from %s", src)
	}
	for i := range n {
		off := headerLen + i*alen
		ad, _ := netip.AddrFromSlice(b[off : off+alen])
		a.Addrs = append(a.Addrs, ad)
	}
	return a, nil
}

// SameAddrs reports whether an advert's addresses are exactly ours, in any
// order (keepalived lists them in its configured order, which need not be
// ours). ours must hold no duplicates, as the config guarantees. It
// allocates nothing and is quadratic in at most 255 addresses.
func SameAddrs(got, ours []netip.Addr) bool {
	if len(got) != len(ours) {
		return false
	}
	// Equal lengths, every address of ours present and no duplicate in got
	// means the same set.
	for i, a := range got {
		if !slices.Contains(ours, a) || slices.Contains(got[:i], a) {
			return false
		}
	}
	return true
}
