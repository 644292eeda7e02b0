package healthcheck

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Spec
		want Spec
	}{
		{
			name: "empty is tcp",
			in:   Spec{},
			want: Spec{Type: "tcp", Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 3,
				Jitter: 100 * time.Millisecond, FastInterval: 250 * time.Millisecond, Initial: "up"},
		},
		{
			name: "http",
			in:   Spec{Type: "HTTP", Port: 8080},
			want: Spec{Type: "http", Port: 8080, Path: "/", Method: "GET", Expect: "200-299",
				Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 3,
				Jitter: 100 * time.Millisecond, FastInterval: 250 * time.Millisecond, Initial: "up"},
		},
		{
			name: "dns normalises case and name",
			in:   Spec{Type: "dns", Name: "www.example.test", QType: "aaaa", Rcode: "nxdomain"},
			want: Spec{Type: "dns", Name: "www.example.test.", QType: "AAAA", Rcode: "NXDOMAIN",
				Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 3,
				Jitter: 100 * time.Millisecond, FastInterval: 250 * time.Millisecond, Initial: "up"},
		},
		{
			name: "short interval scales timeout, jitter, fast interval",
			in:   Spec{Interval: 400 * time.Millisecond},
			want: Spec{Type: "tcp", Interval: 400 * time.Millisecond, Timeout: 400 * time.Millisecond, Rise: 2, Fall: 3,
				Jitter: 40 * time.Millisecond, FastInterval: 100 * time.Millisecond, Initial: "up"},
		},
		{
			name: "long interval caps fast interval",
			in:   Spec{Interval: time.Minute, Timeout: 5 * time.Second, Initial: "down"},
			want: Spec{Type: "tcp", Interval: time.Minute, Timeout: 5 * time.Second, Rise: 2, Fall: 3,
				Jitter: 6 * time.Second, FastInterval: 500 * time.Millisecond, Initial: "down"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.WithDefaults()
			if got.canonical() != tt.want.canonical() || got.Port != tt.want.Port {
				t.Errorf("WithDefaults()\n got %+v\nwant %+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("defaults do not validate: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		in   Spec
		want []string // substrings of the error; none = valid
	}{
		{name: "zero spec", in: Spec{}},
		{name: "none", in: Spec{Type: "none"}},
		{name: "exec", in: Spec{Type: "exec", Command: []string{"/bin/true"}}},
		{name: "http full", in: Spec{Type: "https", Path: "/healthz?x=1", Method: "HEAD", Host: "h:8443", SNI: "s", Expect: "200,204,300-302", Insecure: true}},
		{name: "negative interval", in: Spec{Interval: -time.Second}, want: []string{"check.interval: must be > 0"}},
		{name: "unknown type", in: Spec{Type: "icmp"}, want: []string{`check.type: unknown check type "icmp"`}},
		{name: "timeout above interval", in: Spec{Interval: time.Second, Timeout: 2 * time.Second}, want: []string{"check.timeout: 2s must not exceed interval (1s)"}},
		{name: "rise and fall", in: Spec{Rise: -1, Fall: -2}, want: []string{"check.rise: must be >= 1", "check.fall: must be >= 1"}},
		{name: "port", in: Spec{Port: 70000}, want: []string{"check.port: 70000 out of range"}},
		{name: "jitter", in: Spec{Jitter: -1}, want: []string{"check.jitter: must be >= 0"}},
		{name: "fast interval", in: Spec{Interval: time.Second, FastInterval: 2 * time.Second}, want: []string{"check.fast_interval: 2s must not exceed interval"}},
		{name: "initial", in: Spec{Initial: "maybe"}, want: []string{`check.initial: "maybe" must be "up" or "down"`}},
		{name: "bad expect", in: Spec{Type: "http", Expect: "200-abc"}, want: []string{`check.expect: "abc" is not a status code`}},
		{name: "backwards expect", in: Spec{Type: "http", Expect: "299-200"}, want: []string{`check.expect: range "299-200" is backwards`}},
		{name: "expect out of range", in: Spec{Type: "http", Expect: "99"}, want: []string{`check.expect: "99" is not a status code`}},
		{name: "path", in: Spec{Type: "http", Path: "healthz"}, want: []string{`check.path: "healthz" must start with /`}},
		{name: "method", in: Spec{Type: "http", Method: "GE T"}, want: []string{"check.method"}},
		{name: "head with body", in: Spec{Type: "http", Method: "HEAD", Body: "ok"}, want: []string{"check.body: a HEAD response has no body"}},
		{name: "http field on tcp", in: Spec{Path: "/x", Insecure: true}, want: []string{`check.path: only valid for http and https checks, not "tcp"`, "check.insecure: only valid for https"}},
		{name: "dns without name", in: Spec{Type: "dns"}, want: []string{"check.name: required for dns checks"}},
		{name: "dns bad qtype rcode", in: Spec{Type: "dns", Name: "a.test.", QType: "BOGUS", Rcode: "SAD"}, want: []string{`check.qtype: unknown query type "BOGUS"`, `check.rcode: unknown rcode "SAD"`}},
		{name: "dns field on http", in: Spec{Type: "http", Name: "a."}, want: []string{"check.name: only valid for dns checks"}},
		{name: "exec without command", in: Spec{Type: "exec"}, want: []string{"check.command: required for exec checks"}},
		{name: "command on tcp", in: Spec{Command: []string{"x"}}, want: []string{"check.command: only valid for exec checks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if _, err := NewChecker(tt.in); err == nil {
				t.Errorf("NewChecker accepted an invalid spec")
			}
		})
	}
}

func TestValidateReportsOnlyTheCause(t *testing.T) {
	err := Spec{Interval: -time.Second}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("Validate() = %q, want the single interval error", err)
	}
}

func TestParseExpect(t *testing.T) {
	rs, err := parseExpect("200, 204,300-302")
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{199: false, 200: true, 201: false, 204: true, 299: false, 300: true, 301: true, 302: true, 303: false} {
		if got := rs.contains(code); got != want {
			t.Errorf("contains(%d) = %v, want %v", code, got, want)
		}
	}
	for _, bad := range []string{"", ",", "200-", "-300", "2OO", "600", "300-200"} {
		if _, err := parseExpect(bad); err == nil {
			t.Errorf("parseExpect(%q) = nil error", bad)
		}
	}
}

func TestTargetKey(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.10")
	base := Target{Spec: Spec{Type: "http", Port: 8080}, Addr: netip.AddrPortFrom(a, 0)}
	same := []Target{
		{Spec: Spec{Type: "http"}, Addr: netip.AddrPortFrom(a, 8080)},                         // port from the address
		{Spec: Spec{Type: "HTTP", Port: 8080, Path: "/", Expect: "200-299"}, Addr: base.Addr}, // explicit defaults
		{Spec: Spec{Type: "http", Port: 8080}, Addr: netip.MustParseAddrPort("[::ffff:192.0.2.10]:9")},
	}
	for i, o := range same {
		if o.Key() != base.Key() {
			t.Errorf("same[%d].Key() = %v, want %v", i, o.Key(), base.Key())
		}
	}
	different := []Target{
		{Spec: Spec{Type: "http", Port: 8081}, Addr: base.Addr},
		{Spec: Spec{Type: "http", Port: 8080, Path: "/healthz"}, Addr: base.Addr},
		{Spec: Spec{Type: "http", Port: 8080, Rise: 3}, Addr: base.Addr},
		{Spec: Spec{Type: "tcp", Port: 8080}, Addr: base.Addr},
		{Spec: Spec{Type: "http", Port: 8080}, Addr: netip.MustParseAddrPort("192.0.2.11:0")},
	}
	for i, o := range different {
		if o.Key() == base.Key() {
			t.Errorf("different[%d].Key() equals base: %v", i, o.Key())
		}
	}
	if got, want := base.Key().Addr.String(), "192.0.2.10:8080"; got != want {
		t.Errorf("key address = %s, want %s", got, want)
	}
	if got := (Target{Spec: Spec{Type: "https"}, Addr: netip.AddrPortFrom(a, 0)}).Key().Addr.Port(); got != 443 {
		t.Errorf("https default port = %d, want 443", got)
	}
	if err := (Target{Spec: Spec{Type: "tcp"}, Addr: netip.AddrPortFrom(a, 0)}).Validate(); err == nil || !strings.Contains(err.Error(), "check.port") {
		t.Errorf("tcp target without port: Validate() = %v, want a check.port error", err)
	}
	if err := (Target{Spec: Spec{Type: "exec", Command: []string{"true"}}, Addr: netip.AddrPortFrom(a, 0)}).Validate(); err != nil {
		t.Errorf("exec target without port: %v", err)
	}
	if err := (Target{}).Validate(); err == nil {
		t.Errorf("target without address validated")
	}
}
