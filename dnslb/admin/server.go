package admin

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Options tune a Server. The zero value is a working configuration.
type Options struct {
	// Token, when set, is the bearer token that mutating requests (POST)
	// must carry. When empty, mutating requests are accepted only from
	// loopback clients.
	Token string
	// Now is the clock used for relative times on the status page and for
	// "for" expiries; nil means time.Now.
	Now func() time.Time
	// Refresh is how often the status page refreshes itself; 0 means 2 s.
	Refresh time.Duration
}

// Server is the admin HTTP server. Create it with NewServer, then Start it;
// Shutdown stops it. Handler serves the same routes without a listener.
type Server struct {
	addr    string
	backend Backend
	gather  prometheus.Gatherer
	opts    Options
	log     zerolog.Logger
	page    *template.Template
	mux     *http.ServeMux
	handler http.Handler

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	served  chan struct{} // closed when Serve has returned
	started bool
	closed  bool
}

// NewServer returns a server for addr (host:port; port 0 picks a free one)
// over the backend b. reg supplies /metrics; nil serves an empty registry.
func NewServer(addr string, b Backend, reg prometheus.Gatherer, opts Options, log zerolog.Logger) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 2 * time.Second
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		addr:    addr,
		backend: b,
		gather:  reg,
		opts:    opts,
		log:     log.With().Str("component", "admin").Logger(),
		page:    newPageTemplate(),
		mux:     http.NewServeMux(),
	}
	s.routes()
	// Browsers must not be able to make a drain or reload happen from
	// another site's page (CSRF against a loopback admin without token).
	s.handler = http.NewCrossOriginProtection().Handler(http.HandlerFunc(s.serveHTTP))
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s.mux.HandleFunc("GET /api/v1/pools", s.handlePools)
	s.mux.HandleFunc("GET /api/v1/pools/{name}", s.handlePool)
	s.mux.HandleFunc("GET /api/v1/zones", s.handleZones)
	s.mux.HandleFunc("POST /api/v1/members/{address}/drain", s.mutating(s.overrideHandler(OverrideDrain)))
	s.mux.HandleFunc("POST /api/v1/members/{address}/undrain", s.mutating(s.overrideHandler(OverrideNone)))
	s.mux.HandleFunc("POST /api/v1/members/{address}/force-down", s.mutating(s.overrideHandler(OverrideForceDown)))
	s.mux.HandleFunc("POST /api/v1/reload", s.mutating(s.handleReload))
	s.mux.HandleFunc("GET /{$}", s.handlePage)
}

// serveHTTP dispatches to the mux, turning its plain-text 404 and 405
// replies under /api/ into the API's JSON error shape.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		if h, pattern := s.mux.Handler(r); pattern == "" {
			c := &statusCapture{header: http.Header{}}
			h.ServeHTTP(c, r)
			if c.code == http.StatusNotFound || c.code == http.StatusMethodNotAllowed {
				if allow := c.header.Get("Allow"); allow != "" {
					w.Header().Set("Allow", allow)
				}
				msg := "no such endpoint: " + r.URL.Path
				if c.code == http.StatusMethodNotAllowed {
					msg = "method " + r.Method + " not allowed on " + r.URL.Path
				}
				writeError(w, c.code, msg)
				return
			}
		}
	}
	s.mux.ServeHTTP(w, r)
}

// Handler returns the server's routes, for tests and for embedding in
// another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Start binds the address and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("admin: server already shut down")
	}
	if s.started {
		return errors.New("admin: server already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          newStdLogger(s.log),
	}
	s.served = make(chan struct{})
	s.started = true
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("admin server stopped")
		}
	}()
	return nil
}

// Addr returns the bound address once started (useful with port 0), else
// the configured one.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Shutdown stops accepting, waits for in-flight requests until ctx is done
// and then closes what is left. It is safe to call more than once and
// before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, served := s.srv, s.served
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("admin: shutdown: %w", err)
	}
	<-served
	return err
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok\n")
}

func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if s.backend.Ready() {
		writeText(w, http.StatusOK, "ready\n")
		return
	}
	writeText(w, http.StatusServiceUnavailable, "not ready\n")
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// statusCapture records what the mux's fallback handlers would reply.
type statusCapture struct {
	header http.Header
	code   int
}

func (c *statusCapture) Header() http.Header { return c.header }
func (c *statusCapture) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return len(b), nil
}
func (c *statusCapture) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}
