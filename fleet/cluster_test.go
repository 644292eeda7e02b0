package fleet

import (
	"bytes"
	"context"
	"github.com/dnslb/dnslb/internal/dnstest"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// fast makes a fleet of loopback nodes converge in tens of milliseconds,
// with failure detection slack enough for -race on two cores.
var fast = Timing{
	ProbeInterval:    100 * time.Millisecond,
	ProbeTimeout:     80 * time.Millisecond,
	SuspicionMult:    3,
	GossipInterval:   20 * time.Millisecond,
	PushPullInterval: 300 * time.Millisecond,
	RetryJoin:        100 * time.Millisecond,
}

// testLog is silent unless FLEET_TEST_LOG is set (to a zerolog level).
func testLog(name string) zerolog.Logger {
	lv := os.Getenv("FLEET_TEST_LOG")
	if lv == "" {
		return zerolog.Nop()
	}
	level, err := zerolog.ParseLevel(lv)
	if err != nil {
		level = zerolog.DebugLevel
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(level).With().Timestamp().Str("node", name).Logger()
}

// node creates, restores and starts a node on loopback, closed when the
// test ends.
func node(t *testing.T, name string, join []string, restore []Override, mods ...func(*Config)) *Fleet {
	t.Helper()
	cfg := Config{Cluster: "test", NodeName: name, Bind: "127.0.0.1:0", Join: join, Timing: fast, Log: testLog(name)}
	for _, m := range mods {
		m(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		if err := f.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
	})
	f.Restore(restore)
	if err := f.Start(ctx); err != nil {
		t.Fatalf("%s: Start: %v", name, err)
	}
	return f
}

func withKeys(keys ...[]byte) func(*Config) { return func(c *Config) { c.Keys = keys } }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	dnstest.Eventually(t, 5*time.Second, what, func() (bool, string) { return cond(), "" })
}

// never fails if cond becomes true within d.
func never(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("unexpectedly: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func aliveIs(f *Fleet, want ...string) func() bool {
	return func() bool { return slices.Equal(f.Alive(), want) }
}

func drainChanges(f *Fleet) {
	select {
	case <-f.Changes():
	default:
	}
}

func poked(f *Fleet) bool {
	select {
	case <-f.Changes():
		return true
	default:
		return false
	}
}

func override(f *Fleet, member string) (Override, bool) {
	for _, o := range f.AllOverrides() {
		if o.Member == member {
			return o, true
		}
	}
	return Override{}, false
}

func inForce(f *Fleet, member string) bool {
	return slices.ContainsFunc(f.Overrides(), func(o Override) bool { return o.Member == member })
}

func TestCluster(t *testing.T) {
	// No periodic push-pull: changes must go by the direct sends.
	slow := func(c *Config) { c.Timing.PushPullInterval = time.Hour }
	a := node(t, "a", nil, nil, slow)
	b := node(t, "b", []string{a.Addr()}, nil, slow)
	c := node(t, "c", []string{a.Addr()}, nil, slow)
	all := []*Fleet{a, b, c}
	for _, f := range all {
		eventually(t, f.Name()+" sees a, b, c", aliveIs(f, "a", "b", "c"))
	}

	t.Run("override reaches every node", func(t *testing.T) {
		drainChanges(b)
		drainChanges(c)
		start := time.Now()
		o := a.SetOverride(Override{Member: "192.0.2.10", Mode: "drain", Reason: "maintenance"})
		if o.Stamp.Node != "a" || o.Stamp.Wall == 0 || o.Since.IsZero() {
			t.Fatalf("SetOverride returned %+v", o)
		}
		for _, f := range []*Fleet{b, c} {
			eventually(t, f.Name()+" has the drain", func() bool {
				got, ok := override(f, o.Member)
				return ok && got.Stamp == o.Stamp && got.Mode == "drain" && got.Reason == "maintenance" && inForce(f, o.Member)
			})
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("the drain took %v to reach every node", d)
		}
		for _, f := range []*Fleet{b, c} {
			if !poked(f) {
				t.Errorf("%s: Changes not poked by a remote override", f.Name())
			}
		}
	})

	t.Run("concurrent changes converge", func(t *testing.T) {
		const member = "192.0.2.20"
		var wg sync.WaitGroup
		var oa, ob Override
		wg.Go(func() { oa = a.SetOverride(Override{Member: member, Mode: "drain"}) })
		wg.Go(func() { ob = b.SetOverride(Override{Member: member, Mode: "force-down"}) })
		wg.Wait()
		winner := oa
		if oa.Stamp.Less(ob.Stamp) {
			winner = ob
		}
		for _, f := range all {
			eventually(t, f.Name()+" has the winner", func() bool {
				got, ok := override(f, member)
				return ok && got.Stamp == winner.Stamp && got.Mode == winner.Mode
			})
		}
	})

	t.Run("lift propagates", func(t *testing.T) {
		lift := c.SetOverride(Override{Member: "192.0.2.10"})
		for _, f := range all {
			eventually(t, f.Name()+" has the tombstone", func() bool {
				got, ok := override(f, "192.0.2.10")
				return ok && got.Stamp == lift.Stamp && got.Mode == "" && !inForce(f, "192.0.2.10")
			})
		}
	})

	t.Run("observations", func(t *testing.T) {
		since := time.Now().Truncate(time.Second)
		a.Publish(map[string]Observation{"k1": {Up: true, Checked: true, Since: since}, "k2": {}})
		for _, f := range []*Fleet{b, c} {
			eventually(t, f.Name()+" sees a's observation", func() bool {
				got := f.PeerObservations("k1")
				return len(got) == 1 && got["a"].Up && got["a"].Checked && got["a"].Since.Equal(since)
			})
		}
		if got := a.PeerObservations("k1"); len(got) != 0 {
			t.Errorf("a's own observations among its peers': %v", got)
		}
		// A burst: the last one wins everywhere.
		for i := range 20 {
			a.Publish(map[string]Observation{"k1": {Up: i%2 == 1, Checked: true, Since: since.Add(time.Duration(i) * time.Second)}})
		}
		for _, f := range []*Fleet{b, c} {
			eventually(t, f.Name()+" sees a's last observation", func() bool {
				got := f.PeerObservations("k1")["a"]
				return got.Up && got.Since.Equal(since.Add(19*time.Second)) && len(f.PeerObservations("k2")) == 0
			})
		}
		b.Publish(map[string]Observation{"k1": {Up: false, Checked: true}})
		eventually(t, "a and c see b's", func() bool {
			return len(a.PeerObservations("k1")) == 1 && len(c.PeerObservations("k1")) == 2
		})
	})

	t.Run("divergences", func(t *testing.T) {
		if got := a.Divergences(); len(got) != 0 {
			t.Errorf("before any meta: %v", got)
		}
		a.SetMeta(Meta{ConfigHash: "h1", Serials: map[string]uint32{"example.": 1, "only-a.": 7}})
		b.SetMeta(Meta{ConfigHash: "h1", Serials: map[string]uint32{"example.": 2}})
		c.SetMeta(Meta{ConfigHash: "h2", Serials: map[string]uint32{"example.": 1}})
		want := []Divergence{
			{Node: "b", What: "serial", Zone: "example.", Theirs: "2", Ours: "1"},
			{Node: "c", What: "config", Theirs: "h2", Ours: "h1"},
		}
		eventually(t, "a sees b's serial and c's config differ", func() bool { return slices.Equal(a.Divergences(), want) })
		b.SetMeta(Meta{ConfigHash: "h1", Serials: map[string]uint32{"example.": 1}})
		eventually(t, "b agrees again", func() bool { return slices.Equal(a.Divergences(), want[1:]) })
		nodes := a.Nodes()
		if len(nodes) != 3 || !nodes[0].Self || nodes[0].Name != "a" || nodes[1].Name != "b" || nodes[2].Name != "c" {
			t.Fatalf("Nodes = %+v", nodes)
		}
		for _, n := range nodes {
			if n.State != "alive" || n.LastContact.IsZero() || n.Addr == "" {
				t.Errorf("node %+v", n)
			}
		}
		if nodes[2].Meta.ConfigHash != "h2" || nodes[0].Observations["k1"].Up != true {
			t.Errorf("Nodes = %+v", nodes)
		}
	})

	t.Run("owners agree", func(t *testing.T) {
		for i := range 100 {
			key := "198.51.100." + strconv.Itoa(i) + ":443 https"
			oa := a.Owners(key, 2)
			if len(oa) != 2 || !slices.Equal(oa, b.Owners(key, 2)) || !slices.Equal(oa, c.Owners(key, 2)) {
				t.Fatalf("%s: owners %v, %v, %v", key, oa, b.Owners(key, 2), c.Owners(key, 2))
			}
			if n := btoi(a.Owns(key, 2)) + btoi(b.Owns(key, 2)) + btoi(c.Owns(key, 2)); n != 2 {
				t.Fatalf("%s: %d nodes own it", key, n)
			}
		}
	})

	t.Run("malformed", func(t *testing.T) {
		host, port, _ := net.SplitHostPort(a.Addr())
		p, _ := strconv.Atoi(port)
		to := &memberlist.Node{Name: "a", Addr: net.ParseIP(host), Port: uint16(p)}
		for _, junk := range [][]byte{[]byte("junk"), []byte(`{"v":99,"type":"override","from":"b"}`), []byte(`{"v":1,"type":"state","from":"b"}`)} {
			if err := b.ml.SendReliable(to, junk); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "a counts 3 malformed", func() bool { return a.Stats().Rejected["malformed"] == 3 })
	})

	t.Run("stats", func(t *testing.T) {
		st := a.Stats()
		if st.Members["alive"] != 3 {
			t.Errorf("members %v", st.Members)
		}
		for _, k := range [][2]string{{"out", "override"}, {"in", "override"}, {"out", "observations"}, {"in", "meta"}, {"in", "state"}, {"out", "state"}} {
			if st.Messages[k] == 0 {
				t.Errorf("no %v messages: %v", k, st.Messages)
			}
		}
	})

	t.Run("a closed node stops counting", func(t *testing.T) {
		c.Publish(map[string]Observation{"k1": {Up: true, Checked: true}})
		eventually(t, "a sees c's", func() bool { _, ok := a.PeerObservations("k1")["c"]; return ok })
		drainChanges(a)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		for _, f := range []*Fleet{a, b} {
			eventually(t, f.Name()+" stops counting c", func() bool {
				_, ok := f.PeerObservations("k1")["c"]
				return !ok && slices.Equal(f.Alive(), []string{"a", "b"})
			})
		}
		if !poked(a) {
			t.Error("Changes not poked by c leaving")
		}
		nodes := a.Nodes()
		if len(nodes) != 3 || nodes[2].Name != "c" || nodes[2].State != "left" || !nodes[2].Observations["k1"].Up {
			t.Errorf("c in Nodes: %+v", nodes[2])
		}
		if st := a.Stats(); st.Members["alive"] != 2 || st.Members["left"] != 1 {
			t.Errorf("members %v", st.Members)
		}
		// The closed node does not panic.
		c.SetOverride(Override{Member: "x", Mode: "drain"})
		c.Publish(nil)
		c.SetMeta(Meta{})
		_ = c.Nodes()
		_ = c.Stats()
		_ = c.Owners("k", 1)
		if err := c.Start(context.Background()); err == nil {
			t.Error("Start after Close succeeded")
		}
	})
}

// TestPushPull is the state exchange alone: what a node that was away
// gets from the one it joins.
func TestPushPull(t *testing.T) {
	a := node(t, "a", nil, nil)
	b := node(t, "b", nil, nil)
	o1 := a.SetOverride(Override{Member: "m1", Mode: "drain"})
	lift := a.SetOverride(Override{Member: "m2"})
	stale := Override{Member: "m2", Mode: "drain", Stamp: Stamp{Wall: lift.Stamp.Wall - 1, Node: "z"}}
	mine := Override{Member: "m3", Mode: "force-down", Stamp: Stamp{Wall: lift.Stamp.Wall + 10, Node: "b"}}
	b.Restore([]Override{stale, mine})
	a.Publish(map[string]Observation{"k": {Up: true, Checked: true}})
	a.SetMeta(Meta{ConfigHash: "h"})
	drainChanges(b)

	(&delegate{b}).MergeRemoteState((&delegate{a}).LocalState(false), false)
	(&delegate{a}).MergeRemoteState((&delegate{b}).LocalState(false), false)
	for _, f := range []*Fleet{a, b} {
		all := f.AllOverrides()
		if len(all) != 3 || all[0].Stamp != o1.Stamp || all[1].Stamp != lift.Stamp || all[2].Stamp != mine.Stamp {
			t.Errorf("%s: after push-pull %+v", f.Name(), all)
		}
	}
	if !poked(b) {
		t.Error("Changes not poked by a push-pull")
	}
	// a is not a live node of b's (no memberlist event): its state is
	// kept, not counted.
	if got := b.PeerObservations("k"); len(got) != 0 {
		t.Errorf("observations of a node not in the fleet: %v", got)
	}
	b.mu.Lock()
	p := b.nodes["a"]
	if p == nil || !p.obs["k"].Up || p.meta.ConfigHash != "h" {
		t.Errorf("b's view of a: %+v", p)
	}
	b.mu.Unlock()
	if st := b.Stats(); st.Messages[[2]string{"in", "state"}] != 1 || st.Messages[[2]string{"out", "state"}] != 1 {
		t.Errorf("messages %v", st.Messages)
	}
}

func TestRestartCatchesUp(t *testing.T) {
	a := node(t, "a", nil, nil)
	b := node(t, "b", []string{a.Addr()}, nil)
	eventually(t, "a sees b", aliveIs(a, "a", "b"))
	old := b.SetOverride(Override{Member: "192.0.2.1", Mode: "drain"})
	eventually(t, "a has b's drain", func() bool { return inForce(a, old.Member) })
	saved := b.AllOverrides()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a sees b gone", aliveIs(a, "a"))
	if !a.Isolated() {
		t.Error("a, alone after seeing b, not isolated")
	}
	lift := a.SetOverride(Override{Member: old.Member})
	added := a.SetOverride(Override{Member: "192.0.2.2", Mode: "force-down", Until: time.Now().Add(time.Hour)})

	b2 := node(t, "b", []string{a.Addr()}, saved)
	eventually(t, "b is back", aliveIs(a, "a", "b"))
	eventually(t, "b caught up", func() bool {
		l, ok1 := override(b2, old.Member)
		n, ok2 := override(b2, added.Member)
		return ok1 && ok2 && l.Stamp == lift.Stamp && n.Stamp == added.Stamp
	})
	if got := b2.Overrides(); len(got) != 1 || got[0].Member != added.Member {
		t.Errorf("b's overrides in force: %+v", got)
	}
	// The restarted node's observations (its sequence begun again) count.
	b2.Publish(map[string]Observation{"k": {Up: true, Checked: true}})
	eventually(t, "a sees the new b's observations", func() bool { return a.PeerObservations("k")["b"].Up })
	// And its next change wins over what it saw.
	again := b2.SetOverride(Override{Member: old.Member, Mode: "drain"})
	if !lift.Stamp.Less(again.Stamp) {
		t.Errorf("restarted node stamped %+v below the seen %+v", again.Stamp, lift.Stamp)
	}
	eventually(t, "a has the new drain", func() bool { return inForce(a, old.Member) })
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestIsolated(t *testing.T) {
	solo := node(t, "solo", nil, nil)
	if solo.Isolated() {
		t.Error("a node without seeds, alone, is isolated")
	}
	a := node(t, "a", []string{deadAddr(t)}, nil)
	if !a.Isolated() {
		t.Error("a node whose seeds do not answer is not isolated")
	}
	if got := a.Alive(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Alive = %v", got)
	}
	b := node(t, "b", []string{a.Addr()}, nil)
	eventually(t, "a no longer isolated", func() bool { return !a.Isolated() && !b.Isolated() })
	if st := a.Stats(); st.Members["alive"] != 2 {
		t.Errorf("members %v", st.Members)
	}
	// b fails without a word: a finds it dead, and is cut off again.
	b.Publish(map[string]Observation{"k": {Up: true, Checked: true}})
	eventually(t, "a sees b's observation", func() bool { return len(a.PeerObservations("k")) == 1 })
	crash(b)
	eventually(t, "a finds b dead", func() bool {
		n := a.Nodes()
		return len(n) == 2 && n[1].Name == "b" && n[1].State == "dead"
	})
	if !a.Isolated() || len(a.PeerObservations("k")) != 0 {
		t.Errorf("with b dead: isolated %v, observations %v", a.Isolated(), a.PeerObservations("k"))
	}
	if st := a.Stats(); st.Members["alive"] != 1 || st.Members["dead"] != 1 {
		t.Errorf("members %v", st.Members)
	}
}

// crash stops f as a failing node would: no goodbye, no leave. Close
// then does nothing.
func crash(f *Fleet) {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.closing = true
		f.mu.Unlock()
		close(f.done)
		f.closeErr = f.ml.Shutdown()
		f.wg.Wait()
	})
}

func TestWrongKey(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	a := node(t, "a", nil, nil, withKeys(k1))
	// Encryption works: a node with the key joins.
	ok := node(t, "ok", []string{a.Addr()}, nil, withKeys(k1))
	eventually(t, "the node with the key joins", aliveIs(a, "a", "ok"))
	ok.SetOverride(Override{Member: "m", Mode: "drain"})
	eventually(t, "its override arrives", func() bool { return inForce(a, "m") })

	before := a.Stats().Rejected["decrypt"]
	bad := node(t, "bad", []string{a.Addr()}, nil, withKeys(k2))
	plain := node(t, "plain", []string{a.Addr()}, nil)
	eventually(t, "a counts undecryptable input", func() bool { return a.Stats().Rejected["decrypt"] >= before+2 })
	never(t, 1500*time.Millisecond, "a node without the key joined", func() bool {
		return !slices.Equal(a.Alive(), []string{"a", "ok"}) || len(bad.Alive()) != 1 || len(plain.Alive()) != 1
	})
	if !bad.Isolated() {
		t.Error("the node with the wrong key is not isolated")
	}
}

func TestWrongCluster(t *testing.T) {
	a := node(t, "a", nil, nil)
	other := node(t, "other", []string{a.Addr()}, nil, func(c *Config) { c.Cluster = "another" })
	eventually(t, "a counts another cluster's input", func() bool { return a.Stats().Rejected["label"] > 0 })
	never(t, time.Second, "a node of another cluster joined", func() bool {
		return len(a.Alive()) != 1 || len(other.Alive()) != 1
	})
	if got := maps.Clone(a.Stats().Rejected); got["decrypt"] != 0 {
		t.Errorf("rejected %v", got)
	}
}
