package vip

import (
	"errors"
	"fmt"
	"github.com/dnslb/dnslb/healthcheck"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
	// Notify hooks, as keepalived's: each a program and its arguments,
	// split at white space ('single' or "double" quotes keep it, a
	// backslash escapes the next character) and run directly, never
	// through a shell. Notify runs on every state change with keepalived's
	// arguments INSTANCE NAME STATE PRIORITY appended (STATE: MASTER,
	// BACKUP, FAULT, or STOP at shutdown); each per-state hook runs, before
	// Notify, on entering its state with no arguments added. The program
	// must exist and be executable when the file is loaded.
	Notify       string `mapstructure:"notify"`
	NotifyMaster string `mapstructure:"notify_master"`
	NotifyBackup string `mapstructure:"notify_backup"`
	NotifyFault  string `mapstructure:"notify_fault"`
	NotifyStop   string `mapstructure:"notify_stop"`
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
	hooks        hookSet
	tracks       []trackSpec
}

// hookSet is an instance's notify hooks, each an argv (nil: none).
type hookSet struct {
	notify                      []string
	master, backup, fault, stop []string
}

// any reports whether a hook is configured.
func (h hookSet) any() bool {
	return h.notify != nil || h.master != nil || h.backup != nil || h.fault != nil || h.stop != nil
}

// forState returns the per-state hook run on entering to (StateInit: the
// stop at shutdown) and its config key.
func (h hookSet) forState(to State) (string, []string) {
	switch to {
	case StateMaster:
		return "notify_master", h.master
	case StateBackup:
		return "notify_backup", h.backup
	case StateFault:
		return "notify_fault", h.fault
	case StateInit:
		return "notify_stop", h.stop
	}
	return "", nil
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
	for _, h := range []struct {
		key, cmd string
		dst      *[]string
	}{
		{"notify", ic.Notify, &s.hooks.notify},
		{"notify_master", ic.NotifyMaster, &s.hooks.master},
		{"notify_backup", ic.NotifyBackup, &s.hooks.backup},
		{"notify_fault", ic.NotifyFault, &s.hooks.fault},
		{"notify_stop", ic.NotifyStop, &s.hooks.stop},
	} {
		if h.cmd == "" {
			continue
		}
		argv, err := parseHook(h.cmd)
		if err != nil {
			bad(h.key, "%v", err)
			continue
		}
		*h.dst = argv
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

// parseHook splits a notify hook's command line and checks, as keepalived
// does at start, that its program can be run: it must exist, be an
// executable regular file, and not be writable by every user (dnslb,
// often root, runs it). The program is run directly (no shell), so it must
// be a binary or start with #!. A bare name is looked up in PATH now; the
// argv returned holds the program's absolute path.
func parseHook(cmd string) ([]string, error) {
	argv, err := splitWords(cmd)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	prog := argv[0]
	if !strings.Contains(prog, "/") {
		p, err := exec.LookPath(prog)
		if err != nil {
			return nil, fmt.Errorf("%s: not found in PATH; give the full path", prog)
		}
		prog = p
	}
	if prog, err = filepath.Abs(prog); err != nil {
		return nil, err
	}
	fi, err := os.Stat(prog)
	switch {
	case err != nil:
		return nil, err // names the path and the reason
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file", prog)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("%s is not executable (chmod +x)", prog)
	case fi.Mode().Perm()&0o002 != 0:
		return nil, fmt.Errorf("%s is writable by every user, who could make dnslb run anything (chmod o-w)", prog)
	}
	if f, err := os.Open(prog); err == nil {
		head := make([]byte, 4)
		n, _ := io.ReadFull(f, head)
		_ = f.Close()
		if h := string(head[:n]); !strings.HasPrefix(h, "#!") && h != "\x7fELF" {
			return nil, fmt.Errorf("%s has no #! line: hooks run directly, not through a shell", prog)
		}
	} // unreadable but executable (mode 0111): let exec decide
	argv[0] = prog
	return argv, nil
}

// splitWords splits a command line as keepalived splits a script's: at
// white space outside quotes; 'single' and "double" quotes group words
// with their spaces and are removed; a backslash takes the next character
// literally, also inside quotes. No variables, globs or other shell syntax.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quote  rune
		esc    bool
	)
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	switch {
	case esc:
		return nil, errors.New("ends with a lone backslash")
	case quote != 0:
		return nil, fmt.Errorf("unterminated %c quote", quote)
	case inWord:
		words = append(words, cur.String())
	}
	return words, nil
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
