package answer

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TSIG on queries (RFC 8945). A signed query is verified before it is
// answered, and its reply is signed with the same key; a query that fails
// gets NOTAUTH with the TSIG error the RFC names. dnslb signs and verifies
// the wire itself rather than through miekg/dns's TsigGenerate and
// TsigVerify: those re-pack the message (losing the question's letter
// case and the NSD-style truncation of Authority.pack), alter the buffer
// they verify, and read the clock themselves.

// TSIGAlgorithms lists the algorithm names a key may have, as miekg/dns
// names them (without the final dot; hmac-md5 is short for
// hmac-md5.sig-alg.reg.int.).
var TSIGAlgorithms = []string{"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"}

// tsigAlgorithm returns the wire name and hash of a configured algorithm
// name, or "" when it is not one of TSIGAlgorithms.
func tsigAlgorithm(name string) (string, func() hash.Hash) {
	switch strings.TrimSuffix(strings.ToLower(name), ".") {
	case "hmac-sha256":
		return dns.HmacSHA256, sha256.New
	case "hmac-sha384":
		return dns.HmacSHA384, sha512.New384
	case "hmac-sha512":
		return dns.HmacSHA512, sha512.New
	case "hmac-sha224":
		return dns.HmacSHA224, sha256.New224
	case "hmac-sha1":
		return dns.HmacSHA1, sha1.New
	case "hmac-md5", "hmac-md5.sig-alg.reg.int":
		return dns.HmacMD5, md5.New
	}
	return "", nil
}

// tsigKey is one key, ready for signing.
type tsigKey struct {
	name    string // canonical
	alg     string // canonical wire name of the algorithm
	nameW   []byte // name and alg in canonical wire form, as MACs cover them
	algW    []byte
	hash    func() hash.Hash
	macSize int
	secret  []byte
}

// Keyring holds the TSIG keys of one configuration generation, by name.
type Keyring struct {
	keys map[string]*tsigKey
}

// NewKeyring returns a keyring with no keys.
func NewKeyring() *Keyring { return &Keyring{keys: map[string]*tsigKey{}} }

// KnownTSIGAlgorithm reports whether name is one of TSIGAlgorithms (in any
// letter case, with or without the final dot).
func KnownTSIGAlgorithm(name string) bool {
	_, h := tsigAlgorithm(name)
	return h != nil
}

// Add adds a key. The caller has checked, naming the config key, that name
// is a domain name, algorithm is known (KnownTSIGAlgorithm) and secret is
// not empty; a key with an unknown algorithm is not added.
func (r *Keyring) Add(name, algorithm string, secret []byte) {
	k := &tsigKey{name: dns.CanonicalName(name), secret: secret}
	if k.alg, k.hash = tsigAlgorithm(algorithm); k.hash == nil {
		return
	}
	k.nameW, k.algW = wireName(k.name), wireName(k.alg)
	k.macSize = k.hash().Size()
	r.keys[k.name] = k
}

// wireName is a canonical, valid name in uncompressed wire form.
func wireName(name string) []byte {
	b := make([]byte, 256)
	n, err := dns.PackDomainName(name, b, 0, nil, false)
	if err != nil {
		return []byte{0} // names are checked before; never reached
	}
	return b[:n]
}

// tsigRR is a TSIG record being written.
type tsigRR struct {
	name, alg []byte // canonical wire form
	time      uint64
	fudge     uint16
	mac       []byte
	origID    uint16
	err       uint16
	other     []byte
}

// tsigFixed is the rdata of a TSIG record besides the algorithm name, the
// MAC and the other data: time (48 bits), fudge, MAC size, original ID,
// error, other length.
const tsigFixed = 6 + 2 + 2 + 2 + 2 + 2

func (t *tsigRR) size() int {
	return len(t.name) + 10 + len(t.alg) + tsigFixed + len(t.mac) + len(t.other)
}

// appendTo appends the record and counts it in the message's ARCOUNT.
func (t *tsigRR) appendTo(msg []byte) []byte {
	b := append(msg, t.name...)
	b = binary.BigEndian.AppendUint16(b, dns.TypeTSIG)
	b = binary.BigEndian.AppendUint16(b, dns.ClassANY)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(t.alg)+tsigFixed+len(t.mac)+len(t.other)))
	b = append(b, t.alg...)
	b = appendUint48(b, t.time)
	b = binary.BigEndian.AppendUint16(b, t.fudge)
	b = binary.BigEndian.AppendUint16(b, uint16(len(t.mac)))
	b = append(b, t.mac...)
	b = binary.BigEndian.AppendUint16(b, t.origID)
	b = binary.BigEndian.AppendUint16(b, t.err)
	b = binary.BigEndian.AppendUint16(b, uint16(len(t.other)))
	b = append(b, t.other...)
	binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
	return b
}

func appendUint48(b []byte, v uint64) []byte {
	return append(b, byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// mac computes the MAC of a message (RFC 8945 4.3): the request's MAC for
// a reply, the message without its TSIG record (header, whose ID is the
// original ID and whose ARCOUNT does not count the TSIG, and body), and
// the TSIG variables.
func (k *tsigKey) mac(reqMAC, header, body []byte, t *tsigRR) []byte {
	h := hmac.New(k.hash, k.secret)
	var buf [16]byte
	if reqMAC != nil {
		h.Write(binary.BigEndian.AppendUint16(buf[:0], uint16(len(reqMAC))))
		h.Write(reqMAC)
	}
	h.Write(header)
	h.Write(body)
	h.Write(t.name)
	h.Write(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(buf[:0], dns.ClassANY), 0))
	h.Write(t.alg)
	v := appendUint48(buf[:0], t.time)
	v = binary.BigEndian.AppendUint16(v, t.fudge)
	v = binary.BigEndian.AppendUint16(v, t.err)
	v = binary.BigEndian.AppendUint16(v, uint16(len(t.other)))
	h.Write(v)
	h.Write(t.other)
	return h.Sum(nil)
}

// tsigSigner signs the reply to a verified query.
type tsigSigner struct {
	key    *tsigKey
	reqMAC []byte
	fudge  uint16
	now    time.Time
	// err and other: a signed error (BADTIME, BADTRUNC) and its other
	// data; time then is the request's.
	err   uint16
	other []byte
	time  uint64
}

// record is the TSIG record for the reply, without its MAC.
func (s *tsigSigner) record(id uint16) *tsigRR {
	t := &tsigRR{name: s.key.nameW, alg: s.key.algW, time: uint64(s.now.Unix()), fudge: s.fudge,
		origID: id, err: s.err, other: s.other}
	if s.err != 0 {
		t.time = s.time
	}
	return t
}

// size is how much the TSIG record adds to the reply.
func (s *tsigSigner) size() int {
	t := s.record(0)
	return t.size() + s.key.macSize
}

// sign appends the TSIG record to a packed reply.
func (s *tsigSigner) sign(msg []byte) []byte {
	t := s.record(binary.BigEndian.Uint16(msg))
	t.mac = s.key.mac(s.reqMAC, msg[:headerLen], msg[headerLen:], t)
	return t.appendTo(msg)
}

// tsigOutcome is what checking a query's TSIG decided.
type tsigOutcome int

const (
	tsigOK tsigOutcome = iota
	tsigFormErr
	tsigUnsigned // an unsigned NOTAUTH error (BADKEY, BADSIG)
	tsigSigned   // a signed NOTAUTH error (BADTIME, BADTRUNC)
)

// verifyTSIG checks the TSIG record of q (RFC 8945 5.2), in the RFC's
// order: the key (name and algorithm), the MAC's size, the MAC, then the
// time. It returns the signer for the reply (for tsigSigned, one that
// signs the error), and for errors the TSIG error code.
func verifyTSIG(ring *Keyring, msg []byte, q *query, now time.Time) (*tsigSigner, uint16, tsigOutcome) {
	rr := q.tsig
	if rr.Hdr.Class != dns.ClassANY || rr.Hdr.Ttl != 0 {
		return nil, 0, tsigFormErr // RFC 8945 4.2, and as NSD
	}
	var k *tsigKey
	if ring != nil {
		k = ring.keys[dns.CanonicalName(rr.Hdr.Name)]
	}
	// A key is its name and its algorithm (5.2.1).
	if k == nil || k.alg != dns.CanonicalName(rr.Algorithm) {
		return nil, dns.RcodeBadKey, tsigUnsigned
	}
	mac, err := hex.DecodeString(rr.MAC)
	if err != nil || len(mac) > k.macSize || len(mac) < max(10, k.macSize/2) {
		return nil, 0, tsigFormErr // 5.2.2.1
	}
	other, err := hex.DecodeString(rr.OtherData)
	if err != nil {
		return nil, 0, tsigFormErr
	}
	var header [headerLen]byte
	copy(header[:], msg)
	binary.BigEndian.PutUint16(header[0:], rr.OrigId)
	binary.BigEndian.PutUint16(header[10:], binary.BigEndian.Uint16(msg[10:])-1)
	t := &tsigRR{name: k.nameW, alg: k.algW, time: rr.TimeSigned, fudge: rr.Fudge, err: rr.Error, other: other}
	if want := k.mac(nil, header[:], msg[headerLen:q.tsigOff], t); !hmac.Equal(want[:len(mac)], mac) {
		return nil, dns.RcodeBadSig, tsigUnsigned
	}
	s := &tsigSigner{key: k, reqMAC: mac, fudge: rr.Fudge, now: now}
	if len(mac) < k.macSize {
		// Truncated within what 5.2.2.1 allows, but dnslb's policy is
		// the full MAC.
		s.err, s.time = dns.RcodeBadTrunc, rr.TimeSigned
		return s, dns.RcodeBadTrunc, tsigSigned
	}
	if skew := now.Unix() - int64(rr.TimeSigned); skew > int64(rr.Fudge) || -skew > int64(rr.Fudge) {
		// 5.2.3: signed, with the client's time as Time Signed and the
		// server's in Other Data.
		s.err, s.time = dns.RcodeBadTime, rr.TimeSigned
		s.other = appendUint48(nil, uint64(now.Unix()))
		return s, dns.RcodeBadTime, tsigSigned
	}
	return s, 0, tsigOK
}

// tsigError writes the NOTAUTH reply to a query whose TSIG failed, in
// NSD's shape: a header without the question, the OPT if the query had
// one, and a TSIG record carrying the error, signed by s or (s nil:
// BADKEY, BADSIG) with an empty MAC (RFC 8945 5.3.2).
func (a *Authority) tsigError(out []byte, q *query, s *tsigSigner, code uint16) []byte {
	const keepOpRD = 0x7800 | flagRD
	out = headerOnly(out, q.id, q.flags, keepOpRD, dns.RcodeNotAuth)
	if q.edns {
		out = append(out, 0, 0, 41) // root OPT
		out = binary.BigEndian.AppendUint16(out, a.udpSize)
		var flags uint16
		if q.do && q.version == 0 {
			flags = 0x8000
		}
		out = append(out, 0, 0) // extended rcode, version
		out = binary.BigEndian.AppendUint16(out, flags)
		out = append(out, 0, 0) // no options
		binary.BigEndian.PutUint16(out[10:], 1)
	}
	if s != nil {
		return s.sign(out)
	}
	rr := q.tsig
	t := &tsigRR{name: wireName(dns.CanonicalName(rr.Hdr.Name)), alg: wireName(dns.CanonicalName(rr.Algorithm)),
		time: rr.TimeSigned, fudge: rr.Fudge, origID: q.id, err: code}
	return t.appendTo(out)
}
