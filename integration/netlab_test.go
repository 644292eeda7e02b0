package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// The VRRP lab: three hosts on one bridge, all in network namespaces with
// names unique to this run, no default routes, nothing in the root namespace:
//
//	<p>sw : bridge br0 (STP off, no forward delay, no multicast snooping)
//	<p>lb1: eth0 192.0.2.11/24 2001:db8:99::11/64, IP TTL 71
//	<p>lb2: eth0 192.0.2.12/24 2001:db8:99::12/64, IP TTL 72
//	<p>cl : eth0 192.0.2.10/24 2001:db8:99::10/64
//
// The distinct TTLs make a ping reply tell which host answered the VIP.
const (
	labVIP   = "192.0.2.100"
	labTTL1  = 71
	labTTL2  = 72
	labIface = "eth0"
)

type lab struct {
	t      *testing.T
	ip     string
	prefix string
	sw     string
	hosts  map[string]string // lb1, lb2, cl -> namespace
	dir    string

	mu    sync.Mutex
	procs []*labProc
}

// labProc is a process running inside a lab namespace.
type labProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func newLab(t *testing.T) *lab {
	t.Helper()
	requireRoot(t)
	ipPath := requireTool(t, "ip")
	if err := exec.Command(ipPath, "netns", "list").Run(); err != nil {
		skipOrFail(t, "ip netns unavailable: "+err.Error())
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := "vt" + hex.EncodeToString(b) + "-"
	l := &lab{t: t, ip: ipPath, prefix: p, sw: p + "sw", dir: t.TempDir(),
		hosts: map[string]string{"lb1": p + "lb1", "lb2": p + "lb2", "cl": p + "cl"}}
	t.Cleanup(l.down) // registered first: runs even if setup fails half-way
	l.must("netns", "add", l.sw)
	l.must("-n", l.sw, "link", "set", "lo", "up")
	l.must("-n", l.sw, "link", "add", "br0", "type", "bridge")
	l.must("-n", l.sw, "link", "set", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	l.must("-n", l.sw, "link", "set", "br0", "up")
	for _, h := range []struct {
		name, v4, v6 string
		ttl          int
	}{
		{"lb1", "192.0.2.11/24", "2001:db8:99::11/64", labTTL1},
		{"lb2", "192.0.2.12/24", "2001:db8:99::12/64", labTTL2},
		{"cl", "192.0.2.10/24", "2001:db8:99::10/64", 64},
	} {
		ns := l.hosts[h.name]
		l.must("netns", "add", ns)
		l.must("-n", ns, "link", "set", "lo", "up")
		l.must("-n", l.sw, "link", "add", h.name, "type", "veth", "peer", "name", labIface, "netns", ns)
		l.must("-n", l.sw, "link", "set", h.name, "master", "br0", "up")
		// DAD off on the interface itself too (it existed before the
		// defaults changed): a tentative link-local address cannot send
		// adverts or neighbour advertisements.
		sysctl := fmt.Sprintf("echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad; "+
			"echo 0 > /proc/sys/net/ipv6/conf/%s/accept_dad; "+
			"echo 0 > /proc/sys/net/ipv6/conf/all/accept_ra; echo %d > /proc/sys/net/ipv4/ip_default_ttl; "+
			"echo %d > /proc/sys/net/ipv6/conf/all/hop_limit; echo %d > /proc/sys/net/ipv6/conf/%s/hop_limit",
			labIface, h.ttl, h.ttl, h.ttl, labIface)
		l.must("netns", "exec", ns, "sh", "-c", sysctl)
		l.must("-n", ns, "addr", "add", h.v4, "dev", labIface)
		l.must("-n", ns, "addr", "add", h.v6, "dev", labIface, "nodad")
		l.must("-n", ns, "link", "set", labIface, "up")
	}
	// Wait until no address is tentative (link-local ones come with the
	// link), so agents start on a settled network.
	for _, ns := range l.hosts {
		dnstest.Eventually(t, 10*time.Second, "IPv6 addresses in "+ns+" settled", func() (bool, string) {
			out, _ := l.run("-n", ns, "-6", "addr", "show", "dev", labIface, "tentative")
			return strings.TrimSpace(out) == "", "tentative: " + out
		})
	}
	return l
}

func (l *lab) run(args ...string) (string, error) {
	out, err := exec.Command(l.ip, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (l *lab) must(args ...string) string {
	l.t.Helper()
	out, err := l.run(args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

// down stops every process of the lab and deletes its namespaces; on
// failure it prints the processes' logs first.
func (l *lab) down() {
	for _, p := range l.processes() {
		p.kill(syscall.SIGKILL)
		<-p.done
		if l.t.Failed() {
			b, _ := os.ReadFile(p.log)
			l.t.Logf("---- %s log ----\n%s", p.name, tail(b, 60))
		}
	}
	for _, ns := range []string{l.hosts["lb1"], l.hosts["lb2"], l.hosts["cl"], l.sw} {
		if out, err := exec.Command(l.ip, "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_, _ = l.run("netns", "del", ns)
	}
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs argv inside host's namespace in its own process group, with
// output to a log file in the lab directory.
func (l *lab) start(name, host string, argv ...string) *labProc {
	l.t.Helper()
	logPath := filepath.Join(l.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "==== start %s\n", time.Now().Format(time.TimeOnly+".000"))
	cmd := exec.Command(l.ip, append([]string{"netns", "exec", l.hosts[host]}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	p := &labProc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// kill signals the process group (keepalived's parent and VRRP child at once).
func (p *labProc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

func (p *labProc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.name, d)
	}
}

func (p *labProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// processes returns the processes started so far.
func (l *lab) processes() []*labProc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.procs)
}

// holders lists the lab hosts that have the VIP configured on eth0.
func (l *lab) holders() []string { return l.holdersOf(labVIP) }

func (l *lab) holdersOf(vip string) []string {
	var out []string
	for _, h := range []string{"lb1", "lb2"} {
		s, err := l.run("-n", l.hosts[h], "-o", "addr", "show", "dev", labIface)
		if err == nil && strings.Contains(s, " "+vip+"/") {
			out = append(out, h)
		}
	}
	return out
}

// waitHolders waits until exactly the given hosts hold the VIP.
func (l *lab) waitHolders(t *testing.T, d time.Duration, want ...string) {
	t.Helper()
	dnstest.Eventually(t, d, fmt.Sprintf("VIP holders %v", want), func() (bool, string) {
		got := l.holders()
		return slices.Equal(got, want), fmt.Sprint(got)
	})
}

// holdersStay checks that the holders stay as given for the whole window.
func (l *lab) holdersStay(t *testing.T, d time.Duration, want ...string) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if got := l.holders(); !slices.Equal(got, want) {
			t.Fatalf("VIP holders became %v, want %v to stay", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var llRe = regexp.MustCompile(`(?:lladdr|link/ether) ([0-9a-f:]{17})`)

// mac returns the MAC of host's eth0.
func (l *lab) mac(host string) string {
	m := llRe.FindStringSubmatch(l.must("-n", l.hosts[host], "-o", "link", "show", labIface))
	if m == nil {
		l.t.Fatalf("no MAC for %s", host)
	}
	return m[1]
}

// clientNeigh returns the MAC the client has for the VIP ("" if none).
func (l *lab) clientNeigh() string {
	s, _ := l.run("-n", l.hosts["cl"], "neigh", "show", labVIP, "dev", labIface)
	if m := llRe.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// setPort sets host's switch port up or down (down = the host is cut off).
func (l *lab) setPort(host string, up bool) {
	l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	l.must("-n", l.sw, "link", "set", host, state)
}

// pinger pings the VIP from the client every 10 ms and records the replies.
type pinger struct {
	mu      sync.Mutex
	replies []pingReply
}

type pingReply struct {
	at  time.Time
	seq int
	ttl int
}

var pingRe = regexp.MustCompile(`^\[(\d+\.\d+)\] \d+ bytes from [0-9.]+: icmp_seq=(\d+) ttl=(\d+)`)

func (l *lab) ping(t *testing.T) *pinger {
	t.Helper()
	p, _ := l.pingEvery(t, "0.01")
	return p
}

// pingEvery pings the VIP at the given interval (seconds); stop ends it.
func (l *lab) pingEvery(t *testing.T, interval string) (*pinger, func()) {
	t.Helper()
	bin := requireTool(t, "ping")
	cmd := exec.Command(l.ip, "netns", "exec", l.hosts["cl"], bin, "-D", "-n", "-i", interval, labVIP)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pinger{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m := pingRe.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			ts, _ := strconv.ParseFloat(m[1], 64)
			seq, _ := strconv.Atoi(m[2])
			ttl, _ := strconv.Atoi(m[3])
			sec := int64(ts)
			p.mu.Lock()
			p.replies = append(p.replies, pingReply{at: time.Unix(sec, int64((ts-float64(sec))*1e9)), seq: seq, ttl: ttl})
			p.mu.Unlock()
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-done
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	return p, stop
}

// waitTTL waits for a reply with ttl received after since.
func (p *pinger) waitTTL(t *testing.T, d time.Duration, ttl int, since time.Time) time.Time {
	t.Helper()
	var at time.Time
	dnstest.Until(t, d, fmt.Sprintf("a ping reply with ttl=%d", ttl), func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, r := range p.replies {
			if r.ttl == ttl && r.at.After(since) {
				at = r.at
				return true
			}
		}
		return false
	})
	return at
}

// outage is the longest interval between consecutive replies from the last
// reply before event up to the first reply from the new holder (newTTL).
func (p *pinger) outage(event time.Time, newTTL int) (gap, takeover time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var prev time.Time
	for _, r := range p.replies {
		if !r.at.After(event) {
			prev = r.at
			continue
		}
		if !prev.IsZero() && r.at.Sub(prev) > gap {
			gap = r.at.Sub(prev)
		}
		prev = r.at
		if r.ttl == newTTL {
			return gap, r.at.Sub(event)
		}
	}
	return gap, -1
}

// vipConfig writes a `dnslb vip` config for host and returns its path.
func (l *lab) vipConfig(host string, prio int, extra string) string {
	l.t.Helper()
	if !strings.Contains(extra, "advert_interval:") {
		extra += "\n    advert_interval: 200ms"
	}
	if !strings.Contains(extra, "addresses:") {
		extra += "\n    addresses: [\"" + labVIP + "/24\"]"
	}
	cfg := fmt.Sprintf(`vip:
  - name: front
    interface: %s
    vrid: 51
    priority: %d
    garp_master_delay: 1s
%s
log: {level: debug, format: console}
`, labIface, prio, extra)
	path := filepath.Join(l.dir, host+"-vip.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return path
}

func (l *lab) startVIP(host string, prio int, extra string) *labProc {
	l.t.Helper()
	return l.start("dnslb-"+host, host, dnslbBin, "vip", "--config", l.vipConfig(host, prio, extra))
}

// startKeepalived runs keepalived (VRRP only, VRRPv3, foreground) in host.
func (l *lab) startKeepalived(host string, prio int, advert string) *labProc {
	l.t.Helper()
	return l.startKeepalivedVIP(host, prio, advert, labVIP)
}

// startKeepalivedVIP is startKeepalived with another virtual address, and
// extra lines in the vrrp_instance block.
func (l *lab) startKeepalivedVIP(host string, prio int, advert, vip string, extra ...string) *labProc {
	l.t.Helper()
	bin := requireTool(l.t, "keepalived")
	conf := fmt.Sprintf(`global_defs {
    router_id %s
    vrrp_version 3
    script_user root
    enable_script_security
    vrrp_garp_master_delay 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface %s
    virtual_router_id 51
    priority %d
    advert_int %s
    virtual_ipaddress {
        %s/24 dev %s
    }
%s
}
`, host, labIface, prio, advert, vip, labIface, strings.Join(extra, "\n"))
	base := filepath.Join(l.dir, host+"-keepalived")
	if err := os.WriteFile(base+".conf", []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	for _, ext := range []string{".pid", ".vrrp.pid", ".chk.pid"} {
		_ = os.Remove(base + ext)
	}
	p := l.start("keepalived-"+host, host, bin, "-n", "-P", "-l", "-D", "-G",
		"-f", base+".conf", "-p", base+".pid", "-r", base+".vrrp.pid", "-c", base+".chk.pid", "-i", host)
	dnstest.Until(l.t, 10*time.Second, "keepalived's VRRP child", func() bool {
		b, err := os.ReadFile(base + ".vrrp.pid")
		return err == nil && len(bytes.TrimSpace(b)) > 0
	})
	return p
}
