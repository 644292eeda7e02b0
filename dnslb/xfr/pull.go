package xfr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Zone transfers in: what a secondary asks of its primary. QuerySOA asks
// for the primary's serial (RFC 1034 4.3.5's refresh check); Pull
// transfers the zone, incrementally (IXFR, RFC 1995) when a copy is held
// and the primary can, else whole (AXFR, RFC 5936). Both sign with the
// primary's key, and a reply that is not signed by it is an error.

// Primary is a server a zone is pulled from, and the key that signs the
// requests (nil: unsigned).
type Primary struct {
	Addr netip.AddrPort
	Key  *Key
}

// DefaultPullTimeout bounds one SOA query, and each read of a transfer.
const DefaultPullTimeout = 5 * time.Second

// ErrNotSigned says a reply to a signed request came without a TSIG.
var ErrNotSigned = errors.New("reply not signed with the key")

// QuerySOA asks p for zone's SOA, over UDP and again over TCP when the
// reply is truncated. The reply must be authoritative and hold the SOA.
func QuerySOA(ctx context.Context, zone string, p Primary, timeout time.Duration) (*dns.SOA, error) {
	if timeout <= 0 {
		timeout = DefaultPullTimeout
	}
	m := new(dns.Msg)
	m.SetQuestion(zone, dns.TypeSOA)
	m.RecursionDesired = false
	var r *dns.Msg
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: timeout}
		m.Id = dns.Id()
		m.Extra = nil
		if p.Key != nil {
			c.TsigSecret = map[string]string{p.Key.Name: p.Key.Secret}
			m.SetTsig(p.Key.Name, p.Key.Algorithm, 300, time.Now().Unix())
		}
		var err error
		if r, err = exchange(ctx, c, m, p.Addr.String()); err != nil {
			return nil, fmt.Errorf("SOA query over %s: %w", network, err)
		}
		if !r.Truncated {
			break
		}
	}
	if p.Key != nil && r.IsTsig() == nil {
		return nil, fmt.Errorf("SOA query: %w", ErrNotSigned)
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("SOA query: %w", rcodeError(r.Rcode))
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && r.Authoritative && dns.CanonicalName(soa.Hdr.Name) == dns.CanonicalName(zone) {
			return soa, nil
		}
	}
	return nil, fmt.Errorf("SOA query: no authoritative SOA of %s in the reply (is the primary authoritative for it?)", zone)
}

// Pulled is the outcome of a transfer: the zone's records (the SOA first,
// once), and how they came.
type Pulled struct {
	Records []dns.RR
	// Type is "AXFR" or "IXFR": IXFR when the records are have with the
	// primary's differences applied, AXFR when the primary sent the whole
	// zone (to an IXFR request too).
	Type string
	// UpToDate: the primary has no serial newer than have's; Records is
	// nil.
	UpToDate bool
}

// Pull transfers zone from p over TCP. With have (the records of the copy
// held, its SOA among them) it asks for IXFR, and falls back to AXFR when
// the primary refuses IXFR or its differences do not apply to have;
// without, AXFR. Every message must be signed when p has a key.
func Pull(ctx context.Context, zone string, p Primary, have []dns.RR, timeout time.Duration) (*Pulled, error) {
	if timeout <= 0 {
		timeout = DefaultPullTimeout
	}
	var haveSOA *dns.SOA
	for _, rr := range have {
		if soa, ok := rr.(*dns.SOA); ok {
			haveSOA = soa
			break
		}
	}
	if haveSOA != nil {
		rrs, err := transferIn(ctx, zone, p, haveSOA, timeout)
		if err == nil {
			out, err := applyIXFR(have, haveSOA, rrs)
			if err == nil {
				return out, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// Fall back on AXFR below.
		} else if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	rrs, err := transferIn(ctx, zone, p, nil, timeout)
	if err != nil {
		return nil, fmt.Errorf("AXFR: %w", err)
	}
	out, err := axfrRecords(rrs)
	if err != nil {
		return nil, fmt.Errorf("AXFR: %w", err)
	}
	return &Pulled{Records: out, Type: "AXFR"}, nil
}

// transferIn runs one AXFR (from nil) or IXFR (from the copy's SOA) and
// returns the answer records of every message, in order.
func transferIn(ctx context.Context, zone string, p Primary, from *dns.SOA, timeout time.Duration) ([]dns.RR, error) {
	m := new(dns.Msg)
	if from != nil {
		m.SetIxfr(zone, from.Serial, from.Ns, from.Mbox)
	} else {
		m.SetAxfr(zone)
	}
	tr := &dns.Transfer{DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout}
	if p.Key != nil {
		tr.TsigSecret = map[string]string{p.Key.Name: p.Key.Secret}
		m.SetTsig(p.Key.Name, p.Key.Algorithm, 300, time.Now().Unix())
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := d.DialContext(dctx, "tcp", p.Addr.String())
	cancel()
	if err != nil {
		return nil, err
	}
	tr.Conn = &dns.Conn{Conn: conn}
	// The context ending closes the connection, which ends the reads.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	ch, err := tr.In(m, p.Addr.String())
	if err != nil {
		conn.Close()
		return nil, err
	}
	var rrs []dns.RR
	var first error
	for env := range ch { // until In closes it: its goroutine ends then
		if env.Error != nil && first == nil {
			first = env.Error
		}
		if first == nil {
			rrs = append(rrs, env.RR...)
		}
	}
	if first != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(first, dns.ErrNoSig) {
			return nil, ErrNotSigned
		}
		return nil, first
	}
	return rrs, nil
}

// axfrRecords checks an AXFR's records (the SOA first and last, nothing
// else of another zone) and returns them without the last SOA.
func axfrRecords(rrs []dns.RR) ([]dns.RR, error) {
	if len(rrs) < 2 {
		return nil, errors.New("transfer ended before the closing SOA")
	}
	first, ok := rrs[0].(*dns.SOA)
	last, ok2 := rrs[len(rrs)-1].(*dns.SOA)
	if !ok || !ok2 || first.Serial != last.Serial {
		return nil, errors.New("transfer not framed by the zone's SOA")
	}
	out := rrs[:len(rrs)-1]
	for _, rr := range out[1:] {
		if rr.Header().Rrtype == dns.TypeSOA {
			return nil, errors.New("an SOA inside the transfer")
		}
	}
	return out, nil
}

// errIXFR says an IXFR reply could not be applied to the copy: the
// caller falls back on AXFR.
type errIXFR string

func (e errIXFR) Error() string { return "IXFR: " + string(e) }

// applyIXFR turns an IXFR reply into the zone's records: have itself when
// the primary is not newer, the reply when it is a whole zone (RFC 1995
// 4: a server may answer with AXFR's records), else have with every
// difference applied in order.
func applyIXFR(have []dns.RR, haveSOA *dns.SOA, rrs []dns.RR) (*Pulled, error) {
	if len(rrs) == 0 {
		return nil, errIXFR("empty reply")
	}
	newest, ok := rrs[0].(*dns.SOA)
	if !ok {
		return nil, errIXFR("reply does not start with the SOA")
	}
	if len(rrs) == 1 {
		if !serialLess(haveSOA.Serial, newest.Serial) {
			return &Pulled{Type: "IXFR", UpToDate: true}, nil
		}
		return nil, errIXFR("a newer SOA alone: the primary wants the query over TCP, or lost its journal")
	}
	if _, incremental := rrs[1].(*dns.SOA); !incremental {
		out, err := axfrRecords(rrs)
		if err != nil {
			return nil, errIXFR(err.Error())
		}
		return &Pulled{Records: out, Type: "AXFR"}, nil
	}
	// Sequences of: the old SOA, the records deleted, the new SOA, the
	// records added; then the newest SOA again.
	zone := map[string]dns.RR{}
	var order []string
	for _, rr := range have {
		if rr.Header().Rrtype == dns.TypeSOA {
			continue
		}
		k := rrKey(rr)
		if _, dup := zone[k]; !dup {
			order = append(order, k)
		}
		zone[k] = rr
	}
	cur := haveSOA
	i := 1
	for {
		if i == len(rrs)-1 {
			last, ok := rrs[i].(*dns.SOA)
			if !ok || last.Serial != newest.Serial || cur.Serial != newest.Serial {
				return nil, errIXFR("the differences do not end at the primary's serial")
			}
			break
		}
		from, ok := rrs[i].(*dns.SOA)
		if !ok || from.Serial != cur.Serial {
			return nil, errIXFR(fmt.Sprintf("a difference from serial %d, the copy is at %d", serialOf(rrs[i]), cur.Serial))
		}
		i++
		for ; i < len(rrs) && rrs[i].Header().Rrtype != dns.TypeSOA; i++ {
			k := rrKey(rrs[i])
			if _, ok := zone[k]; !ok {
				return nil, errIXFR(fmt.Sprintf("deletes a record the copy does not hold: %s", rrs[i]))
			}
			delete(zone, k)
		}
		if i >= len(rrs) {
			return nil, errIXFR("a difference without its new SOA")
		}
		to := rrs[i].(*dns.SOA)
		i++
		for ; i < len(rrs) && rrs[i].Header().Rrtype != dns.TypeSOA; i++ {
			k := rrKey(rrs[i])
			if _, dup := zone[k]; !dup {
				order = append(order, k)
			}
			zone[k] = rrs[i]
		}
		if i >= len(rrs) {
			return nil, errIXFR("reply ends without the closing SOA")
		}
		cur = to
	}
	out := make([]dns.RR, 0, len(zone)+1)
	out = append(out, newest)
	for _, k := range order {
		if rr, ok := zone[k]; ok {
			out = append(out, rr)
			delete(zone, k) // a key re-added after its deletion is listed twice
		}
	}
	return &Pulled{Records: out, Type: "IXFR"}, nil
}

func serialOf(rr dns.RR) uint32 {
	if soa, ok := rr.(*dns.SOA); ok {
		return soa.Serial
	}
	return 0
}

// rrKey identifies a record whatever its TTL and the letter case of its
// owner: what an IXFR deletion names.
// The records of have are the served zone's: a copy is changed, never
// them.
func rrKey(rr dns.RR) string {
	c := dns.Copy(rr)
	h := c.Header()
	h.Ttl, h.Name = 0, strings.ToLower(h.Name)
	return c.String()
}
