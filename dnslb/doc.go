// Package dnslb answers DNS queries authoritatively from the zones in a
// zones.Store and serves them over UDP and TCP.
//
// The split is deliberate: dnsserver.Server only moves bytes (sockets, TCP
// framing, timeouts, connection caps) and hands every message to a
// dnsserver.Handler, which owns parsing and the reply. Authority is the
// Handler that implements the authoritative answer contract of DESIGN.md;
// load-balancing pools plug into it where an RRset is answered.
package dnslb
