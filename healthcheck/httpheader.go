package healthcheck

import (
	"context"
	"net/http"
	"net/netip"
)

// HeaderSink receives every http(s) check response, with the address and
// port probed, whatever the status: its headers, and body, which reads
// the first 64 KiB of the body when called (the check reads them once,
// for the sink and its own body match alike). The sink runs on the
// check's goroutine, before the check's verdict.
type HeaderSink func(addr netip.AddrPort, h http.Header, body func() ([]byte, error))

type headerSinkKey struct{}

// WithHeaderSink returns ctx carrying sink. A Scheduler started with such
// a context hands its http checks' response headers to it, which is how a
// pool's load: {type: http-header} reads a backend's reported weight from
// the health check it makes anyway (a header, or a field of a JSON body),
// without a request of its own.
func WithHeaderSink(ctx context.Context, sink HeaderSink) context.Context {
	return context.WithValue(ctx, headerSinkKey{}, sink)
}

// headerSink returns the sink ctx carries, or nil.
func headerSink(ctx context.Context) HeaderSink {
	s, _ := ctx.Value(headerSinkKey{}).(HeaderSink)
	return s
}
