package healthcheck

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Check types accepted in Spec.Type.
const (
	TypeTCP   = "tcp"
	TypeHTTP  = "http"
	TypeHTTPS = "https"
	TypeDNS   = "dns"
	TypeExec  = "exec"
	TypeNone  = "none"
)

// Values of Spec.Initial.
const (
	InitialUp   = "up"
	InitialDown = "down"
)

// Defaults applied by Spec.WithDefaults.
const (
	DefaultType     = TypeTCP
	DefaultPath     = "/"
	DefaultMethod   = http.MethodGet
	DefaultExpect   = "200-299"
	DefaultQType    = "A"
	DefaultRcode    = "NOERROR"
	DefaultInterval = 1 * time.Second
	DefaultTimeout  = 1 * time.Second
	DefaultRise     = 2
	DefaultFall     = 3
	// MaxFastInterval caps the default FastInterval (Interval/4).
	MaxFastInterval = 500 * time.Millisecond
)

// Spec describes one check as configured. Zero values mean "use the
// default"; see WithDefaults.
type Spec struct {
	// Type is one of "tcp" (default), "http", "https", "dns", "exec", "none".
	Type string
	// Port is the port to probe; 0 uses the target address's port, and if that
	// is 0 too, 80 for http, 443 for https, 53 for dns.
	Port int

	// Path is the http(s) request path (and query); default "/".
	Path string
	// Method is the http(s) request method; default "GET".
	Method string
	// Host is the http(s) Host header; for https also the TLS server name
	// unless SNI is set.
	Host string
	// SNI is the https TLS server name, also the name the certificate is
	// verified against.
	SNI string
	// Expect lists the http(s) status codes that count as healthy, as
	// comma-separated codes and ranges: "200-299" (default), "200,204,300-302".
	// Redirects are not followed: a 302 is checked as a 302.
	Expect string
	// Body, if set, is a substring the http(s) response body must contain
	// (only the first 64 KiB of the body are read).
	Body string
	// Insecure skips TLS certificate verification for https (verification is
	// on by default).
	Insecure bool

	// Name is the dns query name.
	Name string
	// QType is the dns query type; default "A".
	QType string
	// Rcode is the expected dns response code; default "NOERROR".
	Rcode string
	// Answer, if set, must match an answer record: an IP address must equal
	// an A/AAAA address; any other text must be a substring of some answer
	// record's data (as presented in a zone file).
	Answer string

	// Command is the exec argv. The environment gets DNSLB_CHECK_ADDRESS and
	// DNSLB_CHECK_PORT. Exit status 0 means up. On timeout the whole process
	// group is killed.
	Command []string

	// Interval is the time between the end of a probe and the start of the
	// next while the target is stable; default 1s.
	Interval time.Duration
	// Timeout is the hard limit of one probe; default 1s (or Interval if
	// smaller). It must not exceed Interval. It is the ceiling of the
	// adaptive timeout learned from the target's latency (AdaptiveFloor).
	Timeout time.Duration
	// Rise is the number of consecutive successes that bring a down target up;
	// default 2.
	Rise int
	// Fall is the number of consecutive failures that bring an up target down;
	// default 3.
	Fall int
	// Jitter is the maximum random delay added to each interval; default
	// Interval/10. The first probe of a new target runs at a random point in
	// [0, Interval) instead.
	Jitter time.Duration
	// FastInterval is the interval used while a down target recovers (its
	// last result was a success); default Interval/4, at most 500ms. Its
	// jitter is at most min(Jitter, FastInterval/10). The failures of an up
	// target are confirmed at once, without it.
	FastInterval time.Duration
	// Initial is the state before the first results: "up" (default; every
	// member is answered at cold start) or "down" (the target must pass Rise
	// checks first). Type "none" targets are always up.
	Initial string
	// Watch keeps one idle TCP connection to an up tcp, http or https
	// target (default true for those types; nil means the default): when
	// the peer closes or resets it, as the kernel does when the backend's
	// process dies, the target is probed at once instead of at its next
	// interval. It is only a trigger: the probe decides the state. It is
	// reopened after a successful probe, at most once per Interval.
	Watch *bool
}

// watches reports whether s (with its defaults applied) keeps a
// connection watch on its targets.
func (s *Spec) watches() bool { return s.Watch != nil && *s.Watch }

// watchable reports whether checks of type typ can have a watch.
func watchable(typ string) bool { return typ == TypeTCP || typ == TypeHTTP || typ == TypeHTTPS }

// WithDefaults returns a copy of s with every zero field that has a default
// set to it. Fields that do not apply to s.Type are left alone.
func (s Spec) WithDefaults() Spec {
	if s.Type == "" {
		s.Type = DefaultType
	}
	s.Type = strings.ToLower(s.Type)
	switch s.Type {
	case TypeHTTP, TypeHTTPS:
		if s.Path == "" {
			s.Path = DefaultPath
		}
		if s.Method == "" {
			s.Method = DefaultMethod
		}
		if s.Expect == "" {
			s.Expect = DefaultExpect
		}
	case TypeDNS:
		if s.QType == "" {
			s.QType = DefaultQType
		}
		if s.Rcode == "" {
			s.Rcode = DefaultRcode
		}
		s.QType = strings.ToUpper(s.QType)
		if s.Name != "" {
			s.Name = dns.Fqdn(s.Name)
		}
		s.Rcode = strings.ToUpper(s.Rcode)
	}
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	// Defaults derived from the interval; from the default interval if the
	// given one is invalid, so that Validate reports only that one.
	base := s.Interval
	if base <= 0 {
		base = DefaultInterval
	}
	if s.Timeout == 0 {
		s.Timeout = min(DefaultTimeout, base)
	}
	if s.Rise == 0 {
		s.Rise = DefaultRise
	}
	if s.Fall == 0 {
		s.Fall = DefaultFall
	}
	if s.Jitter == 0 {
		s.Jitter = base / 10
	}
	if s.FastInterval == 0 {
		s.FastInterval = min(base/4, MaxFastInterval)
		if s.FastInterval <= 0 {
			s.FastInterval = base
		}
	}
	if s.Initial == "" {
		s.Initial = InitialUp
	}
	if s.Watch == nil && watchable(s.Type) {
		on := true
		s.Watch = &on
	}
	return s
}

// Validate checks s with its defaults applied. The error lists every
// problem, one per line, each naming the configuration key:
// "check.interval: must be > 0".
func (s Spec) Validate() error {
	s = s.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("check.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	// notFor reports fields set that have no meaning for s.Type.
	notFor := func(field string, set bool, types string) {
		if set {
			bad(field, "only valid for %s checks, not %q", types, s.Type)
		}
	}

	isHTTP := s.Type == TypeHTTP || s.Type == TypeHTTPS
	switch s.Type {
	case TypeTCP, TypeHTTP, TypeHTTPS, TypeDNS, TypeExec, TypeNone:
	default:
		bad("type", "unknown check type %q (want tcp, http, https, dns, exec or none)", s.Type)
	}
	if s.Port < 0 || s.Port > 65535 {
		bad("port", "%d out of range 0-65535", s.Port)
	}

	if isHTTP {
		if !strings.HasPrefix(s.Path, "/") {
			bad("path", "%q must start with /", s.Path)
		}
		if strings.ContainsAny(s.Path, " \t\r\n") {
			bad("path", "%q must not contain white space", s.Path)
		}
		if !isToken(s.Method) {
			bad("method", "%q is not a valid HTTP method", s.Method)
		}
		if s.Body != "" && s.Method == http.MethodHead {
			bad("body", "a HEAD response has no body to match")
		}
		if _, err := parseExpect(s.Expect); err != nil {
			bad("expect", "%v", err)
		}
		if strings.ContainsAny(s.Host, " \t\r\n/") {
			bad("host", "%q is not a valid host", s.Host)
		}
	} else {
		const types = "http and https"
		notFor("path", s.Path != "", types)
		notFor("method", s.Method != "", types)
		notFor("host", s.Host != "", types)
		notFor("expect", s.Expect != "", types)
		notFor("body", s.Body != "", types)
	}
	if s.Type != TypeHTTPS {
		notFor("sni", s.SNI != "", "https")
		notFor("insecure", s.Insecure, "https")
	}

	if s.Type == TypeDNS {
		if s.Name == "" {
			bad("name", "required for dns checks")
		} else if _, ok := dns.IsDomainName(s.Name); !ok {
			bad("name", "%q is not a valid domain name", s.Name)
		}
		if _, ok := dns.StringToType[s.QType]; !ok {
			bad("qtype", "unknown query type %q", s.QType)
		}
		if _, ok := dns.StringToRcode[s.Rcode]; !ok {
			bad("rcode", "unknown rcode %q", s.Rcode)
		}
	} else {
		notFor("name", s.Name != "", "dns")
		notFor("qtype", s.QType != "", "dns")
		notFor("rcode", s.Rcode != "", "dns")
		notFor("answer", s.Answer != "", "dns")
	}

	if s.Type == TypeExec {
		if len(s.Command) == 0 || s.Command[0] == "" {
			bad("command", "required for exec checks")
		}
	} else {
		notFor("command", len(s.Command) > 0, "exec")
	}

	if s.Interval <= 0 {
		bad("interval", "must be > 0")
	}
	if s.Timeout <= 0 {
		bad("timeout", "must be > 0")
	} else if s.Interval > 0 && s.Timeout > s.Interval {
		bad("timeout", "%s must not exceed interval (%s)", s.Timeout, s.Interval)
	}
	if s.Rise < 1 {
		bad("rise", "must be >= 1")
	}
	if s.Fall < 1 {
		bad("fall", "must be >= 1")
	}
	if s.Jitter < 0 {
		bad("jitter", "must be >= 0")
	} else if s.Interval > 0 && s.Jitter > s.Interval {
		bad("jitter", "%s must not exceed interval (%s)", s.Jitter, s.Interval)
	}
	if s.FastInterval <= 0 {
		bad("fast_interval", "must be > 0")
	} else if s.Interval > 0 && s.FastInterval > s.Interval {
		bad("fast_interval", "%s must not exceed interval (%s)", s.FastInterval, s.Interval)
	}
	switch s.Initial {
	case InitialUp, InitialDown:
	default:
		bad("initial", "%q must be \"up\" or \"down\"", s.Initial)
	}
	if !watchable(s.Type) {
		notFor("watch", s.Watch != nil, "tcp, http and https")
	}
	return errors.Join(errs...)
}

// canonical returns a readable, canonical description of s (which must have
// its defaults applied), without the port: two specs with the same canonical
// form run the same probe. It is the Check part of a TargetKey.
func (s Spec) canonical() string {
	var b strings.Builder
	b.WriteString(s.Type)
	str := func(k, v string) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(v))
	}
	dur := func(k string, d time.Duration) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(d.String())
	}
	num := func(k string, n int) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(n))
	}
	switch s.Type {
	case TypeHTTP, TypeHTTPS:
		str("method", s.Method)
		str("path", s.Path)
		str("host", s.Host)
		if s.Type == TypeHTTPS {
			str("sni", s.SNI)
			b.WriteString(" insecure=" + strconv.FormatBool(s.Insecure))
		}
		str("expect", s.Expect)
		str("body", s.Body)
	case TypeDNS:
		str("name", s.Name)
		str("qtype", s.QType)
		str("rcode", s.Rcode)
		str("answer", s.Answer)
	case TypeExec:
		b.WriteString(" command=[")
		for i, a := range s.Command {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Quote(a))
		}
		b.WriteByte(']')
	}
	dur("interval", s.Interval)
	dur("timeout", s.Timeout)
	num("rise", s.Rise)
	num("fall", s.Fall)
	dur("jitter", s.Jitter)
	dur("fast_interval", s.FastInterval)
	b.WriteString(" initial=" + s.Initial)
	// Only the non-default is written: the keys of watched checks stay
	// those saved (state file) before the field existed.
	if s.Watch != nil && !*s.Watch {
		b.WriteString(" watch=false")
	}
	return b.String()
}

// defaultPort is the port probed when neither the spec nor the address has
// one.
func (s Spec) defaultPort() uint16 {
	switch s.Type {
	case TypeHTTP:
		return 80
	case TypeHTTPS:
		return 443
	case TypeDNS:
		return 53
	}
	return 0
}

// statusRange is an inclusive range of HTTP status codes.
type statusRange struct{ lo, hi int }

// statusRanges is a parsed Spec.Expect.
type statusRanges []statusRange

func (rs statusRanges) contains(code int) bool {
	for _, r := range rs {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

// parseExpect parses "200-299" or "200,204,300-302".
func parseExpect(s string) (statusRanges, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty status list")
	}
	code := func(t string) (int, error) {
		t = strings.TrimSpace(t)
		n, err := strconv.Atoi(t)
		if err != nil || n < 100 || n > 599 {
			return 0, fmt.Errorf("%q is not a status code (100-599)", t)
		}
		return n, nil
	}
	var rs statusRanges
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := code(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = code(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q is backwards", strings.TrimSpace(part))
			}
		}
		rs = append(rs, statusRange{a, b})
	}
	return rs, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
