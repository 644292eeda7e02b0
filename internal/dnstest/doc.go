// Package dnstest is the test kit that dnslb's unit and integration tests
// share: DNS messages over UDP and TCP (with the two-byte TCP framing),
// sections compared as sets, a small DNS server on a free loopback port,
// and one Eventually helper for conditions that become true in time.
//
// It is imported only by tests.
package dnstest
