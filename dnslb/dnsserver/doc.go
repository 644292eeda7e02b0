// Package dnsserver moves DNS messages between sockets and a Handler: UDP
// (SO_REUSEPORT sockets read and written in recvmmsg/sendmmsg batches,
// replies sent from the address each query came to) and TCP (framing,
// pipelining, idle timeouts, a connection cap, graceful shutdown).
//
// That is its one job. It never parses or builds a DNS message: the
// Handler owns the reply. It imports nothing else of dnslb's.
package dnsserver
