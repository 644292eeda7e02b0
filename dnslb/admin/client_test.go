package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// clientFor serves the admin API's routes over fb on 127.0.0.1:0 (with
// token, when set) and returns a client of it with clientToken.
func clientFor(t *testing.T, fb *fakeBackend, token, clientToken string) *Client {
	t.Helper()
	s := NewServer("127.0.0.1:0", fb, nil, Options{Token: token, Now: func() time.Time { return t0 }}, zerolog.Nop())
	hs := httptest.NewServer(s.handler)
	t.Cleanup(hs.Close)
	c, err := NewClient(hs.URL, ClientOptions{Token: clientToken, HTTPClient: hs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantAPIError checks that err is an *APIError with code and a message
// saying want.
func wantAPIError(t *testing.T, err error, code int, want string) {
	t.Helper()
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want an *APIError", err, err)
	}
	if ae.StatusCode != code || !strings.Contains(ae.Message, want) {
		t.Errorf("APIError %d %q, want %d and %q", ae.StatusCode, ae.Message, code, want)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", code)) {
		t.Errorf("error %q does not name the HTTP status", err)
	}
}

func TestClientReads(t *testing.T) {
	fb := newFakeBackend()
	c := clientFor(t, fb, "", "")
	ctx := context.Background()

	pools, err := c.Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 2 || pools[0].Name != "www.example.test." || len(pools[0].Members) != 4 || pools[0].Members[1].LastError == "" {
		t.Errorf("Pools: %+v", pools)
	}
	for _, name := range []string{"www.example.test.", "WWW.example.test"} {
		p, err := c.Pool(ctx, name)
		if err != nil || p.Name != "www.example.test." || p.Members[0].Latency != 1500*time.Microsecond {
			t.Errorf("Pool(%q) = %+v, %v", name, p, err)
		}
	}
	_, err = c.Pool(ctx, "nope/../x")
	wantAPIError(t, err, http.StatusNotFound, `no pool named "nope/../x"`)

	zones, err := c.Zones(ctx)
	if err != nil || len(zones) != 2 || zones[1].Error == "" || !zones[0].LoadedAt.Equal(t0.Add(-5*time.Minute)) {
		t.Errorf("Zones: %+v, %v", zones, err)
	}

	for _, ready := range []bool{true, false} {
		fb.mu.Lock()
		fb.ready = ready
		fb.mu.Unlock()
		if got, err := c.Ready(ctx); got != ready || err != nil {
			t.Errorf("Ready() = %v, %v; want %v", got, err, ready)
		}
	}
}

func TestClientOverrides(t *testing.T) {
	tests := []struct {
		name      string
		call      func(c *Client) (OverrideResult, error)
		wantAddr  string
		wantMode  OverrideMode
		wantUntil time.Time
		wantWhy   string
		wantState string
		wantPools int
	}{
		{"drain", func(c *Client) (OverrideResult, error) {
			return c.Drain(context.Background(), "192.0.2.1", OverrideRequest{Reason: "kernel upgrade"})
		}, "192.0.2.1", OverrideDrain, time.Time{}, "kernel upgrade", "drained", 2},
		{"drain for", func(c *Client) (OverrideResult, error) {
			return c.Drain(context.Background(), "192.0.2.3", OverrideRequest{For: "30m"})
		}, "192.0.2.3", OverrideDrain, t0.Add(30 * time.Minute), "", "drained", 1},
		{"drain until, IPv6", func(c *Client) (OverrideResult, error) {
			return c.Drain(context.Background(), "2001:db8::1", OverrideRequest{Until: t0.Add(2 * time.Hour)})
		}, "2001:db8::1", OverrideDrain, t0.Add(2 * time.Hour), "", "drained", 1},
		{"force-down", func(c *Client) (OverrideResult, error) {
			return c.ForceDown(context.Background(), "192.0.2.2", OverrideRequest{Reason: "bad disk"})
		}, "192.0.2.2", OverrideForceDown, time.Time{}, "bad disk", "forced-down", 1},
		{"undrain", func(c *Client) (OverrideResult, error) {
			return c.Undrain(context.Background(), "192.0.2.2", "fixed")
		}, "192.0.2.2", OverrideNone, time.Time{}, "fixed", "down", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFakeBackend()
			res, err := tc.call(clientFor(t, fb, "", ""))
			if err != nil {
				t.Fatal(err)
			}
			call, err := fb.lastCall()
			if err != nil {
				t.Fatal(err)
			}
			if call.Addr != netip.MustParseAddr(tc.wantAddr) || call.Mode != tc.wantMode || !call.Until.Equal(tc.wantUntil) || call.Reason != tc.wantWhy {
				t.Errorf("SetOverride(%v, %q, %v, %q), want %s %q %v %q", call.Addr, call.Mode, call.Until, call.Reason,
					tc.wantAddr, tc.wantMode, tc.wantUntil, tc.wantWhy)
			}
			if res.Address != tc.wantAddr || res.Mode != tc.wantMode || !res.Until.Equal(tc.wantUntil) || len(res.Members) != tc.wantPools {
				t.Fatalf("result %+v", res)
			}
			for _, m := range res.Members {
				if m.State != tc.wantState {
					t.Errorf("member %+v, want state %q", m, tc.wantState)
				}
			}
		})
	}
}

// TestClientErrors: every refusal is an *APIError with the server's
// message and status; nothing listening is ErrUnreachable.
func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	fb := newFakeBackend()
	c := clientFor(t, fb, "", "")
	_, err := c.Drain(ctx, "198.51.100.9", OverrideRequest{})
	wantAPIError(t, err, http.StatusNotFound, "198.51.100.9: no pool has this member")
	_, err = c.Drain(ctx, "not-an-ip", OverrideRequest{})
	wantAPIError(t, err, http.StatusBadRequest, `"not-an-ip" is not an IP address`)
	_, err = c.Drain(ctx, "192.0.2.1", OverrideRequest{For: "soon"})
	wantAPIError(t, err, http.StatusBadRequest, "positive duration")

	fb.mu.Lock()
	fb.setErr = fmt.Errorf("192.0.2.1: %w: %w", ErrNotPersisted, syscall.ENOSPC)
	fb.reloadErr = errors.New("zones/a.zone:7: bad TTL\nzones/b.zone:2: missing SOA")
	fb.mu.Unlock()
	_, err = c.ForceDown(ctx, "192.0.2.1", OverrideRequest{})
	wantAPIError(t, err, http.StatusServiceUnavailable, "NOT applied")
	err = c.Reload(ctx)
	wantAPIError(t, err, http.StatusUnprocessableEntity, "zones/a.zone:7: bad TTL\nzones/b.zone:2: missing SOA")

	fb.mu.Lock()
	fb.reloadErr = nil
	fb.mu.Unlock()
	if err := c.Reload(ctx); err != nil {
		t.Errorf("Reload: %v", err)
	}

	// Not the API's shape (a proxy in front): the start of the reply.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream connect error "+strings.Repeat("x", 300), http.StatusBadGateway)
	}))
	defer proxy.Close()
	pc, err := NewClient(proxy.URL, ClientOptions{HTTPClient: proxy.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pc.Pools(ctx)
	wantAPIError(t, err, http.StatusBadGateway, "upstream connect error xxx")
	var ae *APIError
	if errors.As(err, &ae) && len(ae.Message) > 210 {
		t.Errorf("message of %d bytes, want it cut", len(ae.Message))
	}

	// Nothing listens any more.
	s := NewServer("127.0.0.1:0", fb, nil, Options{}, zerolog.Nop())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	gone, err := NewClient(addr, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gone.Zones(ctx)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "http://"+addr) {
		t.Errorf("against nothing: %v, want ErrUnreachable naming http://%s", err, addr)
	}
}

// TestClientToken: the token goes with reads and changes; without it, or
// with a wrong one, the server's 401 comes back as an *APIError.
func TestClientToken(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{{"right", "s3cret", true}, {"wrong", "guess", false}, {"none", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			fb := newFakeBackend()
			c := clientFor(t, fb, "s3cret", tc.token)
			_, rerr := c.Pools(ctx)
			_, werr := c.Drain(ctx, "192.0.2.1", OverrideRequest{})
			if tc.ok {
				if rerr != nil || werr != nil {
					t.Fatalf("with the token: read %v, change %v", rerr, werr)
				}
				return
			}
			wantAPIError(t, rerr, http.StatusUnauthorized, "missing or wrong bearer token")
			wantAPIError(t, werr, http.StatusUnauthorized, "missing or wrong bearer token")
			if _, err := fb.lastCall(); err == nil {
				t.Error("a change without the token reached the backend")
			}
			// The probes need none.
			if ready, err := c.Ready(ctx); !ready || err != nil {
				t.Errorf("Ready without the token: %v, %v", ready, err)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		addr, want string // want "" for an error
	}{
		{"127.0.0.1:8053", "http://127.0.0.1:8053"},
		{"[::1]:8053", "http://[::1]:8053"},
		{"lb1.example.com:8053", "http://lb1.example.com:8053"},
		{"https://lb1.example.com/dnslb/", "https://lb1.example.com/dnslb"},
		{"http://127.0.0.1:8053", "http://127.0.0.1:8053"},
		{"ftp://127.0.0.1:8053", ""},
		{"http://", ""},
		{"", ""},
		{"http://a b", ""},
	}
	for _, tc := range tests {
		c, err := NewClient(tc.addr, ClientOptions{})
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("NewClient(%q) = %s, want an error", tc.addr, c.base)
		case tc.want != "" && (err != nil || c.base != tc.want):
			t.Errorf("NewClient(%q) = %v, %v; want %s", tc.addr, c, err, tc.want)
		}
	}
}

// TestClientPathPrefix: behind a proxy that serves the API under a path.
func TestClientPathPrefix(t *testing.T) {
	fb := newFakeBackend()
	s := NewServer("127.0.0.1:0", fb, nil, Options{Now: func() time.Time { return t0 }}, zerolog.Nop())
	hs := httptest.NewServer(http.StripPrefix("/dnslb", s.handler))
	defer hs.Close()
	c, err := NewClient(hs.URL+"/dnslb/", ClientOptions{HTTPClient: hs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if zs, err := c.Zones(context.Background()); err != nil || len(zs) != 2 {
		t.Errorf("Zones under /dnslb: %+v, %v", zs, err)
	}
}
