package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
)

// startServer runs a Server on 127.0.0.1:0 and stops it when the test ends.
func startServer(t *testing.T, b Backend, reg prometheus.Gatherer, opts Options) *Server {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	s := NewServer("127.0.0.1:0", b, reg, opts, zerolog.Nop())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, token, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	return reply{resp.StatusCode, resp.Header, b}
}

// decodeStrict decodes JSON into v, failing on fields v does not know.
func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, b)
	}
}

func wantJSONError(t *testing.T, r reply, code int, contains string) {
	t.Helper()
	if r.code != code {
		t.Errorf("status %d, want %d; body %s", r.code, code, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e ErrorResponse
	decodeStrict(t, r.body, &e)
	if e.Error == "" || !strings.Contains(e.Error, contains) {
		t.Errorf("error %q, want it to contain %q", e.Error, contains)
	}
}

func TestGetEndpoints(t *testing.T) {
	fb := newFakeBackend()
	s := startServer(t, fb, nil, Options{})
	base := "http://" + s.Addr()
	tests := []struct {
		path  string
		code  int
		ctype string
		check func(t *testing.T, body []byte)
	}{
		{"/healthz", 200, "text/plain", func(t *testing.T, b []byte) {
			if strings.TrimSpace(string(b)) != "ok" {
				t.Errorf("body %q", b)
			}
		}},
		{"/readyz", 200, "text/plain", nil},
		{"/api/v1/pools", 200, "application/json", func(t *testing.T, b []byte) {
			var got []PoolStatus
			decodeStrict(t, b, &got)
			if !reflect.DeepEqual(got, fb.Pools()) {
				t.Errorf("pools round trip:\n got %+v\nwant %+v", got, fb.Pools())
			}
		}},
		{"/api/v1/pools/www.example.test.", 200, "application/json", func(t *testing.T, b []byte) {
			var got PoolStatus
			decodeStrict(t, b, &got)
			if got.Name != "www.example.test." || len(got.Members) != 4 || got.Members[1].LastError == "" {
				t.Errorf("pool %+v", got)
			}
		}},
		{"/api/v1/pools/WWW.Example.TEST", 200, "application/json", func(t *testing.T, b []byte) {
			var got PoolStatus
			decodeStrict(t, b, &got)
			if got.Name != "www.example.test." {
				t.Errorf("pool %q", got.Name)
			}
		}},
		{"/api/v1/pools/api.example.test", 200, "application/json", nil},
		{"/api/v1/pools/nope.example.test.", 404, "application/json", nil},
		{"/api/v1/zones", 200, "application/json", func(t *testing.T, b []byte) {
			var got []ZoneStatus
			decodeStrict(t, b, &got)
			if !reflect.DeepEqual(got, fb.Zones()) {
				t.Errorf("zones round trip:\n got %+v\nwant %+v", got, fb.Zones())
			}
		}},
		{"/api/v1/nothing", 404, "application/json", nil},
		{"/metrics", 200, "text/plain", nil},
		{"/", 200, "text/html", nil},
		{"/nothing", 404, "text/plain", nil},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := do(t, "GET", base+tc.path, "", "")
			if r.code != tc.code {
				t.Fatalf("status %d, want %d; body %s", r.code, tc.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tc.ctype)
			}
			if tc.code >= 400 && tc.ctype == "application/json" {
				wantJSONError(t, r, tc.code, "")
			}
			if tc.check != nil {
				tc.check(t, r.body)
			}
		})
	}
}

func TestJSONFieldNames(t *testing.T) {
	s := startServer(t, newFakeBackend(), nil, Options{})
	r := do(t, "GET", "http://"+s.Addr()+"/api/v1/pools/www.example.test.", "", "")
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "zone", "policy", "ttl", "max_answers", "when_all_down", "check", "members", "all_down"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("pool lacks %q: %s", k, r.body)
		}
	}
	m := raw["members"].([]any)[0].(map[string]any)
	for _, k := range []string{"address", "state", "healthy", "checked", "since", "last_error", "latency_ns", "weight", "backup", "share"} {
		if _, ok := m[k]; !ok {
			t.Errorf("member lacks %q", k)
		}
	}
	if _, ok := m["override"]; ok {
		t.Errorf("member without override has an override key")
	}
}

func TestReadyz(t *testing.T) {
	fb := newFakeBackend()
	fb.ready = false
	s := startServer(t, fb, nil, Options{})
	if r := do(t, "GET", "http://"+s.Addr()+"/readyz", "", ""); r.code != http.StatusServiceUnavailable {
		t.Errorf("not ready: status %d, want 503", r.code)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := startServer(t, newFakeBackend(), nil, Options{})
	base := "http://" + s.Addr()
	r := do(t, "POST", base+"/api/v1/pools", "", "")
	wantJSONError(t, r, http.StatusMethodNotAllowed, "not allowed")
	if r.header.Get("Allow") == "" {
		t.Error("405 without Allow header")
	}
	r = do(t, "GET", base+"/api/v1/reload", "", "")
	wantJSONError(t, r, http.StatusMethodNotAllowed, "not allowed")
}

func TestOverrides(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		body      string
		code      int
		errText   string
		wantMode  OverrideMode
		wantUntil time.Time
		wantWhy   string
		wantState string
		wantPools int
	}{
		{name: "drain no body", path: "192.0.2.1/drain", code: 200, wantMode: OverrideDrain, wantState: "drained", wantPools: 2},
		{name: "drain for", path: "192.0.2.3/drain", body: `{"reason":"kernel upgrade","for":"30m"}`, code: 200,
			wantMode: OverrideDrain, wantUntil: t0.Add(30 * time.Minute), wantWhy: "kernel upgrade", wantState: "drained", wantPools: 1},
		{name: "drain until", path: "192.0.2.3/drain", body: `{"until":"2026-03-01T14:00:00Z"}`, code: 200,
			wantMode: OverrideDrain, wantUntil: t0.Add(2 * time.Hour), wantState: "drained", wantPools: 1},
		{name: "force-down", path: "192.0.2.2/force-down", body: `{"reason":"bad disk"}`, code: 200,
			wantMode: OverrideForceDown, wantWhy: "bad disk", wantState: "forced-down", wantPools: 1},
		{name: "undrain", path: "192.0.2.2/undrain", body: `{"reason":"fixed"}`, code: 200,
			wantMode: OverrideNone, wantWhy: "fixed", wantState: "down", wantPools: 1},
		{name: "ipv6", path: "2001:db8::1/drain", code: 200, wantMode: OverrideDrain, wantState: "drained", wantPools: 1},
		{name: "ipv6 escaped", path: "2001%3Adb8%3A%3A1/drain", code: 200, wantMode: OverrideDrain, wantState: "drained", wantPools: 1},
		{name: "unknown member", path: "198.51.100.9/drain", code: 404, errText: "no pool has this member"},
		{name: "bad address", path: "not-an-ip/drain", code: 400, errText: "not an IP address"},
		{name: "bad json", path: "192.0.2.1/drain", body: `{"reason":`, code: 400, errText: "body"},
		{name: "unknown field", path: "192.0.2.1/drain", body: `{"reasn":"x"}`, code: 400, errText: "unknown field"},
		{name: "bad duration", path: "192.0.2.1/drain", body: `{"for":"soon"}`, code: 400, errText: "positive duration"},
		{name: "negative duration", path: "192.0.2.1/drain", body: `{"for":"-5m"}`, code: 400, errText: "positive duration"},
		{name: "for and until", path: "192.0.2.1/drain", body: `{"for":"5m","until":"2026-03-01T14:00:00Z"}`, code: 400, errText: "not both"},
		{name: "until in the past", path: "192.0.2.1/drain", body: `{"until":"2026-03-01T11:00:00Z"}`, code: 400, errText: "not in the future"},
		{name: "bad until", path: "192.0.2.1/drain", body: `{"until":"tomorrow"}`, code: 400, errText: "body"},
		{name: "undrain with expiry", path: "192.0.2.1/undrain", body: `{"for":"5m"}`, code: 400, errText: "no expiry"},
		{name: "unknown action", path: "192.0.2.1/explode", code: 404, errText: "no such endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFakeBackend()
			s := startServer(t, fb, nil, Options{})
			r := do(t, "POST", "http://"+s.Addr()+"/api/v1/members/"+tc.path, "", tc.body)
			if tc.code != 200 {
				wantJSONError(t, r, tc.code, tc.errText)
				return
			}
			if r.code != 200 {
				t.Fatalf("status %d: %s", r.code, r.body)
			}
			var res OverrideResult
			decodeStrict(t, r.body, &res)
			call, err := fb.lastCall()
			if err != nil {
				t.Fatal(err)
			}
			if call.Mode != tc.wantMode || !call.Until.Equal(tc.wantUntil) || call.Reason != tc.wantWhy {
				t.Errorf("SetOverride(%v, %q, %v, %q), want mode %q until %v reason %q",
					call.Addr, call.Mode, call.Until, call.Reason, tc.wantMode, tc.wantUntil, tc.wantWhy)
			}
			if res.Address != call.Addr.String() || res.Mode != tc.wantMode || !res.Until.Equal(tc.wantUntil) {
				t.Errorf("result %+v", res)
			}
			if len(res.Members) != tc.wantPools {
				t.Fatalf("%d members in result, want %d: %s", len(res.Members), tc.wantPools, r.body)
			}
			for _, m := range res.Members {
				if m.Pool == "" || m.Address != call.Addr.String() || m.State != tc.wantState {
					t.Errorf("member %+v, want state %q", m, tc.wantState)
				}
				if (tc.wantMode == OverrideNone) != (m.Override == nil) {
					t.Errorf("member override %+v after %q", m.Override, tc.wantMode)
				}
			}
		})
	}
}

// TestOverrideNotPersisted: a change the server could not save is a 503
// that says it was not applied and why; other failures stay a 500.
func TestOverrideNotPersisted(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		code    int
		errText []string
	}{
		{"not persisted", fmt.Errorf("192.0.2.1: %w: state file /var/lib/dnslb/dnslb.state.json: write /var/lib/dnslb/.dnslb.state.json.1: %w",
			ErrNotPersisted, syscall.ENOSPC), http.StatusServiceUnavailable, []string{"NOT applied", "no space left on device"}},
		{"other", errors.New("something else"), http.StatusInternalServerError, []string{"something else"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFakeBackend()
			fb.setErr = tc.err
			s := startServer(t, fb, nil, Options{})
			for _, action := range []string{"drain", "undrain", "force-down"} {
				r := do(t, "POST", "http://"+s.Addr()+"/api/v1/members/192.0.2.1/"+action, "", "")
				for _, want := range tc.errText {
					wantJSONError(t, r, tc.code, want)
				}
			}
			for _, p := range fb.Pools() {
				for _, m := range p.Members {
					if m.Address == "192.0.2.1" && (m.State != "up" || m.Override != nil) {
						t.Errorf("pool %s: %+v after refused changes, want up", p.Name, m)
					}
				}
			}
		})
	}
}

func TestReload(t *testing.T) {
	fb := newFakeBackend()
	s := startServer(t, fb, nil, Options{})
	url := "http://" + s.Addr() + "/api/v1/reload"

	r := do(t, "POST", url, "", "")
	var res ReloadResult
	decodeStrict(t, r.body, &res)
	if r.code != 200 || !res.OK || res.Error != "" {
		t.Errorf("good reload: %d %+v", r.code, res)
	}

	fb.mu.Lock()
	fb.reloadErr = errors.New("zones/example.test.zone:7: bad TTL \"x\"")
	fb.mu.Unlock()
	r = do(t, "POST", url, "", "")
	res = ReloadResult{}
	decodeStrict(t, r.body, &res)
	if r.code != http.StatusUnprocessableEntity || res.OK || res.Error != `zones/example.test.zone:7: bad TTL "x"` {
		t.Errorf("broken reload: %d %+v", r.code, res)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// The last reload's error also shows on the status page.
	page := do(t, "GET", "http://"+s.Addr()+"/", "", "")
	if !strings.Contains(string(page.body), "zones/example.test.zone:7: bad TTL &#34;x&#34;") {
		t.Errorf("status page lacks the reload error")
	}
	if fb.reloads != 2 {
		t.Errorf("%d reloads, want 2", fb.reloads)
	}
}

// TestAuth calls the handler with crafted requests so the client address
// can be anything.
func TestAuth(t *testing.T) {
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	tests := []struct {
		name    string
		token   string   // server's
		listen  string   // server's; default 127.0.0.1:0
		allowed []string // server's AllowedHosts
		method  string
		path    string
		remote  string
		host    string
		auth    string
		header  map[string]string
		code    int
	}{
		{name: "no token, loopback v4", remote: "127.0.0.1:5555", code: 200},
		{name: "no token, loopback v6", remote: "[::1]:5555", code: 200},
		{name: "no token, loopback mapped", remote: "[::ffff:127.0.0.1]:5555", code: 200},
		{name: "no token, localhost host", remote: "127.0.0.1:5555", host: "localhost:8053", code: 200},
		{name: "no token, remote", remote: "192.0.2.50:5555", code: 403},
		{name: "no token, remote v6", remote: "[2001:db8::5]:5555", code: 403},
		{name: "no token, garbage remote", remote: "pipe", code: 403},
		{name: "no token, rebinding", remote: "127.0.0.1:5555", host: "evil.example:8053", code: 421},
		{name: "no token, cross-site browser", remote: "127.0.0.1:5555", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, code: 403},
		{name: "no token, GET from remote", method: "GET", path: "/api/v1/pools", remote: "192.0.2.50:5555", code: 200},
		{name: "token, none given", token: "s3cret", remote: "127.0.0.1:5555", code: 401},
		{name: "token, wrong", token: "s3cret", remote: "127.0.0.1:5555", auth: "Bearer s3cre", code: 401},
		{name: "token, wrong scheme", token: "s3cret", remote: "127.0.0.1:5555", auth: "Token s3cret", code: 401},
		{name: "token, right from remote", token: "s3cret", remote: "192.0.2.50:5555", auth: "Bearer s3cret", code: 200},
		{name: "token, lower-case scheme", token: "s3cret", remote: "192.0.2.50:5555", auth: "bearer s3cret", code: 200},
		{name: "token, basic auth does not change", token: "s3cret", remote: "127.0.0.1:5555", auth: basic("", "s3cret"), code: 401},
		{name: "token, reload needs it", token: "s3cret", path: "/api/v1/reload", remote: "127.0.0.1:5555", code: 401},

		// Reads need the token when one is set, all but the probes.
		{name: "token, GET API without", token: "s3cret", method: "GET", path: "/api/v1/zones", remote: "127.0.0.1:5555", code: 401},
		{name: "token, GET pool without", token: "s3cret", method: "GET", path: "/api/v1/pools/www.example.test.", remote: "192.0.2.50:5555", code: 401},
		{name: "token, metrics without", token: "s3cret", method: "GET", path: "/metrics", remote: "192.0.2.50:5555", code: 401},
		{name: "token, page without", token: "s3cret", method: "GET", path: "/", remote: "192.0.2.50:5555", code: 401},
		{name: "token, unknown path without", token: "s3cret", method: "GET", path: "/api/v1/nope", remote: "192.0.2.50:5555", code: 401},
		{name: "token, HEAD page without", token: "s3cret", method: "HEAD", path: "/", remote: "192.0.2.50:5555", code: 401},
		{name: "token, GET wrong bearer", token: "s3cret", method: "GET", path: "/api/v1/pools", remote: "192.0.2.50:5555", auth: "Bearer nope", code: 401},
		{name: "token, GET bearer", token: "s3cret", method: "GET", path: "/api/v1/pools", remote: "192.0.2.50:5555", auth: "Bearer s3cret", code: 200},
		{name: "token, metrics bearer", token: "s3cret", method: "GET", path: "/metrics", remote: "192.0.2.50:5555", auth: "Bearer s3cret", code: 200},
		{name: "token, page basic", token: "s3cret", method: "GET", path: "/", remote: "192.0.2.50:5555", auth: basic("", "s3cret"), code: 200},
		{name: "token, page basic any user", token: "s3cret", method: "GET", path: "/", remote: "192.0.2.50:5555", auth: basic("admin", "s3cret"), code: 200},
		{name: "token, page basic wrong", token: "s3cret", method: "GET", path: "/", remote: "192.0.2.50:5555", auth: basic("s3cret", "x"), code: 401},
		{name: "token, metrics basic", token: "s3cret", method: "GET", path: "/metrics", remote: "192.0.2.50:5555", auth: basic("prometheus", "s3cret"), code: 200},
		{name: "token, healthz open", token: "s3cret", method: "GET", path: "/healthz", remote: "192.0.2.50:5555", code: 200},
		{name: "token, readyz open", token: "s3cret", method: "GET", path: "/readyz", remote: "192.0.2.50:5555", code: 200},

		// The Host header, on every request (DNS rebinding).
		{name: "host, rebinding with token", token: "s3cret", remote: "192.0.2.50:5555", host: "lb.example:8053", auth: "Bearer s3cret", code: 421},
		{name: "host, rebinding GET", method: "GET", path: "/api/v1/pools", remote: "127.0.0.1:5555", host: "evil.example:8053", code: 421},
		{name: "host, rebinding page", method: "GET", path: "/", remote: "127.0.0.1:5555", host: "evil.example", code: 421},
		{name: "host, rebinding metrics", method: "GET", path: "/metrics", remote: "127.0.0.1:5555", host: "evil.example", code: 421},
		{name: "host, rebinding healthz", method: "GET", path: "/healthz", remote: "127.0.0.1:5555", host: "evil.example", code: 421},
		{name: "host, localhost name", method: "GET", path: "/", remote: "127.0.0.1:5555", host: "LocalHost.:8053", code: 200},
		{name: "host, under localhost", method: "GET", path: "/", remote: "127.0.0.1:5555", host: "dnslb.localhost:8053", code: 200},
		{name: "host, notlocalhost", method: "GET", path: "/", remote: "127.0.0.1:5555", host: "notlocalhost:8053", code: 421},
		{name: "host, IPv4 literal", method: "GET", path: "/", remote: "192.0.2.50:5555", host: "198.51.100.7:8053", code: 200},
		{name: "host, IPv6 literal", method: "GET", path: "/", remote: "[2001:db8::5]:5555", host: "[2001:db8::53]:8053", code: 200},
		{name: "host, IPv6 literal no port", method: "GET", path: "/", remote: "[2001:db8::5]:5555", host: "[2001:db8::53]", code: 200},
		{name: "host, no port", method: "GET", path: "/", remote: "127.0.0.1:5555", host: "127.0.0.1", code: 200},
		{name: "host, listen name", listen: "lb1.internal:8053", method: "GET", path: "/", remote: "192.0.2.50:5555", host: "LB1.internal:8053", code: 200},
		{name: "host, other than listen name", listen: "lb1.internal:8053", method: "GET", path: "/", remote: "192.0.2.50:5555", host: "lb2.internal:8053", code: 421},
		{name: "host, allowed", allowed: []string{"dnslb.example.net"}, method: "GET", path: "/", remote: "192.0.2.50:5555", host: "dnslb.example.net:8053", code: 200},
		{name: "host, allowed with dot", allowed: []string{"Dnslb.Example.Net."}, method: "GET", path: "/", remote: "192.0.2.50:5555", host: "dnslb.example.net", code: 200},
		{name: "host, allowed wildcard", allowed: []string{"*.example.net"}, method: "GET", path: "/", remote: "192.0.2.50:5555", host: "lb1.dc1.example.net", code: 200},
		{name: "host, wildcard not apex", allowed: []string{"*.example.net"}, method: "GET", path: "/", remote: "192.0.2.50:5555", host: "example.net", code: 421},
		{name: "host, wildcard not lookalike", allowed: []string{"*.example.net"}, method: "GET", path: "/", remote: "192.0.2.50:5555", host: "evilexample.net", code: 421},
		{name: "host, allowed with token", token: "s3cret", allowed: []string{"lb.example"}, remote: "192.0.2.50:5555", host: "lb.example:8053", auth: "Bearer s3cret", code: 200},
		{name: "host, allowed but no token: loopback names only", allowed: []string{"lb.example"}, remote: "127.0.0.1:5555", host: "lb.example:8053", code: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFakeBackend()
			listen := tc.listen
			if listen == "" {
				listen = "127.0.0.1:0"
			}
			s := NewServer(listen, fb, nil, Options{Token: tc.token, AllowedHosts: tc.allowed, Now: func() time.Time { return t0 }}, zerolog.Nop())
			method, path, host := tc.method, tc.path, tc.host
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/api/v1/members/192.0.2.1/drain"
			}
			if host == "" {
				host = "127.0.0.1:8053"
			}
			req := httptest.NewRequest(method, "http://"+host+path, nil)
			req.RemoteAddr = tc.remote
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			s.handler.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if tc.code == 401 {
				ch := rec.Header().Values("WWW-Authenticate")
				if len(ch) == 0 || !strings.HasPrefix(ch[0], "Bearer ") {
					t.Errorf("401 without a Bearer challenge: %q", ch)
				}
				if method != "POST" && (len(ch) != 2 || !strings.HasPrefix(ch[1], "Basic ")) {
					t.Errorf("401 on a read without a Basic challenge (browsers ask for it): %q", ch)
				}
			}
			if tc.code >= 400 && method != "HEAD" && tc.header == nil {
				if strings.HasPrefix(path, "/api/") {
					var e ErrorResponse
					decodeStrict(t, rec.Body.Bytes(), &e)
				} else if !strings.Contains(rec.Body.String(), map[int]string{401: "token", 421: "admin.allowed_hosts"}[tc.code]) {
					t.Errorf("body %q does not say why", rec.Body)
				}
			}
			called := len(fb.calls) > 0 || fb.reloads > 0
			if called != (tc.code == 200 && method == "POST") {
				t.Errorf("backend called: %v, status %d", called, tc.code)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	q := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dnslb_queries_total", Help: "Queries."}, []string{"zone", "qtype", "rcode"})
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dnslb_member_up", Help: "Member health."}, []string{"pool", "member"})
	reg.MustRegister(q, up)
	q.WithLabelValues("example.test.", "A", "NOERROR").Add(7)
	up.WithLabelValues("www.example.test.", "192.0.2.1").Set(1)
	up.WithLabelValues("www.example.test.", "192.0.2.2").Set(0)

	s := startServer(t, newFakeBackend(), reg, Options{})
	r := do(t, "GET", "http://"+s.Addr()+"/metrics", "", "")
	if r.code != 200 {
		t.Fatalf("status %d", r.code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(r.body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, r.body)
	}
	qf := fams["dnslb_queries_total"]
	if qf == nil || len(qf.Metric) != 1 || qf.Metric[0].GetCounter().GetValue() != 7 {
		t.Errorf("dnslb_queries_total: %v", qf)
	}
	uf := fams["dnslb_member_up"]
	if uf == nil || len(uf.Metric) != 2 {
		t.Fatalf("dnslb_member_up: %v", uf)
	}
	got := map[string]float64{}
	for _, m := range uf.Metric {
		for _, l := range m.Label {
			if l.GetName() == "member" {
				got[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	if want := map[string]float64{"192.0.2.1": 1, "192.0.2.2": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("dnslb_member_up = %v, want %v", got, want)
	}
}

func TestPage(t *testing.T) {
	fb := newFakeBackend()
	fb.pools[0].Members[2].Override = &Override{Mode: OverrideDrain, Reason: "maint <now>", Since: t0.Add(-time.Minute), Until: t0.Add(29 * time.Minute)}
	fb.pools[0].Members[2].State = "drained"
	fb.pools = append(fb.pools, PoolStatus{Name: `evil<script>alert("x")</script>.test.`, Policy: "first-healthy",
		Members: []MemberStatus{{Address: "192.0.2.9", State: "forced-down", Override: &Override{Mode: OverrideForceDown}}}})
	s := startServer(t, fb, nil, Options{})
	r := do(t, "GET", "http://"+s.Addr()+"/", "", "")
	if r.code != 200 {
		t.Fatalf("status %d", r.code)
	}
	page := string(r.body)
	for _, want := range []string{
		`data-pool="www.example.test."`, `data-pool="api.example.test."`,
		`<tr class="member state-up" data-address="192.0.2.1" data-state="up">`,
		`<tr class="member state-down" data-address="192.0.2.2" data-state="down">`,
		`<tr class="member state-drained" data-address="192.0.2.3" data-state="drained">`,
		`<tr class="member state-forced-down" data-address="192.0.2.9" data-state="forced-down">`,
		`connection refused &lt;b&gt;x&lt;/b&gt;`, // escaped last error
		`maint &lt;now&gt;`, `in 29m 0s`, // override reason and expiry
		`12s ago`, `1m 30s ago`, `1.5 ms`, `75.0%`, `>backup<`,
		`class="zone zone-error" data-origin="broken.test."`,
		`zones/broken.test.zone:14: bad A record &#34;&lt;300.1.1.1&gt;&#34;`,
		`2026030101`, `2/4 up`, `● ready`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{`<script>alert`, `<b>x</b>`, `<now>`, `<300.1.1.1>`} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// Self-contained: no external references.
	for _, ext := range []string{`src="http`, `href="http`, `@import`, `url(`} {
		if strings.Contains(page, ext) {
			t.Errorf("page references an external asset: %q", ext)
		}
	}
}

// TestAllDown: a pool answering by its when_all_down fallback says so in
// the API (all_down, fallback, all_down_families) and with a badge on its
// heading; the others say all_down false and carry no badge.
func TestAllDown(t *testing.T) {
	fb := newFakeBackend()
	fb.pools[1].AllDown, fb.pools[1].Fallback, fb.pools[1].AllDownFamilies = true, "empty", []string{"A"}
	fb.pools = append(fb.pools, PoolStatus{Name: "dual.example.test.", WhenAllDown: "all",
		AllDown: true, Fallback: "all", AllDownFamilies: []string{"AAAA"},
		Members: []MemberStatus{{Address: "192.0.2.7", State: "up"}, {Address: "2001:db8::7", State: "down"}}})
	s := startServer(t, fb, nil, Options{})
	base := "http://" + s.Addr()

	for _, tc := range []struct {
		pool     string
		allDown  bool
		fallback any // nil: no key
		families any
	}{
		{"www.example.test.", false, nil, nil},
		{"api.example.test.", true, "empty", []any{"A"}},
		{"dual.example.test.", true, "all", []any{"AAAA"}},
	} {
		r := do(t, "GET", base+"/api/v1/pools/"+tc.pool, "", "")
		var raw map[string]any
		if err := json.Unmarshal(r.body, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["all_down"] != tc.allDown || !reflect.DeepEqual(raw["fallback"], tc.fallback) ||
			!reflect.DeepEqual(raw["all_down_families"], tc.families) {
			t.Errorf("%s: all_down %v fallback %v families %v; want %v %v %v", tc.pool,
				raw["all_down"], raw["fallback"], raw["all_down_families"], tc.allDown, tc.fallback, tc.families)
		}
	}

	page := string(do(t, "GET", base+"/", "", "").body)
	for _, want := range []string{
		`<section class="card pool alldown" data-pool="api.example.test." data-fallback="empty">`,
		`ALL DOWN – answering NODATA (empty)</span>`,
		`<section class="card pool alldown" data-pool="dual.example.test." data-fallback="all">`,
		`ALL DOWN – answering all (fail-open) · AAAA only</span>`,
		`<section class="card pool" data-pool="www.example.test.">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, `<span class="badge alldown"`); n != 2 {
		t.Errorf("%d all-down badges, want 2", n)
	}
	for f, want := range map[string]string{"all": "answering all (fail-open)", "backup": "answering backups",
		"empty": "answering NODATA (empty)"} {
		if got := fallbackText(f); got != want {
			t.Errorf("fallbackText(%q) = %q, want %q", f, got, want)
		}
	}
}

func TestPageEmpty(t *testing.T) {
	fb := &fakeBackend{}
	s := startServer(t, fb, nil, Options{})
	r := do(t, "GET", "http://"+s.Addr()+"/", "", "")
	if r.code != 200 || !strings.Contains(string(r.body), "No pools configured") || !strings.Contains(string(r.body), "not ready") {
		t.Errorf("empty page: %d\n%s", r.code, r.body)
	}
}

func TestLifecycle(t *testing.T) {
	s := NewServer("127.0.0.1:0", newFakeBackend(), nil, Options{}, zerolog.Nop())
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown before start: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Error("start after shutdown succeeded")
	}

	s = NewServer("127.0.0.1:0", newFakeBackend(), nil, Options{}, zerolog.Nop())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second start succeeded")
	}
	addr := s.Addr()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr() = %s", addr)
	}
	if r := do(t, "GET", "http://"+addr+"/healthz", "", ""); r.code != 200 {
		t.Errorf("healthz %d", r.code)
	}
	// An idle keep-alive connection must not hold up shutdown.
	c := &http.Client{}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
	c.CloseIdleConnections()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}

	hold := NewServer("127.0.0.1:0", newFakeBackend(), nil, Options{}, zerolog.Nop())
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	defer hold.Shutdown(context.Background())
	busy := NewServer(hold.Addr(), newFakeBackend(), nil, Options{}, zerolog.Nop())
	if err := busy.Start(); err == nil || !strings.HasPrefix(err.Error(), "admin: ") {
		t.Errorf("start on a taken port: %v", err)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1400 * time.Millisecond: "1s", 59 * time.Second: "59s", 61 * time.Second: "1m 1s",
		2*time.Hour + 5*time.Minute: "2h 5m", 50 * time.Hour: "2d 2h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := ago(t0, time.Time{}); got != "—" {
		t.Errorf("ago(zero) = %q", got)
	}
	if got := untilText(t0, t0.Add(-time.Second)); got != "expired" {
		t.Errorf("untilText(past) = %q", got)
	}
}
