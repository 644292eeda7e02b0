// Package pool selects which addresses of a load-balanced name go into an
// answer: it filters members by health, applies the pool's policy
// (round-robin, smooth weighted, sticky rendezvous hashing, first-healthy),
// falls back as when_all_down says, and caps the count.
//
// Each policy is a type behind the Policy interface (policy.go): it builds
// the schedule of a plan once per health generation, and the answer path
// reads only that.
//
// A Pool owns copies of its records (with the pool TTL, and with the
// degraded TTL for a degraded plan); selection only
// ever orders indices and appends those records to the caller's slice, so
// neither the zone's data nor the pool's is reordered.
package pool
