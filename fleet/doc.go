// Package fleet makes several dnslb nodes one service: membership and
// gossip over hashicorp/memberlist (SWIM), operator overrides that reach
// every node and converge last-writer-wins, each node's health
// observations shared with the others, the fleet's health decision for a
// target under a policy (local, majority, any-up), rendezvous hashing to
// share probes, and the nodes' config and zone serials compared so that a
// divergence is reported rather than silent.
//
// A change (an override, this node's observations or meta) is sent at
// once to every other live node over memberlist's reliable stream
// (TCP, encrypted when keys are set), not by gossip, so that a drain
// reaches the fleet within a round trip. memberlist's push-pull, on
// join and every Timing.PushPullInterval, exchanges each node's full
// state as well: that is how a node that was away, restarted or cut off
// catches up, and what repairs a lost send. Overrides converge
// last-writer-wins by Stamp; observations and meta are each node's own
// and versioned by it.
//
// It imports nothing of dnslb's: targets and members are strings, and the
// running server maps its own types onto them.
package fleet
