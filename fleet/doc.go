// Package fleet makes several dnslb nodes one service: membership and
// gossip over hashicorp/memberlist (SWIM), operator overrides that reach
// every node and converge last-writer-wins, each node's health
// observations shared with the others, the fleet's health decision for a
// target under a policy (local, majority, any-up), rendezvous hashing to
// share probes, and the nodes' config and zone serials compared so that a
// divergence is reported rather than silent.
//
// It imports nothing of dnslb's: targets and members are strings, and the
// running server maps its own types onto them.
package fleet
