package pool

import (
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func TestSlowStartRamp(t *testing.T) {
	const a, b = "192.0.2.1", "192.0.2.2"
	tests := []struct {
		name   string
		policy Policy
		weight int
		// want: b's first answers per slot total after coming back, at
		// 0, 1/2 and 1 of slow_start: 10 %, 50 % (55 % rounded down to a
		// step) and 100 % of a's equal weight.
		want [3][2]int // [b's firsts, all slots]
	}{
		{"weighted", Weighted{}, 5, [3][2]int{{5, 55}, {25, 75}, {5, 10}}},
		{"round-robin", RoundRobin{}, 1, [3][2]int{{1, 11}, {5, 15}, {1, 2}}},
		{"least-loaded", LeastLoaded{}, 5, [3][2]int{{5, 55}, {25, 75}, {5, 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			p := newPool(tt.policy, member(a, tt.weight, false), member(b, tt.weight, false))
			p.SlowStart, p.Now = 30*time.Second, clk.Now
			gen := uint64(0)
			shares := func(h Health) (int, int) {
				gen++
				got := firstShares(t, p, h, gen)
				return got[b], got[a] + got[b]
			}
			// At start nothing ramps: both are new to the pool.
			if n, all := shares(downSet{}); n*2 != all {
				t.Fatalf("at start b leads %d of %d, want half", n, all)
			}
			if p.Ramping(clk.Now()) {
				t.Fatal("ramping at start")
			}
			if n, _ := shares(downSet{b: true}); n != 0 {
				t.Fatalf("down b leads %d", n)
			}
			clk.Advance(time.Minute)
			for k, at := range []time.Duration{0, 15 * time.Second, 15 * time.Second} {
				clk.Advance(at)
				n, all := shares(downSet{})
				if n != tt.want[k][0] || all != tt.want[k][1] {
					t.Errorf("%d/2 of slow_start: b leads %d of %d, want %d of %d", k, n, all, tt.want[k][0], tt.want[k][1])
				}
			}
			if !p.Ramping(clk.Now()) {
				t.Error("not ramping at slow_start: the plan at full weight needs one more generation")
			}
			clk.Advance(4 * time.Second)
			if p.Ramping(clk.Now()) {
				t.Error("still ramping after slow_start and a step")
			}
		})
	}
}

// A pool without slow_start, and policies a ramp does not apply to,
// answer as before when a member comes back.
func TestSlowStartOff(t *testing.T) {
	const a, b = "192.0.2.1", "192.0.2.2"
	for _, tt := range []struct {
		name string
		slow time.Duration
		pol  Policy
	}{{"no slow_start", 0, Weighted{}}, {"first-healthy", time.Minute, FirstHealthy{}}} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(tt.pol, member(a, 1, false), member(b, 1, false))
			p.SlowStart = tt.slow
			firstShares(t, p, downSet{}, 1)
			firstShares(t, p, downSet{b: true}, 2)
			want := firstShares(t, newPool(tt.pol, member(a, 1, false), member(b, 1, false)), downSet{}, 1)
			got := firstShares(t, p, downSet{}, 3)
			if len(got) != len(want) || got[a] != want[a] || got[b] != want[b] {
				t.Errorf("first answers %v, want %v", got, want)
			}
		})
	}
}

// TestEffectiveWeight: 0 while not eligible, the weight scaled by the
// slow start level while ramping, the weight after.
func TestEffectiveWeight(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p := newPool(Weighted{}, member("192.0.2.1", 10, false), member("192.0.2.2", 10, false))
	p.SlowStart, p.Now = 30*time.Second, clk.Now
	b := &p.V4[1]
	firstShares(t, p, downSet{}, 1)
	if w := p.EffectiveWeight(b, downSet{}, clk.Now()); w != 10 {
		t.Errorf("at start: %d, want 10", w)
	}
	down := downSet{"192.0.2.2": true}
	firstShares(t, p, down, 2)
	if w := p.EffectiveWeight(b, down, clk.Now()); w != 0 {
		t.Errorf("down: %d, want 0", w)
	}
	firstShares(t, p, downSet{}, 3)
	clk.Advance(15 * time.Second)
	if w := p.EffectiveWeight(b, downSet{}, clk.Now()); w != 5 {
		t.Errorf("half way through slow start: %d, want 5", w)
	}
	clk.Advance(15 * time.Second)
	if w := p.EffectiveWeight(b, downSet{}, clk.Now()); w != 10 {
		t.Errorf("after slow start: %d, want 10", w)
	}
}

// TestSlowStartKeepRamp: a pool built by a reload goes on with the old
// one's ramps, and ramps a member that was out before it.
func TestSlowStartKeepRamp(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	build := func() *Pool {
		p := newPool(Weighted{}, member("192.0.2.1", 10, false), member("192.0.2.2", 10, false))
		p.SlowStart, p.Now = 30*time.Second, clk.Now
		return p
	}
	down := downSet{"192.0.2.2": true}
	old := build()
	firstShares(t, old, downSet{}, 1)
	firstShares(t, old, down, 2)
	p := build()
	p.KeepRamp(old)
	firstShares(t, p, downSet{}, 1) // back after the reload
	if w := p.EffectiveWeight(&p.V4[1], downSet{}, clk.Now()); w != 1 {
		t.Errorf("came back after a reload: weight %d, want 1 (10 %%)", w)
	}
	clk.Advance(15 * time.Second)
	again := build()
	again.KeepRamp(p)
	if w := again.EffectiveWeight(&again.V4[1], downSet{}, clk.Now()); w != 5 {
		t.Errorf("ramping through a reload: weight %d, want 5", w)
	}
	if !again.Ramping(clk.Now()) {
		t.Error("the reloaded pool does not say it ramps")
	}
}
