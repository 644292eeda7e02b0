// Package dnstest is the test kit that dnslb's unit and integration tests
// share: DNS messages over UDP and TCP (with the two-byte TCP framing),
// queries with EDNS options, cookies or a TSIG signature, sections compared
// as sets, a small DNS server on a free loopback port, and one Eventually
// helper for conditions that become true in time. Its subpackage
// handlertest serves messages through a dnsserver.Handler without a socket.
//
// It imports nothing of dnslb's, so that every package's tests can use it,
// dnsserver's included, and it is imported only by tests.
package dnstest
