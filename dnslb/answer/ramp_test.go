package answer

import "testing"

// TestNextRampStep: a ramp step is a new judgement (so plans are rebuilt
// as slow start moves on) and otherwise the judgement is kept.
func TestNextRampStep(t *testing.T) {
	auth := NewAuthority(testView(t), 0, nil)
	h1, _ := auth.Health()
	if h2, _ := auth.Health(); h2.(*memberHealth).gen != h1.(*memberHealth).gen {
		t.Fatal("a new judgement with nothing changed")
	}
	auth.NextRampStep()
	h3, _ := auth.Health()
	if h3.(*memberHealth).gen == h1.(*memberHealth).gen {
		t.Error("a ramp step kept the judgement: plans would not follow the ramp")
	}
}
