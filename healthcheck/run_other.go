//go:build !linux

package healthcheck

// platformContainments is empty: only Linux has PID namespaces.
func platformContainments() []containment { return nil }
