package dnsserver

import "net/netip"

// Request is one DNS message received by a Server.
type Request struct {
	// Wire is the message as received; the handler must not keep it.
	Wire []byte
	// Remote is the client's address.
	Remote netip.AddrPort
	// TCP is set for messages that came over TCP (no size limit, no TC).
	TCP bool
	// Stream, set for TCP requests, sends one message of a reply made of
	// several (a zone transfer) ahead of the one the handler returns, in
	// order. The message is copied before Stream returns; an error means
	// the connection failed, and the handler should return nil. Nil on UDP.
	Stream func(msg []byte) error
}

// Handler turns a request into the packed reply, appended to out[:0]. A nil
// reply means: send nothing (and, over TCP, close the connection).
//
// The Handler alone writes replies; Server never builds DNS messages.
type Handler interface {
	ServeDNS(req *Request, out []byte) []byte
}
