package answer

import (
	"fmt"
	"time"
)

// OverrideMode is an operator's override of a member's health: the
// core's own type. The admin API has its JSON spelling (admin.OverrideMode)
// and the state file its own (package dnslb's stateOverride); each
// converts at its edge, so neither dictates what the answer path works
// with.
type OverrideMode uint8

// The override modes.
const (
	// OverrideNone is no override: the health checks decide (undrain).
	OverrideNone OverrideMode = iota
	// OverrideDrain takes the member out of the answers; it is still
	// checked.
	OverrideDrain
	// OverrideForceDown treats the member as down; it is still checked.
	OverrideForceDown
)

// String is the mode's name as the API, the logs and the state file
// spell it: "", "drain" or "force-down".
func (m OverrideMode) String() string {
	switch m {
	case OverrideNone:
		return ""
	case OverrideDrain:
		return "drain"
	case OverrideForceDown:
		return "force-down"
	}
	return fmt.Sprintf("OverrideMode(%d)", uint8(m))
}

// ParseOverrideMode is the inverse of String for the modes an override
// can have (not OverrideNone).
func ParseOverrideMode(s string) (OverrideMode, bool) {
	switch s {
	case "drain":
		return OverrideDrain, true
	case "force-down":
		return OverrideForceDown, true
	}
	return OverrideNone, false
}

// Override is an operator's drain or force-down of a member address.
type Override struct {
	Mode   OverrideMode
	Reason string
	Since  time.Time // when it was set
	Until  time.Time // when it lifts itself; zero: when lifted
}

// Expired reports whether the override has lifted itself by now.
func (o Override) Expired(now time.Time) bool {
	return !o.Until.IsZero() && !now.Before(o.Until)
}

// MemberState is what decides whether a member is answered.
type MemberState uint8

// The member states.
const (
	MemberUp         MemberState = iota // healthy, no override
	MemberDown                          // a health check fails, no override
	MemberDrained                       // drained, whatever its health
	MemberForcedDown                    // forced down, whatever its health
)

// String is the state's name as the API and the status page show it.
func (s MemberState) String() string {
	switch s {
	case MemberUp:
		return "up"
	case MemberDown:
		return "down"
	case MemberDrained:
		return "drained"
	case MemberForcedDown:
		return "forced-down"
	}
	return fmt.Sprintf("MemberState(%d)", uint8(s))
}

// MemberStateOf is a member's state from its health and its override (ok:
// it has one): an override outranks the health checks.
func MemberStateOf(healthy bool, ov Override, ok bool) MemberState {
	switch {
	case ok && ov.Mode == OverrideForceDown:
		return MemberForcedDown
	case ok:
		return MemberDrained
	case !healthy:
		return MemberDown
	}
	return MemberUp
}
