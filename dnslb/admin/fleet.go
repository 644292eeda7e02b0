package admin

import (
	"context"
	"net/http"
	"time"
)

// FleetBackend is implemented by a Backend that is a node of a fleet; the
// fleet endpoint and the page's fleet section appear only then.
type FleetBackend interface {
	// Fleet returns the fleet as this node sees it; ok is false when the
	// node is in none.
	Fleet() (FleetStatus, bool)
}

// FleetStatus is GET /api/v1/fleet: the fleet as this node sees it.
type FleetStatus struct {
	Name            string `json:"name"`
	Node            string `json:"node"` // this node's name
	Health          string `json:"health"`
	ProbesPerTarget int    `json:"probes_per_target"`
	// Isolated: this node sees no other node alive and answers from its
	// own health checks alone.
	Isolated    bool         `json:"isolated"`
	Nodes       []FleetNode  `json:"nodes"` // this node first
	Divergences []Divergence `json:"divergences"`
}

// FleetNode is one node of the fleet.
type FleetNode struct {
	Name        string    `json:"name"`
	Address     string    `json:"address"`
	State       string    `json:"state"` // alive, suspect, dead, left
	Self        bool      `json:"self"`
	LastContact time.Time `json:"last_contact,omitzero"`
	ConfigHash  string    `json:"config_hash,omitempty"`
	// Observations are the node's view of each target it probes, by
	// target ("ADDR:PORT CHECK").
	Observations map[string]FleetObservation `json:"observations"`
	// Down counts the targets the node sees down, for the page.
	Down int `json:"down"`
}

// FleetObservation is a node's view of one target.
type FleetObservation struct {
	Up      bool      `json:"up"`
	Checked bool      `json:"checked"`
	Since   time.Time `json:"since,omitzero"`
}

// Divergence is a node that disagrees with this one on the pools' config
// or a zone's serial.
type Divergence struct {
	Node   string `json:"node"`
	What   string `json:"what"` // "config" or "serial"
	Zone   string `json:"zone,omitempty"`
	Theirs string `json:"theirs"`
	Ours   string `json:"ours"`
}

func (s *Server) handleFleet(w http.ResponseWriter, _ *http.Request) {
	fb, ok := s.backend.(FleetBackend)
	var fs FleetStatus
	if ok {
		fs, ok = fb.Fleet()
	}
	if !ok {
		writeError(w, http.StatusNotFound, "this node is not in a fleet (no fleet: block in its config)")
		return
	}
	writeJSON(w, http.StatusOK, fs)
}

// fleetOf is the backend's fleet for the page, nil when none.
func (s *Server) fleetOf() *FleetStatus {
	if fb, ok := s.backend.(FleetBackend); ok {
		if fs, ok := fb.Fleet(); ok {
			return &fs
		}
	}
	return nil
}

// Fleet returns the fleet as the server sees it; a server in no fleet is
// an *APIError with StatusCode 404.
func (c *Client) Fleet(ctx context.Context) (FleetStatus, error) {
	var fs FleetStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/fleet", nil, &fs)
	return fs, err
}
