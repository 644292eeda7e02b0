package fleet

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestDecide(t *testing.T) {
	up := Observation{Up: true, Checked: true}
	down := Observation{Up: false, Checked: true}
	unchecked := Observation{Up: false, Checked: false}
	uncheckedUp := Observation{Up: true, Checked: false}
	tests := []struct {
		p    HealthPolicy
		obs  []Observation
		prev bool
		want bool
	}{
		{Majority, nil, true, true},
		{Majority, nil, false, false},
		{Majority, []Observation{unchecked, uncheckedUp}, true, true},
		{Majority, []Observation{unchecked, uncheckedUp}, false, false},
		{Majority, []Observation{up}, false, true},
		{Majority, []Observation{down}, true, false},
		{Majority, []Observation{up, down}, false, true}, // half down is not more than half
		{Majority, []Observation{up, down, down}, true, false},
		{Majority, []Observation{up, up, down}, false, true},
		{Majority, []Observation{down, down, unchecked, uncheckedUp, up}, true, false},
		{Majority, []Observation{down, unchecked, unchecked, up}, false, true},
		{AnyUp, nil, false, false},
		{AnyUp, []Observation{uncheckedUp}, false, false},
		{AnyUp, []Observation{down, down, down, up}, false, true},
		{AnyUp, []Observation{down, down}, true, false},
		{AnyUp, []Observation{down, uncheckedUp}, true, false},
		{Local, nil, true, true},
		{Local, []Observation{unchecked}, false, false},
		{Local, []Observation{up}, false, true},
		{Local, []Observation{down}, true, false},
		{Local, []Observation{down, unchecked}, true, false},
		{Local, []Observation{up, down, down}, true, false},
		{Local, []Observation{up, up, down}, false, true},
		{"bogus", []Observation{up, down, down}, true, false},
	}
	for _, tt := range tests {
		if got := Decide(tt.p, tt.obs, tt.prev); got != tt.want {
			t.Errorf("Decide(%q, %v, %v) = %v, want %v", tt.p, tt.obs, tt.prev, got, tt.want)
		}
	}
}

func TestStampLess(t *testing.T) {
	tests := []struct {
		s, u Stamp
		want bool
	}{
		{Stamp{1, "a"}, Stamp{2, "a"}, true},
		{Stamp{2, "a"}, Stamp{1, "z"}, false},
		{Stamp{1, "a"}, Stamp{1, "b"}, true},
		{Stamp{1, "b"}, Stamp{1, "a"}, false},
		{Stamp{1, "a"}, Stamp{1, "a"}, false},
	}
	for _, tt := range tests {
		if got := tt.s.Less(tt.u); got != tt.want {
			t.Errorf("%v.Less(%v) = %v, want %v", tt.s, tt.u, got, tt.want)
		}
	}
}

// lone is a node of its own on loopback, for the tests that need a Fleet
// but no fleet.
func lone(t *testing.T, now func() time.Time) *Fleet {
	t.Helper()
	f, err := New(Config{Cluster: "unit", NodeName: "self", Bind: "127.0.0.1:0", Now: now, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestMergeLWW(t *testing.T) {
	now := time.Now()
	wall := now.UnixNano()
	drain := func(w int64, node string) Override {
		return Override{Member: "192.0.2.1", Mode: "drain", Reason: node, Stamp: Stamp{w, node}}
	}
	lift := func(w int64, node string) Override {
		return Override{Member: "192.0.2.1", Mode: "", Stamp: Stamp{w, node}}
	}
	tests := []struct {
		name     string
		stored   *Override
		received Override
		want     Override // what is stored after
		changed  bool
	}{
		{"none stored", nil, drain(wall, "a"), drain(wall, "a"), true},
		{"older received", ptr(drain(wall, "a")), drain(wall-1, "b"), drain(wall, "a"), false},
		{"newer received", ptr(drain(wall, "a")), drain(wall+1, "b"), drain(wall+1, "b"), true},
		{"tie, higher node wins", ptr(drain(wall, "a")), drain(wall, "b"), drain(wall, "b"), true},
		{"tie, lower node loses", ptr(drain(wall, "b")), drain(wall, "a"), drain(wall, "b"), false},
		{"same again", ptr(drain(wall, "a")), drain(wall, "a"), drain(wall, "a"), false},
		{"tombstone beats older drain", ptr(drain(wall, "a")), lift(wall+5, "b"), lift(wall+5, "b"), true},
		{"older drain after tombstone ignored", ptr(lift(wall, "b")), drain(wall-5, "a"), lift(wall, "b"), false},
		{"newer drain after tombstone", ptr(lift(wall, "b")), drain(wall+5, "a"), drain(wall+5, "a"), true},
		{"ancient tombstone not taken", nil, lift(now.Add(-8*24*time.Hour).UnixNano(), "a"), Override{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fleet{name: "self", now: func() time.Time { return now }, ovs: map[string]Override{}}
			if tt.stored != nil {
				f.ovs[tt.stored.Member] = *tt.stored
			}
			if got := f.mergeLocked(tt.received); got != tt.changed {
				t.Errorf("merge changed = %v, want %v", got, tt.changed)
			}
			if got := f.ovs[tt.received.Member]; got != tt.want {
				t.Errorf("stored %+v, want %+v", got, tt.want)
			}
			if f.hlc < tt.received.Stamp.Wall {
				t.Errorf("clock %d not raised to the stamp seen %d", f.hlc, tt.received.Stamp.Wall)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestClockBehind(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f := lone(t, func() time.Time { return t0 }) // frozen, and an hour behind the others
	ahead := Override{Member: "m", Mode: "drain", Stamp: Stamp{Wall: t0.Add(time.Hour).UnixNano(), Node: "zzz"}}
	f.Restore([]Override{ahead})
	if got := f.Overrides(); len(got) != 1 || got[0].Stamp != ahead.Stamp {
		t.Fatalf("after Restore, Overrides = %+v", got)
	}
	lift := f.SetOverride(Override{Member: "m"})
	if !ahead.Stamp.Less(lift.Stamp) {
		t.Fatalf("lift stamped %+v, not above the seen %+v", lift.Stamp, ahead.Stamp)
	}
	if lift.Stamp.Node != "self" || !lift.Since.Equal(t0) {
		t.Errorf("lift = %+v, want node self, since now", lift)
	}
	again := f.SetOverride(Override{Member: "m", Mode: "force-down"})
	if !lift.Stamp.Less(again.Stamp) {
		t.Errorf("with a frozen clock, %+v not above %+v", again.Stamp, lift.Stamp)
	}
	// A stamp from Stamped is kept by SetOverride, so it can be
	// persisted first.
	st := f.Stamped(Override{Member: "n", Mode: "drain"})
	if got := f.SetOverride(st); got.Stamp != st.Stamp {
		t.Errorf("SetOverride restamped %+v as %+v", st.Stamp, got.Stamp)
	}
	if !again.Stamp.Less(st.Stamp) {
		t.Errorf("Stamped %+v not above %+v", st.Stamp, again.Stamp)
	}
	all := f.AllOverrides()
	if len(all) != 2 || all[0].Member != "m" || all[0].Mode != "force-down" || all[1].Member != "n" {
		t.Errorf("AllOverrides = %+v", all)
	}
}

func TestOverridesInForce(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f := lone(t, func() time.Time { return now })
	st := func(d time.Duration) Stamp { return Stamp{Wall: now.Add(d).UnixNano(), Node: "x"} }
	f.Restore([]Override{
		{Member: "d", Mode: "drain", Stamp: st(0)},
		{Member: "c", Mode: "force-down", Until: now.Add(time.Minute), Stamp: st(0)},
		{Member: "b", Mode: "drain", Until: now.Add(-time.Minute), Stamp: st(0)},                          // expired
		{Member: "a", Mode: "", Stamp: st(-time.Hour)},                                                    // lifted
		{Member: "e", Mode: "", Stamp: st(-8 * 24 * time.Hour)},                                           // lifted long ago
		{Member: "f", Mode: "drain", Until: now.Add(-8 * 24 * time.Hour), Stamp: st(-9 * 24 * time.Hour)}, // expired long ago
	})
	var got []string
	for _, o := range f.Overrides() {
		got = append(got, o.Member)
	}
	if want := []string{"c", "d"}; !slices.Equal(got, want) {
		t.Errorf("Overrides = %v, want %v", got, want)
	}
	got = nil
	for _, o := range f.AllOverrides() {
		got = append(got, o.Member)
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("AllOverrides = %v, want %v", got, want)
	}
	// A week on, the tombstone and the expired one are collected.
	now = now.Add(retention + time.Hour)
	got = nil
	for _, o := range f.AllOverrides() {
		got = append(got, o.Member)
	}
	if want := []string{"d"}; !slices.Equal(got, want) {
		t.Errorf("a week on, AllOverrides = %v, want %v", got, want)
	}
}

func TestOwners(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	// The hash must never change: nodes of different releases share
	// probes by it.
	if got := fmt.Sprintf("%016x", score("n1", "192.0.2.1:53 dns")); got != goldenScore {
		t.Errorf("score changed: %s, was %s", got, goldenScore)
	}
	for _, k := range []int{-1, 0, 5, 6} {
		if got := owners(nodes, "key", k); !slices.Equal(got, nodes) {
			t.Errorf("k=%d: owners = %v, want all", k, got)
		}
	}
	shuffled := []string{"n4", "n2", "n5", "n1", "n3"}
	count := map[string]int{}
	const keys = 1000
	for i := range keys {
		key := fmt.Sprintf("198.51.100.%d:%d http", i%250, 80+i/250)
		for k := 1; k < len(nodes); k++ {
			a, b := owners(nodes, key, k), owners(shuffled, key, k)
			if !slices.Equal(a, b) || len(a) != k || !slices.IsSorted(a) {
				t.Fatalf("key %q k=%d: owners %v and %v (shuffled)", key, k, a, b)
			}
		}
		for _, o := range owners(nodes, key, 2) {
			count[o]++
		}
		// Minimal movement: without n3, a key keeps the owners it had
		// but n3, and only a key n3 owned gets a new one.
		before := owners(nodes, key, 2)
		after := owners(slices.DeleteFunc(slices.Clone(nodes), func(s string) bool { return s == "n3" }), key, 2)
		kept := 0
		for _, o := range before {
			if o != "n3" && slices.Contains(after, o) {
				kept++
			}
		}
		if want := len(before) - btoi(slices.Contains(before, "n3")); kept != want {
			t.Errorf("key %q: owners %v without n3 became %v", key, before, after)
		}
	}
	// 2 of 5 for 1000 keys: 400 each on average.
	for _, n := range nodes {
		if c := count[n]; c < 300 || c > 500 {
			t.Errorf("node %s owns %d of %d keys (2 of 5 each), want about 400: %v", n, c, keys, count)
		}
	}
}

const goldenScore = "00c07e7319fa2af1"

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		line   string
		level  zerolog.Level
		msg    string
		reason string
	}{
		{`[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=127.0.0.1:1`, zerolog.ErrorLevel,
			`Decrypt packet failed: no installed keys could decrypt the message from=127.0.0.1:1`, "decrypt"},
		{`[ERR] memberlist: failed to receive: No installed keys could decrypt the message from=127.0.0.1:1`, zerolog.ErrorLevel,
			`failed to receive: No installed keys could decrypt the message from=127.0.0.1:1`, "decrypt"},
		{`[ERR] memberlist: failed to receive: encryption is configured but remote state is not encrypted from=x`, zerolog.ErrorLevel,
			`failed to receive: encryption is configured but remote state is not encrypted from=x`, "decrypt"},
		{`[DEBUG] memberlist: Failed to join 127.0.0.1:2: remote error: encryption is configured but remote state is not encrypted`, zerolog.DebugLevel,
			`Failed to join 127.0.0.1:2: remote error: encryption is configured but remote state is not encrypted`, ""},
		{`[ERR] memberlist: discarding packet with unacceptable label "dnslb/b": from=x`, zerolog.ErrorLevel,
			`discarding packet with unacceptable label "dnslb/b": from=x`, "label"},
		{`[WARN] memberlist: Refuting a suspect message (from: b)`, zerolog.WarnLevel, `Refuting a suspect message (from: b)`, ""},
		{`[INFO] memberlist: Suspect b has failed, no acks received`, zerolog.InfoLevel, `Suspect b has failed, no acks received`, ""},
		{`[DEBUG] memberlist: Stream connection from=x`, zerolog.DebugLevel, `Stream connection from=x`, ""},
		{`Err: Could not set the deadline: x`, zerolog.ErrorLevel, `Err: Could not set the deadline: x`, ""},
	}
	for _, tt := range tests {
		level, msg := parseLogLine(tt.line)
		if level != tt.level || msg != tt.msg {
			t.Errorf("parseLogLine(%q) = %v, %q; want %v, %q", tt.line, level, msg, tt.level, tt.msg)
		}
		if r := rejectReason(msg); r != tt.reason {
			t.Errorf("rejectReason(%q) = %q, want %q", msg, r, tt.reason)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no cluster", Config{NodeName: "a", Bind: "127.0.0.1:0"}},
		{"no bind", Config{Cluster: "c", NodeName: "a"}},
		{"bind without port", Config{Cluster: "c", NodeName: "a", Bind: "127.0.0.1"}},
		{"bind to a name", Config{Cluster: "c", NodeName: "a", Bind: "localhost:0"}},
		{"bad advertise", Config{Cluster: "c", NodeName: "a", Bind: "127.0.0.1:0", Advertise: "x"}},
		{"short key", Config{Cluster: "c", NodeName: "a", Bind: "127.0.0.1:0", Keys: [][]byte{make([]byte, 15)}}},
		{"second key bad", Config{Cluster: "c", NodeName: "a", Bind: "127.0.0.1:0", Keys: [][]byte{make([]byte, 32), make([]byte, 33)}}},
	}
	for _, tt := range tests {
		if f, err := New(tt.cfg); err == nil {
			f.Close()
			t.Errorf("%s: New(%+v) succeeded", tt.name, tt.cfg)
		}
	}
}
