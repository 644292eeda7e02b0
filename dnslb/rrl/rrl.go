package rrl

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// Category is the kind of response, which chooses the name it is charged
// to (see the package documentation). The zero value is Error.
type Category uint8

// Response categories.
const (
	Error Category = iota
	Answer
	NoData
	NXDomain
	Referral
	Wildcard
	NumCategories = iota
)

func (c Category) String() string {
	switch c {
	case Error:
		return "error"
	case Answer:
		return "answer"
	case NoData:
		return "nodata"
	case NXDomain:
		return "nxdomain"
	case Referral:
		return "referral"
	case Wildcard:
		return "wildcard"
	}
	return fmt.Sprintf("category(%d)", uint8(c))
}

// Class is what a response is charged to, besides the client's prefix: its
// category and the hash of its imputed name. It is computed once, when a
// reply is built, and kept with a cached reply, so that checking a cached
// reply hashes no name.
type Class struct {
	Category Category
	Name     uint64
}

// NewClass returns the class of a response in category c charged to name
// (a domain name in presentation format; letter case does not matter). An
// empty name is no name (errors outside every zone).
func NewClass(c Category, name string) Class {
	return Class{Category: c, Name: NameHash(name)}
}

// NameHash hashes a domain name, ignoring ASCII letter case (FNV-1a). It is
// not keyed: a Class outlives any one Limiter (cached replies keep theirs
// across reloads). That is safe because the table index is keyed: two
// names with one hash only share the account of each prefix that asks for
// both, which limits that prefix more, never less.
func NameHash(name string) uint64 {
	if name == "" {
		return 0
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		b := name[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		h ^= uint64(b)
		h *= 1099511628211
	}
	return h
}

// Action is what to do with a response.
type Action uint8

// Actions.
const (
	// Send the response as it is.
	Send Action = iota
	// Slip: send a truncated reply instead (TC=1, the question only).
	Slip
	// Drop: send nothing.
	Drop
)

func (a Action) String() string {
	switch a {
	case Send:
		return "send"
	case Slip:
		return "slip"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Defaults and bounds of Config.
const (
	// DefaultResponsesPerSecond is the rate per client prefix, category
	// and name. A resolver asks an authoritative server for one name a
	// handful of times a second at most (it caches); 20 leaves room for
	// many resolvers behind one /24 and still cuts a reflection stream of
	// thousands a second to a trickle.
	DefaultResponsesPerSecond = 20
	// DefaultSlip truncates every second limited response: a real
	// resolver behind a spoofed-upon prefix still gets through over TCP
	// within a retry or two, and the victim gets half as many packets as
	// the attacker sent, each about the size of the query.
	DefaultSlip = 2
	// Prefix lengths an account aggregates clients by: a /24 is the usual
	// IPv4 assignment, a /56 the usual IPv6 site (RFC 6177); Knot uses
	// both.
	DefaultIPv4Prefix = 24
	DefaultIPv6Prefix = 56
	// DefaultTableSize is the number of accounts kept (8 bytes each: 2 MiB).
	// Knot sizes its table 1.4 × peak QPS / rate: 262144 covers ~3.7M
	// limited QPS at the default rate.
	DefaultTableSize = 1 << 18

	MaxResponsesPerSecond = 10000
	MaxSlip               = 100
	MinTableSize          = 64
	MaxTableSize          = 1 << 26
)

// Config configures a Limiter.
type Config struct {
	// ResponsesPerSecond is the rate each account is allowed, and the
	// burst (one second's worth) an idle account may send at once.
	ResponsesPerSecond int
	// Slip sends every Slip-th limited response truncated and drops the
	// others; 0 drops all, 1 truncates all.
	Slip int
	// IPv4Prefix and IPv6Prefix are the prefix lengths clients are
	// aggregated by.
	IPv4Prefix, IPv6Prefix int
	// Exempt lists prefixes that are never limited.
	Exempt []netip.Prefix
	// TableSize is the number of accounts kept (0: DefaultTableSize),
	// rounded up to a power of two.
	TableSize int
	// Now is the clock (nil: the monotonic clock, which is cheaper to
	// read than time.Now).
	Now func() time.Time
}

// Validate reports what is wrong with c, one error per field.
func (c Config) Validate() error {
	var errs []error
	if c.ResponsesPerSecond < 1 || c.ResponsesPerSecond > MaxResponsesPerSecond {
		errs = append(errs, fmt.Errorf("responses_per_second: %d is outside 1-%d", c.ResponsesPerSecond, MaxResponsesPerSecond))
	}
	if c.Slip < 0 || c.Slip > MaxSlip {
		errs = append(errs, fmt.Errorf("slip: %d is outside 0-%d", c.Slip, MaxSlip))
	}
	if c.IPv4Prefix < 1 || c.IPv4Prefix > 32 {
		errs = append(errs, fmt.Errorf("ipv4_prefix: %d is outside 1-32", c.IPv4Prefix))
	}
	if c.IPv6Prefix < 1 || c.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("ipv6_prefix: %d is outside 1-128", c.IPv6Prefix))
	}
	if c.TableSize != 0 && (c.TableSize < MinTableSize || c.TableSize > MaxTableSize) {
		errs = append(errs, fmt.Errorf("table_size: %d is outside %d-%d", c.TableSize, MinTableSize, MaxTableSize))
	}
	for i, p := range c.Exempt {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("exempt[%d]: not a prefix", i))
		}
	}
	return errors.Join(errs...)
}

// An account is one word:
//
//	bits 63-44  tag: the high bits of the account's hash (the low bits
//	            chose its set)
//	bits 43-37  slip counter: limited responses so far, modulo Slip
//	bits 36-0   TAT, the GCRA theoretical arrival time, in units of
//	            1/ResponsesPerSecond since the limiter was made
//
// 37 bits of TAT wrap after 159 days at the highest rate (much longer at
// lower ones); a TAT further ahead of now than any account can be is taken
// for one that wrapped, and is idle.
const (
	tatBits   = 37
	tatMask   = 1<<tatBits - 1
	slipShift = tatBits
	slipMask  = 0x7f << slipShift
	tagShift  = 44
	ways      = 4
	// skew is how far ahead of a reader's time an account's TAT may be
	// without being taken for a wrapped one: other cores may have read
	// a newer time and charged the account against it.
	skew = 1 << 16
	// attempts bounds the compare-and-swap retries of one check.
	attempts = 4
)

// Limiter decides, for each response, whether to send, slip or drop it.
// It is safe for concurrent use; checks take no lock.
type Limiter struct {
	sets       [][ways]atomic.Uint64
	mask       uint64
	burst      int64
	rate       uint64
	slip       uint64
	v4mask     uint32
	v6hi, v6lo uint64 // IPv6 prefix masks
	exempt4    []prefix4
	exempt6    []netip.Prefix
	seed       [4]uint64
	// elapsed is the time since the limiter was made: the monotonic
	// clock alone by default (time.Since reads no wall clock), else
	// Config.Now's.
	elapsed func() time.Duration
	// now is the time last read, in units of 1/rate since the limiter
	// was made. On a cache line of its own: it is written when a
	// limited response reads the clock, and the fields above are read
	// by every check on every core.
	_   [64]byte
	now atomic.Uint64
	_   [56]byte
}

type prefix4 struct{ addr, mask uint32 }

// New returns a limiter for c, or the problems of c.
func New(c Config) (*Limiter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	size := c.TableSize
	if size == 0 {
		size = DefaultTableSize
	}
	nsets := 1
	for nsets*ways < size {
		nsets *= 2
	}
	l := &Limiter{
		sets:   make([][ways]atomic.Uint64, nsets),
		mask:   uint64(nsets - 1),
		burst:  int64(c.ResponsesPerSecond),
		rate:   uint64(c.ResponsesPerSecond),
		slip:   uint64(c.Slip),
		v4mask: ^uint32(0) << (32 - c.IPv4Prefix),
	}
	l.v6hi, l.v6lo = mask128(c.IPv6Prefix)
	for _, p := range c.Exempt {
		p = p.Masked()
		if a := p.Addr(); a.Is4() {
			b := a.As4()
			l.exempt4 = append(l.exempt4, prefix4{addr: binary.BigEndian.Uint32(b[:]), mask: ^uint32(0) << (32 - p.Bits())})
		} else if a.Is4In6() && p.Bits() >= 96 {
			// ::ffff:a.b.c.d/n: clients are unmapped before matching.
			b := a.Unmap().As4()
			l.exempt4 = append(l.exempt4, prefix4{addr: binary.BigEndian.Uint32(b[:]), mask: ^uint32(0) << (128 - p.Bits())})
		} else {
			l.exempt6 = append(l.exempt6, p)
		}
	}
	var seed [8 * len(l.seed)]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("rrl: seed: %w", err)
	}
	for i := range l.seed {
		l.seed[i] = binary.LittleEndian.Uint64(seed[8*i:])
	}
	if now := c.Now; now != nil {
		epoch := now()
		l.elapsed = func() time.Duration { return now().Sub(epoch) }
	} else {
		epoch := time.Now()
		l.elapsed = func() time.Duration { return time.Since(epoch) }
	}
	return l, nil
}

// mask128 returns the two halves of an IPv6 prefix mask of n bits.
func mask128(n int) (hi, lo uint64) {
	switch {
	case n >= 128:
		return ^uint64(0), ^uint64(0)
	case n > 64:
		return ^uint64(0), ^uint64(0) << (128 - n)
	case n == 0:
		return 0, 0
	default:
		return ^uint64(0) << (64 - n), 0
	}
}

// TableSize returns the number of accounts the table holds.
func (l *Limiter) TableSize() int { return len(l.sets) * ways }

// Check charges one response to client's account for class c and says
// what to do with it. Exempt clients and invalid addresses are always
// sent.
func (l *Limiter) Check(client netip.Addr, c Class) Action {
	var x uint64
	if client.Is4() {
		// Inline, the common case: a plain IPv4 client.
		b := client.As4()
		a := binary.BigEndian.Uint32(b[:])
		for _, e := range l.exempt4 {
			if a&e.mask == e.addr {
				return Send
			}
		}
		x = uint64(a&l.v4mask) ^ l.seed[0]
	} else {
		var ok bool
		if x, ok = l.prefixOf(client); !ok {
			return Send
		}
	}
	h := mix(x^uint64(c.Category)<<56, c.Name^l.seed[3])
	set := &l.sets[h&l.mask]
	tag := h >> tagShift
	now := l.now.Load()
	// The common case, kept short: the account is there and within its
	// rate (idle, or in debt by less than a burst).
	for j := range set {
		w := set[j].Load()
		if w>>tagShift != tag {
			continue
		}
		var next uint64
		switch d := diff(w&tatMask, now); {
		case d <= 0:
			next = tag<<tagShift | (now+1)&tatMask // idle: slips counted afresh
		case d < l.burst:
			next = w&^tatMask | (w+1)&tatMask
		default:
			return l.charge(set, tag, now)
		}
		if set[j].CompareAndSwap(w, next) {
			return Send
		}
		break
	}
	return l.charge(set, tag, now)
}

// charge is Check's general case: a new account, one over its rate, and
// retries when another core changed the set.
func (l *Limiter) charge(set *[ways]atomic.Uint64, tag, now uint64) Action {
	refreshed := false
	limited := false
	for range attempts {
		i := -1
		var w uint64
		for j := range set {
			if w = set[j].Load(); w>>tagShift == tag {
				i = j
				break
			}
		}
		if i < 0 {
			// A new account: it starts with a full bucket, less this
			// response.
			v, vw := l.victim(set, now)
			if set[v].CompareAndSwap(vw, tag<<tagShift|(now+1)&tatMask) {
				return Send
			}
			continue
		}
		tat := w & tatMask
		d := diff(tat, now)
		keep := w &^ tatMask
		if d <= 0 || d > l.burst+skew {
			// Idle (or so long idle that the TAT wrapped): a new
			// episode, slips counted afresh.
			tat, d, keep = now, 0, tag<<tagShift
		}
		if d < l.burst {
			limited = false
			if set[i].CompareAndSwap(w, keep|(tat+1)&tatMask) {
				return Send
			}
			continue
		}
		limited = true
		if !refreshed {
			// Limited by the time last read: read the clock, try again.
			now, refreshed = l.refresh(), true
			continue
		}
		if l.slip == 0 {
			return Drop
		}
		n := ((w&slipMask)>>slipShift + 1) % l.slip
		if set[i].CompareAndSwap(w, w&^slipMask|n<<slipShift) {
			if n == 0 {
				return Slip
			}
			return Drop
		}
	}
	// Other cores kept changing the set: decide without counting.
	if limited {
		return Drop
	}
	return Send
}

// victim picks the way a new account takes in set: an idle one, else the
// one with the least debt. It returns the way and the word it holds.
func (l *Limiter) victim(set *[ways]atomic.Uint64, now uint64) (int, uint64) {
	best, bestW, bestD := 0, uint64(0), int64(1<<62)
	for j := range set {
		w := set[j].Load()
		d := diff(w&tatMask, now)
		if d <= 0 || d > l.burst+skew {
			return j, w
		}
		if d < bestD {
			best, bestW, bestD = j, w, d
		}
	}
	return best, bestW
}

// diff returns tat-now as a signed 37-bit number.
func diff(tat, now uint64) int64 {
	return int64((tat-now)<<(64-tatBits)) >> (64 - tatBits)
}

// refresh reads the clock and returns the time, in units, keeping the
// shared time from going backwards.
func (l *Limiter) refresh() uint64 {
	d := l.elapsed()
	if d < 0 {
		d = 0
	}
	// In microseconds, so that the product cannot overflow (292 years at
	// the highest rate), and divided by constants: multiplications.
	t := uint64(d/time.Microsecond) * l.rate / 1e6
	for {
		cur := l.now.Load()
		if t <= cur {
			return cur
		}
		if l.now.CompareAndSwap(cur, t) {
			return t
		}
	}
}

// prefixOf returns the keyed hash of the prefix of an IPv6 client; ok is
// false for exempt clients and invalid addresses.
func (l *Limiter) prefixOf(client netip.Addr) (x uint64, ok bool) {
	switch {
	case client.Is4In6():
		b := client.Unmap().As4()
		a := binary.BigEndian.Uint32(b[:])
		for _, e := range l.exempt4 {
			if a&e.mask == e.addr {
				return 0, false
			}
		}
		return uint64(a&l.v4mask) ^ l.seed[0], true
	case client.Is6():
		client = client.WithZone("") // fe80::1%eth0 is in fe80::/10
		for _, e := range l.exempt6 {
			if e.Contains(client) {
				return 0, false
			}
		}
		b := client.As16()
		hi := binary.BigEndian.Uint64(b[:8]) & l.v6hi
		lo := binary.BigEndian.Uint64(b[8:]) & l.v6lo
		return mix(hi^l.seed[1], lo^l.seed[2]), true
	}
	return 0, false
}

// mix folds the 128-bit product of a and b (wyhash's mum): with secret
// seeds xored into its inputs, an attacker cannot aim at one set.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// Entries returns the number of accounts in debt: charged within the last
// second or so. It scans the table (for metrics, not the hot path).
func (l *Limiter) Entries() int {
	now := l.refresh()
	n := 0
	for i := range l.sets {
		for j := range l.sets[i] {
			w := l.sets[i][j].Load()
			if d := diff(w&tatMask, now); d > 0 && d <= l.burst+skew {
				n++
			}
		}
	}
	return n
}
