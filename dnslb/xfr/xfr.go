// Package xfr serves zone transfers out of dnslb: what each zone's
// transfer holds (the zone as written, or as dnslb answers it now), its
// serials, the journal of differences IXFR answers from, and who may have
// it. The answer path (answer.Authority) parses, verifies and signs; it
// asks a Server, through the answer.Transfers interface, for the records.
package xfr

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// Rule is one entry of a zone's transfer ACL: a client in Prefix (any
// address when Prefix is not valid) whose request is signed with Key (a
// canonical key name; "" allows unsigned requests). A signed request
// matches a rule without a key too: the signature was verified, and the
// prefix alone allows the client.
type Rule struct {
	Prefix netip.Prefix
	Key    string
}

// Zone says how one zone is transferred.
type Zone struct {
	// Origin is the zone's apex, canonical.
	Origin string
	// Allow lists who may transfer the zone; empty refuses everyone.
	Allow []Rule
	// Filtered transfers the zone as dnslb answers it now: each pool's
	// RRsets hold the members it answers, and every change of them is a
	// new serial. Otherwise the zone is transferred as written.
	Filtered bool
	// Delay coalesces a filtered zone's changes: its new serial comes
	// this long after the first change of a burst (0: at once).
	Delay time.Duration
	// Notify lists the secondaries told of every new serial.
	Notify []Target
}

// Allowed reports whether a client at addr, signed with key ("" unsigned),
// may transfer the zone.
func (z *Zone) Allowed(addr netip.Addr, key string) bool {
	for _, r := range z.Allow {
		if r.Prefix.IsValid() && !r.Prefix.Contains(addr.Unmap()) {
			continue
		}
		if r.Key == "" || r.Key == key {
			return true
		}
	}
	return false
}

// Counter counts a finished or refused transfer: zone, type ("AXFR",
// "IXFR") and result ("ok", "refused", "failed").
type Counter func(zone, typ, result string)

// Options configure a Server.
type Options struct {
	// Count counts transfers; nil: not counted.
	Count Counter
	// Health returns the judgement pool members are answered by now (the
	// answer path's: health snapshot and overrides together).
	Health func() pool.Health
	// Changed is called, outside any lock of the Server, after filtered
	// zones got new serials (see Serials).
	Changed func()
	// Log is where undelivered NOTIFYs are told.
	Log zerolog.Logger
	// NotifyTimeout is how long a NOTIFY waits for its answer before it
	// is sent again (default DefaultNotifyTimeout); the wait doubles with
	// every try.
	NotifyTimeout time.Duration
	// JournalRecords bounds each zone's journal: the records its
	// differences hold together (default DefaultJournalRecords). IXFR
	// from a serial older than the journal gets the whole zone.
	JournalRecords int
}

// DefaultJournalRecords is the default bound of a zone's journal.
const DefaultJournalRecords = 100_000

// DefaultDelay is the default coalescing delay of filtered zones.
const DefaultDelay = 20 * time.Millisecond

// Server implements answer.Transfers for the zones being served. It is
// safe for concurrent use.
type Server struct {
	opts Options
	cur  atomic.Pointer[snapshot]
	poke chan struct{}
	// announce wakes Run to send the NOTIFYs of a Set.
	announce chan struct{}
	wg       sync.WaitGroup // NOTIFYs being sent

	// mu serialises Set and updates; Transfer reads cur alone.
	mu      sync.Mutex
	cfgs    []Zone
	zset    *zones.Set
	pools   map[string]*pool.Pool
	states  map[string]*state // filtered zones, by origin; kept across Sets
	serials map[string]uint32 // the last serial of each filtered zone, restored ones too
	// notified is the serial last announced of every zone.
	notified map[string]uint32
}

// snapshot is what Transfer reads: the zones with their settings.
type snapshot struct {
	zones map[string]*entry
}

type entry struct {
	cfg  Zone
	zone *zones.Zone
	c    *content // filtered zones; nil: transferred as written
}

// content is a filtered zone at one serial. It is immutable: a change
// makes a new one.
type content struct {
	soa  *dns.SOA
	base []dns.RR // every record but the SOA and the pools' A and AAAA
	// sets are the pools' published RRsets, by owner and type.
	sets    map[setKey][]dns.RR
	journal []delta     // oldest first; the last one ends at soa's serial
	zoneOf  *zones.Zone // the zone base was made from
	owners  string      // and the pools' names (see ownersOf)
}

type setKey struct {
	owner string
	typ   uint16
}

// delta is the difference between two serials (RFC 1995's terms).
type delta struct {
	from, to *dns.SOA
	del, add []dns.RR
}

func (d *delta) records() int { return len(d.del) + len(d.add) + 2 }

// state is a filtered zone's: the zone and pools its content comes from.
type state struct {
	zone  *zones.Zone
	pools []*pool.Pool // the pools at names of the zone, by name
	c     *content
}

var _ answer.Transfers = (*Server)(nil)

// NewServer returns a server that transfers nothing until Set.
func NewServer(opts Options) *Server {
	if opts.Count == nil {
		opts.Count = func(string, string, string) {}
	}
	if opts.JournalRecords <= 0 {
		opts.JournalRecords = DefaultJournalRecords
	}
	if opts.NotifyTimeout <= 0 {
		opts.NotifyTimeout = DefaultNotifyTimeout
	}
	if opts.Changed == nil {
		opts.Changed = func() {}
	}
	s := &Server{opts: opts, poke: make(chan struct{}, 1), announce: make(chan struct{}, 1),
		states: map[string]*state{}, serials: map[string]uint32{}, notified: map[string]uint32{}}
	s.cur.Store(&snapshot{zones: map[string]*entry{}})
	return s
}

// Restore gives the server the serials filtered zones had before a
// restart (from the state file), so that theirs keep growing. Call before
// the first Set.
func (s *Server) Restore(serials map[string]uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for o, v := range serials {
		s.serials[o] = v
	}
}

// Serials returns the current serial of every filtered zone, and of those
// restored and not configured any more (so that they survive a config
// that drops them for a while).
func (s *Server) Serials() map[string]uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint32, len(s.serials))
	for o, v := range s.serials {
		out[o] = v
	}
	return out
}

// Set makes the server transfer the zones of cfgs found in set, with the
// pools of the view they are served with. A filtered zone whose zone
// changed (or is new) gets a new serial at once, above the file's and
// above any it had; one whose pools' answers changed, a new serial too.
// Changed is not called: the caller reads Serials after Set.
func (s *Server) Set(set *zones.Set, pools map[string]*pool.Pool, cfgs []Zone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zset, s.pools, s.cfgs = set, pools, cfgs
	s.updateLocked(true)
	select {
	case s.announce <- struct{}{}:
	default:
	}
}

// Poke says that health or overrides changed: filtered zones are
// recomputed after the coalescing delay, by Run.
func (s *Server) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run recomputes filtered zones after pokes, and sends the NOTIFYs of
// new serials, until ctx ends; it returns once the NOTIFYs being sent
// have stopped.
func (s *Server) Run(ctx context.Context) {
	defer s.wg.Wait()
	jobs := map[jobKey]context.CancelFunc{}
	for {
		s.mu.Lock()
		ns := s.pendingLocked()
		s.mu.Unlock()
		s.send(ctx, jobs, ns)
		select {
		case <-ctx.Done():
			return
		case <-s.announce:
			continue
		case <-s.poke:
		}
		if d := s.delay(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		// Pokes during the delay are in this update.
		select {
		case <-s.poke:
		default:
		}
		s.mu.Lock()
		changed := s.updateLocked(false)
		s.mu.Unlock()
		if changed {
			s.opts.Changed()
		}
	}
}

// delay is the shortest Delay of the filtered zones: one timer serves
// them all.
func (s *Server) delay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := time.Duration(-1)
	for _, c := range s.cfgs {
		if c.Filtered && (d < 0 || c.Delay < d) {
			d = c.Delay
		}
	}
	return max(d, 0)
}

// updateLocked rebuilds the snapshot, and the content of every filtered
// zone whose zone or pools' answers changed. It reports whether a serial
// changed. s.mu is held.
func (s *Server) updateLocked(reset bool) bool {
	if s.zset == nil {
		return false
	}
	var h pool.Health
	if s.opts.Health != nil {
		h = s.opts.Health()
	}
	snap := &snapshot{zones: map[string]*entry{}}
	changed := false
	live := map[string]bool{}
	for _, c := range s.cfgs {
		z := s.zset.Zone(c.Origin)
		if z == nil {
			continue // failed to load at start: nothing to transfer
		}
		e := &entry{cfg: c, zone: z}
		snap.zones[c.Origin] = e
		if !c.Filtered {
			continue
		}
		live[c.Origin] = true
		st := s.states[c.Origin]
		if st == nil {
			st = &state{}
			s.states[c.Origin] = st
		}
		st.zone = z
		if reset || st.pools == nil {
			st.pools = poolsIn(s.zset, z, s.pools)
		}
		if s.refresh(st, h) {
			changed = true
		}
		e.c = st.c
	}
	for o := range s.states {
		if !live[o] {
			delete(s.states, o)
		}
	}
	s.cur.Store(snap)
	return changed
}

// refresh recomputes st's content under h and reports whether it got a
// new serial.
func (s *Server) refresh(st *state, h pool.Health) bool {
	sets := map[setKey][]dns.RR{}
	for _, p := range st.pools {
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if rrs := publish(p, t, h); len(rrs) > 0 {
				sets[setKey{p.Name, t}] = rrs
			}
		}
	}
	old := st.c
	owners := ownersOf(st.pools)
	// A reload reads the zone again: the same content (digest and serial)
	// is the same zone, and keeps its serial and journal.
	same := old != nil && old.owners == owners && (old.zoneOf == st.zone ||
		old.zoneOf.Digest == st.zone.Digest && old.zoneOf.Serial() == st.zone.Serial())
	if same && sameSets(old.sets, sets) {
		return false
	}
	serial := st.zone.Serial()
	if prev, ok := s.serials[st.zone.Origin]; ok && !serialLess(prev, serial) {
		serial = prev + 1
	}
	soa := *st.zone.SOA
	soa.Serial = serial
	c := &content{soa: &soa, sets: sets, owners: owners}
	if same {
		c.base, c.zoneOf = old.base, old.zoneOf
		d := diff(old, c)
		c.journal = trim(append(append([]delta(nil), old.journal...), d), s.opts.JournalRecords)
	} else {
		c.base, c.zoneOf = baseOf(st.zone, st.pools), st.zone
	}
	st.c = c
	s.serials[st.zone.Origin] = serial
	return true
}

// allUp is the judgement without a health source: every member up.
type allUp struct{}

func (allUp) Eligible(*pool.Member) bool { return true }
func (allUp) Drained(*pool.Member) bool  { return false }
func (allUp) Failing(*pool.Member) bool  { return false }

func publish(p *pool.Pool, qtype uint16, h pool.Health) []dns.RR {
	if h == nil {
		h = allUp{}
	}
	return p.Published(qtype, h)
}

// poolsIn returns the pools at names of z (and not of a zone below it),
// by name.
func poolsIn(set *zones.Set, z *zones.Zone, pools map[string]*pool.Pool) []*pool.Pool {
	out := []*pool.Pool{}
	for name, p := range pools {
		if set.Find(name) == z {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ownersOf is the names of pools, as one string to compare.
func ownersOf(pools []*pool.Pool) string {
	var b strings.Builder
	for _, p := range pools {
		b.WriteString(p.Name)
		b.WriteByte(' ')
	}
	return b.String()
}

// baseOf is every record of z but its SOA and the A and AAAA RRsets of
// pools: those are published from the pools' answers.
func baseOf(z *zones.Zone, pools []*pool.Pool) []dns.RR {
	owners := map[string]bool{}
	for _, p := range pools {
		owners[p.Name] = true
	}
	all := z.All()[1:] // the SOA comes first
	out := make([]dns.RR, 0, len(all))
	for _, rr := range all {
		h := rr.Header()
		if (h.Rrtype == dns.TypeA || h.Rrtype == dns.TypeAAAA) && owners[dns.CanonicalName(h.Name)] {
			continue
		}
		out = append(out, rr)
	}
	return out
}

func sortedKeys(m map[setKey][]dns.RR) []setKey {
	keys := make([]setKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].owner != keys[j].owner {
			return keys[i].owner < keys[j].owner
		}
		return keys[i].typ < keys[j].typ
	})
	return keys
}

func sameSets(a, b map[setKey][]dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || len(x) != len(y) || len(minus(x, y)) > 0 {
			return false
		}
	}
	return true
}

// minus is the records of a that are not in b.
func minus(a, b []dns.RR) []dns.RR {
	var out []dns.RR
	for _, x := range a {
		found := false
		for _, y := range b {
			if x == y || dns.IsDuplicate(x, y) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

// diff is the difference from old to c: only the pools' RRsets change
// while the zone stays.
func diff(old, c *content) delta {
	d := delta{from: old.soa, to: c.soa}
	seen := map[setKey]bool{}
	for _, k := range sortedKeys(old.sets) {
		seen[k] = true
		d.del = append(d.del, minus(old.sets[k], c.sets[k])...)
		d.add = append(d.add, minus(c.sets[k], old.sets[k])...)
	}
	for _, k := range sortedKeys(c.sets) {
		if !seen[k] {
			d.add = append(d.add, c.sets[k]...)
		}
	}
	return d
}

// trim drops the oldest differences until the journal holds at most max
// records.
func trim(j []delta, max int) []delta {
	n := 0
	for _, d := range j {
		n += d.records()
	}
	for len(j) > 0 && n > max {
		n -= j[0].records()
		j = j[1:]
	}
	return j
}

// Transfer implements answer.Transfers.
func (s *Server) Transfer(r *answer.TransferRequest) ([]dns.RR, bool) {
	typ := dns.TypeToString[r.Type]
	e := s.cur.Load().zones[r.Zone]
	if e == nil || !e.cfg.Allowed(r.Remote, r.Key) {
		s.opts.Count(r.Zone, typ, "refused")
		return nil, false
	}
	soa := e.zone.SOA
	if e.c != nil {
		soa = e.c.soa
	}
	if r.Type == dns.TypeIXFR {
		if !r.TCP || !serialLess(r.Serial, soa.Serial) {
			// Up to date (or newer), or over UDP: the current SOA alone.
			return []dns.RR{soa}, true
		}
		if e.c != nil {
			if rrs := e.c.incremental(r.Serial); rrs != nil {
				return rrs, true
			}
		}
	}
	if e.c == nil {
		return append(e.zone.All(), soa), true // SOA first
	}
	return e.c.full(), true
}

// full is the records of an AXFR: the SOA, every other record, the SOA
// again (RFC 5936 2.2).
func (c *content) full() []dns.RR {
	n := len(c.base) + 2
	for _, rrs := range c.sets {
		n += len(rrs)
	}
	out := make([]dns.RR, 0, n)
	out = append(out, c.soa)
	out = append(out, c.base...)
	for _, k := range sortedKeys(c.sets) {
		out = append(out, c.sets[k]...)
	}
	return append(out, c.soa)
}

// incremental is the records of an IXFR from serial (RFC 1995 4): the
// current SOA, each difference since serial as its old SOA, the records
// deleted, its new SOA, the records added, and the current SOA again; nil
// when the journal does not reach back to serial.
func (c *content) incremental(serial uint32) []dns.RR {
	for i, d := range c.journal {
		if d.from.Serial != serial {
			continue
		}
		out := []dns.RR{c.soa}
		for _, d := range c.journal[i:] {
			out = append(out, d.from)
			out = append(out, d.del...)
			out = append(out, d.to)
			out = append(out, d.add...)
		}
		return append(out, c.soa)
	}
	return nil
}

// Finished implements answer.Transfers.
func (s *Server) Finished(r *answer.TransferRequest, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	s.opts.Count(r.Zone, dns.TypeToString[r.Type], result)
}

// serialLess compares serials with RFC 1982 arithmetic.
func serialLess(a, b uint32) bool { return a != b && (b-a) < 1<<31 }

// ParseRule reads an allow entry: prefix is an address or a prefix ("":
// any address), key a key name ("": unsigned allowed).
func ParseRule(prefix, key string) (Rule, error) {
	r := Rule{}
	if key != "" {
		r.Key = dns.CanonicalName(key)
	}
	if prefix == "" {
		return r, nil
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		a, aerr := netip.ParseAddr(prefix)
		if aerr != nil {
			return r, fmt.Errorf("%q is not an address or prefix", prefix)
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	r.Prefix = p.Masked()
	return r, nil
}
