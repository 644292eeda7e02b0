package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/fuzzguard"
	"github.com/rs/zerolog"
)

// FuzzOverrideBody posts arbitrary bodies to the drain, undrain and
// force-down endpoints of arbitrary addresses: no input may panic; every
// reply is the API's JSON (a result or an error); a refused request
// changes nothing; an accepted one passes on the body's reason and an
// expiry in the future, or none.
func FuzzOverrideBody(f *testing.F) {
	for _, s := range []struct {
		action, addr, body string
	}{
		{"drain", "192.0.2.1", `{"reason": "kernel upgrade", "for": "30m"}`},
		{"drain", "192.0.2.1", `{"reason": "until", "until": "2026-03-01T13:00:00Z"}`},
		{"force-down", "192.0.2.2", `{"reason": "x"}`},
		{"undrain", "192.0.2.1", ``},
		{"undrain", "192.0.2.1", `{"for": "1m"}`},
		{"drain", "192.0.2.1", `{"for": "1m", "until": "2030-01-01T00:00:00Z"}`},
		{"drain", "192.0.2.1", `{"for": "-1m"}`},
		{"drain", "192.0.2.1", `{"for": 30}`},
		{"drain", "192.0.2.1", `{"until": "2000-01-01T00:00:00Z"}`},
		{"drain", "192.0.2.1", `{"until": "yesterday"}`},
		{"drain", "192.0.2.1", `{"bogus": 1}`},
		{"drain", "192.0.2.1", `{} {}`},
		{"drain", "192.0.2.1", `[]`},
		{"drain", "192.0.2.1", `null`},
		{"drain", "192.0.2.1", `{"reason": "\u0000<b>x</b>\n"}`},
		{"drain", "198.51.100.7", `{}`},
		{"drain", "::ffff:192.0.2.1", `{}`},
		{"drain", "fe80::1%eth0", `{}`},
		{"drain", "not-an-address", `{}`},
		{"drain", "192.0.2.1", strings.Repeat(" ", maxBody+1)},
	} {
		f.Add(s.action, s.addr, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, action, addr string, body []byte) {
		switch action {
		case "drain", "undrain", "force-down":
		default:
			action = "drain"
		}
		fuzzguard.Run(t, "POST "+action, fuzzguard.Limit, func() { checkOverridePost(t, action, addr, body) })
	})
}

func checkOverridePost(t *testing.T, action, addr string, body []byte) {
	t.Helper()
	fb := newFakeBackend()
	s := NewServer("127.0.0.1:0", fb, nil, Options{Now: func() time.Time { return t0 }}, zerolog.Nop())
	req := httptest.NewRequest("POST", "http://127.0.0.1:8053/api/v1/members/"+url.PathEscape(addr)+"/"+action, bytes.NewReader(body))
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)

	if rec.Code/100 == 3 {
		// The mux's redirect to the cleaned path ("//drain", "/../"):
		// nothing was done here.
		if rec.Header().Get("Location") == "" || len(fb.calls) > 0 {
			t.Fatalf("HTTP %d without Location, or after calling the backend: %+v", rec.Code, fb.calls)
		}
		return
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("HTTP %d with Content-Type %q: %s", rec.Code, ct, rec.Body)
	}
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if rec.Code != http.StatusOK {
		var e ErrorResponse
		if err := dec.Decode(&e); err != nil || e.Error == "" {
			t.Fatalf("HTTP %d without a JSON error (%v): %s", rec.Code, err, rec.Body)
		}
		if rec.Code == http.StatusBadRequest && len(fb.calls) > 0 {
			t.Fatalf("HTTP 400 (%s), but the backend was called: %+v", e.Error, fb.calls)
		}
		return
	}
	var res OverrideResult
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("HTTP 200 without an OverrideResult: %v: %s", err, rec.Body)
	}
	call, err := fb.lastCall()
	if err != nil {
		t.Fatalf("HTTP 200, but %v", err)
	}
	var sent OverrideRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &sent); err != nil {
			t.Fatalf("HTTP 200 for a body that is not JSON (%v): %q", err, body)
		}
	}
	switch {
	case call.Reason != sent.Reason:
		t.Fatalf("reason %q reached the backend as %q", sent.Reason, call.Reason)
	case !call.Until.IsZero() && !call.Until.After(t0):
		t.Fatalf("an expiry not in the future reached the backend: %v", call.Until)
	case call.Mode == OverrideNone && !call.Until.IsZero():
		t.Fatalf("undrain with an expiry: %v", call.Until)
	case call.Addr.Zone() != "" || call.Addr.Is4In6():
		t.Fatalf("address %v reached the backend", call.Addr)
	}
}
