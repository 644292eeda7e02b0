package healthcheck

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// The http checker hands each response's headers and body to the
// context's sink, failing statuses included; the body read for the sink
// is the one the check's body match sees.
func TestHTTPCheckerHeaderSink(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Weight", "up 25%")
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(`{"load":"25%"}`))
	}))
	t.Cleanup(srv.Close)
	addr := addrPort(t, srv.Listener.Addr())
	for _, path := range []string{"/", "/down"} {
		var got, bodies []string
		var from netip.AddrPort
		ctx := WithHeaderSink(context.Background(), func(a netip.AddrPort, h http.Header, body func() ([]byte, error)) {
			from = a
			got = append(got, h.Get("X-Weight"))
			b, err := body()
			if err != nil {
				t.Errorf("%s: body: %v", path, err)
			}
			bodies = append(bodies, string(b))
		})
		_ = mustChecker(t, Spec{Type: "http", Path: path}).Check(ctx, addr)
		if len(got) != 1 || got[0] != "up 25%" || from != addr {
			t.Errorf("%s: sink got %q from %v, want one \"up 25%%\" from %v", path, got, from, addr)
		}
		if len(bodies) != 1 || bodies[0] != `{"load":"25%"}` {
			t.Errorf("%s: sink got bodies %q", path, bodies)
		}
		// The body is read once: the check's own match sees what the
		// sink read.
		err := mustChecker(t, Spec{Type: "http", Path: path, Body: `"load"`, Expect: "200-599"}).Check(ctx, addr)
		if err != nil {
			t.Errorf("%s: body match after the sink read the body: %v", path, err)
		}
	}
}
