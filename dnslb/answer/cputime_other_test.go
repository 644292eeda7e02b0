//go:build !linux

package answer

import "time"

// threadCPUTime is not measured here: benchmarks report wall time only.
func threadCPUTime() time.Duration { return 0 }
