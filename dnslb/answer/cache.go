package answer

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/dnslb/rrl"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/miekg/dns"
)

// DefaultCacheBytes bounds the response cache unless cache.max_bytes
// says otherwise: 100,000 to 170,000 answers (an entry takes 380 bytes for
// an NXDOMAIN, 600 for a pool name with three answers packed); the old
// entry-count default, 65,536, at 1 KiB each.
const DefaultCacheBytes = 64 << 20

// cacheShards spreads the LRU's lock over several independent caches,
// each with an equal share of the byte budget.
const cacheShards = 16

// maxCachedAnswers bounds the distinct answers of a pool entry that are
// cached (a pool has as many as eligible members; see pool.Plan.Answers).
const maxCachedAnswers = 1024

// respCache holds packed responses keyed by what determines them: the
// lower-cased query name, type, class, EDNS presence, DO bit, COOKIE
// presence, the UDP size limit, and the family and address length of a
// CLIENT-SUBNET option (its data is patched per query, as the COOKIE's); each entry records the view generation
// it was built from, so a reload invalidates without walking the cache.
// Pool answers keep one packed response per distinct answer of the pool's
// plan (not per rotation slot: a weighted pool has a slot per unit of
// weight); a health or override change makes a new plan, which
// invalidates them. Sticky answers are entries of their own keyed, after
// the name's key, by the client subnet the plan answers by (the ECS
// subnet truncated to the pool's prefix, or the resolver's), so ECS
// traffic is answered from the cache within the same byte bound.
//
// Memory is bounded in bytes: every entry is accounted at what it holds
// (the entry, its key, its packed replies, the LRU's and the map's share),
// and each shard evicts its oldest entries while over its share of the
// budget. The front table holds only entries that are in an LRU.
type respCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
	// front is a direct-mapped table in front of the LRU, read without a
	// lock: a hit there skips the LRU's mutex and list update. It holds
	// the same entries, checked the same way (key, generation, plan), so
	// it can never answer differently from the LRU. Entries are put in it
	// and taken out of it (on eviction) under their shard's lock, so it
	// never keeps one that the LRU dropped.
	front     []atomic.Pointer[cacheEntry]
	frontMask uint64
	// shardBudget is each shard's share of the bound, less the front
	// table; maxEntry bounds one entry (a quarter of a shard).
	shardBudget int64
	maxEntry    int64
	hits        [counterStripes]paddedCounter
	misses      [counterStripes]paddedCounter
}

type cacheShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[uint64, *cacheEntry]
	// bytes and entries are written under mu, read by metrics without it.
	bytes   atomic.Int64
	entries atomic.Int64
	_       [64]byte // keep shards' locks off each other's cache lines
}

type cacheEntry struct {
	hash    uint64
	key     string // the full key, against hash collisions
	viewGen uint64
	qtype   uint16
	rcode   int
	rrl     rrl.Class // what rate limiting charges the reply to
	// cookieOff is where the reply's COOKIE data (replyCookieLen bytes)
	// starts in every packed reply of the entry, patched on each hit;
	// 0: the replies carry no COOKIE.
	cookieOff int
	// ecsOff is where the reply's CLIENT-SUBNET data starts, 0: none. A
	// hit patches FAMILY, SOURCE PREFIX-LENGTH and ADDRESS with the
	// query's (the key fixes their length) and keeps the SCOPE.
	ecsOff  int
	counter *ZoneCounters
	static  []byte // the reply, when no pool is involved
	// For pool answers: the pool, the plan the answers belong to, and one
	// packed reply per distinct answer of the plan, filled as they are
	// first asked for.
	pool    *pool.Pool
	plan    *pool.Plan
	answers []atomic.Pointer[[]byte]
	// sticky marks the entry of a name answered by a sticky plan: it
	// holds no reply, only the pool; the replies are entries of their
	// own, one per client subnet (see subnetKey), with static, pool, plan
	// and leads (the lead counter their answer counts for) set.
	sticky bool
	leads  *pool.LeadCounter
	// size is what the entry is accounted at; it grows as answers are
	// filled. Written under its shard's lock.
	size int64
}

// entryOverhead is what an entry costs besides its key and replies: the
// cacheEntry (176 bytes, its size class), the LRU's list element (80) and
// the map's slot with its share of empty slots (about 32).
const entryOverhead = 288

// maxFront bounds the lock-free front table (a power of two): 512 KiB of
// pointers. The table has a slot per 1 KiB of the budget up to that, so
// that the working set of a busy zone (the benchmark mix has 10,000
// distinct questions) mostly hits it: a smaller table thrashed, and every
// miss there takes the LRU's lock.
const maxFront = 1 << 16

// newRespCache returns a cache bounded to maxBytes, front table included.
func newRespCache(maxBytes int64) *respCache {
	c := &respCache{seed: maphash.MakeSeed()}
	n := 16
	for n < maxFront && int64(n)*2*1024 <= maxBytes {
		n *= 2
	}
	c.front = make([]atomic.Pointer[cacheEntry], n)
	c.frontMask = uint64(n - 1)
	c.shardBudget = max((maxBytes-int64(n)*8)/cacheShards, 1)
	c.maxEntry = c.shardBudget / 4
	for i := range c.shards {
		s := &c.shards[i]
		// The LRU's own count limit is never reached: the byte budget
		// evicts first.
		s.lru, _ = simplelru.NewLRU[uint64, *cacheEntry](math.MaxInt, func(h uint64, e *cacheEntry) {
			s.bytes.Add(-e.size)
			s.entries.Add(-1)
			c.front[h&c.frontMask].CompareAndSwap(e, nil)
		})
	}
	return c
}

func (c *respCache) shard(h uint64) *cacheShard {
	return &c.shards[h%cacheShards]
}

// miss counts a query the cache did not answer, in the stripe of its ID.
func (c *respCache) miss(msg []byte) {
	stripe := 0
	if len(msg) >= 2 {
		stripe = stripeOf(binary.BigEndian.Uint16(msg))
	}
	c.misses[stripe].Add(1)
}

// Bytes is the memory the cache is accounted at: every entry, and the
// front table.
func (c *respCache) Bytes() int64 {
	n := int64(len(c.front)) * 8
	for i := range c.shards {
		n += c.shards[i].bytes.Load()
	}
	return n
}

// Entries is the number of entries cached.
func (c *respCache) Entries() int64 {
	var n int64
	for i := range c.shards {
		n += c.shards[i].entries.Load()
	}
	return n
}

// evictLocked drops the shard's oldest entries while it is over budget.
func (c *respCache) evictLocked(s *cacheShard) {
	for s.bytes.Load() > c.shardBudget {
		if _, _, ok := s.lru.RemoveOldest(); !ok {
			return
		}
	}
}

// allocSize is the memory an allocation of n bytes takes: Go's size class
// for n up to 32 KiB (runtime/sizeclasses.go), whole pages beyond.
func allocSize(n int) int64 {
	classes := [...]uint16{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
		256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536,
		1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
		10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}
	switch {
	case n <= 0:
		return 0
	case n > 32768:
		return int64((n + 8191) &^ 8191)
	}
	i := sort.Search(len(classes), func(i int) bool { return int(classes[i]) >= n })
	return int64(classes[i])
}

// replySize is what one cached answer of n bytes costs in a pool entry:
// the bytes and the slice header the answer's pointer points to.
func replySize(n int) int64 { return allocSize(n) + 24 }

// fastQuery is a query simple enough to be answered from the cache: one
// IN question without compression, no records but at most one OPT, whose
// options other than COOKIE and CLIENT-SUBNET do not change the answer.
type fastQuery struct {
	key    [maxKey]byte
	keyLen int
	// baseLen is the length of the name's key; a sticky answer's key
	// has the client subnet after it (keyLen then covers it too).
	baseLen int
	nameLen int // wire length of the question name
	qtype   uint16
	hash    uint64
	keepRD  byte
	// cookieOff and cookieLen locate the query's COOKIE option data
	// (well formed: see cookieLenOK); cookieLen is 0 without one, or
	// when cookies are off.
	cookieOff, cookieLen int
	// ecsOff and ecsLen locate the query's CLIENT-SUBNET option data,
	// well formed (see findECS) as ecs says; ecsLen is 0 without one.
	ecsOff, ecsLen int
	ecs            ecsOpt
	// cookie is what Cookies.Check found, and replyCookie the COOKIE to
	// answer with. validCookie: the client proved its address (rate
	// limiting exempts it).
	cookie      CookieStatus
	validCookie bool
	replyCookie [replyCookieLen]byte
	// Rate limiting: the limiter a hit is checked against (nil: none),
	// and what a hit was charged to and what to do with it.
	limiter *rrl.Limiter
	rrl     rrl.Class
	act     rrl.Action
}

// maxKey: name, type, class, flags, limit, ECS shape, and a sticky
// answer's subnet (see subnetKey).
const maxKey = 255 + 2 + 2 + 1 + 2 + 1 + subnetKeyLen

// subnetKeyLen is the length of the subnet part of a sticky key: its
// origin and family, its length and 16 address bytes.
const subnetKeyLen = 1 + 1 + 16

// parseFast reads a query for the cache path; ok is false for anything
// unusual, which then takes the full path. cookies says whether COOKIE
// options are answered (else they are ignored like any unknown option).
func parseFast(msg []byte, tcp bool, ourSize uint16, cookies bool, q *fastQuery) bool {
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
	var ednsFlags, ecsShape byte
	limit := uint16(dns.MinMsgSize)
	if arcount == 1 {
		// OPT: root owner, type 41, class = size, TTL = ext-rcode,
		// version, flags; then its options, which must fill the rest.
		if off+11 > len(msg) || msg[off] != 0 || binary.BigEndian.Uint16(msg[off+1:]) != dns.TypeOPT ||
			msg[off+6] != 0 || off+11+int(binary.BigEndian.Uint16(msg[off+9:])) != len(msg) {
			return false
		}
		size := max(binary.BigEndian.Uint16(msg[off+3:]), dns.MinMsgSize)
		limit = min(size, ourSize)
		ednsFlags = 1
		if msg[off+7]&0x80 != 0 {
			ednsFlags |= 2 // DO
		}
		if msg[off+7]&0x40 != 0 {
			ednsFlags |= 16 // CO: a signed zone's NXDOMAIN keeps its rcode (RFC 9824)
		}
		if off+11 < len(msg) {
			at, n, ok := findCookie(msg[off+11:])
			if !ok {
				return false // the full path answers FORMERR
			}
			if at >= 0 && cookies {
				q.cookieOff, q.cookieLen = off+11+at, n
				ednsFlags |= 8
			}
			at, n, ok = findECS(msg[off+11:], &q.ecs)
			if !ok {
				return false // the full path answers FORMERR
			}
			if at >= 0 {
				q.ecsOff, q.ecsLen = off+11+at, n
				// The reply's option has the family and length of the
				// query's: part of the key, so a hit patches in place.
				ecsShape = byte(q.ecs.family)<<5 | byte(q.ecs.addrLen())
			}
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
	q.key[k] = ecsShape
	k++
	q.keyLen, q.baseLen = k, k
	q.keepRD = msg[2] & 1
	return true
}

// cached returns the cached reply for q, copied into out and patched for
// this query (ID, RD, the question's letter case, the COOKIE, the
// CLIENT-SUBNET), or nil. For a pool entry whose current answer is not
// packed yet it returns the entry and slot so the full path can fill it.
func (a *Authority) cached(q *fastQuery, msg []byte, client netip.Addr, view *View, out []byte) (resp []byte, fill *slotFill) {
	c := a.cache
	q.hash = maphash.Bytes(c.seed, q.key[:q.keyLen])
	e := c.lookup(q, view)
	if e == nil {
		return nil, nil
	}
	b := e.static
	switch {
	case e.sticky:
		// The answer depends on the client's subnet: its own entry.
		h := a.judgement(view)
		pl := e.pool.Plan(e.qtype, h, h.gen)
		if !pl.Sticky() {
			return nil, nil // all down: the name's answer is rebuilt
		}
		var ecs netip.Prefix
		if q.ecsLen > 0 {
			ecs = q.ecs.prefix()
		}
		subnet, fromECS := pl.Subnet(client, ecs)
		subnetKey(q, subnet, fromECS)
		q.hash = maphash.Bytes(c.seed, q.key[:q.keyLen])
		if e = c.lookup(q, view); e == nil || e.plan != pl {
			return nil, nil
		}
		b = e.static
		if e.leads != nil {
			e.leads.Add(stripeOf(binary.BigEndian.Uint16(msg)))
		}
	case e.pool != nil:
		h := a.judgement(view)
		pl := e.pool.Plan(e.qtype, h, h.gen)
		if pl != e.plan {
			return nil, nil // health or overrides changed: rebuild
		}
		slot := pl.NextSlot(client)
		p := e.answers[pl.Answer(slot)].Load()
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
	if e.cookieOff > 0 {
		copy(out[e.cookieOff:], q.replyCookie[:])
	}
	if e.ecsOff > 0 {
		// FAMILY and SOURCE PREFIX-LENGTH, then the ADDRESS, as received;
		// the SCOPE stays the entry's.
		copy(out[e.ecsOff:e.ecsOff+3], msg[q.ecsOff:])
		copy(out[e.ecsOff+4:e.ecsOff+q.ecsLen], msg[q.ecsOff+4:q.ecsOff+q.ecsLen])
	}
	stripe := stripeOf(binary.BigEndian.Uint16(msg))
	e.counter.Count(stripe, q.qtype, e.rcode)
	c.hits[stripe].Add(1)
	return out, nil
}

// lookup returns the entry of q's key and hash for view, or nil: from the
// front table, or from the LRU, which then puts it in the front table.
func (c *respCache) lookup(q *fastQuery, view *View) *cacheEntry {
	fp := &c.front[q.hash&c.frontMask]
	e := fp.Load()
	if e != nil && e.hash == q.hash && e.viewGen == view.gen && e.key == string(q.key[:q.keyLen]) {
		return e
	}
	s := c.shard(q.hash)
	s.mu.Lock()
	e, _ = s.lru.Get(q.hash)
	if e != nil && e.viewGen == view.gen && e.key == string(q.key[:q.keyLen]) {
		fp.Store(e) // under the lock: an eviction cannot slip in between
	} else {
		e = nil
	}
	s.mu.Unlock()
	return e
}

// subnetKey makes q's key that of a sticky answer for subnet: the name's
// key, then the subnet's origin (ECS or the resolver's address: the
// replies differ in their SCOPE) and family, its length and its address.
func subnetKey(q *fastQuery, subnet netip.Prefix, fromECS bool) {
	k := q.baseLen
	origin := byte(1)
	if fromECS {
		origin = 2
	}
	if subnet.Addr().Is4() {
		origin |= 4
	}
	q.key[k], q.key[k+1] = origin, byte(subnet.Bits())
	a := subnet.Addr().As16()
	copy(q.key[k+2:], a[:])
	q.keyLen = k + subnetKeyLen
}

// slotFill asks the full path to answer with a given pool slot and store
// the packed reply in the entry.
type slotFill struct {
	entry *cacheEntry
	slot  int
}

// store remembers a reply built by the full path. cookie is the COOKIE
// data the reply was packed with (nil: none).
func (a *Authority) store(q *fastQuery, view *View, r *reply, packed []byte, fill *slotFill) {
	c := a.cache
	cookieOff, tail := 0, 0
	if r.cookie != nil && q.cookieLen == 0 {
		return // cookies were turned on after the key was made
	}
	if q.cookieLen > 0 {
		// The COOKIE is the OPT's last option and the OPT the last
		// record: its data ends the reply.
		cookieOff = len(packed) - replyCookieLen
		if r.cookie == nil || cookieOff <= headerLen || string(packed[cookieOff:]) != string(r.cookie[:]) {
			return // not where hits would patch it: do not cache
		}
		tail = 4 + replyCookieLen
	}
	ecsOff := 0
	if (r.ecs != nil) != (q.ecsLen > 0) {
		return
	}
	if q.ecsLen > 0 {
		// The CLIENT-SUBNET comes just before the COOKIE, or ends the
		// reply.
		ecsOff = len(packed) - tail - q.ecsLen
		if ecsOff-4 <= headerLen || binary.BigEndian.Uint16(packed[ecsOff-4:]) != optECS ||
			int(binary.BigEndian.Uint16(packed[ecsOff-2:])) != q.ecsLen || packed[ecsOff+3] != r.scope {
			return // not where hits would patch it: do not cache
		}
	}
	b := append([]byte(nil), packed...)
	if fill != nil {
		e := fill.entry
		if e.cookieOff != cookieOff || e.ecsOff != ecsOff {
			return
		}
		s := c.shard(e.hash)
		s.mu.Lock()
		defer s.mu.Unlock()
		add := replySize(len(b))
		cur, ok := s.lru.Peek(e.hash)
		if !ok || cur != e || e.size+add > c.maxEntry {
			return // evicted or replaced meanwhile, or too big to keep more
		}
		if e.answers[e.plan.Answer(fill.slot)].CompareAndSwap(nil, &b) {
			e.size += add
			s.bytes.Add(add)
			c.evictLocked(s)
		}
		return
	}
	// The name's own key: a sticky miss came with the subnet's.
	q.keyLen = q.baseLen
	q.hash = maphash.Bytes(c.seed, q.key[:q.keyLen])
	e := &cacheEntry{
		hash:      q.hash,
		key:       string(q.key[:q.keyLen]),
		viewGen:   view.gen,
		qtype:     q.qtype,
		rcode:     r.m.Rcode,
		cookieOff: cookieOff,
		ecsOff:    ecsOff,
		rrl:       r.rrl,
		counter:   r.counter,
	}
	e.size = entryOverhead + allocSize(len(e.key))
	if r.plan != nil && r.plan.Sticky() {
		// A marker for the name, unless it has one already, and the
		// answer under the subnet's key.
		if !c.hasMarker(q, view, r.pool) {
			c.insert(&cacheEntry{hash: e.hash, key: e.key, viewGen: view.gen, qtype: q.qtype, sticky: true, pool: r.pool, size: e.size})
		}
		subnetKey(q, r.subnet, r.fromECS)
		q.hash = maphash.Bytes(c.seed, q.key[:q.keyLen])
		e.hash, e.key = q.hash, string(q.key[:q.keyLen])
		e.pool, e.plan, e.leads = r.pool, r.plan, r.plan.Leads(r.slot, r.subnet)
		e.static = b
		e.size = entryOverhead + allocSize(len(e.key)) + allocSize(len(b))
	} else if r.plan != nil {
		n := r.plan.Answers()
		if n == 0 || n > maxCachedAnswers {
			return // too many answers
		}
		e.pool, e.plan = r.pool, r.plan
		e.answers = make([]atomic.Pointer[[]byte], n)
		e.answers[r.plan.Answer(r.slot)].Store(&b)
		e.size += allocSize(8*n) + replySize(len(b))
	} else {
		e.static = b
		e.size += allocSize(len(b))
	}
	c.insert(e)
}

// hasMarker reports whether q's key holds the sticky marker of p for view.
func (c *respCache) hasMarker(q *fastQuery, view *View, p *pool.Pool) bool {
	s := c.shard(q.hash)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lru.Peek(q.hash)
	return ok && e.sticky && e.pool == p && e.viewGen == view.gen && e.key == string(q.key[:q.keyLen])
}

// insert adds e to the cache, in place of any entry with its hash, and
// evicts the oldest entries of its shard while it is over budget.
func (c *respCache) insert(e *cacheEntry) {
	if e.size > c.maxEntry {
		return
	}
	s := c.shard(e.hash)
	s.mu.Lock()
	s.lru.Remove(e.hash) // an entry of an older generation, or another key with this hash
	s.lru.Add(e.hash, e)
	s.bytes.Add(e.size)
	s.entries.Add(1)
	c.evictLocked(s)
	if cur, ok := s.lru.Peek(e.hash); ok && cur == e {
		c.front[e.hash&c.frontMask].Store(e)
	}
	s.mu.Unlock()
}
