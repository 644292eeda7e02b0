package fleet

import (
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// Config configures a Fleet.
type Config struct {
	// Cluster names the fleet. It is the memberlist label of every packet
	// and stream: nodes of another cluster are refused.
	Cluster string
	// NodeName is this node's name, unique in the fleet (default: the
	// host name).
	NodeName string
	// Bind is the gossip address, host:port (UDP and TCP).
	Bind string
	// Advertise is the address peers reach this node at ("": Bind).
	Advertise string
	// Join lists seed nodes, host:port. Start joins the first that
	// answers and keeps retrying in the background while none has.
	Join []string
	// Keys are the gossip encryption keys (16, 24 or 32 bytes); the first
	// encrypts, all decrypt. None: no encryption (the caller allows that
	// on loopback only).
	Keys [][]byte
	// Log receives memberlist's log lines, as zerolog events.
	Log zerolog.Logger
	// Now is the clock of override stamps and expiry (default time.Now).
	Now func() time.Time
	// Transport replaces memberlist's network transport (unit tests use
	// memberlist.MockNetwork); nil: UDP and TCP on Bind.
	Transport memberlist.Transport
	// Timing tunes failure detection; zero fields take DefaultTiming's.
	Timing Timing
}

// Timing is how quickly the fleet notices a node gone and how often it
// reconciles full state.
type Timing struct {
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	SuspicionMult    int
	GossipInterval   time.Duration
	PushPullInterval time.Duration
	RetryJoin        time.Duration
}

// DefaultTiming suits name servers on one LAN or a few sites: a node that
// stops answering is suspected within a second and declared dead a few
// seconds later, and full state is reconciled every 10 s.
var DefaultTiming = Timing{
	ProbeInterval:    500 * time.Millisecond,
	ProbeTimeout:     250 * time.Millisecond,
	SuspicionMult:    3,
	GossipInterval:   100 * time.Millisecond,
	PushPullInterval: 10 * time.Second,
	RetryJoin:        time.Second,
}

// Stamp orders changes of one override: a higher Wall wins, a tie goes
// to the higher Node. Wall is a hybrid logical clock in nanoseconds: it
// never goes back and is always above every stamp the node has seen, so
// a change made after seeing another wins over it even across skewed
// clocks.
type Stamp struct {
	Wall int64  `json:"wall"`
	Node string `json:"node"`
}

// Less reports whether s is older than t.
func (s Stamp) Less(t Stamp) bool {
	if s.Wall != t.Wall {
		return s.Wall < t.Wall
	}
	return s.Node < t.Node
}

// Override is an operator's override of one member, fleet-wide. Mode ""
// is a lifted override (a tombstone): it is kept, so that an older drain
// arriving late does not come back.
type Override struct {
	Member string    `json:"member"` // the member's address, text
	Mode   string    `json:"mode"`   // "drain", "force-down", or "" (lifted)
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until,omitzero"` // zero: no expiry
	Stamp  Stamp     `json:"stamp"`
}

// Observation is one node's view of one target.
type Observation struct {
	Up      bool      `json:"up"`
	Checked bool      `json:"checked"` // false until the node's first result
	Since   time.Time `json:"since"`
}

// Meta is what a node says about its config, to find divergences.
type Meta struct {
	// ConfigHash digests the pools and checks the node serves.
	ConfigHash string `json:"config_hash"`
	// Serials are its zones' serials by origin.
	Serials map[string]uint32 `json:"serials,omitempty"`
}

// Node is a member of the fleet as this node sees it.
type Node struct {
	Name  string
	Addr  string
	State string // "alive", "suspect", "dead", "left"
	Self  bool
	// LastContact is when this node last heard from it (now for self).
	LastContact time.Time
	Meta        Meta
	// Observations are its published views by target key.
	Observations map[string]Observation
}

// Divergence is a disagreement of a node with this one.
type Divergence struct {
	Node   string
	What   string // "config" or "serial"
	Zone   string // for "serial"
	Theirs string
	Ours   string
}

// Stats are the fleet's counters, for metrics.
type Stats struct {
	Members  map[string]int       // by state
	Messages map[[2]string]uint64 // by {direction "in"/"out", type}
	Rejected map[string]uint64    // by reason: "decrypt", "label", "malformed"
}

// HealthPolicy is how the fleet decides a target's state from the
// nodes' observations.
type HealthPolicy string

// The health policies.
const (
	// Local: each node decides alone (a node that does not probe a
	// target takes the view of those that do).
	Local HealthPolicy = "local"
	// Majority: down when more than half of the nodes that observe it
	// see it down.
	Majority HealthPolicy = "majority"
	// AnyUp: up while at least one node sees it up.
	AnyUp HealthPolicy = "any-up"
)
