package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// OverrideRequest is the optional JSON body of the drain, undrain and
// force-down endpoints. For and Until are alternatives: an expiry as a
// duration from now ("30m", "2h") or as an RFC 3339 time. Neither means
// no expiry.
type OverrideRequest struct {
	Reason string    `json:"reason,omitempty"`
	For    string    `json:"for,omitempty"`
	Until  time.Time `json:"until,omitzero"`
}

// OverrideResult is the reply of the drain, undrain and force-down
// endpoints: the member's resulting status in every pool that has it.
type OverrideResult struct {
	Address string       `json:"address"`
	Mode    OverrideMode `json:"mode"` // "" for undrain
	Members []PoolMember `json:"members"`
	Until   time.Time    `json:"until,omitzero"`
	Reason  string       `json:"reason,omitempty"`
}

// PoolMember is a member's status together with its pool's name.
type PoolMember struct {
	Pool string `json:"pool"`
	MemberStatus
}

// ReloadResult is the reply of POST /api/v1/reload.
type ReloadResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// ErrorResponse is the shape of every JSON error reply.
type ErrorResponse struct {
	Error string `json:"error"`
}

const maxBody = 64 << 10

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, "{\"error\": %q}\n", "encoding reply: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func (s *Server) handlePools(w http.ResponseWriter, _ *http.Request) {
	pools := s.backend.Pools()
	if pools == nil {
		pools = []PoolStatus{}
	}
	writeJSON(w, http.StatusOK, pools)
}

// handlePool serves one pool; the name matches with or without its
// trailing dot, in any letter case.
func (s *Server) handlePool(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	want := normName(name)
	for _, p := range s.backend.Pools() {
		if normName(p.Name) == want {
			writeJSON(w, http.StatusOK, p)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no pool named %q", name))
}

func normName(n string) string {
	return strings.ToLower(strings.TrimSuffix(n, "."))
}

func (s *Server) handleZones(w http.ResponseWriter, _ *http.Request) {
	zones := s.backend.Zones()
	if zones == nil {
		zones = []ZoneStatus{}
	}
	writeJSON(w, http.StatusOK, zones)
}

// mutating guards a handler that changes the server: a bearer token when
// one is configured, else loopback clients only.
func (s *Server) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token != "" {
			if !s.tokenOK(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="dnslb admin"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		} else if !isLoopback(r.RemoteAddr) {
			writeError(w, http.StatusForbidden,
				"changes are accepted only from loopback clients unless admin.token is set")
			return
		} else if !loopbackHost(r.Host) {
			// A loopback client asking for another host name is a browser
			// fooled by DNS rebinding.
			writeError(w, http.StatusForbidden,
				fmt.Sprintf("host %q is not a loopback name; use 127.0.0.1, [::1] or localhost, or set admin.token", r.Host))
			return
		}
		h(w, r)
	}
}

// tokenOK reports whether r carries the bearer token.
func (s *Server) tokenOK(r *http.Request) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return s.isToken(strings.TrimSpace(got))
}

// basicOK reports whether r carries the token as the password of HTTP
// basic auth (any user name): what a browser can send to the status page
// without the token in a URL. It is accepted for reads only.
func (s *Server) basicOK(r *http.Request) bool {
	_, pass, ok := r.BasicAuth()
	return ok && s.isToken(pass)
}

// isToken compares in constant time (hashes first, so not even the length
// leaks).
func (s *Server) isToken(got string) bool {
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(s.opts.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func isLoopback(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		a, err := netip.ParseAddr(remote)
		if err != nil {
			return false
		}
		return a.Unmap().IsLoopback()
	}
	return ap.Addr().Unmap().IsLoopback()
}

func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func (s *Server) overrideHandler(mode OverrideMode) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := r.PathValue("address")
		addr, err := netip.ParseAddr(raw)
		if err != nil || addr.Zone() != "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not an IP address", raw))
			return
		}
		addr = addr.Unmap()
		req, err := decodeOverride(w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		now := s.opts.Now()
		until := req.Until
		if req.For != "" {
			d, err := time.ParseDuration(req.For)
			if err != nil || d <= 0 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("for: %q is not a positive duration like 30m or 2h", req.For))
				return
			}
			until = now.Add(d)
		}
		switch {
		case mode == OverrideNone && !until.IsZero():
			writeError(w, http.StatusBadRequest, "undrain takes no expiry")
			return
		case !until.IsZero() && !until.After(now):
			writeError(w, http.StatusBadRequest, fmt.Sprintf("until: %s is not in the future", until.Format(time.RFC3339)))
			return
		}
		if err := s.backend.SetOverride(addr, mode, until, req.Reason); err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrUnknownMember):
				code = http.StatusNotFound
			case errors.Is(err, ErrNotPersisted):
				// The server cannot take changes until its state file
				// can be written (a full disk, say); retrying then works.
				code = http.StatusServiceUnavailable
				s.log.Warn().Str("address", addr.String()).Str("action", actionName(mode)).
					Str("reason", req.Reason).Str("client", r.RemoteAddr).Err(err).Msg("member override refused")
			}
			writeError(w, code, err.Error())
			return
		}
		ev := s.log.Info().Str("address", addr.String()).Str("action", actionName(mode)).
			Str("reason", req.Reason).Str("client", r.RemoteAddr)
		if !until.IsZero() {
			ev = ev.Time("until", until)
		}
		ev.Msg("member override changed")
		res := OverrideResult{Address: addr.String(), Mode: mode, Until: until, Reason: req.Reason, Members: []PoolMember{}}
		for _, p := range s.backend.Pools() {
			for _, m := range p.Members {
				if a, err := netip.ParseAddr(m.Address); err == nil && a.Unmap() == addr {
					res.Members = append(res.Members, PoolMember{Pool: p.Name, MemberStatus: m})
				}
			}
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func actionName(m OverrideMode) string {
	if m == OverrideNone {
		return "undrain"
	}
	return string(m)
}

// decodeOverride reads the optional body; an empty one is no options.
func decodeOverride(w http.ResponseWriter, r *http.Request) (OverrideRequest, error) {
	var req OverrideRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return req, fmt.Errorf("reading body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("body: %v (want {\"reason\": \"...\", \"for\": \"30m\"} or \"until\": RFC 3339)", err)
	}
	if dec.More() {
		return req, errors.New("body: trailing data after the JSON object")
	}
	if req.For != "" && !req.Until.IsZero() {
		return req, errors.New("body: give \"for\" or \"until\", not both")
	}
	return req, nil
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if err := s.backend.Reload(); err != nil {
		// The backend logged each problem; this says only who asked.
		s.log.Warn().Str("client", r.RemoteAddr).Msg("reload through the API failed")
		writeJSON(w, http.StatusUnprocessableEntity, ReloadResult{OK: false, Error: err.Error()})
		return
	}
	s.log.Info().Str("client", r.RemoteAddr).Dur("took", time.Since(start)).Msg("reloaded through the API")
	writeJSON(w, http.StatusOK, ReloadResult{OK: true})
}

// stdLogWriter routes net/http's own error log into zerolog.
type stdLogWriter struct{ log zerolog.Logger }

func (l stdLogWriter) Write(p []byte) (int, error) {
	l.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(stdLogWriter{l}, "", 0)
}
