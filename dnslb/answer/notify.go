package answer

import (
	"net/netip"

	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// NOTIFY in (RFC 1996): a primary says a zone dnslb pulls from it
// changed. The answer path parses and verifies the message (TSIG
// included) as any query's; whether it is accepted, and what follows, is
// the Notifies' (the Runtime's secondary zones). Without a Notifies, and
// for a zone that is not pulled, NOTIFY is answered NOTIMP, as every
// opcode but QUERY.

// NotifyRequest is one NOTIFY received.
type NotifyRequest struct {
	// Zone is the question's name, canonical.
	Zone string
	// Remote is the sender's address and port.
	Remote netip.AddrPort
	// Key is the canonical name of the TSIG key that signed the NOTIFY,
	// "" if it was unsigned.
	Key string
}

// NotifyVerdict is what becomes of a NOTIFY.
type NotifyVerdict int

const (
	// NotifyUnknown: no zone of that name is pulled from a primary; the
	// NOTIFY is answered NOTIMP, as without secondary zones.
	NotifyUnknown NotifyVerdict = iota
	// NotifyRefused: the zone is pulled, but not from the sender (or the
	// NOTIFY is not signed with the primary's key); answered REFUSED.
	NotifyRefused
	// NotifyAccepted: answered NOERROR, authoritative; the zone is
	// refreshed.
	NotifyAccepted
)

// Notifies decides NOTIFY messages. Notify is called while answering and
// must be quick and safe for concurrent use.
type Notifies interface {
	Notify(r *NotifyRequest) NotifyVerdict
}

// SetNotifies makes the authority hand NOTIFY messages to n; nil (the
// default) answers them NOTIMP. Call before serving.
func (a *Authority) SetNotifies(n Notifies) { a.notifies = n }

// notify answers a NOTIFY that parsed, its TSIG verified.
func (a *Authority) notify(q *query, req *Request, out []byte, view *View) []byte {
	nr := &NotifyRequest{Zone: zones.CanonicalName(q.name), Remote: req.Remote}
	if q.signer != nil {
		nr.Key = q.signer.key.name
	}
	verdict := NotifyUnknown
	if q.qtype == dns.TypeSOA && q.qclass == dns.ClassINET {
		verdict = a.notifies.Notify(nr)
	}
	if verdict == NotifyUnknown && q.signer == nil {
		a.dropped("opcode")
		return headerOnly(out, q.id, q.flags, 0x7800|flagRD, dns.RcodeNotImplemented)
	}
	r := a.newReply(q, true)
	r.m.Opcode = dns.OpcodeNotify
	r.counter = view.NoZone
	if z := view.Zones.Zone(nr.Zone); z != nil && view.Counters != nil {
		r.counter = view.Counters[z]
	}
	switch verdict {
	case NotifyAccepted:
		r.m.Authoritative = true
	case NotifyRefused:
		r.m.Rcode = dns.RcodeRefused
	default:
		a.dropped("opcode")
		r.m.Rcode = dns.RcodeNotImplemented
	}
	return a.pack(r, q, req, out)
}

// skipRecords steps over n records from off: a NOTIFY's answer section
// may hold the new SOA (RFC 1996 3.7), which is only a hint.
func skipRecords(msg []byte, off int, n uint16) (int, error) {
	for range n {
		if off >= len(msg) {
			return 0, errFormat
		}
		rr, next, err := dns.UnpackRR(msg, off)
		if err != nil || rr == nil {
			return 0, errFormat
		}
		off = next
	}
	return off, nil
}
