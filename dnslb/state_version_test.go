package dnslb

import (
	"encoding/json"
	"fmt"
	"github.com/dnslb/dnslb/dnslb/answer"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/healthcheck"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestStateFileFromMain: a state file written by an earlier dnslb (main
// before the state file had types of its own; see testdata/state) is
// restored with every override, health state, serial and the cookie
// secret intact, and saved again in the same format, so that a rollback
// can read what this dnslb writes.
func TestStateFileFromMain(t *testing.T) {
	data, err := os.ReadFile("testdata/state/v1-main.json")
	if err != nil {
		t.Fatal(err)
	}
	r := stateOnly(data)
	rs, err := r.loadState()
	if err != nil {
		t.Fatalf("loadState: %v", err)
	}

	wantOv := map[netip.Addr]answer.Override{
		netip.MustParseAddr("127.0.0.11"): {Mode: answer.OverrideDrain, Reason: `kernel "upgrade" <5.15>`,
			Since: mustTime(t, "2026-12-02T05:28:43.247597375Z")},
		netip.MustParseAddr("127.0.0.12"): {Mode: answer.OverrideForceDown, Reason: "disk failing",
			Since: mustTime(t, "2026-12-02T05:28:49.125081691Z"), Until: mustTime(t, "2036-11-29T05:28:49.125070264Z")},
		netip.MustParseAddr("2001:db8::14"): {Mode: answer.OverrideDrain, Reason: "v6 rollout",
			Since: mustTime(t, "2026-12-02T05:28:49.137035063Z"), Until: mustTime(t, "2026-12-02T06:28:49.137027092Z")},
	}
	if !reflect.DeepEqual(rs.overrides, wantOv) {
		t.Errorf("overrides restored:\n%+v\nwant\n%+v", rs.overrides, wantOv)
	}

	const check = "tcp interval=1s timeout=500ms rise=1 fall=1 jitter=100ms fast_interval=250ms initial=up"
	key := func(ap string) healthcheck.TargetKey {
		return healthcheck.TargetKey{Check: check, Addr: netip.MustParseAddrPort(ap)}
	}
	wantSeed := map[healthcheck.TargetKey]healthcheck.Status{
		key("127.0.0.11:18081"):     {Up: true, Since: mustTime(t, "2026-12-02T05:28:39.247086206Z")},
		key("127.0.0.12:18081"):     {Up: true, Since: mustTime(t, "2026-12-02T05:28:39.247086206Z")},
		key("127.0.0.13:18081"):     {Up: false, Since: mustTime(t, "2026-12-02T05:28:39.573628521Z")},
		key("[2001:db8::14]:18081"): {Up: false, Since: mustTime(t, "2026-12-02T05:28:40.452291302Z")},
	}
	if !maps.Equal(rs.health, wantSeed) {
		t.Errorf("health restored:\n%+v\nwant\n%+v", rs.health, wantSeed)
	}
	wantSerials := map[string]serialState{"example.test.": {Serial: 2024010101, Digest: "3d3c273bac067848929a5432cf4d3f0de90d079971c9ff5a61e5230562193bb8"}}
	if !maps.Equal(rs.serials, wantSerials) {
		t.Errorf("serials restored: %+v, want %+v", rs.serials, wantSerials)
	}
	if r.cookieSecret != "d742239fc1a37762bed19c1c3fda6e6a" {
		t.Errorf("cookie secret not restored")
	}

	// Saved again: what the earlier dnslb wrote, field for field (but the
	// health, which comes from the scheduler, and the time of the save).
	// The serials saved are the generation's, which starts from those
	// restored.
	r.cur.Store(&Generation{serials: rs.serials})
	if err := r.writeStateLocked(rs.overrides); err != nil {
		t.Fatal(err)
	}
	saved, err := r.stateFS.ReadFile(r.statePath)
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	if err := json.Unmarshal(data, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(saved, &after); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "overrides", "serials", "cookie_secret"} {
		if !reflect.DeepEqual(before[k], after[k]) {
			t.Errorf("%s saved as %v, was %v", k, after[k], before[k])
		}
	}
}

// TestDecodeStateVersions: only the versions this dnslb knows are read;
// the others are refused with an error that says which version the file
// has and what to do, never read as something else.
func TestDecodeStateVersions(t *testing.T) {
	tests := []struct {
		name, data string
		want       string // in the error; "" for none
	}{
		{"version 1", `{"version": 1, "overrides": {"192.0.2.10": {"mode": "drain"}}}`, ""},
		{"newer", `{"version": 2, "overrides": {"192.0.2.10": {"mode": "drain"}}, "fleet": {}}`,
			"has version 2; this dnslb understands version 1 (written by a newer dnslb: run that one, or move the file aside"},
		{"far newer", `{"version": 99}`, "has version 99"},
		{"none", `{"overrides": {"192.0.2.10": {"mode": "drain"}}}`, "has version 0 or none (not written by dnslb?)"},
		{"negative", `{"version": -1}`, "has version -1; this dnslb understands version 1"},
		{"not a number", `{"version": "1"}`, "cannot be parsed"},
		{"not an object", `[1]`, "cannot be parsed"},
		{"a version 1 of the wrong shape", `{"version": 1, "overrides": []}`, "cannot be parsed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sf, err := decodeState([]byte(tc.data))
			if tc.want == "" {
				if err != nil || sf.Version != stateVersion || sf.Overrides["192.0.2.10"].Mode != "drain" {
					t.Fatalf("decodeState = %+v, %v", sf, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decodeState = %+v, %v; want an error saying %q", sf, err, tc.want)
			}
		})
	}
}

// TestStateSecretNotPrinted: the cookie secret of a state file is written
// to the file but does not show when the state is printed (a log line, an
// error), nor in the error about a file that is refused.
func TestStateSecretNotPrinted(t *testing.T) {
	const secret = "d742239fc1a37762bed19c1c3fda6e6a"
	sf := stateFile{Version: stateVersion, CookieSecret: secret}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, sf); strings.Contains(s, secret) {
			t.Errorf("Sprintf(%q) shows the secret: %s", f, s)
		}
		if s := fmt.Sprintf(f, &sf); strings.Contains(s, secret) {
			t.Errorf("Sprintf(%q) of a pointer shows the secret: %s", f, s)
		}
	}
	b, err := json.Marshal(sf)
	if err != nil || !strings.Contains(string(b), `"cookie_secret":"`+secret+`"`) {
		t.Fatalf("the file does not hold the secret: %s %v", b, err)
	}

	for _, data := range []string{
		`{"version": 1, "cookie_secret": "` + secret + `", "overrides": {"www": {"mode": "drain"}}}`,
		`{"version": 1, "cookie_secret": "` + secret + `", "health": 7}`,
		`{"version": 1, "cookie_secret": "` + secret + `x", "overrides": {`,
		`{"version": 2, "cookie_secret": "` + secret + `"}`,
	} {
		r := stateOnly([]byte(data))
		_, err := r.loadState()
		if err == nil {
			t.Fatalf("loadState(%s) = nil", data)
		}
		if strings.Contains(err.Error(), secret[:8]) {
			t.Errorf("the error about %s shows the secret: %v", data, err)
		}
	}
}

// TestMemberStateOf: an override outranks the health checks.
func TestMemberStateOf(t *testing.T) {
	tests := []struct {
		healthy bool
		ov      answer.Override
		has     bool
		want    string
	}{
		{true, answer.Override{}, false, "up"},
		{false, answer.Override{}, false, "down"},
		{true, answer.Override{Mode: answer.OverrideDrain}, true, "drained"},
		{false, answer.Override{Mode: answer.OverrideDrain}, true, "drained"},
		{true, answer.Override{Mode: answer.OverrideForceDown}, true, "forced-down"},
		{false, answer.Override{Mode: answer.OverrideForceDown}, true, "forced-down"},
	}
	for _, tc := range tests {
		if got := answer.MemberStateOf(tc.healthy, tc.ov, tc.has).String(); got != tc.want {
			t.Errorf("answer.MemberStateOf(%v, %v, %v) = %s, want %s", tc.healthy, tc.ov.Mode, tc.has, got, tc.want)
		}
	}
}

// TestOverrideModeSpellings: the core modes, the API's and the state
// file's name the same things.
func TestOverrideModeSpellings(t *testing.T) {
	for _, m := range []answer.OverrideMode{answer.OverrideNone, answer.OverrideDrain, answer.OverrideForceDown} {
		back, ok := overrideModeFromAdmin(adminOverrideMode(m))
		if !ok || back != m {
			t.Errorf("%v through the API: %v, %v", m, back, ok)
		}
		if string(adminOverrideMode(m)) != m.String() {
			t.Errorf("%v: the API spells it %q", m, adminOverrideMode(m))
		}
		if m == answer.OverrideNone {
			continue
		}
		if p, ok := answer.ParseOverrideMode(m.String()); !ok || p != m {
			t.Errorf("%v through the state file: %v, %v", m, p, ok)
		}
	}
	if _, ok := overrideModeFromAdmin("drained"); ok {
		t.Error(`the API mode "drained" converted`)
	}
	if _, ok := answer.ParseOverrideMode(""); ok {
		t.Error(`the state file mode "" parsed`)
	}
}
