package vip

import (
	"errors"
	"fmt"
	"github.com/dnslb/dnslb/healthcheck"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Config is the VIP agent's file (`dnslb vip --config FILE`), decoded by the
// CLI. Call Validate before use; New validates again.
type Config struct {
	Instances []InstanceConfig `mapstructure:"vip"`
	Log       LogConfig        `mapstructure:"log"`
	// Admin is an optional HTTP address for /healthz, /metrics and
	// /api/v1/vip (the instances' state as JSON).
	Admin string `mapstructure:"admin"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `mapstructure:"level"`  // debug, info (default), warn, error
	Format string `mapstructure:"format"` // json (default) or console
}

// InstanceConfig is one VRRP instance (one virtual router on one interface).
type InstanceConfig struct {
	Name      string `mapstructure:"name"`
	Interface string `mapstructure:"interface"`
	VRID      int    `mapstructure:"vrid"`
	// Priority 1-255; 255 means this host owns the addresses.
	Priority int `mapstructure:"priority"`
	// AdvertInterval, a multiple of 10 ms from 10ms to 40.95s; default 200ms.
	AdvertInterval time.Duration `mapstructure:"advert_interval"`
	// Addresses with prefix length ("192.0.2.100/24"; a bare address is a
	// host route). The family of the first address is the family advertised
	// (RFC 5798 runs IPv4 and IPv6 separately); addresses of the other family
	// move with the instance but are not advertised (keepalived's
	// "excluded" addresses).
	Addresses []string `mapstructure:"addresses"`
	// Preempt a lower-priority master (default true).
	Preempt *bool `mapstructure:"preempt"`
	// PreemptDelay: after start, wait this long before preempting.
	PreemptDelay time.Duration `mapstructure:"preempt_delay"`
	// Accept mode (RFC 5798 6.1). Only true (the default, as keepalived
	// without vrrp_strict) is supported: the addresses are local addresses.
	Accept *bool `mapstructure:"accept"`
	// UnicastPeers: send adverts to these addresses instead of the multicast
	// group (keepalived's unicast_peer). Empty: multicast.
	UnicastPeers []string `mapstructure:"unicast_peers"`
	// GARPRepeat: gratuitous ARPs / unsolicited NAs per announcement (default 5).
	GARPRepeat int `mapstructure:"garp_master_repeat"`
	// GARPDelay: a second announcement this long after becoming master
	// (default 5s; 0 = none).
	GARPDelay *time.Duration `mapstructure:"garp_master_delay"`
	Track     []TrackConfig  `mapstructure:"track"`
	// Notify is a command run on every transition with the arguments
	// instance old_state new_state (INIT, BACKUP, MASTER, FAULT).
	Notify string `mapstructure:"notify"`
}

// TrackConfig is one tracked object. Exactly one of Check, Exec and Interface
// is set. When it fails, Weight < 0 is added to the priority; Weight > 0 is
// added while it succeeds; Weight 0 puts the instance in FAULT while it fails.
type TrackConfig struct {
	Check     *CheckConfig `mapstructure:"check"`
	Exec      string       `mapstructure:"exec"`      // shell command; exit 0 = up
	Interface string       `mapstructure:"interface"` // link up and running
	Weight    int          `mapstructure:"weight"`
	// Schedule (default interval 1s, timeout = min(interval, 1s), rise 1, fall 1).
	Interval time.Duration `mapstructure:"interval"`
	Timeout  time.Duration `mapstructure:"timeout"`
	Rise     int           `mapstructure:"rise"`
	Fall     int           `mapstructure:"fall"`
}

// CheckConfig is a health check of the healthcheck package (e.g. a DNS query
// to the local dnslb server), written as in the server's pools, plus the
// address to probe. Its interval and timeout, when set, override the
// track's; rise and fall are the track's.
type CheckConfig struct {
	healthcheck.Config `mapstructure:",squash"`
	// Address is the host:port (or address, with port) to check.
	Address string `mapstructure:"address"`
}

// Defaults.
const (
	DefaultAdvertInterval = 200 * time.Millisecond
	DefaultGARPRepeat     = 5
	DefaultGARPDelay      = 5 * time.Second
	defaultTrackInterval  = time.Second
)

// instanceSpec is an InstanceConfig parsed, defaulted and validated.
type instanceSpec struct {
	name, ifname string
	vrid         uint8
	priority     uint8
	interval     time.Duration
	preempt      bool
	preemptDelay time.Duration
	vips         []netip.Prefix // all virtual addresses
	advertised   []netip.Addr   // those of the advertised family
	is4          bool
	peers        []netip.Addr
	garpRepeat   int
	garpDelay    time.Duration
	notify       string
	tracks       []trackSpec
}

type trackKind int

const (
	trackCheck trackKind = iota
	trackExec
	trackInterface
)

type trackSpec struct {
	kind     trackKind
	desc     string
	weight   int
	interval time.Duration
	timeout  time.Duration
	rise     int
	fall     int
	check    *CheckConfig
	exec     string
	ifname   string
}

// Validate checks the whole file and reports every problem, each prefixed
// with its key path (vip[0].vrid: …).
func (c Config) Validate() error {
	_, err := c.specs()
	return err
}

func (c Config) specs() ([]instanceSpec, error) {
	var errs []error
	if len(c.Instances) == 0 {
		errs = append(errs, errors.New("vip: at least one instance is required"))
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "error", "trace":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not json or console", c.Log.Format))
	}
	if c.Admin != "" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
		}
	}
	var specs []instanceSpec
	names := map[string]bool{}
	type key struct {
		ifname string
		vrid   uint8
		is4    bool
	}
	vrids := map[key]string{}
	for i, ic := range c.Instances {
		path := fmt.Sprintf("vip[%d]", i)
		s, ierrs := ic.spec(path)
		errs = append(errs, ierrs...)
		if len(ierrs) > 0 {
			continue
		}
		if names[s.name] {
			errs = append(errs, fmt.Errorf("%s.name: %q used twice", path, s.name))
		}
		names[s.name] = true
		k := key{s.ifname, s.vrid, s.is4}
		if other, dup := vrids[k]; dup {
			errs = append(errs, fmt.Errorf("%s.vrid: %d on %s already used by %q", path, s.vrid, s.ifname, other))
		}
		vrids[k] = s.name
		specs = append(specs, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return specs, nil
}

func (ic InstanceConfig) spec(path string) (instanceSpec, []error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, key, fmt.Sprintf(format, args...)))
	}
	s := instanceSpec{
		name:         ic.Name,
		ifname:       ic.Interface,
		preempt:      ic.Preempt == nil || *ic.Preempt,
		preemptDelay: ic.PreemptDelay,
		interval:     ic.AdvertInterval,
		garpRepeat:   ic.GARPRepeat,
		garpDelay:    DefaultGARPDelay,
		notify:       ic.Notify,
	}
	if s.name == "" {
		bad("name", "required")
	} else if strings.ContainsAny(s.name, " \t\n/") {
		bad("name", "%q must not contain spaces or slashes", s.name)
	}
	if s.ifname == "" {
		bad("interface", "required")
	}
	if ic.VRID < 1 || ic.VRID > 255 {
		bad("vrid", "%d out of range 1-255", ic.VRID)
	}
	s.vrid = uint8(ic.VRID)
	if ic.Priority < 1 || ic.Priority > 255 {
		bad("priority", "%d out of range 1-255 (255 = address owner)", ic.Priority)
	}
	s.priority = uint8(ic.Priority)
	if s.interval == 0 {
		s.interval = DefaultAdvertInterval
	}
	if s.interval < 10*time.Millisecond || s.interval > MaxAdvertCentis*10*time.Millisecond || s.interval%(10*time.Millisecond) != 0 {
		bad("advert_interval", "%v must be a multiple of 10ms from 10ms to 40.95s", s.interval)
	}
	if s.preemptDelay < 0 || s.preemptDelay > time.Hour {
		bad("preempt_delay", "%v out of range 0-1h", s.preemptDelay)
	}
	if ic.Accept != nil && !*ic.Accept {
		bad("accept", "false is not supported: the virtual addresses are configured as local addresses, which accepts their traffic")
	}
	if s.garpRepeat == 0 {
		s.garpRepeat = DefaultGARPRepeat
	}
	if s.garpRepeat < 1 || s.garpRepeat > 100 {
		bad("garp_master_repeat", "%d out of range 1-100", s.garpRepeat)
	}
	if ic.GARPDelay != nil {
		s.garpDelay = *ic.GARPDelay
		if s.garpDelay < 0 {
			bad("garp_master_delay", "%v is negative", s.garpDelay)
		}
	}
	if len(ic.Addresses) == 0 {
		bad("addresses", "at least one virtual address is required")
	}
	seen := map[netip.Addr]bool{}
	for j, a := range ic.Addresses {
		p, err := parsePrefix(a)
		if err != nil {
			bad(fmt.Sprintf("addresses[%d]", j), "%v", err)
			continue
		}
		if seen[p.Addr()] {
			bad(fmt.Sprintf("addresses[%d]", j), "%s listed twice", p.Addr())
		}
		seen[p.Addr()] = true
		if len(s.vips) == 0 {
			s.is4 = p.Addr().Is4()
		}
		s.vips = append(s.vips, p)
		if p.Addr().Is4() == s.is4 {
			s.advertised = append(s.advertised, p.Addr())
		}
	}
	for j, a := range ic.UnicastPeers {
		p, err := netip.ParseAddr(a)
		switch {
		case err != nil:
			bad(fmt.Sprintf("unicast_peers[%d]", j), "%v", err)
		case p.Is4() != s.is4 && len(s.vips) > 0:
			bad(fmt.Sprintf("unicast_peers[%d]", j), "%s is not of the advertised family (that of %s)", p, s.vips[0].Addr())
		case p.IsMulticast() || p.IsUnspecified():
			bad(fmt.Sprintf("unicast_peers[%d]", j), "%s is not a unicast address", p)
		default:
			s.peers = append(s.peers, p.Unmap())
		}
	}
	for j, tc := range ic.Track {
		ts, err := tc.spec()
		if err != nil {
			bad(fmt.Sprintf("track[%d]", j), "%v", err)
			continue
		}
		s.tracks = append(s.tracks, ts)
	}
	return s, errs
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%s: zones are not allowed", s)
		}
		if p.Addr().IsMulticast() || p.Addr().IsUnspecified() || p.Addr().IsLoopback() {
			return netip.Prefix{}, fmt.Errorf("%s is not a usable unicast address", s)
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return parsePrefix(fmt.Sprintf("%s/%d", a.Unmap(), a.Unmap().BitLen()))
}

func (tc TrackConfig) spec() (trackSpec, error) {
	ts := trackSpec{weight: tc.Weight, interval: tc.Interval, timeout: tc.Timeout, rise: tc.Rise, fall: tc.Fall}
	n := 0
	if tc.Check != nil {
		n++
		ts.kind, ts.check = trackCheck, tc.Check
		ts.desc = "check " + tc.Check.Type + " " + tc.Check.Address
		if tc.Check.Type == "" {
			return ts, errors.New("check.type: required")
		}
		if err := tc.Check.validate(); err != nil {
			return ts, err
		}
		if tc.Check.Interval != 0 {
			ts.interval = tc.Check.Interval
		}
		if tc.Check.Timeout != 0 {
			ts.timeout = tc.Check.Timeout
		}
		if tc.Check.Rise != 0 {
			ts.rise = tc.Check.Rise
		}
		if tc.Check.Fall != 0 {
			ts.fall = tc.Check.Fall
		}
	}
	if tc.Exec != "" {
		n++
		ts.kind, ts.exec, ts.desc = trackExec, tc.Exec, "exec "+tc.Exec
	}
	if tc.Interface != "" {
		n++
		ts.kind, ts.ifname, ts.desc = trackInterface, tc.Interface, "interface "+tc.Interface
	}
	if n != 1 {
		return ts, errors.New("exactly one of check, exec, interface is required")
	}
	if ts.weight < -254 || ts.weight > 254 {
		return ts, fmt.Errorf("weight: %d out of range -254..254", ts.weight)
	}
	if ts.interval == 0 {
		ts.interval = defaultTrackInterval
	}
	if ts.timeout == 0 {
		ts.timeout = min(ts.interval, time.Second)
	}
	if ts.rise == 0 {
		ts.rise = 1
	}
	if ts.fall == 0 {
		ts.fall = 1
	}
	switch {
	case ts.interval < 10*time.Millisecond:
		return ts, fmt.Errorf("interval: %v is below 10ms", ts.interval)
	case ts.timeout < 0 || ts.timeout > ts.interval:
		return ts, fmt.Errorf("timeout: %v must be positive and at most the interval %v", ts.timeout, ts.interval)
	case ts.rise < 1 || ts.fall < 1:
		return ts, errors.New("rise and fall must be at least 1")
	}
	return ts, nil
}
