package answer

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"

	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// Zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995). The answer path
// parses and verifies the request (TSIG included) as any query's; what a
// transfer holds, and who may have it, is the Transfers' (dnslb/xfr).
// Here the records are cut into messages, signed as RFC 8945 5.3.1 wants
// for a stream, and sent with Request.Stream.

// TransferRequest is one request for a zone transfer.
type TransferRequest struct {
	// Zone is the question's name, canonical.
	Zone string
	// Type is dns.TypeAXFR or dns.TypeIXFR.
	Type uint16
	// Serial is the serial of the IXFR client's SOA.
	Serial uint32
	// Remote is the client's address.
	Remote netip.Addr
	// Key is the canonical name of the TSIG key that signed the request,
	// "" if it was unsigned.
	Key string
	// TCP is false for an IXFR over UDP: only a one-SOA reply fits then.
	TCP bool
}

// Transfers decides and supplies zone transfers. Its methods are called
// while answering and must be safe for concurrent use.
type Transfers interface {
	// Transfer returns the records to send in order (the answer sections
	// of every message, first SOA to last), or ok false to refuse.
	Transfer(r *TransferRequest) (rrs []dns.RR, ok bool)
	// Finished says how a transfer that Transfer allowed ended: err is
	// nil once every message has been handed to the connection.
	Finished(r *TransferRequest, err error)
}

// SetTransfers makes the authority answer AXFR and IXFR through t; nil
// (the default) refuses them. Call before serving.
func (a *Authority) SetTransfers(t Transfers) { a.transfers = t }

// transferChunk is how many bytes of records (uncompressed) a transfer
// message holds at most, besides the record that crosses it: well under
// TCP's 65,535 whatever compression gains, and big enough that the
// messages' overhead does not matter.
const transferChunk = 16 << 10

var (
	errStreamBroken = errors.New("connection failed during the transfer")
	errNoSOA        = errors.New("IXFR without the client's SOA")
)

// parseIXFRSOA reads the authority section of an IXFR request: the
// client's SOA, owned by the zone's apex.
func parseIXFRSOA(msg []byte, off int, q *query) (int, error) {
	rr, next, err := dns.UnpackRR(msg, off)
	if err != nil || rr == nil {
		return 0, errFormat
	}
	soa, ok := rr.(*dns.SOA)
	if !ok || !equalNames(soa.Hdr.Name, q.name) {
		return 0, errFormat
	}
	q.ixfr, q.ixfrSerial = true, soa.Serial
	return next, nil
}

func equalNames(a, b string) bool { return zones.CanonicalName(a) == zones.CanonicalName(b) }

// transfer answers AXFR and IXFR when a Transfers is set; ok is false
// without one (the caller refuses as before).
func (a *Authority) transfer(q *query, req *Request, out []byte, view *View) (resp []byte, ok bool) {
	t := a.transfers
	if t == nil {
		return nil, false
	}
	if q.qtype == dns.TypeAXFR && !req.TCP {
		return nil, false // AXFR over UDP is not defined (RFC 5936 4.2)
	}
	tr := &TransferRequest{Zone: zones.CanonicalName(q.name), Type: q.qtype, Remote: req.Remote.Addr(), TCP: req.TCP}
	tr.Serial = q.ixfrSerial
	if q.signer != nil {
		tr.Key = q.signer.key.name
	}
	zone := view.Zones.Zone(tr.Zone)
	signer := view.SignerOf(zone)
	if signer != nil && q.qtype == dns.TypeIXFR && req.TCP && req.Stream != nil {
		// A signed zone's diffs would need their signatures and chain
		// diffed too: the whole zone instead (RFC 1995 4 allows it).
		tr.Type = dns.TypeAXFR
	}
	rrs, allowed := t.Transfer(tr)
	if allowed && signer != nil && tr.Type == dns.TypeAXFR {
		signed, err := signZone(rrs, tr.Zone, signer)
		if err != nil {
			r := a.newReply(q, true)
			r.counter = view.NoZone
			r.m.Rcode = dns.RcodeServerFailure
			r.ede(dns.ExtendedErrorCodeDNSBogus)
			t.Finished(tr, err)
			return a.pack(r, q, req, out), true
		}
		rrs = signed
	}
	r := a.newReply(q, true)
	r.counter = view.NoZone
	if z := view.Zones.Zone(tr.Zone); z != nil && view.Counters != nil {
		r.counter = view.Counters[z]
	}
	if !allowed {
		// Who may not transfer learns nothing more, malformed or not.
		r.m.Rcode = dns.RcodeRefused
		return a.pack(r, q, req, out), true
	}
	if q.qtype == dns.TypeIXFR && !q.ixfr {
		// RFC 1995 3: the request carries the client's SOA.
		r.m.Rcode = dns.RcodeFormatError
		t.Finished(tr, errNoSOA)
		return a.pack(r, q, req, out), true
	}
	r.m.Authoritative = true
	if !req.TCP || req.Stream == nil {
		// IXFR over UDP: one SOA, which tells the client to ask over TCP
		// when it is newer than its own (RFC 1995 2).
		r.m.Answer = rrs
		resp = a.pack(r, q, req, out)
		t.Finished(tr, nil)
		return resp, true
	}
	resp, err := a.stream(r, q, req, out, rrs)
	t.Finished(tr, err)
	return resp, true
}

// stream sends rrs as a series of messages, all but the last through
// req.Stream, and returns the last. Only the first carries the question
// (RFC 5936 2.2.1). With TSIG every message is signed: the first over the
// request's MAC, each next one over the MAC before it and the timers
// alone (RFC 8945 5.3.1).
func (a *Authority) stream(r *reply, q *query, req *Request, out []byte, rrs []dns.RR) ([]byte, error) {
	var prevMAC []byte
	first := true
	for len(rrs) > 0 || first {
		n, size := 0, 0
		for n < len(rrs) && (n == 0 || size+dns.Len(rrs[n]) <= transferChunk) {
			size += dns.Len(rrs[n])
			n++
		}
		r.m.Answer = rrs[:n]
		rrs = rrs[n:]
		if !first {
			r.m.Question = nil
		}
		extra := r.m.Extra
		if r.opt != nil {
			r.m.Extra = append(r.m.Extra[:len(r.m.Extra):len(r.m.Extra)], r.opt)
		}
		b, err := r.m.PackBuffer(out[:cap(out)])
		r.m.Extra = extra
		if err != nil || len(b) > 0xFFFF {
			if first {
				return headerOnly(out, q.id, q.flags, flagRD, dns.RcodeServerFailure), err
			}
			return nil, errors.Join(errStreamBroken, err)
		}
		if first && len(r.m.Question) == 1 && len(b) >= headerLen+len(q.question) {
			copy(b[headerLen:], q.question[:len(q.question)-4])
		}
		if q.signer != nil {
			b, prevMAC = q.signer.signStream(b, prevMAC)
		}
		if first {
			r.counter.Count(stripeOf(q.id), q.qtype, r.m.Rcode)
		}
		first = false
		if len(rrs) == 0 {
			return b, nil
		}
		if err := req.Stream(b); err != nil {
			return nil, errors.Join(errStreamBroken, err)
		}
	}
	return nil, nil // not reached: the loop returns the last message
}

// signStream signs one message of a stream: the first (prevMAC nil) as a
// reply, the next ones over the MAC of the one before and the timers. It
// returns the signed message and its MAC.
func (s *tsigSigner) signStream(msg, prevMAC []byte) ([]byte, []byte) {
	t := s.record(binary.BigEndian.Uint16(msg))
	if prevMAC == nil {
		t.mac = s.key.mac(s.reqMAC, msg[:headerLen], msg[headerLen:], t)
		return t.appendTo(msg), t.mac
	}
	h := s.key.hmac()
	var buf [16]byte
	h.Write(binary.BigEndian.AppendUint16(buf[:0], uint16(len(prevMAC))))
	h.Write(prevMAC)
	h.Write(msg)
	v := appendUint48(buf[:0], t.time)
	h.Write(binary.BigEndian.AppendUint16(v, t.fudge))
	t.mac = h.Sum(nil)
	return t.appendTo(msg), t.mac
}

func (k *tsigKey) hmac() hash.Hash { return hmac.New(k.hash, k.secret) }
