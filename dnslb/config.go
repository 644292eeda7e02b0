package dnslb

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/netip"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/dnslb/dnsserver"
	"github.com/dnslb/dnslb/dnslb/pool"
	"github.com/dnslb/dnslb/dnslb/rrl"
	"github.com/dnslb/dnslb/healthcheck"
	"github.com/dnslb/dnslb/zones"
	"github.com/miekg/dns"
)

// Config is the server's configuration, as read from YAML (and DNSLB_*
// environment variables) by the CLI.
type Config struct {
	// Listen holds host:port addresses; each is served over UDP and TCP.
	// 0.0.0.0 is every IPv4 address, [::] every IPv6 one.
	Listen []string `mapstructure:"listen"`
	// Freebind lets dnslb listen on addresses the host does not hold yet,
	// such as a VIP on a backup (IP_FREEBIND; Linux).
	Freebind bool `mapstructure:"freebind"`
	// Admin configures the admin HTTP server. In YAML either a string
	// ("127.0.0.1:8053") or {listen, token}.
	Admin AdminConfig `mapstructure:"admin"`
	// StateFile keeps drains, last known health and managed serials across
	// restarts; relative to the config file. Default: dnslb.state.json
	// beside it ("" with the embedded example: none).
	StateFile string `mapstructure:"state_file"`
	// Log configures logging.
	Log LogConfig `mapstructure:"log"`
	// Zones lists the zones to serve.
	Zones []ZoneConfig `mapstructure:"zones"`
	// UDPSize is the EDNS payload size advertised and the largest UDP reply.
	UDPSize int `mapstructure:"udp_size"`
	// TCP tunes the TCP listener.
	TCP TCPConfig `mapstructure:"tcp"`
	// Cache bounds the packed-response cache.
	Cache CacheConfig `mapstructure:"cache"`
	// CacheSize is deprecated: the number of entries the cache kept
	// before it was bounded in bytes. A positive value is taken as
	// cache.max_bytes of that many KiB, a negative one as no cache (see
	// CacheBytes).
	CacheSize int `mapstructure:"cache_size"`
	// Cookies configures DNS Cookies (RFC 7873, RFC 9018 server cookies).
	// In YAML a block, or "off".
	Cookies CookiesConfig `mapstructure:"cookies"`
	// Pools turns A/AAAA RRsets into load-balanced pools, keyed by owner
	// name.
	Pools map[string]PoolConfig `mapstructure:"pools"`
	// TSIG holds the keys that signed queries (RFC 8945) may use.
	TSIG TSIGConfig `mapstructure:"tsig"`
	// RRL is response rate limiting, on unless "rrl: off".
	RRL RRLConfig `mapstructure:"rrl"`
	// Catalog, if set, generates a catalog zone (RFC 9432) of the zones
	// with a transfer: block.
	Catalog *CatalogConfig `mapstructure:"catalog"`
	// Fleet, if set, joins this node to a fleet of dnslb name servers
	// that share overrides and health (see FleetConfig).
	Fleet *FleetConfig `mapstructure:"fleet"`
}

// RRLConfig configures response rate limiting (package rrl). Unset keys
// take the rrl package's defaults; in YAML "rrl: off" (or false) turns it
// off and "rrl: on" keeps the defaults.
type RRLConfig struct {
	// Enabled is nil or true unless RRL is off.
	Enabled *bool `mapstructure:"enabled"`
	// ResponsesPerSecond per client prefix, category and name. A pointer:
	// 0, which disables RRL in Knot and NSD, is an error here (write
	// rrl: off), not the default.
	ResponsesPerSecond *int `mapstructure:"responses_per_second"`
	// Slip: every Slip-th limited response is sent truncated, the others
	// dropped; 0 drops them all. A pointer, as 0 is meaningful.
	Slip       *int `mapstructure:"slip"`
	IPv4Prefix int  `mapstructure:"ipv4_prefix"` // 0: 24
	IPv6Prefix int  `mapstructure:"ipv6_prefix"` // 0: 56
	// Exempt lists prefixes (or addresses) never limited; nil is the
	// default, loopback, and an empty list exempts nothing.
	Exempt    []string `mapstructure:"exempt"`
	TableSize int      `mapstructure:"table_size"` // accounts kept; 0: the default
}

// UnmarshalText accepts the short forms, rrl: off and rrl: on (and
// false/true).
func (c *RRLConfig) UnmarshalText(b []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(b))) {
	case "off", "false":
		*c = RRLConfig{Enabled: new(false)}
	case "on", "true":
		*c = RRLConfig{Enabled: new(true)}
	default:
		return fmt.Errorf("%q: write off, on, or a block {responses_per_second: 20, slip: 2, …}", b)
	}
	return nil
}

// On reports whether RRL is enabled.
func (c RRLConfig) On() bool { return c.Enabled == nil || *c.Enabled }

// Limiter returns the rrl package's config for c, defaults applied, and
// the problems of c keyed by their paths under key.
func (c RRLConfig) Limiter(key string) (rrl.Config, Problems) {
	var ps Problems
	bad := func(k, format string, args ...any) { ps = append(ps, keyed(key+"."+k, format, args...)) }
	rc := rrl.Config{
		ResponsesPerSecond: rrl.DefaultResponsesPerSecond,
		Slip:               rrl.DefaultSlip,
		IPv4Prefix:         cmp.Or(c.IPv4Prefix, rrl.DefaultIPv4Prefix),
		IPv6Prefix:         cmp.Or(c.IPv6Prefix, rrl.DefaultIPv6Prefix),
		TableSize:          c.TableSize,
	}
	if c.ResponsesPerSecond != nil {
		rc.ResponsesPerSecond = *c.ResponsesPerSecond
		if rc.ResponsesPerSecond == 0 {
			bad("responses_per_second", "0 is not allowed (1-%d); to turn rate limiting off write rrl: off", rrl.MaxResponsesPerSecond)
		} else if rc.ResponsesPerSecond < 0 || rc.ResponsesPerSecond > rrl.MaxResponsesPerSecond {
			bad("responses_per_second", "%d is outside 1-%d", rc.ResponsesPerSecond, rrl.MaxResponsesPerSecond)
		}
	}
	if c.Slip != nil {
		rc.Slip = *c.Slip
		if rc.Slip < 0 || rc.Slip > rrl.MaxSlip {
			bad("slip", "%d is outside 0-%d (0: drop every limited response, 1: truncate every one)", rc.Slip, rrl.MaxSlip)
		}
	}
	if rc.IPv4Prefix < 1 || rc.IPv4Prefix > 32 {
		bad("ipv4_prefix", "%d is outside 1-32", rc.IPv4Prefix)
	}
	if rc.IPv6Prefix < 1 || rc.IPv6Prefix > 128 {
		bad("ipv6_prefix", "%d is outside 1-128", rc.IPv6Prefix)
	}
	if rc.TableSize != 0 && (rc.TableSize < rrl.MinTableSize || rc.TableSize > rrl.MaxTableSize) {
		bad("table_size", "%d is outside %d-%d", rc.TableSize, rrl.MinTableSize, rrl.MaxTableSize)
	}
	exempt := c.Exempt
	if exempt == nil {
		// The host itself (monitoring, a local resolver, benchmarks).
		exempt = []string{"127.0.0.0/8", "::1/128"}
	}
	for i, e := range exempt {
		p, err := parsePrefix(e)
		if err != nil {
			bad(fmt.Sprintf("exempt[%d]", i), "%q is not an address or prefix (192.0.2.0/24, 2001:db8::/48)", e)
			continue
		}
		rc.Exempt = append(rc.Exempt, p)
	}
	return rc, ps
}

// parsePrefix reads a prefix, or an address as a prefix of its full length.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(strings.TrimSpace(s))
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// TSIGConfig is the tsig: block.
type TSIGConfig struct {
	Keys []TSIGKeyConfig `mapstructure:"keys"`
}

// TSIGKeyConfig is one TSIG key: its name (a domain name, as the peers
// name it), algorithm (TSIGAlgorithms) and base64 secret.
type TSIGKeyConfig struct {
	Name      string `mapstructure:"name"`
	Algorithm string `mapstructure:"algorithm"`
	Secret    Secret `mapstructure:"secret"`
}

// Secret is a key's secret. It prints as "[redacted]" with every verb of
// fmt and in JSON or YAML, so that no log line, error or dump can carry
// it; only string(s) reads it.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// PoolConfig is what the config adds to an RRset that the zone file cannot
// say: health check, policy, TTL, caps, weights and backups.
type PoolConfig struct {
	Policy      string                  `mapstructure:"policy"`
	TTL         int                     `mapstructure:"ttl"`
	TTLDegraded *int                    `mapstructure:"ttl_degraded"` // nil: DefaultPoolTTLDegraded, at most TTL
	MaxAnswers  int                     `mapstructure:"max_answers"`
	WhenAllDown string                  `mapstructure:"when_all_down"`
	Check       *CheckConfig            `mapstructure:"check"`
	Checks      []PoolCheckConfig       `mapstructure:"checks"` // instead of Check: all must be up
	Members     map[string]MemberConfig `mapstructure:"members"`
	// Sticky tunes the sticky policy (nil: its defaults).
	Sticky *StickyConfig `mapstructure:"sticky"`
	// Load is the pool's load feedback (nil: none).
	Load *LoadConfig `mapstructure:"load"`
	// SlowStart is how long a member that comes back (health up after
	// down, undrain, its agent's ready) ramps from 10 % to 100 % of its
	// weight (0: it does not). Not at process start or for a new member.
	SlowStart time.Duration `mapstructure:"slow_start"`
}

// StickyConfig is a sticky pool's unit of persistence: the client subnet
// from EDNS Client Subnet (RFC 7871) when ECS is on and the query carries
// one, else the resolver's address, truncated to the family's prefix.
type StickyConfig struct {
	ECS        *bool `mapstructure:"ecs"`         // nil: true
	IPv4Prefix *int  `mapstructure:"ipv4_prefix"` // nil: pool.DefaultStickyIPv4Prefix
	IPv6Prefix *int  `mapstructure:"ipv6_prefix"` // nil: pool.DefaultStickyIPv6Prefix
}

// policy is the sticky policy s configures (nil: the defaults).
func (s *StickyConfig) policy() pool.Sticky {
	var p pool.Sticky
	if s == nil {
		return p
	}
	if s.ECS != nil {
		p.IgnoreECS = !*s.ECS
	}
	if s.IPv4Prefix != nil {
		p.IPv4Prefix = *s.IPv4Prefix
	}
	if s.IPv6Prefix != nil {
		p.IPv6Prefix = *s.IPv6Prefix
	}
	return p

}

// LoadConfig is a pool's load feedback: what its backends report about
// their load, turned into live weights (policy: least-loaded) and states.
type LoadConfig struct {
	// Type is LoadAgent or LoadHTTPHeader.
	Type string `mapstructure:"type"`
	// Port is the agent's TCP port on each member's address (agent).
	Port int `mapstructure:"port"`
	// Header is the response header of the pool's http check that
	// carries the report, in the agent's words (http-header).
	Header string `mapstructure:"header"`
	// JSON, instead of Header, is the field of the http check's JSON
	// response body that carries the report (http-header): a dotted path
	// of object keys ("load.weight"), whose value is a string in the
	// agent's words or a number, read as N%.
	JSON string `mapstructure:"json"`
	// Interval is how often each agent is asked (0: DefaultLoadInterval);
	// also the timeout of one ask.
	Interval time.Duration `mapstructure:"interval"`
	// MaxStep bounds how far a member's live weight moves per interval,
	// "N%" (1-100 %; "": DefaultLoadMaxStep): points of N%, or N % of
	// 256 for weight:N reports.
	MaxStep string `mapstructure:"max_step"`
}

// DefaultLoadMaxStep is how far a live weight moves per interval unless
// the pool's load: says: a quarter of the scale, so that a full swing
// takes 4 intervals (8 s at the default interval). Resolvers' caches
// delay every effect of a share by up to the TTL, so a backend's report
// lags the share that caused it; following it in quarters damps the
// overshoot that makes shares oscillate, yet the shares still follow
// within the few intervals operators expect. 100% turns the bound off.
const DefaultLoadMaxStep = 25

// maxStep returns the bound in points, the default applied; ok is false
// when max_step is not "N%" with N 1-100.
func (l *LoadConfig) maxStep() (n int, ok bool) {
	if l.MaxStep == "" {
		return DefaultLoadMaxStep, true
	}
	v, found := strings.CutSuffix(l.MaxStep, "%")
	n, err := strconv.Atoi(v)
	if !found || err != nil || n < 1 || n > 100 {
		return 0, false
	}
	if n == 100 {
		return 0, true // any move in one step: unbounded
	}
	return n, true
}

// The load types: HAProxy's agent-check text protocol on a port of its
// own, or the same words in a header of the http check's responses.
const (
	LoadAgent      = "agent"
	LoadHTTPHeader = "http-header"
)

// validJSONPath says whether p is a dotted path of nonempty object keys.
func validJSONPath(p string) bool {
	for k := range strings.SplitSeq(p, ".") {
		if k == "" || strings.ContainsAny(k, " \t\r\n") {
			return false
		}
	}
	return len(p) <= 256
}

// DefaultLoadInterval is how often an agent is asked unless the pool's
// load: says (HAProxy's agent-inter default).
const DefaultLoadInterval = 2 * time.Second

// interval returns the agent interval, the default applied.
func (l *LoadConfig) interval() time.Duration {
	if l.Interval > 0 {
		return l.Interval
	}
	return DefaultLoadInterval
}

// PoolCheckConfig is one of a pool's checks: a check as under check:,
// and the address it probes (see CheckAddressMember and the others).
type PoolCheckConfig struct {
	CheckConfig `mapstructure:",squash"`
	// Address is what the check probes: "" or "member" (the answered
	// address), "check_address" (each member's MemberConfig.CheckAddress),
	// or an IP address, which is then probed for every member and so is
	// only allowed in a pool of one member.
	Address string `mapstructure:"address"`
}

// The words a check's address may be instead of an IP address.
const (
	CheckAddressMember = "member"
	CheckAddressOwn    = "check_address"
)

// DefaultPoolTTL is the TTL of pool answers unless the pool sets one.
const DefaultPoolTTL = 30

// DefaultPoolTTLDegraded is the TTL of a degraded pool's answers unless the
// pool sets ttl_degraded (and never above its ttl). On the default checks
// a recovered member is back in the answers within interval + (rise - 1) ×
// fast_interval = 2.5 s: a TTL of 5 s lets resolvers see it within about
// 7.5 s instead of 32.5, at 6 times the queries from each resolver, for
// that pool only while it is degraded (gdnsd's min_ttl is 5 s too). The
// README says why not gdnsd's time-to-next-change rule.
const DefaultPoolTTLDegraded = 5

// ttls returns the TTL and the degraded TTL of p, defaults applied.
func (p PoolConfig) ttls() (ttl, degraded int) {
	ttl = DefaultPoolTTL
	if p.TTL > 0 {
		ttl = p.TTL
	}
	if p.TTLDegraded != nil {
		return ttl, *p.TTLDegraded
	}
	return ttl, min(ttl, DefaultPoolTTLDegraded)
}

// MemberConfig holds per-address settings of a pool member.
type MemberConfig struct {
	// Weight is 1-10000; nil (unset) is DefaultWeight. A pointer, so that
	// weight: 0 is an error rather than the default.
	Weight *int `mapstructure:"weight"`
	Backup bool `mapstructure:"backup"`
	// CheckAddress is probed instead of the member's address by the
	// pool's checks that say address: check_address (a NAT'd or admin
	// address of the same backend).
	CheckAddress string `mapstructure:"check_address"`
}

// Weights a member may have.
const (
	DefaultWeight = 1
	MaxWeight     = 10000
)

// weight is the member's weight with the default applied.
func (m MemberConfig) weight() int {
	if m.Weight == nil {
		return DefaultWeight
	}
	return *m.Weight
}

// CheckConfig is a health check as written in the config; see
// healthcheck.Spec for the meaning and defaults of each field.
type CheckConfig = healthcheck.Config

// AdminConfig configures the admin HTTP server.
type AdminConfig struct {
	// Listen is host:port; "" disables the admin server.
	Listen string `mapstructure:"listen"`
	// Token, when set, is required by every endpoint but /healthz and
	// /readyz (a bearer token; reads also take it as the basic-auth
	// password, for browsers); without it reads are open and mutating
	// endpoints accept loopback clients only.
	Token string `mapstructure:"token"`
	// AllowedHosts are the host names (no port; "*.example.com" for every
	// name under it) that requests may name in their Host header besides
	// IP addresses, localhost and the listen host: a guard against DNS
	// rebinding.
	AllowedHosts []string `mapstructure:"allowed_hosts"`
}

var errNotHostName = errors.New("is not a host name (want e.g. lb1.example.com or *.example.com, without port)")

// checkAllowedHost accepts a host name, "*." and a name, or an IP address
// (always allowed anyway): what a Host header names, without its port.
func checkAllowedHost(h string) error {
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return nil
	}
	name, _ := strings.CutPrefix(h, "*.")
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return errNotHostName
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return errNotHostName
		}
	}
	return nil
}

// UnmarshalText accepts the short form, admin: "host:port".
func (a *AdminConfig) UnmarshalText(b []byte) error {
	a.Listen = string(b)
	return nil
}

// CacheConfig bounds the packed-response cache.
type CacheConfig struct {
	// MaxBytes bounds the memory the cache takes (entries, keys, packed
	// replies, the index); nil: DefaultCacheBytes; 0: no cache. A number
	// of bytes or a size with a unit: 512KiB, 64MiB, 1GB.
	MaxBytes *ByteSize `mapstructure:"max_bytes"`
}

// MinCacheBytes is the smallest cache.max_bytes but 0: below it the cache
// holds too few answers to help.
const MinCacheBytes = 1 << 20

// bytesPerCacheEntry is what a cache_size entry is taken as: the old
// default of 65,536 entries is the new default of 64 MiB.
const bytesPerCacheEntry = 1024

// CacheBytes is the cache's bound in bytes, 0 for no cache, from
// cache.max_bytes or the deprecated cache_size.
func (c *Config) CacheBytes() int64 {
	switch {
	case c.Cache.MaxBytes != nil:
		return int64(*c.Cache.MaxBytes)
	case c.CacheSize < 0:
		return 0
	case c.CacheSize > 0:
		return max(int64(c.CacheSize)*bytesPerCacheEntry, MinCacheBytes)
	}
	return answer.DefaultCacheBytes
}

// CookiesConfig configures DNS Cookies.
type CookiesConfig struct {
	// Secret is the server secret, 32 hex digits (16 bytes), shared by
	// every server of a fleet that answers for the same addresses. ""
	// generates one, kept in the state file so that cookies survive a
	// restart. Never logged.
	Secret string `mapstructure:"secret"`
	// Off: "cookies: off"; COOKIE options are ignored.
	Off bool `mapstructure:"-"`
}

// UnmarshalText accepts the short forms, cookies: off (and on).
func (c *CookiesConfig) UnmarshalText(b []byte) error {
	switch string(b) {
	case "off":
		*c = CookiesConfig{Off: true}
	case "on":
		*c = CookiesConfig{}
	default:
		return fmt.Errorf("%q: write off, on, or a block {secret: ...}", b)
	}
	return nil
}

// ByteSize is a size in bytes. In YAML a number of bytes, or a number with
// a unit: KiB, MiB, GiB, TiB (powers of 1024), kB, KB, MB, GB, TB (powers
// of 1000) or B.
type ByteSize int64

// UnmarshalText reads "64MiB", "512KiB", "1GB", "1048576".
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
	}
	mult := map[string]float64{"": 1, "B": 1,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
		"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || mult == 0 {
		return fmt.Errorf("%q is not a size (write e.g. 64MiB, 512KiB, 1GB or a number of bytes)", s)
	}
	v *= mult
	if v != math.Trunc(v) || v > math.MaxInt64/2 {
		return fmt.Errorf("%q is not a whole number of bytes", s)
	}
	*b = ByteSize(v)
	return nil
}

// String writes the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.n, u.name)
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // json or console
}

// ZoneConfig names one zone and where it comes from: a file, or a
// primary it is pulled from (exactly one of them).
type ZoneConfig struct {
	Origin string `mapstructure:"origin"`
	// File is relative to the config file's directory.
	File string `mapstructure:"file"`
	// Primary, instead of File, pulls the zone from a primary server by
	// AXFR and IXFR and keeps it up to date (see secondary.go).
	Primary *PrimaryConfig `mapstructure:"primary"`
	// Serial "auto" lets dnslb manage the SOA serial: it grows by one on
	// every content change, whatever the file says.
	Serial string `mapstructure:"serial"`
	// Transfer, if set, offers the zone to secondaries (AXFR, IXFR).
	Transfer *TransferConfig `mapstructure:"transfer"`
	// DNSSEC, if set, signs the zone's answers online (see dnssec.go).
	DNSSEC *DNSSECConfig `mapstructure:"dnssec"`
}

// TCPConfig tunes TCP serving.
type TCPConfig struct {
	IdleTimeout    time.Duration `mapstructure:"idle_timeout"`
	MaxConnections int           `mapstructure:"max_connections"`
}

// DefaultListen is where dnslb listens when the config says nothing.
const DefaultListen = "127.0.0.1:5353"

// ApplyDefaults fills in what the config left out.
func (c *Config) ApplyDefaults() {
	if len(c.Listen) == 0 {
		c.Listen = []string{DefaultListen}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.UDPSize == 0 {
		c.UDPSize = answer.DefaultUDPSize
	}
	if c.TCP.IdleTimeout == 0 {
		c.TCP.IdleTimeout = dnsserver.DefaultTCPIdleTimeout
	}
	if c.TCP.MaxConnections == 0 {
		c.TCP.MaxConnections = dnsserver.DefaultMaxTCPConns
	}
}

// Validate checks every field and reports all problems (Problems), each
// with its key path; the CLI's Locate adds the file and line.
func (c *Config) Validate() error {
	var errs Problems
	bad := func(key, format string, args ...any) { errs = append(errs, keyed(key, format, args...)) }
	for i, l := range c.Listen {
		if _, port, err := net.SplitHostPort(l); err != nil || port == "" {
			bad(fmt.Sprintf("listen[%d]", i), "%q is not host:port", l)
		}
	}
	if c.Freebind && runtime.GOOS != "linux" {
		bad("freebind", "needs Linux (IP_FREEBIND); this is %s", runtime.GOOS)
	}
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			bad("admin.listen", "%q is not host:port", c.Admin.Listen)
		}
	}
	for i, h := range c.Admin.AllowedHosts {
		if err := checkAllowedHost(h); err != nil {
			bad(fmt.Sprintf("admin.allowed_hosts[%d]", i), "%q %v", h, err)
		}
	}
	switch c.Log.Level {
	case "", "trace", "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "console":
	default:
		bad("log.format", "%q is not json or console", c.Log.Format)
	}
	if c.UDPSize != 0 && (c.UDPSize < 512 || c.UDPSize > 65535) {
		bad("udp_size", "%d is outside 512-65535", c.UDPSize)
	}
	if c.TCP.IdleTimeout < 0 {
		bad("tcp.idle_timeout", "must not be negative")
	}
	if c.TCP.MaxConnections < 0 {
		bad("tcp.max_connections", "must not be negative")
	}
	if mb := c.Cache.MaxBytes; mb != nil && *mb != 0 && *mb < MinCacheBytes {
		bad("cache.max_bytes", "%d is below the minimum of %s (0 turns the cache off)", int64(*mb), ByteSize(MinCacheBytes))
	}
	if c.Cache.MaxBytes != nil && c.CacheSize != 0 {
		bad("cache_size", "deprecated, and cache.max_bytes is set: remove cache_size")
	}
	if c.Cookies.Secret != "" {
		if c.Cookies.Off {
			bad("cookies", "off, yet a secret is set")
		} else if _, err := answer.ParseCookieSecret(c.Cookies.Secret); err != nil {
			bad("cookies.secret", "%v", err) // never the value: it is a secret
		}
	}
	// Checked even when off: turning it on must not bring up old mistakes.
	_, rrlProblems := c.RRL.Limiter("rrl")
	errs = append(errs, rrlProblems...)
	if len(c.Zones) == 0 {
		bad("zones", "at least one zone is needed")
	}
	seen := map[string]int{}
	for i, z := range c.Zones {
		key := fmt.Sprintf("zones[%d]", i)
		if z.Origin == "" {
			bad(key+".origin", "missing")
		} else if j, dup := seen[zones.CanonicalName(z.Origin)]; dup {
			bad(key+".origin", "%s is already zones[%d]", z.Origin, j)
		} else {
			seen[zones.CanonicalName(z.Origin)] = i
		}
		switch {
		case z.File == "" && z.Primary == nil:
			bad(key+".file", "missing (or primary: to pull the zone from a primary server)")
		case z.File != "" && z.Primary != nil:
			bad(key+".primary", "file and primary together: a zone is read from a file or pulled from a primary, not both")
		case z.Primary != nil:
			validatePrimary(bad, key+".primary", z.Primary, c.TSIG.Keys)
			if z.Serial != "" {
				bad(key+".serial", "not with primary: the zone is served with the primary's serials")
			}
		}
		if z.Serial != "" && z.Serial != "auto" {
			bad(key+".serial", "%q: only \"auto\" (or nothing) is allowed", z.Serial)
		}
		if z.DNSSEC != nil {
			validateDNSSEC(bad, key+".dnssec", z.DNSSEC)
		}
		if z.Transfer != nil {
			validateTransfer(bad, key+".transfer", z.Transfer, c.TSIG.Keys)
		}
	}
	if c.Catalog != nil {
		validateCatalog(bad, c)
	}
	for _, name := range sortedKeys(c.Pools) {
		p := c.Pools[name]
		key := fmt.Sprintf("pools[%s]", name)
		if _, ok := dns.IsDomainName(name); !ok {
			bad(key, "%q is not a domain name", name)
		}
		if pol, err := pool.ParsePolicy(p.Policy); err != nil {
			bad(key+".policy", "%v", err)
		} else if _, sticky := pol.(pool.Sticky); p.Sticky != nil && !sticky {
			bad(key+".sticky", "only the sticky policy uses it, and the policy is %s", pol)
		}
		if s := p.Sticky; s != nil {
			if v := s.IPv4Prefix; v != nil && (*v < 1 || *v > 32) {
				bad(key+".sticky.ipv4_prefix", "%d is out of range (1-32)", *v)
			}
			if v := s.IPv6Prefix; v != nil && (*v < 1 || *v > 128) {
				bad(key+".sticky.ipv6_prefix", "%d is out of range (1-128)", *v)
			}
		}
		if _, err := pool.ParseAllDown(p.WhenAllDown); err != nil {
			bad(key+".when_all_down", "%v", err)
		}
		if p.TTL < 0 || p.TTL > 1<<31-1 {
			bad(key+".ttl", "%d is out of range", p.TTL)
		}
		if d := p.TTLDegraded; d != nil {
			ttl, _ := p.ttls()
			switch {
			case *d < 1 || *d > 1<<31-1:
				bad(key+".ttl_degraded", "%d is out of range (1-%d); to keep the TTL while degraded, set it to the ttl (%d)", *d, 1<<31-1, ttl)
			case *d > ttl:
				bad(key+".ttl_degraded", "%d is above the ttl (%d): a degraded pool's answers would not be shorter", *d, ttl)
			}
		}
		if p.MaxAnswers < 0 {
			bad(key+".max_answers", "must not be negative")
		}
		if l := p.Load; l != nil {
			switch l.Type {
			case LoadAgent:
				if l.Port < 1 || l.Port > 65535 {
					bad(key+".load.port", "%d is not a TCP port (1-65535)", l.Port)
				}
				if l.Header != "" {
					bad(key+".load.header", "only for type %s", LoadHTTPHeader)
				}
				if l.JSON != "" {
					bad(key+".load.json", "only for type %s", LoadHTTPHeader)
				}
			case LoadHTTPHeader:
				switch {
				case l.Header != "" && l.JSON != "":
					bad(key+".load", "header and json are exclusive: the report comes from one of them")
				case l.JSON != "":
					if !validJSONPath(l.JSON) {
						bad(key+".load.json", "%q is not a dotted path of object keys (load, or stats.weight)", l.JSON)
					}
				case l.Header == "" || strings.ContainsAny(l.Header, " \t:\r\n"):
					bad(key+".load.header", "%q is not a header name (or give json: a field of the body)", l.Header)
				}
				if l.Port != 0 {
					bad(key+".load.port", "not for type %s: the header comes from the pool's http check", LoadHTTPHeader)
				}
			default:
				bad(key+".load.type", "%q is not one of %s, %s", l.Type, LoadAgent, LoadHTTPHeader)
			}
			if l.Interval != 0 && (l.Interval < 100*time.Millisecond || l.Interval > time.Hour) {
				bad(key+".load.interval", "%v is out of range (100ms-1h)", l.Interval)
			}
			if _, ok := l.maxStep(); !ok {
				bad(key+".load.max_step", "%q is not a percentage (1%%-100%%)", l.MaxStep)
			}
		}
		if p.SlowStart != 0 && (p.SlowStart < time.Second || p.SlowStart > time.Hour) {
			bad(key+".slow_start", "%v is out of range (1s-1h)", p.SlowStart)
		}
		if p.Check != nil {
			validateCheck(bad, key+".check", p.Check)
			if len(p.Checks) > 0 {
				bad(key+".checks", "check and checks together; write the check as one of checks")
			}
		}
		for i := range p.Checks {
			c := &p.Checks[i]
			ckey := fmt.Sprintf("%s.checks[%d]", key, i)
			validateCheck(bad, ckey, &c.CheckConfig)
			switch c.Address {
			case "", CheckAddressMember, CheckAddressOwn:
			default:
				if _, err := netip.ParseAddr(c.Address); err != nil {
					bad(ckey+".address", "%q is not an IP address, %s or %s", c.Address, CheckAddressMember, CheckAddressOwn)
				}
			}
		}
		for _, addr := range sortedKeys(p.Members) {
			m := p.Members[addr]
			mkey := fmt.Sprintf("%s.members[%s]", key, addr)
			if _, err := netip.ParseAddr(addr); err != nil {
				bad(mkey, "not an IP address")
			}
			if m.CheckAddress != "" {
				if _, err := netip.ParseAddr(m.CheckAddress); err != nil {
					bad(mkey+".check_address", "%q is not an IP address", m.CheckAddress)
				} else if !slices.ContainsFunc(p.Checks, func(c PoolCheckConfig) bool { return c.Address == CheckAddressOwn }) {
					// Else it looks as if the checks probed it, and none does.
					bad(mkey+".check_address", "no check of the pool probes it (give one of checks address: %s)", CheckAddressOwn)
				}
			}
			switch w := m.weight(); {
			case w == 0:
				bad(mkey+".weight", "0 is not allowed (1-%d); to answer a member only when every other member is down use backup: true (and when_all_down: backup)", MaxWeight)
			case w < 1 || w > MaxWeight:
				bad(mkey+".weight", "%d is outside 1-%d", w, MaxWeight)
			}
		}
	}
	if c.Fleet != nil {
		validateFleet(bad, c.Fleet)
	}
	_, tsigProblems := newKeyring(c.TSIG.Keys)
	errs = append(errs, tsigProblems...)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// validateCheck reports the problems of the check at key.
func validateCheck(bad func(key, format string, args ...any), key string, c *CheckConfig) {
	if c.Type == "" {
		bad(key+".type", "missing (tcp, http, https, dns, exec or none)")
	} else if err := c.Spec().Validate(); err != nil {
		for _, e := range leaves(err) {
			field, msg := splitField(e.Error())
			bad(key+field, "%s", msg)
		}
	}
}

// splitField splits a check problem "check.interval: must be …" into its
// field (".interval") and what is wrong with it.
func splitField(s string) (field, msg string) {
	head, rest, ok := strings.Cut(s, ": ")
	if !ok || strings.ContainsAny(head, " \"") {
		return "", s
	}
	head = strings.TrimPrefix(head, "check")
	if head != "" && !strings.HasPrefix(head, ".") {
		head = "." + head
	}
	return head, rest
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ZoneRoot says where zone files are read from: FS is the config file's
// directory, and Display is how that directory is named in messages.
type ZoneRoot struct {
	FS      fs.FS
	Display string
	// Dir is the directory on disk, when FS is one; absolute zone paths
	// outside it get their own root.
	Dir string
}

func zoneSource(zc ZoneConfig, root ZoneRoot) zones.Source {
	src := zones.Source{Origin: zc.Origin, FS: root.FS, Path: path.Clean(filepath.ToSlash(zc.File)), Display: root.Display}
	if filepath.IsAbs(zc.File) && root.Dir != "" {
		rel, err := filepath.Rel(root.Dir, zc.File)
		if err == nil && !strings.HasPrefix(rel, "..") {
			src.Path = filepath.ToSlash(rel)
		} else {
			// A zone file outside the config directory: it and its
			// $INCLUDEs are confined to its own directory.
			dir := filepath.Dir(zc.File)
			src.FS, src.Path, src.Display = osDirFS(dir), filepath.Base(zc.File), dir
		}
	}
	return src
}
