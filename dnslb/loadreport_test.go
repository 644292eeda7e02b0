package dnslb

import (
	"strings"
	"testing"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/internal/fuzzguard"
)

func TestJSONLoadReport(t *testing.T) {
	tests := []struct {
		body, path string
		want, err  string
	}{
		{`{"load":"50%"}`, "load", "50%", ""},
		{`{"load":"drain"}`, "load", "drain", ""},
		{`{"stats":{"weight":"up weight:20"}}`, "stats.weight", "up weight:20", ""},
		{`{"free":37.6}`, "free", "38%", ""},
		{`{"free":0}`, "free", "0%", ""},
		{`{"free":1000}`, "free", "1000%", ""},
		{`{"free":1000.6}`, "free", "", "not a load percentage"},
		{`{"free":-1}`, "free", "", "not a load percentage"},
		{`{"free":true}`, "free", "", "is bool, not a string or a number"},
		{`{"free":null}`, "free", "", "is <nil>, not a string or a number"},
		{`{"other":1}`, "free", "", "no field free"},
		{`{"stats":[1]}`, "stats.weight", "", `"weight" is not in an object`},
		{`["free"]`, "free", "", `"free" is not in an object`},
		{`<html>`, "free", "", "not JSON"},
		{``, "free", "", "not JSON"},
	}
	for _, tc := range tests {
		got, err := jsonLoadReport([]byte(tc.body), tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("jsonLoadReport(%s, %s) = %q, %v; want an error with %q", tc.body, tc.path, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("jsonLoadReport(%s, %s) = %q, %v; want %q", tc.body, tc.path, got, err, tc.want)
		}
	}
}

// A backend's body is untrusted: whatever it holds, the field comes out
// as a line the agent parser takes or refuses, never a crash.
func FuzzJSONLoadReport(f *testing.F) {
	f.Add([]byte(`{"load":{"weight":"up 50%"}}`), "load.weight")
	f.Add([]byte(`{"a":12.5}`), "a")
	f.Add([]byte(`[[[[[[[[[[[[[[]]]]]]]]]]]]]]`), "a.b")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		if !validJSONPath(path) {
			return
		}
		var line string
		var err error
		fuzzguard.Run(t, "jsonLoadReport", fuzzguard.Limit, func() { line, err = jsonLoadReport(body, path) })
		if err != nil {
			return
		}
		_, _ = healthcheck.ParseAgentLine([]byte(line))
	})
}
