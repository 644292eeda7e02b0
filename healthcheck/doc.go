// Package healthcheck probes backends and keeps their health state.
//
// It has two halves:
//
//   - Checkers: a [Spec] (as written in the configuration) becomes a [Checker]
//     with [NewChecker]. A checker runs one probe against one address and
//     returns nil when the backend is healthy, or an error saying why not.
//     Types: "tcp" (connect), "http" and "https" (request, status ranges,
//     optional body substring; redirects are not followed), "dns" (query,
//     expected rcode, optional answer), "exec" (a command; exit 0 = up) and
//     "none" (always up, never probed).
//
//   - The [Scheduler]: it runs the checks of a set of [Target]s, one goroutine
//     per distinct target, with a jittered first run, at most one probe in
//     flight per target and a timeout per probe that adapts to the target's
//     latency (see AdaptiveFloor), at most Spec.Timeout. Results pass through
//     a rise/fall state machine: a failure of an up target is confirmed by
//     immediate re-checks, so a dead backend leaves the answers within
//     Interval + Fall × (adaptive timeout); a recovering one is re-checked
//     every Spec.FastInterval.
//
// Identical targets (same check, address and port, see [TargetKey]) are
// checked once, however many pools register them. [Scheduler.Set] replaces the
// set of targets and keeps the state of those that remain, so a configuration
// reload does not reset health.
//
// Readers on the query path call [Scheduler.Snapshot] and get an immutable
// [Snapshot] without taking a lock. A new snapshot, with a higher
// [Snapshot.Generation], is published only when a target goes up or down (or
// when Set changes the set of targets), never on every probe. Live counters,
// latency and last error are available with [Scheduler.Statuses].
//
// Every up/down transition is also sent to subscribers ([Scheduler.Subscribe]).
// The package itself logs nothing: subscribers log.
//
// Load feedback: a [LoadWatcher] asks backends' agents for their load in
// HAProxy's agent-check text protocol ([ProbeAgent], [ParseAgentLine]), or
// takes the same words from a header of the http checks' responses
// ([WithHeaderSink], [LoadWatcher.Report]), and publishes the merged
// reports as an immutable [LoadSnapshot] when one changes what answers
// depend on. Reports that stop for [StaleIntervals] intervals are dropped.
//
// Time: scheduling uses the [Clock] given with [WithClock] (the real clock by
// default); probe timeouts use context deadlines, that is the runtime clock.
// Both are faked consistently by testing/synctest, which is how the timing of
// this package is tested.
package healthcheck
