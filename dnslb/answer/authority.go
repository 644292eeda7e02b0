package answer

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/dnslb/dnsserver"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/dnslb/rrl"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// Request is the transport's: the answer path and its tests name it
// without the package.
type Request = dnsserver.Request

// DefaultUDPSize is the EDNS UDP payload size dnslb advertises and the
// largest UDP reply it sends (the DNS flag day 2020 value).
const DefaultUDPSize = 1232

// maxChase bounds CNAME chasing inside our zones.
const maxChase = 12

// HealthSource gives the current health snapshot; *healthcheck.Scheduler
// is one.
type HealthSource interface {
	Snapshot() *healthcheck.Snapshot
}

// LoadSource gives the current load snapshot (the members' agent
// reports); *healthcheck.LoadWatcher is one.
type LoadSource interface {
	Snapshot() *healthcheck.LoadSnapshot
}

// noHealth reports every target up.
type noHealth struct{}

func (noHealth) Snapshot() *healthcheck.Snapshot { return nil }

// Authority answers queries authoritatively from the current View.
type Authority struct {
	// served is what queries are answered from: zones, pools, counters
	// and overrides of one generation, one value, loaded once per query.
	served   atomic.Pointer[View]
	health   HealthSource
	judge    atomic.Pointer[memberHealth]
	loads    LoadSource // nil: no load feedback
	judgeSeq atomic.Uint64
	// rampStep counts slow start steps (NextRampStep): each is a new
	// judgement, so that plans follow ramping members' weights.
	rampStep atomic.Uint64
	metrics  Observer
	cache    *respCache
	cookies  atomic.Pointer[Cookies] // nil: COOKIE options are ignored
	udpSize  uint16
	now      func() time.Time // the clock of TSIG
	// rrl limits UDP responses; nil: off.
	rrl atomic.Pointer[rrl.Limiter]
	// transfers answers AXFR and IXFR; nil: refused.
	transfers Transfers
	// notifies decides NOTIFY messages; nil: NOTIMP.
	notifies Notifies
}

// NewAuthority returns a handler answering from view. udpSize is the EDNS
// payload size to advertise (0 = DefaultUDPSize); health may be nil (every
// member up).
func NewAuthority(view *View, udpSize uint16, health HealthSource) *Authority {
	if udpSize == 0 {
		udpSize = DefaultUDPSize
	}
	if health == nil {
		health = noHealth{}
	}
	a := &Authority{health: health, udpSize: max(udpSize, dns.MinMsgSize), cache: newRespCache(DefaultCacheBytes), now: time.Now}
	a.Serve(view)
	return a
}

// SetCacheBytes replaces the response cache with one bounded to n bytes;
// n <= 0 disables it. Call before serving.
func (a *Authority) SetCacheBytes(n int64) {
	if n <= 0 {
		a.cache = nil
		return
	}
	a.cache = newRespCache(n)
}

// SetCookies makes the authority answer DNS Cookies with c; nil turns
// them off (COOKIE options are then ignored, as a server without them
// does). Safe while serving.
func (a *Authority) SetCookies(c *Cookies) { a.cookies.Store(c) }

// CacheStats returns the response cache's hits and misses: every query is
// one or the other while the cache is on.
func (a *Authority) CacheStats() (hits, misses uint64) {
	if a.cache == nil {
		return 0, 0
	}
	for i := range a.cache.hits {
		hits += a.cache.hits[i].Load()
		misses += a.cache.misses[i].Load()
	}
	return hits, misses
}

// CacheUse returns the memory the response cache is accounted at and the
// entries it holds.
func (a *Authority) CacheUse() (bytes, entries int64) {
	if a.cache == nil {
		return 0, 0
	}
	return a.cache.Bytes(), a.cache.Entries()
}

// SetRRL swaps in a response rate limiter for UDP replies; nil turns
// rate limiting off. Safe while serving.
func (a *Authority) SetRRL(l *rrl.Limiter) { a.rrl.Store(l) }

// RRL returns the response rate limiter in use, or nil.
func (a *Authority) RRL() *rrl.Limiter { return a.rrl.Load() }

// Observer is told about the messages the answer path does not answer
// normally, for metrics. Its methods are called while answering and must
// be fast and safe for concurrent use.
type Observer interface {
	// Dropped counts a message not answered normally, by reason.
	Dropped(reason string)
	// RRLActed counts a response the rate limiter slipped or dropped.
	RRLActed(act rrl.Action, c rrl.Category)
}

// SetMetrics makes the authority count what it drops into m. Call before
// serving.
func (a *Authority) SetMetrics(m Observer) { a.metrics = m }

// SetLoads makes members' load reports count: an agent's down holds its
// member down like a failed check, drain (or a weight of 0) drains it, and
// its weight is the member's live weight (pool.Loads). Call before
// serving.
func (a *Authority) SetLoads(src LoadSource) { a.loads = src }

// memberHealth is the pool.Health of one health snapshot, one load
// snapshot and one set of overrides. It is cached until any changes, so
// the query path does not allocate one per query.
type memberHealth struct {
	snap *healthcheck.Snapshot
	load *healthcheck.LoadSnapshot // nil: no load feedback
	ov   *Overrides
	ramp uint64 // the Authority's rampStep it was made at
	gen  uint64
}

// agent returns m's load, if its agent reports and the data is fresh.
func (h *memberHealth) agent(m *pool.Member) (healthcheck.Load, bool) {
	if h.load == nil || !m.Agent.IsValid() {
		return healthcheck.Load{}, false
	}
	l, ok := h.load.Get(m.Agent)
	return l, ok && !l.Stale
}

func (h *memberHealth) Eligible(m *pool.Member) bool {
	if h.ov.Has(m.Addr) {
		return false
	}
	if l, ok := h.agent(m); ok && (l.Down() || l.Drained()) {
		return false
	}
	return m.Up(h.snap)
}

func (h *memberHealth) Drained(m *pool.Member) bool {
	if h.ov.Drained(m.Addr) {
		return true
	}
	l, ok := h.agent(m)
	return ok && l.Drained() && !l.Down()
}

func (h *memberHealth) Failing(m *pool.Member) bool {
	if h.ov.Has(m.Addr) {
		return false
	}
	if l, ok := h.agent(m); ok && l.Down() {
		return true
	}
	return !m.Up(h.snap)
}

// LiveWeight implements pool.Loads: the member's configured weight scaled
// by its agent's report.
func (h *memberHealth) LiveWeight(m *pool.Member) (int, bool) {
	l, ok := h.agent(m)
	if !ok {
		return m.Weight, false
	}
	return l.LiveWeight(m.Weight)
}

// judgement returns the pool.Health for the current snapshot and the
// overrides of v, and a generation that changes whenever they do.
func (a *Authority) judgement(v *View) *memberHealth {
	snap := a.health.Snapshot()
	ov := v.Overrides
	var load *healthcheck.LoadSnapshot
	if a.loads != nil {
		load = a.loads.Snapshot()
	}
	ramp := a.rampStep.Load()
	h := a.judge.Load()
	if h != nil && h.snap == snap && h.ov == ov && h.load == load && h.ramp == ramp {
		return h
	}
	// A sequence, not a sum of the sources' generations: three of them
	// would not fit in one number without wrapping into each other.
	// Racing builders take two numbers for equal judgements, which costs
	// one plan rebuild.
	h = &memberHealth{snap: snap, load: load, ov: ov, ramp: ramp, gen: a.judgeSeq.Add(1)}
	a.judge.Store(h) // racing stores hold equal judgements
	return h
}

// NextRampStep starts a new judgement although no source changed, so that
// plans are rebuilt: a pool's slow start ramp (pool.Pool.Ramping) moves
// by steps of plans. Called by the Runtime's ramp timer.
func (a *Authority) NextRampStep() { a.rampStep.Add(1) }

// Health returns the pool.Health members are judged by now (the health
// snapshot and the overrides of the view served), and those overrides:
// one judgement, as the answer path makes it.
func (a *Authority) Health() (pool.Health, *Overrides) {
	h := a.judgement(a.served.Load())
	return h, h.ov
}

// HealthOf returns the pool.Health members of v are judged by: the
// current health snapshot and v's overrides, as the answer path judges
// them while it serves v.
func (a *Authority) HealthOf(v *View) pool.Health { return a.judgement(v) }

// Serve swaps in v, a whole generation (zones, pools, counters and
// overrides), with one store. Queries already being answered finish with
// the view they started with. v must not change afterwards; a view that
// is not a WithOverrides copy of the one served needs a Gen of its own.
func (a *Authority) Serve(v *View) { a.served.Store(v) }

// View returns the view being served.
func (a *Authority) View() *View { return a.served.Load() }

// ServeDNS implements dnsserver.Handler.
func (a *Authority) ServeDNS(req *Request, out []byte) []byte {
	view := a.served.Load()
	if a.cache != nil {
		var fq fastQuery
		cookies := a.cookies.Load()
		if parseFast(req.Wire, req.TCP, a.udpSize, cookies != nil, &fq) {
			if fq.cookieLen > 0 {
				fq.cookie = cookies.Check(req.Wire[fq.cookieOff:fq.cookieOff+fq.cookieLen], req.Remote.Addr(), &fq.replyCookie)
				fq.validCookie = fq.cookie == CookieValid
			}
			fq.limiter = a.udpLimiter(req, fq.validCookie)
			resp, fill := a.cached(&fq, req.Wire, req.Remote.Addr(), view, out)
			if fq.act != rrl.Send {
				return a.limited(fq.act, fq.rrl.Category, resp)
			}
			if resp != nil {
				return resp
			}
			a.cache.miss(req.Wire)
			return a.serveMiss(req, out, view, fq, fill)
		}
		a.cache.miss(req.Wire)
	}
	return a.serveFull(req, out, view, nil, nil)
}

// serveMiss answers a cache miss. fq is a copy, so that only misses put
// the key on the heap.
func (a *Authority) serveMiss(req *Request, out []byte, view *View, fq fastQuery, fill *slotFill) []byte {
	return a.serveFull(req, out, view, &fq, fill)
}

// serveFull parses and answers a query without the cache; fq (with fill,
// for one slot of a pool entry) says what to store in the cache.
func (a *Authority) serveFull(req *Request, out []byte, view *View, fq *fastQuery, fill *slotFill) (resp []byte) {
	msg := req.Wire
	if len(msg) < headerLen {
		a.dropped("short")
		return nil
	}
	var q query
	// Every reply leaves through here, errors too (charged as errors
	// unless the answer path says otherwise).
	defer func() { resp = a.limit(req, q.validCookie, q.rrl, resp) }()
	q.id = binary.BigEndian.Uint16(msg[0:])
	q.flags = binary.BigEndian.Uint16(msg[2:])
	if q.flags&flagQR != 0 {
		a.dropped("response")
		return nil // never answer a response
	}
	if req.TCP && len(msg) == headerLen {
		a.dropped("short")
		return nil // as NSD: a bare header on TCP closes the connection
	}
	q.opcode = int(q.flags>>11) & 0xF
	q.qdcount = binary.BigEndian.Uint16(msg[4:])
	ancount := binary.BigEndian.Uint16(msg[6:])
	nscount := binary.BigEndian.Uint16(msg[8:])
	arcount := binary.BigEndian.Uint16(msg[10:])

	const keepOpRD = 0x7800 | flagRD
	notify := q.opcode == dns.OpcodeNotify && a.notifies != nil
	if q.opcode != dns.OpcodeQuery && !notify {
		a.dropped("opcode")
		return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeNotImplemented)
	}
	if q.flags&0xF != 0 {
		a.dropped("malformed")
		return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
	}
	if !notify && q.qdcount == 0 && ancount == 0 && nscount == 0 && arcount > 0 {
		if resp, ok := a.serveCookieOnly(&q, req, out, view, arcount); ok {
			return resp
		}
	}
	off, err := parseQuestion(msg, &q)
	if err != nil {
		a.dropped("malformed")
		return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
	}
	if q.qdcount != 1 {
		a.dropped("malformed")
		return headerOnly(out, q.id, q.flags, 0, dns.RcodeFormatError)
	}
	switch {
	case notify:
		if nscount != 0 {
			a.dropped("malformed")
			return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
		}
		if off, err = skipRecords(msg, off, ancount); err != nil {
			a.dropped("malformed")
			return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
		}
	case ancount != 0 || nscount > 1 || nscount == 1 && q.qtype != dns.TypeIXFR:
		a.dropped("malformed")
		return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
	}
	if nscount == 1 {
		if off, err = parseIXFRSOA(msg, off, &q); err != nil {
			a.dropped("malformed")
			return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
		}
	}
	if err := parseAdditional(msg, off, arcount, &q); err != nil {
		a.dropped("malformed")
		return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
	}
	if q.tsig != nil {
		// Signed replies are never cached: each has its own time and MAC.
		fq, fill = nil, nil
		signer, code, outcome := verifyTSIG(view.TSIG, msg, &q, a.now())
		switch outcome {
		case tsigFormErr:
			a.dropped("malformed")
			return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
		case tsigUnsigned:
			a.dropped(tsigReason(code))
			return a.tsigError(out, &q, nil, code)
		case tsigSigned:
			a.dropped(tsigReason(code))
			return a.tsigError(out, &q, signer, code)
		}
		q.signer = signer
	}
	if !a.readCookie(&q, req, fq) || !readECS(&q) {
		a.dropped("malformed")
		return headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeFormatError)
	}
	if notify {
		return a.notify(&q, req, out, view)
	}
	return a.answer(&q, req, out, view, fq, fill)
}

// tsigReason is the dropped-queries reason of a TSIG error.
func tsigReason(code uint16) string {
	switch code {
	case dns.RcodeBadKey:
		return "tsig_badkey"
	case dns.RcodeBadSig:
		return "tsig_badsig"
	case dns.RcodeBadTime:
		return "tsig_badtime"
	}
	return "tsig_badtrunc"
}

func (a *Authority) dropped(reason string) {
	if a.metrics != nil {
		a.metrics.Dropped(reason)
	}
}

// reply is an answer being assembled.
type reply struct {
	m      dns.Msg
	opt    *dns.OPT
	cookie *[replyCookieLen]byte // the COOKIE to answer with; nil: none
	// ecs is the query's CLIENT-SUBNET, echoed (nil: none), with scope,
	// the prefix the answer depends on: the sticky subnet's length when
	// it is the ECS subnet, else 0.
	ecs     *ecsOpt
	scope   uint8
	counter *ZoneCounters
	// The pool answered and the plan and slot used, for the cache.
	pool *pool.Pool
	plan *pool.Plan
	slot int
	// subnet is what a sticky plan answered by (see pool.Plan.Subnet);
	// fromECS: the query's CLIENT-SUBNET.
	subnet  netip.Prefix
	fromECS bool
	// Cache bookkeeping: the query's cache key (nil: not cacheable), the
	// pool slot to fill, and the view answered from.
	fast *fastQuery
	fill *slotFill
	view *View
	// rrl is what rate limiting charges the reply to (zero: an error
	// without a zone).
	rrl rrl.Class
}

func (a *Authority) newReply(q *query, withQuestion bool) *reply {
	r := &reply{}
	r.m.Id = q.id
	r.m.Response = true
	r.m.Opcode = dns.OpcodeQuery
	r.m.RecursionDesired = q.rd()
	r.m.Compress = true
	if withQuestion {
		// Packed lower-case so that owner names compress against it; pack
		// then writes the question back with the client's letter case, so
		// owners that point at it come out in that case too, as with NSD.
		r.m.Question = []dns.Question{{Name: strings.ToLower(q.name), Qtype: q.qtype, Qclass: q.qclass}}
	}
	if q.edns {
		r.opt = &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		r.opt.SetUDPSize(a.udpSize)
		if q.do && q.version == 0 {
			r.opt.SetDo()
		}
		if q.cookie != CookieNone {
			r.cookie = &q.replyCookie
		}
		if q.ecs {
			r.ecs = &q.ecsOpt
		}
	}
	return r
}

// ede adds an Extended DNS Error (RFC 8914) when the client speaks EDNS.
func (r *reply) ede(code uint16) {
	if r.opt != nil {
		r.opt.Option = append(r.opt.Option, &dns.EDNS0_EDE{InfoCode: code})
	}
}

func (a *Authority) answer(q *query, req *Request, out []byte, view *View, fq *fastQuery, fill *slotFill) []byte {
	if q.edns && q.version > 0 {
		r := a.newReply(q, true)
		r.counter = view.NoZone
		r.m.Rcode = dns.RcodeBadVers
		return a.pack(r, q, req, out)
	}
	switch q.qclass {
	case dns.ClassINET, dns.ClassANY:
	case dns.ClassCHAOS:
		// NSD answers version.bind and friends; dnslb tells no versions.
		r := a.newReply(q, true)
		r.counter = view.NoZone
		r.m.Rcode = dns.RcodeRefused
		r.ede(dns.ExtendedErrorCodeNotSupported)
		return a.pack(r, q, req, out)
	default:
		r := a.newReply(q, false)
		r.counter = view.NoZone
		r.m.Rcode = dns.RcodeRefused
		r.ede(dns.ExtendedErrorCodeNotSupported)
		return a.pack(r, q, req, out)
	}
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		if resp, ok := a.transfer(q, req, out, view); ok {
			return resp
		}
		// Without transfers: answer as NSD does without provide-xfr.
		r := a.newReply(q, true)
		r.counter = view.NoZone
		r.m.Rcode = dns.RcodeRefused
		if q.qtype == dns.TypeAXFR && !req.TCP {
			r.m.Rcode = dns.RcodeNotImplemented
		}
		return a.pack(r, q, req, out)
	}

	qname := zones.CanonicalName(q.name)
	zone := zoneFor(view.Zones, qname, q.qtype)
	r := a.newReply(q, true)
	r.counter = view.NoZone
	r.fast, r.fill, r.view = fq, fill, view
	if zone != nil && view.Counters != nil {
		r.counter = view.Counters[zone]
	}
	if view.InUnavailable(qname, zone) {
		// A zone pulled from a primary that expired, or was never
		// transferred: authoritative for it, with nothing to say.
		r.m.Rcode = dns.RcodeServerFailure
		r.ede(dns.ExtendedErrorCodeNotReady)
		r.fast, r.fill = nil, nil
		return a.pack(r, q, req, out)
	}
	if zone == nil {
		r.m.Rcode = dns.RcodeRefused
		r.ede(dns.ExtendedErrorCodeNotAuthoritative)
		return a.pack(r, q, req, out)
	}
	if s := view.SignerOf(zone); s != nil && qname == zone.Origin && isKeyType(q.qtype) {
		r.rrl = rrl.NewClass(rrl.Answer, qname)
		a.answerKeys(r, q, zone, s)
	} else {
		a.resolve(r, q, req, view, zone, qname)
	}
	if q.do && len(view.Signers) > 0 {
		a.signReply(r, q, view)
	}
	return a.pack(r, q, req, out)
}

// resolve fills the reply for qname in zone, following CNAMEs through every
// zone in set.
func (a *Authority) resolve(r *reply, q *query, req *Request, view *View, zone *zones.Zone, qname string) {
	set := view.Zones
	classAny := q.qclass == dns.ClassANY
	r.m.Authoritative = !classAny
	visited := []string{qname}
	cur := qname
	// RRL charges an answer to the query name, unless a wildcard made it
	// (on the way through a CNAME chain too): random names under the
	// wildcard then share the wildcard's account.
	wildcard := ""
	charge := func(c rrl.Category, name string) {
		if wildcard != "" && (c == rrl.Answer || c == rrl.NoData) {
			c, name = rrl.Wildcard, wildcard
		}
		r.rrl = rrl.NewClass(c, name)
	}
	for hop := 0; ; hop++ {
		res := zone.Lookup(cur, q.qtype)
		if res.Wildcard && wildcard == "" {
			wildcard = res.Owner
		}
		if q.qtype == dns.TypeDS && zone.Origin != cur && (res.Kind == zones.NXDomain || res.Wildcard) && set.Zone(cur) != nil {
			// The parent answers for the apex of a child served here that
			// it does not delegate: the name exists, as the child's apex,
			// so NODATA, as NSD answers (and no wildcard stands in for it).
			res = zones.Result{Kind: zones.NoData, Owner: cur}
		}
		switch res.Kind {
		case zones.Success:
			charge(rrl.Answer, qname)
			if p := view.Pools[res.Owner]; p != nil && !res.Wildcard && (q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA) {
				var pl *pool.Plan
				slot := 0
				if r.fill != nil && r.fill.entry.pool == p {
					pl, slot = r.fill.entry.plan, r.fill.slot
				} else {
					h := a.judgement(view)
					pl = p.Plan(q.qtype, h, h.gen)
					slot = pl.NextSlot(req.Remote.Addr())
				}
				r.pool, r.plan, r.slot = p, pl, slot
				if pl.Empty() {
					// when_all_down: empty. NODATA that resolvers cache no
					// longer than the plan's TTL (degraded: it is the
					// fallback), so they ask again soon.
					charge(rrl.NoData, qname)
					soa := negativeSOA(zone)
					soa.Header().Ttl = min(soa.Header().Ttl, pl.TTL())
					r.m.Ns = append(r.m.Ns, soa)
					return
				}
				var ecs netip.Prefix
				if q.ecs {
					ecs = q.ecsOpt.prefix()
				}
				subnet, fromECS := pl.Subnet(req.Remote.Addr(), ecs)
				r.subnet, r.fromECS = subnet, fromECS
				if fromECS {
					r.scope = uint8(subnet.Bits()) // never longer than the source prefix
				}
				r.m.Answer = pl.RecordsFor(r.m.Answer, slot, subnet, stripeOf(q.id))
				if !classAny {
					a.addAuthority(r, zone, r.m.Answer)
				}
				return
			}
			r.m.Answer = append(r.m.Answer, res.Answer...)
			if withAuthority(q.qtype) && !classAny {
				a.addAuthority(r, zone, res.Answer)
			}
			return
		case zones.CNAME:
			charge(rrl.Answer, qname)
			r.m.Answer = append(r.m.Answer, res.Answer...)
			if q.qtype == dns.TypeANY {
				return
			}
			next := zoneFor(set, res.Target, q.qtype)
			if next == nil || hop+1 >= maxChase || contains(visited, res.Target) {
				return // out of our zones, or a loop: the chain ends here
			}
			visited = append(visited, res.Target)
			cur, zone = res.Target, next
		case zones.NoData, zones.NXDomain:
			charge(rrl.NoData, qname)
			if res.Kind == zones.NXDomain {
				r.m.Rcode = dns.RcodeNameError
				charge(rrl.NXDomain, zone.Origin) // random names share their zone's account
			}
			if !classAny {
				r.m.Ns = append(r.m.Ns, negativeSOA(zone))
			}
			return
		case zones.Delegation:
			charge(rrl.Referral, res.Owner)
			if hop == 0 {
				r.m.Authoritative = false
			}
			r.m.Ns = append(r.m.Ns, res.Ns...)
			r.m.Extra = append(r.m.Extra, res.Glue...)
			return
		}
	}
}

// withAuthority says whether a positive answer for qtype carries the
// zone's NS RRset and its addresses. As NSD, not for ANY, DS and DNSKEY:
// their answers are large already.
func withAuthority(qtype uint16) bool {
	return qtype != dns.TypeANY && qtype != dns.TypeDS && qtype != dns.TypeDNSKEY
}

// zoneFor returns the zone that answers qname: the closest enclosing one,
// except that DS at a zone's apex is the data of the parent zone when it is
// served too (RFC 4035 3.1.4.1), as NSD answers it, CNAME targets included.
func zoneFor(set *zones.Set, qname string, qtype uint16) *zones.Zone {
	z := set.Find(qname)
	if qtype == dns.TypeDS && z != nil && z.Origin == qname {
		if p := set.Parent(z); p != nil {
			return p
		}
	}
	return z
}

// addAuthority adds, as NSD does by default, the zone's apex NS RRset to the
// authority section of a positive answer and the in-zone addresses of those
// servers (and of MX, SRV and NS targets in the answer) to the additional.
func (a *Authority) addAuthority(r *reply, zone *zones.Zone, answer []dns.RR) {
	apexNS := zone.RRset(zone.Origin, dns.TypeNS)
	nsInAnswer := len(answer) > 0 && answer[0].Header().Rrtype == dns.TypeNS &&
		answer[0].Header().Name == zone.Origin
	if !nsInAnswer {
		r.m.Ns = append(r.m.Ns, apexNS...)
	}
	extra := zone.Additional(answer)
	if !nsInAnswer {
		extra = append(extra, zone.Additional(apexNS)...)
	}
	r.m.Extra = appendUnique(r.m.Extra, extra, r.m.Answer)
}

func negativeSOA(z *zones.Zone) dns.RR {
	soa := *z.SOA
	soa.Hdr.Ttl = z.NegativeTTL()
	return &soa
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// appendUnique appends the records of src that are neither in dst nor in
// exclude (an additional section never repeats the answer).
func appendUnique(dst, src, exclude []dns.RR) []dns.RR {
	for _, rr := range src {
		if !containsRR(dst, rr) && !containsRR(exclude, rr) {
			dst = append(dst, rr)
		}
	}
	return dst
}

func containsRR(list []dns.RR, rr dns.RR) bool {
	for _, have := range list {
		if have == rr || dns.IsDuplicate(have, rr) {
			return true
		}
	}
	return false
}

// pack serializes the reply, fitting UDP replies into the client's limit
// the way NSD does: drop the additional section, then the authority, and
// only when the answer itself does not fit, empty all sections and set TC.
func (a *Authority) pack(r *reply, q *query, req *Request, out []byte) []byte {
	limit := dns.MaxMsgSize
	if !req.TCP {
		limit = dns.MinMsgSize
		if q.edns {
			limit = int(min(q.udpSize, a.udpSize))
		}
	}
	if r.ecs != nil {
		// Just before the COOKIE, so that the cache finds it at a fixed
		// distance from the end of the reply (see store).
		r.opt.Option = append(r.opt.Option, &dns.EDNS0_LOCAL{Code: optECS, Data: ecsReply(r.ecs, r.scope)})
	}
	if r.cookie != nil {
		// Last of the options, so that the cache finds it at the end of
		// the reply (see store).
		r.opt.Option = append(r.opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(r.cookie[:])})
	}
	if q.signer != nil {
		limit -= q.signer.size() // room for the TSIG record
	}
	attempts := []func(){
		func() {},
		func() { r.m.Extra = nil },
		func() { r.m.Ns = nil },
		func() { r.m.Answer = nil; r.m.Truncated = true },
	}
	for _, shrink := range attempts {
		shrink()
		if r.opt != nil {
			r.m.Extra = append(r.m.Extra[:len(r.m.Extra):len(r.m.Extra)], r.opt)
		}
		b, err := r.m.PackBuffer(out[:cap(out)])
		if r.opt != nil {
			r.m.Extra = r.m.Extra[:len(r.m.Extra)-1]
		}
		if err != nil {
			q.rrl = rrl.Class{} // an error
			return headerOnly(out, q.id, q.flags, flagRD, dns.RcodeServerFailure)
		}
		if len(b) <= limit {
			r.counter.Count(stripeOf(q.id), q.qtype, r.m.Rcode)
			if len(r.m.Question) == 1 && len(b) >= headerLen+len(q.question) {
				copy(b[headerLen:], q.question[:len(q.question)-4])
			}
			if q.signer != nil {
				return q.signer.sign(b)
			}
			if r.fast != nil && a.cache != nil {
				a.store(r.fast, r.view, r, b, r.fill)
			}
			q.rrl = r.rrl
			return b
		}
	}
	return nil
}

// udpLimiter returns the rate limiter for req's reply: nil for TCP, for a
// query with a valid server cookie (its source is not spoofed), and when
// rate limiting is off.
func (a *Authority) udpLimiter(req *Request, validCookie bool) *rrl.Limiter {
	if req.TCP || validCookie {
		return nil
	}
	return a.rrl.Load()
}

// limit applies response rate limiting to a reply of the full path,
// charged to c: it returns resp, resp cut down in place to a truncated
// reply (slip), or nil (drop). Cache hits are checked in cached.
func (a *Authority) limit(req *Request, validCookie bool, c rrl.Class, resp []byte) []byte {
	if l := a.udpLimiter(req, validCookie); l != nil && len(resp) > 0 {
		if act := l.Check(req.Remote.Addr(), c); act != rrl.Send {
			return a.limited(act, c.Category, resp)
		}
	}
	return resp
}

// limited counts a slip or drop and returns what to send instead of resp.
func (a *Authority) limited(act rrl.Action, c rrl.Category, resp []byte) []byte {
	if a.metrics != nil {
		a.metrics.RRLActed(act, c)
	}
	if act == rrl.Slip {
		return slipped(resp)
	}
	return nil
}

// slipped cuts a reply down, in place, to what RRL sends when it slips:
// the header and the question with TC set, and the OPT record if the
// reply has one (RFC 6891 wants it in every reply to an EDNS query, and it
// is where a server cookie goes), so that a real resolver asks again over
// TCP while the victim of a spoofed query gets little more than was sent
// in its name. ID, opcode, AA, RD and rcode stay.
func slipped(resp []byte) []byte {
	if len(resp) < headerLen {
		return nil
	}
	end := headerLen
	if binary.BigEndian.Uint16(resp[4:]) == 1 {
		if n := questionLen(resp); n > 0 {
			end += n
		} else {
			binary.BigEndian.PutUint16(resp[4:], 0)
		}
	}
	records := int(binary.BigEndian.Uint16(resp[6:])) + int(binary.BigEndian.Uint16(resp[8:])) + int(binary.BigEndian.Uint16(resp[10:]))
	opt := findOPT(resp, end, records)
	resp[2] |= flagTC >> 8
	clear(resp[6:headerLen]) // ANCOUNT, NSCOUNT, ARCOUNT
	if opt != nil {
		binary.BigEndian.PutUint16(resp[10:], 1)
		end += copy(resp[end:], opt)
	}
	return resp[:end]
}

// findOPT returns the OPT record among the n records of msg from off, or
// nil.
func findOPT(msg []byte, off, n int) []byte {
	for range n {
		start := off
		if off = skipName(msg, off); off < 0 || off+10 > len(msg) {
			return nil
		}
		rrtype := binary.BigEndian.Uint16(msg[off:])
		end := off + 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if end > len(msg) {
			return nil
		}
		if rrtype == dns.TypeOPT {
			return msg[start:end]
		}
		off = end
	}
	return nil
}

// skipName returns the offset just after the name at off, which may end
// in a compression pointer, or -1.
func skipName(msg []byte, off int) int {
	for off < len(msg) {
		switch l := int(msg[off]); {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) {
				return -1
			}
			return off + 2
		case l&0xC0 != 0:
			return -1
		default:
			off += 1 + l
		}
	}
	return -1
}

// questionLen returns the length of the question at offset 12 of msg (an
// uncompressed name, type and class), or 0 if there is none.
func questionLen(msg []byte) int {
	off := headerLen
	for off < len(msg) {
		l := int(msg[off])
		if l&0xC0 != 0 {
			return 0
		}
		off += 1 + l
		if l == 0 {
			if off+4 > len(msg) {
				return 0
			}
			return off + 4 - headerLen
		}
	}
	return 0
}
