// Package dnslb is the running server: it loads the config and the zones,
// builds each generation (the answer.View of zones and pools), reloads and
// watches them, keeps the state file and the metrics registry, and wires
// the parts together in a Runtime.
//
// The layers below it are packages of their own, each importing none
// above it: dnsserver only moves bytes (sockets, TCP framing, timeouts,
// connection caps) and hands every message to a dnsserver.Handler; answer
// is that Handler, implementing the authoritative answer contract of
// docs/design.md, with load-balancing pools (package pool) plugged in where an
// RRset is answered.
package dnslb
