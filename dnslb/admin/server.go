package admin

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Options tune a Server. The zero value is a working configuration.
type Options struct {
	// Token, when set, guards every endpoint but /healthz and /readyz:
	// mutating requests (POST) must carry it as a bearer token, reads as a
	// bearer token or as the password of HTTP basic auth (what a browser
	// can send to the status page). When empty, reads are open and
	// mutating requests are accepted only from loopback clients.
	Token string
	// AllowedHosts are host names (no port) that requests may carry in
	// their Host header besides IP literals, localhost (and *.localhost)
	// and the listen address's host; "*.example.com" allows every name
	// under example.com. Other names are refused: a browser fooled by DNS
	// rebinding sends the attacker's name.
	AllowedHosts []string
	// Now is the clock used for relative times on the status page and for
	// "for" expiries; nil means time.Now.
	Now func() time.Time
	// Refresh is how often the status page refreshes itself; 0 means 2 s.
	Refresh time.Duration
	// About says at the top of the status page which server it is: with
	// two nodes behind one virtual IP, the operator must see which one
	// answered. An empty Hostname is the machine's (os.Hostname).
	About About
}

// About identifies the server on the status page. Zero fields are left out.
type About struct {
	Hostname string
	// Version is the running binary's version (and commit).
	Version string
	// Listen are the addresses DNS is served on.
	Listen []string
	// Started is when the server started, for its uptime.
	Started time.Time
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
	// hosts and hostSuffixes are the names the Host header may carry
	// (normalized), besides IP literals and localhost.
	hosts        map[string]bool
	hostSuffixes []string

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
	if opts.About.Hostname == "" {
		// Best effort: without a name the page still works, it only
		// cannot tell two nodes apart.
		opts.About.Hostname, _ = os.Hostname()
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
	s.hosts = map[string]bool{}
	if h := hostOnly(addr); h != "" {
		s.hosts[h] = true
	}
	for _, h := range opts.AllowedHosts {
		if rest, ok := strings.CutPrefix(hostOnly(h), "*."); ok {
			s.hostSuffixes = append(s.hostSuffixes, "."+rest)
		} else if h := hostOnly(h); h != "" {
			s.hosts[h] = true
		}
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
	s.mux.HandleFunc("GET /api/v1/fleet", s.handleFleet)
	s.mux.HandleFunc("POST /api/v1/members/{address}/drain", s.mutating(s.overrideHandler(OverrideDrain)))
	s.mux.HandleFunc("POST /api/v1/members/{address}/undrain", s.mutating(s.overrideHandler(OverrideNone)))
	s.mux.HandleFunc("POST /api/v1/members/{address}/force-down", s.mutating(s.overrideHandler(OverrideForceDown)))
	s.mux.HandleFunc("POST /api/v1/reload", s.mutating(s.handleReload))
	s.mux.HandleFunc("GET /{$}", s.handlePage)
}

// serveHTTP checks the Host header and, when a token is set, the
// credentials of every request, then dispatches to the mux, turning its
// plain-text 404 and 405 replies under /api/ into the API's JSON error
// shape.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r.Host) {
		refuse(w, r, http.StatusMisdirectedRequest, fmt.Sprintf(
			"host %q is not allowed (DNS rebinding protection): use an IP address or localhost, or list the name in admin.allowed_hosts",
			hostOnly(r.Host)))
		return
	}
	if s.opts.Token != "" && !openPath(r.URL.Path) {
		// Reads take the token as a bearer token or as the basic-auth
		// password (a browser asks its user for it); anything else only
		// as a bearer token, as the mutating handlers check again.
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		if !s.tokenOK(r) && !(read && s.basicOK(r)) {
			w.Header().Add("WWW-Authenticate", `Bearer realm="dnslb admin"`)
			msg := "missing or wrong bearer token"
			if read {
				w.Header().Add("WWW-Authenticate", `Basic realm="dnslb admin", charset="UTF-8"`)
				msg += " (from a browser: any user name, the token as password)"
			}
			refuse(w, r, http.StatusUnauthorized, msg)
			return
		}
	}
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

// openPath reports whether path is readable without the token: the probes
// a load balancer or an orchestrator sends, which say nothing about pools.
func openPath(path string) bool { return path == "/healthz" || path == "/readyz" }

// refuse replies with an error in the API's JSON shape under /api/ and as
// plain text elsewhere (the status page, /metrics).
func refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeError(w, code, msg)
		return
	}
	writeText(w, code, msg+"\n")
}

// hostAllowed reports whether a request's Host header names this server.
// DNS rebinding makes a browser send requests for the attacker's name to
// our address, so names are checked; an IP literal cannot be rebound and
// is always allowed (so are clients behind NAT or port forwarding), as
// are the loopback names (RFC 6761: they never leave the host) and the
// name the admin server listens on.
func (s *Server) hostAllowed(hostport string) bool {
	h := hostOnly(hostport)
	if h == "" {
		return true // HTTP/1.0 without Host: not a browser
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || s.hosts[h] {
		return true
	}
	for _, suf := range s.hostSuffixes {
		if strings.HasSuffix(h, suf) {
			return true
		}
	}
	return false
}

// hostOnly returns the host of a Host header or host:port, lower-cased,
// without brackets, port or trailing dot.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
