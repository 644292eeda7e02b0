package dnslb

import (
	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
)

// The admin API's shapes are its own (package admin imports nothing of
// dnslb's): the Runtime implements admin.Backend and converts its core
// types to and from them here, at the edge.

// overrideModeFromAdmin is the core mode of an API mode.
func overrideModeFromAdmin(m admin.OverrideMode) (answer.OverrideMode, bool) {
	switch m {
	case admin.OverrideNone:
		return answer.OverrideNone, true
	case admin.OverrideDrain:
		return answer.OverrideDrain, true
	case admin.OverrideForceDown:
		return answer.OverrideForceDown, true
	}
	return answer.OverrideNone, false
}

// adminOverrideMode is the API's spelling of m.
func adminOverrideMode(m answer.OverrideMode) admin.OverrideMode {
	switch m {
	case answer.OverrideDrain:
		return admin.OverrideDrain
	case answer.OverrideForceDown:
		return admin.OverrideForceDown
	}
	return admin.OverrideNone
}

// adminOverride is ov as the API shows it.
func adminOverride(ov answer.Override) *admin.Override {
	return &admin.Override{Mode: adminOverrideMode(ov.Mode), Reason: ov.Reason, Since: ov.Since, Until: ov.Until}
}
