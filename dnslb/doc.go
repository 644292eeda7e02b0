// Package dnslb is the running DNS server: a Runtime builds a Generation
// (the config, every zone and the pools over them; the build that Check
// runs too) to the side, swaps it in whole on reload, and keeps the health
// checks, the state file and the file watcher that feed it.
//
// The split is deliberate: Server only moves bytes (sockets, TCP framing,
// timeouts, connection caps) and hands every message to a Handler, which
// owns parsing and the reply. Authority is the Handler that implements the
// authoritative answer contract of docs/design.md ("Pools: the answer
// contract"); load-balancing pools (package pool) plug into it where an
// RRset is answered.
package dnslb
