package fleet

import (
	"context"
	"errors"
)

// Fleet is this node's membership of a fleet. Create with New, Start to
// join, Close to leave.
type Fleet struct {
	changes chan struct{}
}

// New validates cfg and creates the node, listening on Bind; it does not
// join yet.
func New(cfg Config) (*Fleet, error) { return nil, errors.New("fleet: not built yet") }

// Restore loads overrides kept across a restart (before Start).
func (f *Fleet) Restore(ovs []Override) {}

// Start joins the seeds (retrying in the background until one answers)
// and runs until ctx ends or Close.
func (f *Fleet) Start(ctx context.Context) error { return errors.New("fleet: not built yet") }

// Close leaves the fleet, stops memberlist and waits for its goroutines.
func (f *Fleet) Close() error { return nil }

// SetOverride stamps o (its Stamp is set here), stores it and sends it to
// every live node. It returns the stamped override.
func (f *Fleet) SetOverride(o Override) Override { return o }

// Overrides returns the overrides in force now: not lifted, not expired.
func (f *Fleet) Overrides() []Override { return nil }

// AllOverrides returns every override known, tombstones included, for the
// state file.
func (f *Fleet) AllOverrides() []Override { return nil }

// Publish sets this node's observations (the full set, by target key)
// and sends them to the other nodes if they changed.
func (f *Fleet) Publish(obs map[string]Observation) {}

// SetMeta sets what this node says about its config.
func (f *Fleet) SetMeta(m Meta) {}

// Nodes returns every known node, this one first, then by name.
func (f *Fleet) Nodes() []Node { return nil }

// Alive returns the names of the live nodes (alive or suspect), this one
// included, sorted.
func (f *Fleet) Alive() []string { return nil }

// Isolated reports whether this node is cut off: it has seeds or has
// seen peers, and no other node is alive.
func (f *Fleet) Isolated() bool { return false }

// PeerObservations returns the observations of key by the live nodes
// other than this one, by node name.
func (f *Fleet) PeerObservations(key string) map[string]Observation { return nil }

// Owners returns the k live nodes that probe key, by rendezvous hashing
// over Alive; k <= 0 or k >= len(Alive) is every live node.
func (f *Fleet) Owners(key string, k int) []string { return nil }

// Owns reports whether this node is one of key's k owners.
func (f *Fleet) Owns(key string, k int) bool { return true }

// Divergences lists the live nodes whose config or zone serials differ
// from this node's.
func (f *Fleet) Divergences() []Divergence { return nil }

// Stats returns the counters.
func (f *Fleet) Stats() Stats { return Stats{} }

// Changes is poked (buffer one, never blocks the sender) whenever the
// overrides, a peer's observations or meta, or the membership change.
func (f *Fleet) Changes() <-chan struct{} { return f.changes }

// Decide is the fleet's state of one target under policy p, from the
// checked observations of the nodes that observe it (unchecked ones are
// ignored); with none it is prev.
func Decide(p HealthPolicy, obs []Observation, prev bool) bool { return prev }
