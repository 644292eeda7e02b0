package answer

import (
	"encoding/binary"
	"net/netip"
)

// EDNS Client Subnet (RFC 7871) on the authoritative side: a resolver
// tells the subnet of the client it asks for, the sticky policy answers
// by it, and the reply echoes the option with the SCOPE PREFIX-LENGTH the
// answer depends on (docs/design.md, Pools: the answer contract).

// optECS is the EDNS option code of CLIENT-SUBNET.
const optECS = 8

// ECS address families (IANA Address Family Numbers).
const (
	ecsIPv4 = 1
	ecsIPv6 = 2
)

// ecsOpt is a query's client subnet, validated: the address has exactly
// the octets the source prefix needs and no bit set beyond it.
type ecsOpt struct {
	family uint16
	source uint8
	addr   [16]byte // the address octets as received, zero-filled
}

// addrLen is the number of address octets the option carries.
func (e *ecsOpt) addrLen() int { return (int(e.source) + 7) / 8 }

// prefix is the client subnet, or the zero Prefix for a source prefix of
// 0: the client asks that its address not be used (RFC 7871 section
// 7.1.2), so the answer is not tailored to it (SCOPE 0).
func (e *ecsOpt) prefix() netip.Prefix {
	if e.source == 0 {
		return netip.Prefix{}
	}
	var a netip.Addr
	if e.family == ecsIPv4 {
		a = netip.AddrFrom4([4]byte(e.addr[:4]))
	} else {
		a = netip.AddrFrom16(e.addr)
	}
	return netip.PrefixFrom(a, int(e.source))
}

// parseECS validates the data of a CLIENT-SUBNET option into e. false:
// malformed, which RFC 7871 section 7.2.1 answers with FORMERR: shorter
// than its fixed part, a FAMILY other than IPv4 and IPv6, a source prefix
// longer than the family's address, a SCOPE that is not 0 (it MUST be in
// a query, section 6), too few or too many address octets for the source
// prefix, or address bits set beyond it.
func parseECS(data []byte, e *ecsOpt) bool {
	if len(data) < 4 {
		return false
	}
	e.family = binary.BigEndian.Uint16(data)
	e.source = data[2]
	maxBits := 32
	switch e.family {
	case ecsIPv4:
	case ecsIPv6:
		maxBits = 128
	default:
		return false
	}
	if int(e.source) > maxBits || data[3] != 0 {
		return false
	}
	n := e.addrLen()
	if len(data)-4 != n {
		return false
	}
	if r := e.source % 8; r != 0 && data[4+n-1]&(0xFF>>r) != 0 {
		return false
	}
	e.addr = [16]byte{}
	copy(e.addr[:], data[4:])
	return true
}

// findECS locates the CLIENT-SUBNET option among the EDNS options of an
// OPT record's RDATA and validates it into e: its data is rdata[at:at+n],
// and at is -1 when there is none. ok is false when the options overrun
// the RDATA, the option is malformed (see parseECS) or there is more than
// one: FORMERR. The loop is bounded by the RDATA and allocates nothing.
func findECS(rdata []byte, e *ecsOpt) (at, n int, ok bool) {
	at = -1
	for off := 0; off < len(rdata); {
		if off+4 > len(rdata) {
			return -1, 0, false
		}
		code, l := binary.BigEndian.Uint16(rdata[off:]), int(binary.BigEndian.Uint16(rdata[off+2:]))
		off += 4
		if off+l > len(rdata) {
			return -1, 0, false
		}
		if code == optECS {
			if at >= 0 || !parseECS(rdata[off:off+l], e) {
				return -1, 0, false
			}
			at, n = off, l
		}
		off += l
	}
	return at, n, true
}

// ecsReply is the data of the CLIENT-SUBNET option of a reply: FAMILY,
// SOURCE PREFIX-LENGTH and ADDRESS as received, and scope, the prefix
// the answer depends on.
func ecsReply(e *ecsOpt, scope uint8) []byte {
	b := make([]byte, 4+e.addrLen())
	binary.BigEndian.PutUint16(b, e.family)
	b[2], b[3] = e.source, scope
	copy(b[4:], e.addr[:e.addrLen()])
	return b
}

// readECS finds and validates the query's CLIENT-SUBNET option. false:
// it is malformed (FORMERR).
func readECS(q *query) bool {
	if len(q.opts) == 0 {
		return true
	}
	at, _, ok := findECS(q.opts, &q.ecsOpt)
	q.ecs = at >= 0
	return ok
}
