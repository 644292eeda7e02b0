package answer

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DNS Cookies (RFC 7873) with server cookies in the interoperable format
// of RFC 9018: version 1, three reserved bytes, a timestamp, and the
// SipHash-2-4 of client cookie | version | reserved | timestamp | client
// IP under a 16-byte secret. Any server of a fleet that shares the secret
// verifies the cookies of the others, whatever their implementation.

// optCookie is the EDNS option code of COOKIE.
const optCookie = 10

const (
	clientCookieLen = 8
	serverCookieLen = 16
	// replyCookieLen is the COOKIE option data of every reply: the
	// client cookie and one of our server cookies, always 16 bytes. The
	// fixed length is what lets a cached reply be patched in place.
	replyCookieLen = clientCookieLen + serverCookieLen

	// RFC 9018 section 4.3: a server cookie is valid for an hour, may
	// come from a clock up to five minutes ahead, and one older than half
	// an hour is replaced by a fresh one.
	cookieLifetime = 3600
	cookieSkew     = 300
	cookieRefresh  = 1800
)

// CookieSecretLen is the size of the server secret.
const CookieSecretLen = 16

// cookieLenOK reports whether a COOKIE option of n bytes is well formed:
// a client cookie alone (8) or with a server cookie of 8 to 32 bytes
// (RFC 7873 section 5.2.2; anything else is FORMERR).
func cookieLenOK(n int) bool {
	return n == clientCookieLen || (n >= clientCookieLen+8 && n <= clientCookieLen+32)
}

// CookieStatus is what a query's COOKIE option proved.
type CookieStatus uint8

// The statuses.
const (
	// CookieNone: no COOKIE option (or cookies are off).
	CookieNone CookieStatus = iota
	// CookieClientOnly: a client cookie alone; the reply carries a
	// fresh server cookie.
	CookieClientOnly
	// CookieInvalid: a server cookie that is not ours, was made for
	// another client address or client cookie, or has expired. Treated
	// as CookieClientOnly (RFC 7873 section 5.2.3).
	CookieInvalid
	// CookieValid: a server cookie we made for this client and client
	// cookie, less than an hour ago. The client is not spoofing its
	// address.
	CookieValid
)

func (s CookieStatus) String() string {
	return [...]string{"none", "client-only", "invalid", "valid"}[s]
}

// CoarseClock is a clock of whole seconds that costs an atomic load to
// read: time.Now takes 20-60 ns on a VM, as much as a cached answer, and
// a cookie needs only the second. Run keeps it within a tick of now.
type CoarseClock struct {
	sec atomic.Int64
	now func() time.Time
}

// NewCoarseClock returns a clock set to now() (nil: time.Now).
func NewCoarseClock(now func() time.Time) *CoarseClock {
	if now == nil {
		now = time.Now
	}
	c := &CoarseClock{now: now}
	c.sec.Store(now().Unix())
	return c
}

// Now is the time to the second, as of the last tick.
func (c *CoarseClock) Now() time.Time { return time.Unix(c.sec.Load(), 0) }

// Run sets the clock every tick until ctx is done.
func (c *CoarseClock) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.sec.Store(c.now().Unix())
		}
	}
}

// Cookies makes and checks server cookies. It is immutable and safe for
// concurrent use.
type Cookies struct {
	k0, k1 uint64
	now    func() time.Time
}

// NewCookies returns the cookie engine for a secret. now is the clock
// (nil: time.Now); it is read on every cookie query, so a server passes a
// CoarseClock's Now.
func NewCookies(secret [CookieSecretLen]byte, now func() time.Time) *Cookies {
	if now == nil {
		now = time.Now
	}
	return &Cookies{
		k0:  binary.LittleEndian.Uint64(secret[0:]),
		k1:  binary.LittleEndian.Uint64(secret[8:]),
		now: now,
	}
}

// ParseCookieSecret reads a secret written as 32 hex digits. Its errors
// never repeat the input: it is a secret.
func ParseCookieSecret(s string) ([CookieSecretLen]byte, error) {
	var k [CookieSecretLen]byte
	if len(s) != 2*CookieSecretLen {
		return k, errors.New("must be 32 hex digits (16 bytes)")
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, errors.New("must be 32 hex digits (16 bytes); it has a character that is not one")
	}
	return k, nil
}

// Check is the one statement of what a query's COOKIE option is worth:
// opt is the option's data, already known to be well formed (see
// cookieLenOK), and client the address the query came from. It writes
// the COOKIE to answer with into reply: the client cookie and the
// query's own server cookie while it is valid and less than half an hour
// old, else a fresh one. Rate limiting exempts CookieValid clients.
func (c *Cookies) Check(opt []byte, client netip.Addr, reply *[replyCookieLen]byte) CookieStatus {
	now := uint32(c.now().Unix())
	copy(reply[:clientCookieLen], opt)
	status := CookieClientOnly
	if len(opt) > clientCookieLen {
		status = CookieInvalid
		if len(opt) == replyCookieLen && opt[clientCookieLen] == 1 {
			// Serial arithmetic (RFC 1982): the timestamp wraps in 2106.
			age := int32(now - binary.BigEndian.Uint32(opt[12:]))
			if age <= cookieLifetime && age >= -cookieSkew && c.hash(opt[:16], client) == binary.LittleEndian.Uint64(opt[16:]) {
				status = CookieValid
				if age <= cookieRefresh {
					copy(reply[clientCookieLen:], opt[clientCookieLen:])
					return status
				}
			}
		}
	}
	c.fresh(reply, client, now)
	return status
}

// fresh writes a new server cookie with timestamp now after the client
// cookie in reply.
func (c *Cookies) fresh(reply *[replyCookieLen]byte, client netip.Addr, now uint32) {
	reply[8], reply[9], reply[10], reply[11] = 1, 0, 0, 0 // version 1, reserved
	binary.BigEndian.PutUint32(reply[12:], now)
	binary.LittleEndian.PutUint64(reply[16:], c.hash(reply[:16], client))
}

// hash is the Hash field of a server cookie whose first 16 bytes (client
// cookie, version, reserved, timestamp) are head, for client: the
// SipHash-2-4 of head | client IP, taken word by word (the same as
// sipHash24 over the bytes, without assembling them). An IPv4 client on
// an IPv6 socket counts as its IPv4 address, as it does on an IPv4 socket
// of another server of the fleet.
func (c *Cookies) hash(head []byte, client netip.Addr) uint64 {
	var m [5]uint64 // the message words, the last with the length
	m[0], m[1] = binary.LittleEndian.Uint64(head[0:8]), binary.LittleEndian.Uint64(head[8:16])
	n := 3
	if client = client.Unmap(); client.Is4() {
		a := client.As4()
		m[2] = uint64(binary.LittleEndian.Uint32(a[:])) | 20<<56
	} else {
		a := client.As16()
		m[2], m[3], m[4] = binary.LittleEndian.Uint64(a[0:8]), binary.LittleEndian.Uint64(a[8:16]), 32<<56
		n = 5
	}
	// sipCompress and sipFinish, written out: the compiler inlines
	// sipRound but not them, and this runs on every cookie query.
	v0, v1, v2, v3 := c.k0^0x736f6d6570736575, c.k1^0x646f72616e646f6d, c.k0^0x6c7967656e657261, c.k1^0x7465646279746573
	for _, w := range m[:n] {
		v3 ^= w
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= w
	}
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// sipCompress takes one message word (SipHash's c = 2 rounds).
func sipCompress(v0, v1, v2, v3, m uint64) (uint64, uint64, uint64, uint64) {
	v3 ^= m
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ m, v1, v2, v3
}

// sipFinish is SipHash's finalisation (d = 4 rounds).
func sipFinish(v0, v1, v2, v3 uint64) uint64 {
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012), the PRF that
// RFC 9018 names, of p under the key k0 | k1 (each little-endian).
func sipHash24(k0, k1 uint64, p []byte) uint64 {
	v0, v1, v2, v3 := k0^0x736f6d6570736575, k1^0x646f72616e646f6d, k0^0x6c7967656e657261, k1^0x7465646279746573
	last := uint64(len(p)) << 56
	for ; len(p) >= 8; p = p[8:] {
		v0, v1, v2, v3 = sipCompress(v0, v1, v2, v3, binary.LittleEndian.Uint64(p))
	}
	for i, b := range p {
		last |= uint64(b) << (8 * i)
	}
	v0, v1, v2, v3 = sipCompress(v0, v1, v2, v3, last)
	return sipFinish(v0, v1, v2, v3)
}

// sipRound is one SipRound.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13) ^ v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16) ^ v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21) ^ v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17) ^ v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// findCookie locates the COOKIE option among the EDNS options of an OPT
// record's RDATA: its data is rdata[at:at+n], and at is -1 when there is
// none. ok is false when the options overrun the RDATA, the COOKIE is
// malformed (RFC 7873 section 5.2.2) or there is more than one: FORMERR.
// Other options are skipped (RFC 6891 section 6.1.2: options not
// understood are ignored; dnslb pads nothing and sends no NSID); the
// CLIENT-SUBNET is findECS's.
func findCookie(rdata []byte) (at, n int, ok bool) {
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
		if code == optCookie {
			if at >= 0 || !cookieLenOK(l) {
				return -1, 0, false
			}
			at, n = off, l
		}
		off += l
	}
	return at, n, true
}

// readCookie finds the query's COOKIE option and checks it, or takes what
// the cache path found for it (fq). false: the options are malformed
// (FORMERR). With cookies off the option is ignored.
func (a *Authority) readCookie(q *query, req *Request, fq *fastQuery) bool {
	cookies := a.cookies.Load()
	if cookies == nil || len(q.opts) == 0 {
		return true
	}
	if fq != nil && fq.cookieLen > 0 {
		q.cookie, q.validCookie, q.replyCookie = fq.cookie, fq.validCookie, fq.replyCookie
		return true
	}
	at, n, ok := findCookie(q.opts)
	if !ok {
		return false
	}
	if at >= 0 {
		q.cookie = cookies.Check(q.opts[at:at+n], req.Remote.Addr(), &q.replyCookie)
		q.validCookie = q.cookie == CookieValid
	}
	return true
}

// serveCookieOnly answers a query with no question that carries a COOKIE
// (RFC 7873 section 5.4: a client learning a server cookie, or checking
// one): NOERROR with a valid cookie, or BADCOOKIE, with a fresh one, when
// the query's server cookie was invalid. ok is false for any other query
// without a question (FORMERR, as before).
func (a *Authority) serveCookieOnly(q *query, req *Request, out []byte, view *View, arcount uint16) (resp []byte, ok bool) {
	if a.cookies.Load() == nil {
		return nil, false
	}
	if err := parseAdditional(req.Wire, headerLen, arcount, q); err != nil || !q.edns || !a.readCookie(q, req, nil) || q.cookie == CookieNone {
		return nil, false
	}
	r := a.newReply(q, false)
	r.counter = view.NoZone
	switch {
	case q.version > 0:
		r.m.Rcode = dns.RcodeBadVers
	case q.cookie == CookieInvalid:
		r.m.Rcode = dns.RcodeBadCookie
	}
	return a.pack(r, q, req, out), true
}
