package pool

import "github.com/dnslb/dnslb/healthcheck"

// Checks is the Health of health checks alone, for tests: members are
// eligible when their target is up in the snapshot (nil: all up), and none
// is drained. The server's Health also applies operator overrides.
type Checks struct{ Snapshot *healthcheck.Snapshot }

func (c Checks) Eligible(m *Member) bool { return m.Up(c.Snapshot) }

func (c Checks) Drained(*Member) bool { return false }

func (c Checks) Failing(m *Member) bool { return !m.Up(c.Snapshot) }
