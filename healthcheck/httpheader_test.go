package healthcheck

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// The http checker hands each response's headers to the context's sink,
// failing statuses included.
func TestHTTPCheckerHeaderSink(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Weight", "up 25%")
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	addr := addrPort(t, srv.Listener.Addr())
	for _, path := range []string{"/", "/down"} {
		var got []string
		var from netip.AddrPort
		ctx := WithHeaderSink(context.Background(), func(a netip.AddrPort, h http.Header) {
			from = a
			got = append(got, h.Get("X-Weight"))
		})
		_ = mustChecker(t, Spec{Type: "http", Path: path}).Check(ctx, addr)
		if len(got) != 1 || got[0] != "up 25%" || from != addr {
			t.Errorf("%s: sink got %q from %v, want one \"up 25%%\" from %v", path, got, from, addr)
		}
	}
}
