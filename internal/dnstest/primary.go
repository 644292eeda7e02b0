package dnstest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Primary is a primary server of one zone on a free loopback port, for
// tests of a secondary: it answers SOA queries, AXFR, and IXFR from the
// versions it was given (Set), optionally only to requests signed with
// its key, and sends NOTIFY. It stops when the test ends.
type Primary struct {
	// Server serves it (Addr, Close).
	*Server
	origin string
	key    string // canonical key name; "" accepts unsigned requests
	alg    string

	mu       sync.Mutex
	versions [][]dns.RR // oldest first; each starts with its SOA
	noIXFR   bool
	down     bool
	chunk    int
	requests []string
}

// PrimaryKey is the TSIG key a Primary requires (and signs with).
type PrimaryKey struct {
	Name, Algorithm, Secret string
}

// NewPrimary starts a primary of origin serving zone (a zone file's text,
// relative to origin), requiring key when it is not nil.
func NewPrimary(t testing.TB, origin, zone string, key *PrimaryKey) *Primary {
	t.Helper()
	p := &Primary{origin: dns.CanonicalName(origin), chunk: 3}
	var secrets map[string]string
	if key != nil {
		p.key, p.alg = dns.CanonicalName(key.Name), key.Algorithm
		secrets = map[string]string{p.key: key.Secret}
	}
	p.Set(t, zone)
	p.Server = NewSignedServer(t, dns.HandlerFunc(p.serve), secrets)
	return p
}

// Set makes zone (a zone file's text) the newest version; the ones
// before stay for IXFR.
func (p *Primary) Set(t testing.TB, zone string) {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(zone), p.origin, "primary")
	var rrs []dns.RR
	var soa dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Rrtype == dns.TypeSOA {
			soa = rr
			continue
		}
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil || soa == nil {
		t.Fatalf("dnstest: primary zone: %v (SOA %v)", err, soa)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.versions = append(p.versions, append([]dns.RR{soa}, rrs...))
}

// SetIXFR makes the primary answer IXFR (true, the default) or answer it
// with the whole zone, as a primary without a journal does.
func (p *Primary) SetIXFR(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noIXFR = !on
}

// SetDown makes the primary drop every query (an outage) or answer again.
func (p *Primary) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// Requests returns the types of the requests answered so far ("SOA",
// "AXFR", "IXFR", "refused SOA"…), in order.
func (p *Primary) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Notify sends one NOTIFY for the zone's newest serial to addr over UDP,
// signed when the primary has a key, and returns the reply's rcode.
func (p *Primary) Notify(t testing.TB, addr string, key *PrimaryKey) int {
	t.Helper()
	p.mu.Lock()
	soa := p.versions[len(p.versions)-1][0]
	p.mu.Unlock()
	m := new(dns.Msg)
	m.SetNotify(p.origin)
	m.Answer = []dns.RR{soa}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if key != nil {
		c.TsigSecret = map[string]string{dns.CanonicalName(key.Name): key.Secret}
		m.SetTsig(dns.CanonicalName(key.Name), key.Algorithm, 300, time.Now().Unix())
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("dnstest: NOTIFY to %s: %v", addr, err)
	}
	return r.Rcode
}

func (p *Primary) serve(w dns.ResponseWriter, q *dns.Msg) {
	p.mu.Lock()
	if p.down || len(q.Question) != 1 {
		p.mu.Unlock()
		return
	}
	qtype := dns.TypeToString[q.Question[0].Qtype]
	signed := q.IsTsig() != nil && w.TsigStatus() == nil
	if p.key != "" && (!signed || dns.CanonicalName(q.IsTsig().Hdr.Name) != p.key) {
		p.requests = append(p.requests, "refused "+qtype)
		p.mu.Unlock()
		r := new(dns.Msg)
		r.SetRcode(q, dns.RcodeRefused)
		_ = w.WriteMsg(r)
		return
	}
	p.requests = append(p.requests, qtype)
	versions, noIXFR, chunk := p.versions, p.noIXFR, p.chunk
	p.mu.Unlock()
	newest := versions[len(versions)-1]
	sign := func(r *dns.Msg) {
		if signed {
			r.SetTsig(p.key, p.alg, 300, time.Now().Unix())
		}
	}
	switch q.Question[0].Qtype {
	case dns.TypeSOA:
		r := new(dns.Msg)
		r.SetReply(q)
		r.Authoritative = true
		if dns.CanonicalName(q.Question[0].Name) == p.origin {
			r.Answer = []dns.RR{newest[0]}
		} else {
			r.Rcode = dns.RcodeRefused
		}
		sign(r)
		_ = w.WriteMsg(r)
	case dns.TypeAXFR, dns.TypeIXFR:
		var rrs []dns.RR
		if q.Question[0].Qtype == dns.TypeIXFR && !noIXFR && len(q.Ns) == 1 {
			rrs = ixfrRecords(versions, q.Ns[0].(*dns.SOA).Serial)
		}
		if rrs == nil {
			rrs = append(append([]dns.RR(nil), newest...), newest[0])
		}
		ch := make(chan *dns.Envelope)
		tr := new(dns.Transfer)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = tr.Out(w, q, ch)
		}()
		for len(rrs) > 0 {
			n := min(chunk, len(rrs))
			ch <- &dns.Envelope{RR: rrs[:n]}
			rrs = rrs[n:]
		}
		close(ch)
		<-done
		_ = w.Close()
	default:
		r := new(dns.Msg)
		r.SetRcode(q, dns.RcodeNotImplemented)
		sign(r)
		_ = w.WriteMsg(r)
	}
}

// ixfrRecords is the IXFR reply from serial to the newest version: one
// SOA when serial is the newest, nil when it is not among the versions.
func ixfrRecords(versions [][]dns.RR, serial uint32) []dns.RR {
	newest := versions[len(versions)-1]
	at := -1
	for i, v := range versions {
		if v[0].(*dns.SOA).Serial == serial {
			at = i
		}
	}
	switch {
	case at < 0:
		return nil
	case at == len(versions)-1:
		return []dns.RR{newest[0]}
	}
	out := []dns.RR{newest[0]}
	for i := at; i < len(versions)-1; i++ {
		del, add := diffRecords(versions[i][1:], versions[i+1][1:])
		out = append(out, versions[i][0])
		out = append(out, del...)
		out = append(out, versions[i+1][0])
		out = append(out, add...)
	}
	return append(out, newest[0])
}

// diffRecords returns what from has and to has not, and the other way.
func diffRecords(from, to []dns.RR) (del, add []dns.RR) {
	in := func(set []dns.RR) map[string]bool {
		m := map[string]bool{}
		for _, rr := range set {
			m[NormRR(rr)] = true
		}
		return m
	}
	f, t := in(from), in(to)
	for _, rr := range from {
		if !t[NormRR(rr)] {
			del = append(del, rr)
		}
	}
	for _, rr := range to {
		if !f[NormRR(rr)] {
			add = append(add, rr)
		}
	}
	return del, add
}
