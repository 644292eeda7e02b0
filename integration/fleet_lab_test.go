package integration

// Namespace plumbing of the fleet tests (fleet_test.go): one network
// namespace per test for the node that a test cuts off, joined to the root
// namespace by a veth pair, with nftables rules inside that namespace only.
//
//	root namespace                         namespace <p>c
//	<p>h: 10.231.X.1/30                    eth0: 10.231.X.2/30
//	      10.231.X.11/32, .12, … (backends)      route 10.231.X.0/24 via 10.231.X.1
//
// Nodes A and B run in the root namespace on 10.231.X.1, node C inside the
// namespace on 10.231.X.2; the backends listen on the extra /32s of the
// root side, which the namespace reaches through its route, so every node
// probes the same addresses. Nothing else of the host is touched: no
// default route, no forwarding, rules only in the test's namespace.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// fleetNftTable is the nftables table the tests add to their namespace.
const fleetNftTable = "fleettest"

// fleetNS is a network namespace of one test, with a veth pair to the
// root namespace.
type fleetNS struct {
	t       *testing.T
	ip      string // path of ip(8)
	nft     string // path of nft(8)
	name    string // the namespace
	hostIf  string // root side of the veth pair
	HostIP  string // 10.231.X.1: the root side's address
	NSIP    string // 10.231.X.2: the namespace's address
	Extra   []string
	nftUsed bool
}

// newFleetNS creates the namespace and its veth pair, with extra /32
// addresses 10.231.X.11, .12, … on the root side (for backends both sides
// reach). The namespace is deleted, and every process in it killed, when
// the test ends, however far setup got.
func newFleetNS(t *testing.T, extra int) *fleetNS {
	t.Helper()
	requireRoot(t)
	ipPath := requireTool(t, "ip")
	nftPath := requireTool(t, "nft")
	if err := exec.Command(ipPath, "netns", "list").Run(); err != nil {
		skipOrFail(t, "ip netns unavailable: "+err.Error())
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	p := "fl" + hex.EncodeToString(b)
	n := &fleetNS{t: t, ip: ipPath, nft: nftPath, name: p + "c", hostIf: p + "h"}
	// A /24 that nothing on the host uses yet.
	addrs, _ := exec.Command(ipPath, "-4", "-o", "addr", "show").CombinedOutput()
	routes, _ := exec.Command(ipPath, "-4", "route", "show", "table", "all").CombinedOutput()
	x := -1
	for i := 0; i < 64; i++ {
		c := 1 + int(randByte())%254
		pre := fmt.Sprintf("10.231.%d.", c)
		if !strings.Contains(string(addrs), pre) && !strings.Contains(string(routes), pre) {
			x = c
			break
		}
	}
	if x < 0 {
		t.Fatal("no free 10.231.X.0/24 on this host")
	}
	n.HostIP = fmt.Sprintf("10.231.%d.1", x)
	n.NSIP = fmt.Sprintf("10.231.%d.2", x)
	for i := 0; i < extra; i++ {
		n.Extra = append(n.Extra, fmt.Sprintf("10.231.%d.%d", x, 11+i))
	}
	t.Cleanup(n.down) // registered first: runs even if setup fails half-way
	n.must("netns", "add", n.name)
	n.must("-n", n.name, "link", "set", "lo", "up")
	n.must("link", "add", n.hostIf, "type", "veth", "peer", "name", "eth0", "netns", n.name)
	n.must("addr", "add", n.HostIP+"/30", "dev", n.hostIf)
	for _, a := range n.Extra {
		n.must("addr", "add", a+"/32", "dev", n.hostIf)
	}
	n.must("link", "set", n.hostIf, "up")
	n.must("-n", n.name, "addr", "add", n.NSIP+"/30", "dev", "eth0")
	n.must("-n", n.name, "link", "set", "eth0", "up")
	n.must("-n", n.name, "route", "add", fmt.Sprintf("10.231.%d.0/24", x), "via", n.HostIP)
	dnstest.Eventually(t, 10*time.Second, "veth "+n.hostIf+" up on both sides", func() (bool, string) {
		h, _ := n.run("-o", "link", "show", n.hostIf)
		c, _ := n.run("-n", n.name, "-o", "link", "show", "eth0")
		return strings.Contains(h, "LOWER_UP") && strings.Contains(c, "LOWER_UP"), h + c
	})
	return n
}

func randByte() byte {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	return b[0]
}

func (n *fleetNS) run(args ...string) (string, error) {
	out, err := exec.Command(n.ip, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (n *fleetNS) must(args ...string) string {
	n.t.Helper()
	out, err := n.run(args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// down kills what still runs in the namespace and deletes it (the veth
// pair goes with it; the root side is deleted too in case it was left).
func (n *fleetNS) down() {
	if out, err := exec.Command(n.ip, "netns", "pids", n.name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, _ = n.run("netns", "del", n.name)
	_, _ = n.run("link", "del", n.hostIf)
}

// Exec returns argv prefixed to run inside the namespace.
func (n *fleetNS) Exec(argv ...string) []string {
	return append([]string{n.ip, "netns", "exec", n.name}, argv...)
}

// nftScript runs an nft script inside the namespace.
func (n *fleetNS) nftScript(script string) error {
	cmd := exec.Command(n.ip, "netns", "exec", n.name, n.nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s\nscript:\n%s", n.name, err, out, script)
	}
	return nil
}

// Block adds rules to the namespace's table (created on first use, with
// chains "out" on the output hook and "in" on the input hook). Each rule
// names its chain first: "out ip daddr 10.231.7.11 tcp dport 8080 drop".
func (n *fleetNS) Block(rules ...string) {
	n.t.Helper()
	var s strings.Builder
	if !n.nftUsed {
		fmt.Fprintf(&s, "add table inet %s\n", fleetNftTable)
		fmt.Fprintf(&s, "add chain inet %s out { type filter hook output priority 0; policy accept; }\n", fleetNftTable)
		fmt.Fprintf(&s, "add chain inet %s in { type filter hook input priority 0; policy accept; }\n", fleetNftTable)
	}
	for _, r := range rules {
		fmt.Fprintf(&s, "add rule inet %s %s\n", fleetNftTable, r)
	}
	if err := n.nftScript(s.String()); err != nil {
		n.t.Fatal(err)
	}
	n.nftUsed = true
}

// Unblock deletes every rule the test added (the whole table).
func (n *fleetNS) Unblock() {
	n.t.Helper()
	if !n.nftUsed {
		return
	}
	if err := n.nftScript(fmt.Sprintf("delete table inet %s\n", fleetNftTable)); err != nil {
		n.t.Fatal(err)
	}
	n.nftUsed = false
}

// Ruleset is the namespace's nftables ruleset, for failure messages.
func (n *fleetNS) Ruleset() string {
	out, _ := exec.Command(n.ip, "netns", "exec", n.name, n.nft, "list", "ruleset").CombinedOutput()
	return string(out)
}

// CutTCP drops the namespace's TCP to ip:port (SYNs and all).
func (n *fleetNS) CutTCP(ip string, port int) {
	n.t.Helper()
	n.Block(fmt.Sprintf("out ip daddr %s tcp dport %d drop", ip, port))
}

// CutGossip drops the gossip (UDP and TCP) between the namespace's node,
// on local port own, and the peers' ports on peerIP, both ways; every
// other port (DNS, the admin API, the checks) stays open.
func (n *fleetNS) CutGossip(own int, peerIP string, peers ...int) {
	n.t.Helper()
	set := make([]string, len(peers))
	for i, p := range peers {
		set[i] = strconv.Itoa(p)
	}
	ps := "{ " + strings.Join(set, ", ") + " }"
	var rules []string
	for _, proto := range []string{"udp", "tcp"} {
		rules = append(rules,
			fmt.Sprintf("out ip daddr %s %s dport %s drop", peerIP, proto, ps),
			fmt.Sprintf("out %s sport %d drop", proto, own),
			fmt.Sprintf("in %s dport %d drop", proto, own),
			fmt.Sprintf("in ip saddr %s %s sport %s drop", peerIP, proto, ps))
	}
	n.Block(rules...)
}

// freePortAt returns a port that was free for both UDP and TCP on ip a
// moment ago (ip must be an address of the root namespace).
func freePortAt(t testing.TB, ip string) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("listen tcp on %s: %v", ip, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatalf("no port free for both UDP and TCP on %s", ip)
	return 0
}
