package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to a dnslb admin API: the typed counterpart of Server.
// It is safe for concurrent use.
type Client struct {
	base  string // scheme://host:port[/prefix], without a trailing slash
	token string
	http  *http.Client
}

// ClientOptions tune a Client. The zero value is a working configuration.
type ClientOptions struct {
	// Token is the server's admin.token, sent as a bearer token with
	// every request; "" sends none (a server without a token, or a
	// loopback one).
	Token string
	// HTTPClient sends the requests; nil means one whose requests give up
	// after DefaultClientTimeout.
	HTTPClient *http.Client
}

// DefaultClientTimeout bounds a request of a Client without an
// HTTPClient of its own: long enough for the reload of a large zone.
const DefaultClientTimeout = 2 * time.Minute

// maxReply bounds the replies a Client reads (the pools of a large
// server are a few MB).
const maxReply = 32 << 20

// NewClient returns a client of the admin API at addr: host:port (plain
// HTTP) or an http or https URL, which may have a path prefix (a reverse
// proxy's).
func NewClient(addr string, opts ClientOptions) (*Client, error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("admin address %q: want host:port or an http(s) URL", addr)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultClientTimeout}
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), token: opts.Token, http: hc}, nil
}

// APIError is a reply of the API other than 2xx: its HTTP status and the
// server's message (the "error" of its JSON reply, or the start of a
// reply of another shape).
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.StatusCode, http.StatusText(e.StatusCode))
}

// ErrUnreachable is wrapped by the error of a request that got no reply:
// nothing listens there, a timeout, a TLS failure.
var ErrUnreachable = errors.New("cannot reach the admin API")

// Pools returns every pool, sorted by name.
func (c *Client) Pools(ctx context.Context) ([]PoolStatus, error) {
	var ps []PoolStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/pools", nil, &ps)
	return ps, err
}

// Pool returns the pool named name (with or without its trailing dot, in
// any letter case); an unknown name is an *APIError with StatusCode 404.
func (c *Client) Pool(ctx context.Context, name string) (PoolStatus, error) {
	var p PoolStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/pools/"+url.PathEscape(name), nil, &p)
	return p, err
}

// Zones returns every configured zone, sorted by origin.
func (c *Client) Zones(ctx context.Context) ([]ZoneStatus, error) {
	var zs []ZoneStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/zones", nil, &zs)
	return zs, err
}

// Ready reports what /readyz says: whether the server has loaded its
// zones and finished its first round of health checks.
func (c *Client) Ready(ctx context.Context) (bool, error) {
	err := c.do(ctx, http.MethodGet, "/readyz", nil, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusServiceUnavailable {
		return false, nil
	}
	return err == nil, err
}

// Drain takes the member address out of the answers of every pool that
// has it; it keeps being checked. address is as the server parses it (an
// IP address); a bad one is an *APIError with StatusCode 400, one in no
// pool 404, and a change the server could not save 503 (not applied).
func (c *Client) Drain(ctx context.Context, address string, req OverrideRequest) (OverrideResult, error) {
	return c.override(ctx, address, "drain", &req)
}

// ForceDown marks the member address down in every pool that has it, as
// Drain does otherwise.
func (c *Client) ForceDown(ctx context.Context, address string, req OverrideRequest) (OverrideResult, error) {
	return c.override(ctx, address, "force-down", &req)
}

// Undrain lifts a drain or force-down of the member address; reason is
// logged.
func (c *Client) Undrain(ctx context.Context, address, reason string) (OverrideResult, error) {
	return c.override(ctx, address, "undrain", &OverrideRequest{Reason: reason})
}

func (c *Client) override(ctx context.Context, address, action string, req *OverrideRequest) (OverrideResult, error) {
	var res OverrideResult
	err := c.do(ctx, http.MethodPost, "/api/v1/members/"+url.PathEscape(address)+"/"+action, req, &res)
	return res, err
}

// Reload makes the server re-read its config and zones. When it keeps
// serving the old ones, the error is an *APIError with StatusCode 422
// whose Message lists the problems, one "file:line: message" a line.
func (c *Client) Reload(ctx context.Context) error {
	var res ReloadResult
	return c.do(ctx, http.MethodPost, "/api/v1/reload", nil, &res)
}

// do sends a request (body as JSON, when not nil) and decodes a 2xx reply
// into out (when not nil); any other reply is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("admin API %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("admin API %s %s: reading reply: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return replyError(resp.StatusCode, method, path, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("admin API %s %s: decoding reply: %w", method, path, err)
		}
	}
	return nil
}

// replyError is the *APIError of a reply with status code: the server's
// JSON message, or the start of a reply in another shape (a proxy's).
func replyError(code int, method, path string, data []byte) *APIError {
	e := &APIError{StatusCode: code}
	var er ErrorResponse
	if json.Unmarshal(data, &er) == nil && er.Error != "" {
		e.Message = er.Error
		return e
	}
	e.Message = strings.TrimSpace(string(data))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	if e.Message == "" {
		e.Message = method + " " + path
	}
	return e
}
