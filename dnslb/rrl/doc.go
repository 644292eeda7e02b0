// Package rrl is response rate limiting (RRL) for an authoritative DNS
// server, with the semantics operators know from Knot DNS, NSD and BIND
// (the Vixie/Schryver design): UDP responses are counted per client
// prefix (/24, /56), per response category and per imputed name, and a
// response over its rate is either dropped or, every Slip-th time, sent as
// a truncated (TC=1) reply so that a real resolver retries over TCP while a
// victim of spoofed queries gets no more bytes than the attacker sent.
//
// # Accounts
//
// A response is charged to an account: the client's prefix, its Category
// and a name, hashed (Class). The name is the one an attacker cannot vary
// to escape the limit:
//
//	Answer    the query name
//	NoData    the query name
//	NXDomain  the zone (random names would otherwise each get a budget)
//	Referral  the delegation point
//	Wildcard  the wildcard's owner ("*.example.test.")
//	Error     the zone when there is one, else no name: REFUSED, FORMERR,
//	          SERVFAIL… from one prefix share one account
//
// ANY, large and DNSSEC responses are not categories of their own (Knot
// 2.x had them): a category of its own only gives a prefix more budget,
// answers to ANY are minimal (RFC 8482), and a large answer is charged to
// its name like any other.
//
// # Algorithm
//
// Each account is a token bucket kept as a GCRA "theoretical arrival
// time": one word per account, updated with a single compare-and-swap, so
// the hot path takes no lock. An account allows a burst of one second's
// worth of responses (ResponsesPerSecond), then ResponsesPerSecond per
// second. A limited response does not use up budget: a client that stops
// flooding gets its first answer again 1/ResponsesPerSecond later.
//
// # Table
//
// Accounts live in a fixed-size, 4-way set-associative hash table (as
// Knot's is fixed-size), not an LRU such as golang-lru: its memory is
// TableSize×8 bytes whatever the traffic (an LRU entry costs ten times
// that), and a lookup is a few loads from one cache line with no lock and
// no list to update (an LRU moves its entry to the front under a mutex on
// every response, which is every UDP reply here). A new account takes the place of an
// idle one in its set (an account whose bucket is full again holds nothing
// worth keeping), else of the one with the least debt; the table index is
// a keyed hash, so an attacker cannot aim at one set. When more accounts
// are in debt than the table holds, some are forgotten and start over:
// the limit then leaks, but memory stays bounded.
//
// # Clock
//
// The clock (Config.Now) is read only to confirm that a response the time
// last read would limit is over its rate: the common path, a client
// within its rate, reads no clock. A stale time only makes the
// limiter stricter, so the confirmation read is all that is needed; a
// client idle since the time was last read may get one extra burst.
//
// Only UDP responses should be checked: TCP cannot be spoofed, and it is
// where slipped clients go. The caller decides (Limiter checks what it is
// given).
package rrl
