package answer

import (
	"encoding/binary"
	"errors"

	"github.com/dnslb/dnslb/dnslb/dnssec"
	"github.com/dnslb/dnslb/dnslb/rrl"

	"github.com/miekg/dns"
)

// Header flag bits (RFC 1035 4.1.1).
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
)

const headerLen = 12

// query is what the answer path needs from a request, parsed straight from
// the wire so that odd packets can be judged the way NSD judges them.
type query struct {
	id      uint16
	flags   uint16
	opcode  int
	qdcount uint16

	name     string // presentation format, letter case as sent
	qtype    uint16
	qclass   uint16
	question []byte // the question section as sent (name, type, class)

	edns    bool
	udpSize uint16 // client's advertised size, at least 512
	do      bool
	co      bool // RFC 9824 Compact Answers OK
	version uint8

	tsig    *dns.TSIG   // the query's TSIG record, nil if unsigned
	tsigOff int         // where the TSIG record starts in the message
	signer  *tsigSigner // set once the TSIG verified: signs the reply

	opts []byte // the OPT record's RDATA: its options

	// ecs: the query carries a well-formed CLIENT-SUBNET option, ecsOpt
	// (see readECS).
	ecs    bool
	ecsOpt ecsOpt

	ixfr       bool   // an IXFR with the client's SOA (see parseIXFRSOA)
	ixfrSerial uint32 // that SOA's serial

	// cookie is what the COOKIE option proved (see Cookies.Check), and
	// replyCookie the COOKIE to answer with. validCookie: the client
	// proved its address (rate limiting exempts it).
	cookie      CookieStatus
	validCookie bool
	replyCookie [replyCookieLen]byte

	rrl rrl.Class // what rate limiting charges the reply to
}

func (q *query) rd() bool { return q.flags&flagRD != 0 }

var errFormat = errors.New("malformed query")

// parseQuestion reads the single question at offset 12. Compression
// pointers are refused: a question has nothing before it to point at.
func parseQuestion(msg []byte, q *query) (int, error) {
	off := headerLen
	total := 0
	for {
		if off >= len(msg) {
			return 0, errFormat
		}
		l := int(msg[off])
		if l&0xC0 != 0 {
			return 0, errFormat
		}
		off++
		if l == 0 {
			break
		}
		total += l + 1
		if total > 254 || off+l > len(msg) {
			return 0, errFormat
		}
		off += l
	}
	if off+4 > len(msg) {
		return 0, errFormat
	}
	name, _, err := dns.UnpackDomainName(msg, headerLen)
	if err != nil {
		return 0, errFormat
	}
	q.name = name
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	off += 4
	q.question = msg[headerLen:off]
	return off, nil
}

// parseAdditional reads arcount records after off, keeping what EDNS says.
// The count is judged by what the message holds: every record must start
// before the message ends (miekg/dns unpacks an empty record at its end
// without an error, so a count of 65,535 would otherwise cost as many
// rounds). As NSD, a query's additional section may hold an OPT and a
// TSIG and nothing else; more than one OPT, or an OPT not owned by the
// root, is malformed. So the loop ends after at most a few records,
// whatever the count says.
func parseAdditional(msg []byte, off int, arcount uint16, q *query) error {
	for i := range arcount {
		if off >= len(msg) {
			return errFormat
		}
		rr, next, err := dns.UnpackRR(msg, off)
		if err != nil || rr == nil {
			return errFormat
		}
		start := off
		off = next
		switch rr := rr.(type) {
		case *dns.OPT:
			if q.edns || rr.Hdr.Name != "." {
				return errFormat
			}
			q.edns = true
			q.udpSize = max(rr.UDPSize(), dns.MinMsgSize)
			q.do = rr.Do()
			q.co = rr.Hdr.Ttl&dnssec.COFlag != 0
			q.version = rr.Version()
			if n := int(rr.Hdr.Rdlength); n <= next-start {
				q.opts = msg[next-n : next] // the RDATA ends the record
			}
		case *dns.TSIG:
			if i != arcount-1 {
				return errFormat // RFC 8945 5.1: the TSIG is the last record
			}
			q.tsig, q.tsigOff = rr, start
		default:
			return errFormat
		}
	}
	return nil
}

// headerOnly writes a reply that is just a header: the shape NSD uses for
// FORMERR and NOTIMP. keepFlags are copied from the query.
func headerOnly(out []byte, id, qflags uint16, keepFlags uint16, rcode int) []byte {
	out = append(out[:0], make([]byte, headerLen)...)
	binary.BigEndian.PutUint16(out[0:], id)
	flags := flagQR | qflags&keepFlags | uint16(rcode&0xF)
	binary.BigEndian.PutUint16(out[2:], flags)
	return out
}
