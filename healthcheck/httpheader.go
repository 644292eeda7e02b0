package healthcheck

import (
	"context"
	"net/http"
	"net/netip"
)

// HeaderSink receives the headers of every http(s) check response, with
// the address and port probed, whatever the status.
type HeaderSink func(addr netip.AddrPort, h http.Header)

type headerSinkKey struct{}

// WithHeaderSink returns ctx carrying sink. A Scheduler started with such
// a context hands its http checks' response headers to it, which is how a
// pool's load: {type: http-header} reads a backend's reported weight from
// the health check it makes anyway, without a request of its own.
func WithHeaderSink(ctx context.Context, sink HeaderSink) context.Context {
	return context.WithValue(ctx, headerSinkKey{}, sink)
}

// headerSink returns the sink ctx carries, or nil.
func headerSink(ctx context.Context) HeaderSink {
	s, _ := ctx.Value(headerSinkKey{}).(HeaderSink)
	return s
}
