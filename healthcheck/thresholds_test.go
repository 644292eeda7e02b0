package healthcheck

import (
	"strings"
	"testing"
)

func TestThresholds(t *testing.T) {
	// results: one probe's outcome per character, + success, - failure;
	// want: the state after each, u up, d down, in upper case where Record
	// reported a change.
	tests := []struct {
		name       string
		rise, fall int
		up         bool
		results    string
		want       string
	}{
		{name: "fall 3 from up", rise: 2, fall: 3, up: true, results: "---", want: "uuD"},
		{name: "a success resets the failures", rise: 2, fall: 3, up: true, results: "--+---", want: "uuuuuD"},
		{name: "rise 2 from down", rise: 2, fall: 3, up: false, results: "++", want: "dU"},
		{name: "a failure resets the successes", rise: 2, fall: 3, up: false, results: "+-++", want: "dddU"},
		{name: "stays down on failures", rise: 2, fall: 3, up: false, results: "----", want: "dddd"},
		{name: "stays up on successes", rise: 2, fall: 3, up: true, results: "++++", want: "uuuu"},
		{name: "rise and fall 1 follow each result", rise: 1, fall: 1, up: true, results: "-+-+", want: "DUDU"},
		{name: "flap then recover", rise: 2, fall: 2, up: true, results: "--+-++", want: "uDdddU"},
		{name: "below 1 counts as 1", rise: 0, fall: -1, up: false, results: "-+-", want: "dUD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := Thresholds{Rise: tt.rise, Fall: tt.fall, Up: tt.up}
			var got strings.Builder
			for i, r := range tt.results {
				ok := r == '+'
				changed := th.Record(ok)
				c := map[bool]byte{true: 'u', false: 'd'}[th.Up]
				if changed {
					c -= 'a' - 'A'
				}
				got.WriteByte(c)
				if (th.Successes == 0) == (th.Failures == 0) {
					t.Errorf("after result %d: successes %d failures %d, want one of them 0", i, th.Successes, th.Failures)
				}
				if ok && th.Successes == 0 || !ok && th.Failures == 0 {
					t.Errorf("after result %d (%c): successes %d failures %d", i, r, th.Successes, th.Failures)
				}
			}
			if got.String() != tt.want {
				t.Errorf("states %q, want %q", got.String(), tt.want)
			}
		})
	}
}
