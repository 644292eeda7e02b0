package dnsserver

import (
	"testing"

	"github.com/rs/zerolog"
)

// startServerOn is startServer on the given listen addresses.
func startServerOn(t testing.TB, opts Options, listen ...string) *Server {
	t.Helper()
	opts.Listen = listen
	srv := New(opts, answerHandler{}, zerolog.Nop())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}
