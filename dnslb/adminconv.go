package dnslb

import "github.com/dnslb/dnslb/dnslb/admin"

// The admin API's shapes are its own (package admin imports nothing of
// dnslb's): the Runtime implements admin.Backend and converts its core
// types to and from them here, at the edge.

// overrideModeFromAdmin is the core mode of an API mode.
func overrideModeFromAdmin(m admin.OverrideMode) (OverrideMode, bool) {
	switch m {
	case admin.OverrideNone:
		return OverrideNone, true
	case admin.OverrideDrain:
		return OverrideDrain, true
	case admin.OverrideForceDown:
		return OverrideForceDown, true
	}
	return OverrideNone, false
}

// adminOverrideMode is the API's spelling of m.
func adminOverrideMode(m OverrideMode) admin.OverrideMode {
	switch m {
	case OverrideDrain:
		return admin.OverrideDrain
	case OverrideForceDown:
		return admin.OverrideForceDown
	}
	return admin.OverrideNone
}

// adminOverride is ov as the API shows it.
func adminOverride(ov Override) *admin.Override {
	return &admin.Override{Mode: adminOverrideMode(ov.Mode), Reason: ov.Reason, Since: ov.Since, Until: ov.Until}
}
