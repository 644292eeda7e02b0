package healthcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// maxBodyRead is how much of a response body is searched for Spec.Body
// (and handed to a HeaderSink).
const maxBodyRead = 64 << 10

// httpChecker sends one request per probe on a fresh connection and checks
// the status code and, optionally, the body.
type httpChecker struct {
	scheme  string
	method  string
	path    string
	host    string
	body    []byte
	expect  statusRanges
	timeout time.Duration
	client  *http.Client
}

func newHTTPChecker(s Spec) (*httpChecker, error) {
	expect, err := parseExpect(s.Expect)
	if err != nil {
		return nil, fmt.Errorf("check.expect: %w", err)
	}
	tr := &http.Transport{
		// Never a proxy from the environment: the backend itself is probed.
		Proxy:       nil,
		DialContext: (&net.Dialer{}).DialContext,
		// A new connection per probe: a kept-alive connection would hide a
		// backend that no longer accepts connections.
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if s.Type == TypeHTTPS {
		sni := s.SNI
		if sni == "" && s.Host != "" {
			sni = s.Host
			if h, _, err := net.SplitHostPort(s.Host); err == nil {
				sni = h
			}
		}
		tr.TLSClientConfig = &tls.Config{
			ServerName:         sni,
			InsecureSkipVerify: s.Insecure, //nolint:gosec // explicit opt-in per check
			MinVersion:         tls.VersionTLS12,
		}
	}
	c := &httpChecker{
		scheme:  s.Type,
		method:  s.Method,
		path:    s.Path,
		host:    s.Host,
		expect:  expect,
		timeout: s.Timeout,
		client: &http.Client{
			Transport: tr,
			// A redirect is a status like any other: not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if s.Body != "" {
		c.body = []byte(s.Body)
	}
	return c, nil
}

func (c *httpChecker) Check(ctx context.Context, addr netip.AddrPort) error {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	u := c.scheme + "://" + addr.String() + c.path
	fail := func(err error) error {
		return fmt.Errorf("%s check %s %s: %w", c.scheme, c.method, u, timeoutErr(ctx, err, c.timeout))
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, nil)
	if err != nil {
		return fail(err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("User-Agent", "dnslb-healthcheck")
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the method and URL are already in the message
		}
		return fail(err)
	}
	defer resp.Body.Close()
	var body []byte
	var bodyErr error
	bodyRead := false
	readBody := func() ([]byte, error) {
		if !bodyRead {
			bodyRead = true
			body, bodyErr = io.ReadAll(io.LimitReader(resp.Body, maxBodyRead))
		}
		return body, bodyErr
	}
	if sink := headerSink(ctx); sink != nil {
		sink(addr, resp.Header, readBody)
	}
	if !c.expect.contains(resp.StatusCode) {
		return fail(fmt.Errorf("status %d not in %s", resp.StatusCode, c.expectString()))
	}
	if c.body != nil {
		b, err := readBody()
		if err != nil {
			return fail(fmt.Errorf("reading body: %w", err))
		}
		if !bytes.Contains(b, c.body) {
			return fail(fmt.Errorf("body (%d bytes read) does not contain %q", len(b), c.body))
		}
	}
	return nil
}

func (c *httpChecker) expectString() string {
	var b bytes.Buffer
	for i, r := range c.expect {
		if i > 0 {
			b.WriteByte(',')
		}
		if r.lo == r.hi {
			fmt.Fprintf(&b, "%d", r.lo)
		} else {
			fmt.Fprintf(&b, "%d-%d", r.lo, r.hi)
		}
	}
	return b.String()
}
