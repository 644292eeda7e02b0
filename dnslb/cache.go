package dnslb

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync/atomic"

	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/dnslb/rrl"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
)

// DefaultCacheSize is the number of packed responses kept.
const DefaultCacheSize = 1 << 16

// cacheShards spreads the LRU's lock over several independent caches.
const cacheShards = 16

// maxCachedSlots bounds the rotation slots of a pool answer that are cached
// (a weighted pool has as many slots as the sum of its weights).
const maxCachedSlots = 1024

// respCache holds packed responses keyed by what determines them: the
// lower-cased query name, type, class, EDNS presence, DO bit and the UDP
// size limit; each entry records the view generation it was built from, so
// a reload invalidates without walking the cache. Pool answers keep one
// packed response per rotation slot of the pool's plan; a health or
// override change makes a new plan, which invalidates them.
type respCache struct {
	seed   maphash.Seed
	shards [cacheShards]*lru.Cache[uint64, *cacheEntry]
	// front is a direct-mapped table in front of the LRU, read without a
	// lock: a hit there skips the LRU's mutex and list update. It holds
	// the same entries, checked the same way (key, generation, plan), so
	// it can never answer differently from the LRU; an entry it keeps
	// after the LRU dropped it is only memory, bounded by its size.
	front     []atomic.Pointer[cacheEntry]
	frontMask uint64
	hits      [counterStripes]paddedCounter
	misses    atomic.Uint64
}

type cacheEntry struct {
	hash    uint64
	key     string // the full key, against hash collisions
	viewGen uint64
	qtype   uint16
	rcode   int
	rrl     rrl.Class // what rate limiting charges the reply to
	counter *ZoneCounters
	static  []byte // the reply, when no pool is involved
	// For pool answers: the pool, the plan the slots belong to, and one
	// packed reply per slot, filled as slots are first asked for.
	pool  *pool.Pool
	plan  *pool.Plan
	slots []atomic.Pointer[[]byte]
}

// maxFront bounds the lock-free front table (a power of two): 512 KiB of
// pointers. The table has a slot per cache entry up to that, so that the
// working set of a busy zone (the benchmark mix has 10,000 distinct
// questions) mostly hits it: a smaller table thrashed, and every miss
// there takes the LRU's lock.
const maxFront = 1 << 16

func newRespCache(size int) *respCache {
	c := &respCache{seed: maphash.MakeSeed()}
	per := max(size/cacheShards, 16)
	for i := range c.shards {
		c.shards[i], _ = lru.New[uint64, *cacheEntry](per)
	}
	n := 16
	for n < maxFront && n*2 <= size {
		n *= 2
	}
	c.front = make([]atomic.Pointer[cacheEntry], n)
	c.frontMask = uint64(n - 1)
	return c
}

func (c *respCache) shard(h uint64) *lru.Cache[uint64, *cacheEntry] {
	return c.shards[h%cacheShards]
}

// fastQuery is a query simple enough to be answered from the cache: one
// IN question without compression, no records but at most one plain OPT.
type fastQuery struct {
	key     [maxKey]byte
	keyLen  int
	nameLen int // wire length of the question name
	qtype   uint16
	hash    uint64
	keepRD  byte
	// Rate limiting: the limiter a hit is checked against (nil: none),
	// and what a hit was charged to and what to do with it.
	limiter *rrl.Limiter
	rrl     rrl.Class
	act     rrl.Action
}

const maxKey = 255 + 2 + 2 + 1 + 2

// parseFast reads a query for the cache path; ok is false for anything
// unusual, which then takes the full path.
func parseFast(msg []byte, tcp bool, ourSize uint16, q *fastQuery) bool {
	if len(msg) < headerLen+5 {
		return false
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&(flagQR|0x7800|0xF) != 0 || // response, opcode, rcode
		binary.BigEndian.Uint16(msg[4:]) != 1 || binary.BigEndian.Uint16(msg[6:]) != 0 ||
		binary.BigEndian.Uint16(msg[8:]) != 0 {
		return false
	}
	arcount := binary.BigEndian.Uint16(msg[10:])
	if arcount > 1 {
		return false
	}
	off := headerLen
	k := 0
	for {
		if off >= len(msg) {
			return false
		}
		l := int(msg[off])
		if l&0xC0 != 0 || off+1+l > len(msg) || k+1+l > 255 {
			return false
		}
		q.key[k] = byte(l)
		k++
		off++
		for _, b := range msg[off : off+l] {
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			q.key[k] = b
			k++
		}
		off += l
		if l == 0 {
			break
		}
	}
	if off+4 > len(msg) {
		return false
	}
	q.nameLen = k
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	if binary.BigEndian.Uint16(msg[off+2:]) != dns.ClassINET {
		return false
	}
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT:
		return false
	}
	copy(q.key[k:], msg[off:off+4])
	k += 4
	off += 4
	var ednsFlags byte
	limit := uint16(dns.MinMsgSize)
	if arcount == 1 {
		// OPT: root owner, type 41, class = size, TTL = ext-rcode,
		// version, flags; no options.
		if off+11 != len(msg) || msg[off] != 0 || binary.BigEndian.Uint16(msg[off+1:]) != dns.TypeOPT ||
			msg[off+6] != 0 || binary.BigEndian.Uint16(msg[off+9:]) != 0 {
			return false
		}
		size := max(binary.BigEndian.Uint16(msg[off+3:]), dns.MinMsgSize)
		limit = min(size, ourSize)
		ednsFlags = 1
		if msg[off+7]&0x80 != 0 {
			ednsFlags |= 2 // DO
		}
	} else if off != len(msg) {
		return false // trailing bytes: let the full path judge
	}
	if tcp {
		limit = dns.MaxMsgSize
		ednsFlags |= 4
	}
	q.key[k] = ednsFlags
	k++
	binary.BigEndian.PutUint16(q.key[k:], limit)
	k += 2
	q.keyLen = k
	q.keepRD = msg[2] & 1
	return true
}

// lookup returns the cached reply for q, copied into out and patched for
// this query, or nil. For a pool entry whose current slot is not packed
// yet it returns the entry, plan and slot so the full path can fill it.
func (a *Authority) cached(q *fastQuery, msg []byte, client netip.Addr, view *View, out []byte) (resp []byte, fill *slotFill) {
	c := a.cache
	q.hash = maphash.Bytes(c.seed, q.key[:q.keyLen])
	fp := &c.front[q.hash&c.frontMask]
	e := fp.Load()
	if e == nil || e.hash != q.hash || e.viewGen != view.gen || e.key != string(q.key[:q.keyLen]) {
		var ok bool
		e, ok = c.shard(q.hash).Get(q.hash)
		if !ok || e.viewGen != view.gen || e.key != string(q.key[:q.keyLen]) {
			return nil, nil
		}
		fp.Store(e)
	}
	b := e.static
	if e.pool != nil {
		h := a.judgement()
		pl := e.pool.Plan(e.qtype, h, h.gen)
		if pl != e.plan {
			return nil, nil // health or overrides changed: rebuild
		}
		slot := pl.NextSlot(client)
		p := e.slots[slot].Load()
		if p == nil {
			return nil, &slotFill{entry: e, slot: slot}
		}
		pl.Lead(slot, stripeOf(binary.BigEndian.Uint16(msg)))
		b = *p
	}
	if q.limiter != nil {
		// Before the copy: the limiter's compare-and-swap would wait for
		// the copy's stores to drain. A drop copies nothing, but counts.
		q.rrl, q.act = e.rrl, q.limiter.Check(client, e.rrl)
		if q.act == rrl.Drop {
			stripe := stripeOf(binary.BigEndian.Uint16(msg))
			e.counter.Count(stripe, q.qtype, e.rcode)
			c.hits[stripe].Add(1)
			return nil, nil
		}
	}
	out = append(out[:0], b...)
	out[0], out[1] = msg[0], msg[1]
	out[2] = out[2]&^1 | q.keepRD
	copy(out[headerLen:], msg[headerLen:headerLen+q.nameLen]) // the client's letter case
	stripe := stripeOf(binary.BigEndian.Uint16(msg))
	e.counter.Count(stripe, q.qtype, e.rcode)
	c.hits[stripe].Add(1)
	return out, nil
}

// slotFill asks the full path to answer with a given pool slot and store
// the packed reply in the entry.
type slotFill struct {
	entry *cacheEntry
	slot  int
}

// store remembers a reply built by the full path.
func (a *Authority) store(q *fastQuery, view *View, r *reply, packed []byte, fill *slotFill) {
	c := a.cache
	b := append([]byte(nil), packed...)
	if fill != nil {
		fill.entry.slots[fill.slot].Store(&b)
		return
	}
	e := &cacheEntry{
		hash:    q.hash,
		key:     string(q.key[:q.keyLen]),
		viewGen: view.gen,
		qtype:   q.qtype,
		rcode:   r.m.Rcode,
		rrl:     r.rrl,
		counter: r.counter,
	}
	if r.plan != nil {
		n := r.plan.Slots()
		if n == 0 || n > maxCachedSlots {
			return // per-client (sticky) or too many slots
		}
		e.pool, e.plan = r.pool, r.plan
		e.slots = make([]atomic.Pointer[[]byte], n)
		e.slots[r.slot].Store(&b)
	} else {
		e.static = b
	}
	c.shard(q.hash).Add(q.hash, e)
	c.front[q.hash&c.frontMask].Store(e)
}
