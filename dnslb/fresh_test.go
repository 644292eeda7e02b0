package dnslb

import (
	"testing"

	"github.com/dnslb/dnslb/dnslb/answer"
)

// TestFreshLockedNumbersAbove: every view served gets a build number above
// all served before it, so cached replies of one never answer for
// another. A reload's build numbers its view after the generation it
// started from; when a filtered zone's new serial swapped in a view in
// the meantime, the two would share a number without freshLocked.
func TestFreshLockedNumbersAbove(t *testing.T) {
	r := &Runtime{}
	gen := func(n uint64) *Generation { return &Generation{View: answer.NewView(n)} }
	start := r.freshLocked(gen(1))
	serial := r.freshLocked(gen(start.View.Gen() + 1)) // the transfer serial's view
	build := r.freshLocked(gen(start.View.Gen() + 1))  // a build begun from start
	next := r.freshLocked(gen(build.View.Gen() + 1))   // a build begun from build
	got := []uint64{start.View.Gen(), serial.View.Gen(), build.View.Gen(), next.View.Gen()}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("served build numbers %v: not increasing", got)
		}
	}
	if kept := gen(9); r.freshLocked(kept) != kept {
		t.Error("a view numbered above all served was copied")
	}
}
