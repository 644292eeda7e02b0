// Package fuzzguard bounds the time one fuzz input may take, so that a
// slow input is a finding of the fuzzer like a panic: a packet, file or
// body that costs a core is a denial of service.
//
// The bound applies under go test -fuzz only. The seeds of every target
// also run as normal tests (that is how they run in CI), and there a wall
// clock bound would be a timing assertion on a shared machine: they run
// without it.
package fuzzguard

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Limit is the default bound on one call for one input.
const Limit = 100 * time.Millisecond

// hang is when a call counts as never returning: far beyond any limit, so
// that a busy machine does not turn a slow input into a crash.
const hang = 10 * time.Second

// Fuzzing reports whether the test binary runs under go test -fuzz.
func Fuzzing() bool {
	fl := flag.Lookup("test.fuzz")
	return fl != nil && fl.Value.String() != ""
}

// Run calls f and, under go test -fuzz, fails the input when f took longer
// than limit. A call that overruns is repeated up to twice and the input
// fails only if every run overran: a machine shared with other work
// stalls a process now and then for longer than a limit worth having,
// while an input that is slow by itself is slow every time. f must be
// repeatable: it builds whatever state it needs itself.
//
// A call still running after max(10*limit, 10s) crashes the worker with
// every goroutine's stack (see Watchdog).
func Run(t testing.TB, what string, limit time.Duration, f func()) {
	t.Helper()
	if !Fuzzing() {
		f()
		return
	}
	var best time.Duration
	for try := 0; try < 3; try++ {
		stop := Watchdog(what, max(10*limit, hang))
		start := time.Now()
		f()
		d := time.Since(start)
		stop()
		if try == 0 || d < best {
			best = d
		}
		if best <= limit {
			return
		}
	}
	t.Fatalf("%s took %v, the fastest of three runs (limit %v for this input)", what, best, limit)
}

// Watchdog crashes the process, printing every goroutine's stack, unless
// stop is called within d: an input that never returns would stall the
// fuzzer without a report, and a crashed worker makes it save the input.
// It does nothing outside go test -fuzz.
func Watchdog(what string, d time.Duration) (stop func()) {
	if !Fuzzing() {
		return func() {}
	}
	dog := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("fuzzguard: %s still running after %v:\n%s", what, d, buf[:runtime.Stack(buf, true)]))
	})
	return func() { dog.Stop() }
}
