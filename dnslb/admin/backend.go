package admin

import (
	"errors"
	"net/netip"
	"time"
)

// Backend is what the admin API reads and changes: the running server.
// dnslb's Runtime implements it; tests use fakes. Every method is safe for
// concurrent use.
type Backend interface {
	// Ready reports whether zones are loaded and the first health round is
	// done (for /readyz).
	Ready() bool
	// Pools returns every pool, sorted by name.
	Pools() []PoolStatus
	// Zones returns every configured zone, sorted by origin, including ones
	// whose last load failed.
	Zones() []ZoneStatus
	// SetOverride drains, undrains or forces down a member address in every
	// pool that has it. Until zero means no expiry. Unknown addresses are
	// an error wrapping ErrUnknownMember; a change that could not be saved
	// (so that it would survive a restart) is not applied, and the error
	// wraps ErrNotPersisted.
	SetOverride(addr netip.Addr, mode OverrideMode, until time.Time, reason string) error
	// Reload re-reads config and zones; on error the old ones keep serving
	// and the error says what is wrong, with file and line.
	Reload() error
	// LastReload reports when the last reload attempt ended and its error.
	LastReload() (at time.Time, err error)
}

// OverrideMode is an operator's override of a member's health.
type OverrideMode string

// The override modes. None lifts any override (undrain).
const (
	OverrideNone      OverrideMode = ""
	OverrideDrain     OverrideMode = "drain"      // not answered; still checked
	OverrideForceDown OverrideMode = "force-down" // treated as down; still checked
)

// PoolStatus describes one pool.
type PoolStatus struct {
	Name        string         `json:"name"`
	Zone        string         `json:"zone"`
	Policy      string         `json:"policy"`
	TTL         uint32         `json:"ttl"`
	MaxAnswers  int            `json:"max_answers"`
	WhenAllDown string         `json:"when_all_down"`
	Check       string         `json:"check"` // e.g. "http :8080 /healthz every 2s", "none"
	Members     []MemberStatus `json:"members"`
	// AllDown is set while the pool answers by its when_all_down fallback:
	// no primary (non-backup) member of a family is up and undrained.
	AllDown bool `json:"all_down"`
	// Fallback is what the pool answers then: "all" (every member, fail
	// open), "backup" (the backups) or "empty" (NODATA); "" while not
	// AllDown.
	Fallback string `json:"fallback,omitempty"`
	// AllDownFamilies lists the families in fallback ("A", "AAAA"): a
	// dual-stack pool may have one family all down and the other answering.
	AllDownFamilies []string `json:"all_down_families,omitempty"`
	// Degraded is set while a family's answers carry TTLDegraded instead
	// of TTL: a primary member is down by its checks, or the family is
	// in its fallback.
	Degraded    bool   `json:"degraded"`
	TTLDegraded uint32 `json:"ttl_degraded"`
}

// MemberStatus describes one member of a pool.
type MemberStatus struct {
	Address string `json:"address"`
	// State is "up", "down", "drained" or "forced-down": what decides
	// whether the member is answered.
	State string `json:"state"`
	// Healthy is the health check's verdict, whatever the override.
	Healthy bool      `json:"healthy"`
	Checked bool      `json:"checked"` // false: no health check, always healthy
	Since   time.Time `json:"since"`
	// LastError is the last probe's error, "" after a success.
	LastError string        `json:"last_error"`
	Latency   time.Duration `json:"latency_ns"`
	Weight    int           `json:"weight"`
	// EffectiveWeight is the weight the member is answered by now: 0
	// while not eligible, else its live weight (least-loaded, from its
	// load reports) or Weight, scaled while it ramps (slow_start); as
	// the metric dnslb_member_weight.
	EffectiveWeight int  `json:"effective_weight"`
	Backup          bool `json:"backup"`
	// Share is the fraction of this pool's recent answers (last minute)
	// that carried this member first, 0..1.
	Share    float64   `json:"share"`
	Override *Override `json:"override,omitempty"`
	// Checks are the states of each of the member's health checks (the
	// pool's check, or each of its checks); Healthy is true only if all
	// are, and LastError, Since and Latency are those of the first
	// failing one.
	Checks []CheckStatus `json:"checks,omitempty"`
	// Load is what the member's load agent reports (the pool's load:);
	// nil without one.
	Load *LoadStatus `json:"load,omitempty"`
	// Fleet is, in a fleet, each node's view of the member by node name:
	// "up", "down" (one of its checks is down there) or "unchecked"
	// (no result yet); nodes that do not probe it are left out.
	Fleet map[string]string `json:"fleet,omitempty"`
}

// LoadStatus is the state of a member's load agent.
type LoadStatus struct {
	// Agent is the address and port asked.
	Agent string `json:"agent"`
	// Op is the operating state it last said: "up", "down" or "" (none).
	Op string `json:"op"`
	// Admin is the administrative state it last said: "ready", "drain",
	// "maint" or "".
	Admin string `json:"admin"`
	// Percent is the last "N%", -1 for none; Weight the last "weight:N".
	Percent int `json:"percent"`
	Weight  int `json:"weight"`
	// LiveWeight is the weight least-loaded answers by: the configured
	// weight while the agent says none or is stale.
	LiveWeight int `json:"live_weight"`
	// Stale: no report for 3 intervals; what it said is dropped.
	Stale     bool      `json:"stale"`
	Reported  time.Time `json:"reported"`
	LastError string    `json:"last_error"`
}

// CheckStatus is the state of one health check of a member.
type CheckStatus struct {
	Type string `json:"type"`
	// Address is the address and port probed.
	Address   string        `json:"address"`
	Healthy   bool          `json:"healthy"`
	Since     time.Time     `json:"since"`
	LastError string        `json:"last_error"`
	Latency   time.Duration `json:"latency_ns"`
}

// Override is an operator's drain or force-down of a member.
type Override struct {
	Mode   OverrideMode `json:"mode"`
	Reason string       `json:"reason"`
	Since  time.Time    `json:"since"`
	Until  time.Time    `json:"until,omitzero"`
}

// ZoneStatus describes one configured zone.
type ZoneStatus struct {
	Origin   string    `json:"origin"`
	File     string    `json:"file"`
	Serial   uint32    `json:"serial"`
	Records  int       `json:"records"`
	LoadedAt time.Time `json:"loaded_at"`
	// Error is the last failed load's problems, one per line as
	// "file:line: message"; "" when the zone on disk is what is served.
	Error string `json:"error,omitempty"`
	// Primary is the address a pulled zone comes from (zones: primary:);
	// "" for a zone from a file.
	Primary string `json:"primary,omitempty"`
	// Expired: a pulled zone answers SERVFAIL, its copy past the SOA
	// expire or never transferred. ExpiresAt is when the copy served
	// expires unless a refresh succeeds first (zero: none, or expired).
	Expired   bool      `json:"expired,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// DNSSEC is the zone's keys, when it is signed online.
	DNSSEC *ZoneDNSSEC `json:"dnssec,omitempty"`
}

// ZoneDNSSEC is the state of a signed zone's keys.
type ZoneDNSSEC struct {
	Keys []DNSSECKey `json:"keys"`
	// NextKeyEvent is when the key set changes next (zero: no change
	// planned).
	NextKeyEvent time.Time `json:"next_key_event,omitzero"`
	// Signatures counts signatures made; Failures the answers that could
	// not be signed (SERVFAIL).
	Signatures uint64 `json:"signatures"`
	Failures   uint64 `json:"failures"`
}

// DNSSECKey is one key of a signed zone.
type DNSSECKey struct {
	Tag       uint16 `json:"tag"`
	Role      string `json:"role"`      // ksk, zsk
	Algorithm string `json:"algorithm"` // ECDSAP256SHA256, ED25519
	// State is scheduled, published (not signing yet), active or retired
	// (published, no longer signing).
	State    string    `json:"state"`
	Publish  time.Time `json:"publish,omitzero"`
	Activate time.Time `json:"activate,omitzero"`
	Inactive time.Time `json:"inactive,omitzero"`
	Delete   time.Time `json:"delete,omitzero"`
	File     string    `json:"file"`
}

// ErrUnknownMember is wrapped by SetOverride for an address in no pool.
var ErrUnknownMember = errors.New("no pool has this member")

// ErrNotPersisted is wrapped by SetOverride when the change could not be
// written to the state file. The change was not applied: an acknowledged
// drain must not be lost by the next restart.
var ErrNotPersisted = errors.New("change NOT applied: it could not be saved to the state file")
