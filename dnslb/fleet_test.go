package dnslb

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/fleet"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

func TestValidateFleet(t *testing.T) {
	key32 := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes
	for _, tc := range []struct {
		name string
		f    FleetConfig
		want []string
	}{
		{"loopback without a key", FleetConfig{Name: "prod", Bind: "127.0.0.1:7946"}, nil},
		{"every field", FleetConfig{Name: "prod", Node: "a", Bind: "192.0.2.11:7946", Advertise: "192.0.2.11:7946",
			Join: []string{"192.0.2.12:7946"}, Key: Secret(key32), Health: "majority", ProbesPerTarget: 1}, nil},
		{"no name", FleetConfig{Bind: "127.0.0.1:7946"}, []string{"fleet.name: missing"}},
		{"off loopback without a key", FleetConfig{Name: "prod", Bind: "192.0.2.11:7946"}, []string{"fleet.key: missing: gossip off loopback"}},
		{"wildcard without a key", FleetConfig{Name: "prod", Bind: "0.0.0.0:7946"}, []string{"fleet.key: missing"}},
		{"short key", FleetConfig{Name: "prod", Bind: "127.0.0.1:7946", Key: "c2hvcnQ="}, []string{"fleet.key: not base64 of 16, 24 or 32 bytes"}},
		{"bind not host:port", FleetConfig{Name: "prod", Bind: "127.0.0.1"}, []string{`fleet.bind: "127.0.0.1" is not host:port`}},
		{"bind a name", FleetConfig{Name: "prod", Bind: "localhost:7946"}, []string{"fleet.bind: \"localhost:7946\": the host must be an IP address"}},
		{"advertise wildcard", FleetConfig{Name: "prod", Bind: "127.0.0.1:7946", Advertise: "0.0.0.0:7946"}, []string{"fleet.advertise:"}},
		{"bad join", FleetConfig{Name: "prod", Bind: "127.0.0.1:7946", Join: []string{"ok:1", "nope"}}, []string{`fleet.join[1]: "nope" is not host:port`}},
		{"bad policy", FleetConfig{Name: "prod", Bind: "127.0.0.1:7946", Health: "quorum"}, []string{`fleet.health: "quorum" is not local, majority or any-up`}},
		{"negative probes", FleetConfig{Name: "prod", Bind: "127.0.0.1:7946", ProbesPerTarget: -1}, []string{"fleet.probes_per_target: must not be negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseConfig(t.TempDir()).cfg
			f := tc.f
			c.Fleet = &f
			err := c.Validate()
			var got []string
			for _, p := range ProblemsOf(err) {
				got = append(got, p.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %q, want it to contain %q", got[i], w)
				}
				if strings.Contains(got[i], key32) || (f.Key != "" && strings.Contains(got[i], string(f.Key))) {
					t.Errorf("problem %q shows the key", got[i])
				}
			}
		})
	}
}

// fleetZone has two members on loopback addresses, which the tests'
// backends listen on.
const fleetZone = `$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.1
www 60 A 127.0.0.1
www 60 A 127.0.0.2
`

// countingBackend accepts TCP connections on addr and counts them; stop
// closes the listener (probes then fail with a refused connection).
type countingBackend struct {
	ln    net.Listener
	count atomic.Int64
}

func newCountingBackend(t *testing.T, addr string) *countingBackend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &countingBackend{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.count.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return b
}

func (b *countingBackend) stop() { b.ln.Close() }

// freeLoopbackPort returns a port free for TCP and UDP on 127.0.0.1 now.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

type fleetTestNode struct {
	name  string
	dir   string
	fc    *fakeConfig
	state string
	rt    *Runtime
}

// newFleetNodes makes n runtimes' configs, a fleet on loopback whose
// nodes join the first, with the members checked by tcp on port.
func newFleetNodes(t *testing.T, n, port int, change func(*FleetConfig)) []*fleetTestNode {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freeLoopbackPort(t)
	}
	var nodes []*fleetTestNode
	for i := range n {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "z.zone"), []byte(fleetZone), 0o644); err != nil {
			t.Fatal(err)
		}
		fl := FleetConfig{Name: "test", Node: fmt.Sprintf("n%d", i), Bind: fmt.Sprintf("127.0.0.1:%d", ports[i])}
		if i > 0 {
			fl.Join = []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}
		}
		if change != nil {
			change(&fl)
		}
		fc := &fakeConfig{dir: dir, cfg: Config{
			Listen: []string{"127.0.0.1:0"},
			Zones:  []ZoneConfig{{Origin: "example.test.", File: "z.zone"}},
			Pools: map[string]PoolConfig{"www.example.test.": {MaxAnswers: 4, Check: &CheckConfig{Type: "tcp", Port: port,
				Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1}}},
			Fleet: &fl,
		}}
		nodes = append(nodes, &fleetTestNode{name: fl.Node, dir: dir, fc: fc, state: filepath.Join(dir, "state.json")})
	}
	return nodes
}

func (n *fleetTestNode) start(t *testing.T) {
	t.Helper()
	rt, err := NewRuntime(RuntimeOptions{Load: n.fc.load, Log: testLogger(), StateFile: n.state})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	n.rt = rt
	t.Cleanup(func() { n.stop(t) })
}

func (n *fleetTestNode) stop(t *testing.T) {
	if n.rt == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.rt.Shutdown(ctx); err != nil {
		t.Errorf("%s: shutdown: %v", n.name, err)
	}
	n.rt = nil
}

// answers returns the addresses n answers for www, sorted.
func (n *fleetTestNode) answers(t *testing.T) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, n.rt.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

func waitFleetSize(t *testing.T, nodes []*fleetTestNode, want int) {
	t.Helper()
	for _, n := range nodes {
		dnstest.Eventually(t, 10*time.Second, n.name+" sees the fleet", func() (bool, string) {
			fs, _ := n.rt.Fleet()
			alive := 0
			for _, nd := range fs.Nodes {
				if nd.State == "alive" {
					alive++
				}
			}
			return alive == want, fmt.Sprintf("%d alive: %+v", alive, fs.Nodes)
		})
	}
}

func waitAnswers(t *testing.T, nodes []*fleetTestNode, want ...string) {
	t.Helper()
	for _, n := range nodes {
		dnstest.Eventually(t, 5*time.Second, n.name+" answers "+strings.Join(want, " "), func() (bool, string) {
			got := n.answers(t)
			return slices.Equal(got, want), fmt.Sprint(got)
		})
	}
}

func TestFleetOverridesReachEveryNodeAndSurviveRestarts(t *testing.T) {
	port := freeLoopbackPort(t)
	newCountingBackend(t, fmt.Sprintf("127.0.0.1:%d", port))
	newCountingBackend(t, fmt.Sprintf("127.0.0.2:%d", port))
	nodes := newFleetNodes(t, 3, port, nil)
	for _, n := range nodes {
		n.start(t)
	}
	waitFleetSize(t, nodes, 3)
	waitAnswers(t, nodes, "127.0.0.1", "127.0.0.2")

	a, b, c := nodes[0], nodes[1], nodes[2]
	if err := a.rt.SetOverride(netip.MustParseAddr("127.0.0.1"), admin.OverrideDrain, time.Time{}, "maintenance"); err != nil {
		t.Fatal(err)
	}
	waitAnswers(t, nodes, "127.0.0.2")
	// Each node keeps the stamped override in its state file.
	for _, n := range nodes {
		dnstest.Eventually(t, 3*time.Second, n.name+" keeps the drain", func() (bool, string) {
			data, _ := os.ReadFile(n.state)
			var sf stateFile
			_ = json.Unmarshal(data, &sf)
			ok := len(sf.FleetOverrides) == 1 && sf.FleetOverrides[0].Member == "127.0.0.1" &&
				sf.FleetOverrides[0].Mode == "drain" && sf.FleetOverrides[0].StampNode == "n0"
			return ok, string(data)
		})
	}

	// B leaves; meanwhile C lifts the drain and drains the other member.
	b.stop(t)
	waitFleetSize(t, []*fleetTestNode{a, c}, 2)
	if err := c.rt.SetOverride(netip.MustParseAddr("127.0.0.1"), admin.OverrideNone, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.rt.SetOverride(netip.MustParseAddr("127.0.0.2"), admin.OverrideDrain, time.Time{}, "next"); err != nil {
		t.Fatal(err)
	}
	waitAnswers(t, []*fleetTestNode{a, c}, "127.0.0.1")
	// B comes back with its old state file (127.0.0.1 drained) and
	// catches up when it joins.
	b.start(t)
	waitAnswers(t, []*fleetTestNode{b}, "127.0.0.1")
	fs, _ := b.rt.Fleet()
	if len(fs.Nodes) == 0 || !fs.Nodes[0].Self || fs.Nodes[0].Name != "n1" {
		t.Errorf("B's fleet: %+v", fs)
	}

	// Concurrent changes of one member on two nodes converge.
	if err := a.rt.SetOverride(netip.MustParseAddr("127.0.0.2"), admin.OverrideNone, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if err := b.rt.SetOverride(netip.MustParseAddr("127.0.0.2"), admin.OverrideForceDown, time.Time{}, "b says"); err != nil {
		t.Fatal(err)
	}
	dnstest.Eventually(t, 5*time.Second, "every node has the same overrides", func() (bool, string) {
		var sets []map[netip.Addr]answer.Override
		for _, n := range nodes {
			sets = append(sets, n.rt.cur.Load().Overrides().Clone())
		}
		return sameOverrides(sets[0], sets[1]) && sameOverrides(sets[1], sets[2]), fmt.Sprint(sets)
	})
}

func TestFleetSharesProbes(t *testing.T) {
	port := freeLoopbackPort(t)
	backends := []*countingBackend{
		newCountingBackend(t, fmt.Sprintf("127.0.0.1:%d", port)),
		newCountingBackend(t, fmt.Sprintf("127.0.0.2:%d", port)),
	}
	nodes := newFleetNodes(t, 3, port, func(f *FleetConfig) { f.Health = "majority"; f.ProbesPerTarget = 1 })
	for _, n := range nodes {
		n.start(t)
	}
	waitFleetSize(t, nodes, 3)
	// Once the fleet has settled, each target is probed by one node.
	dnstest.Eventually(t, 5*time.Second, "one prober per target", func() (bool, string) {
		probers := map[string]int{}
		var desc []string
		for _, n := range nodes {
			for k := range n.rt.sched.Statuses() {
				probers[k.Addr.String()]++
				desc = append(desc, n.name+":"+k.Addr.String())
			}
		}
		return len(probers) == 2 && probers[fmt.Sprintf("127.0.0.1:%d", port)] == 1 && probers[fmt.Sprintf("127.0.0.2:%d", port)] == 1,
			strings.Join(desc, " ")
	})
	// About one probe per interval (100 ms) per target fleet-wide, not
	// three: over a second, well under the 30 that three probers make.
	before := []int64{backends[0].count.Load(), backends[1].count.Load()}
	time.Sleep(time.Second) // a measurement window, not a wait for a condition
	for i, b := range backends {
		if n := b.count.Load() - before[i]; n < 5 || n > 16 {
			t.Errorf("backend %d: %d probes in 1s at 100ms from one prober", i, n)
		}
	}
	waitAnswers(t, nodes, "127.0.0.1", "127.0.0.2")

	// A backend that goes down leaves every node's answers, though only
	// one node probes it.
	backends[1].stop()
	waitAnswers(t, nodes, "127.0.0.1")

	// The node that probed 127.0.0.1 leaves: another takes the target
	// over, and its probes keep arriving.
	var owner *fleetTestNode
	for _, n := range nodes {
		for k := range n.rt.sched.Statuses() {
			if k.Addr.Addr() == netip.MustParseAddr("127.0.0.1") {
				owner = n
			}
		}
	}
	if owner == nil {
		t.Fatal("nobody probes 127.0.0.1")
	}
	owner.stop(t)
	var rest []*fleetTestNode
	for _, n := range nodes {
		if n != owner {
			rest = append(rest, n)
		}
	}
	waitFleetSize(t, rest, 2)
	at := backends[0].count.Load()
	dnstest.Eventually(t, 5*time.Second, "127.0.0.1 probed again", func() (bool, string) {
		n := backends[0].count.Load() - at
		return n >= 5, fmt.Sprint(n, " probes")
	})
	waitAnswers(t, rest, "127.0.0.1")
}

// A peer's overrides that dnslb would never make (a member that is no
// address, a mode it does not know) are not served and not kept: the
// state file must stay one that the next start reads.
func TestFleetForeignOverridesKeepStateReadable(t *testing.T) {
	port := freeLoopbackPort(t)
	newCountingBackend(t, fmt.Sprintf("127.0.0.1:%d", port))
	newCountingBackend(t, fmt.Sprintf("127.0.0.2:%d", port))
	nodes := newFleetNodes(t, 1, port, nil)
	n := nodes[0]
	n.start(t)
	waitAnswers(t, nodes, "127.0.0.1", "127.0.0.2")

	peer, err := fleet.New(fleet.Config{Cluster: "test", NodeName: "peer", Bind: "127.0.0.1:0",
		Join: []string{n.fc.cfg.Fleet.Bind}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := peer.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, o := range []fleet.Override{
		{Member: "not-an-address", Mode: "drain"},
		{Member: "::ffff:127.0.0.1", Mode: "drain"},
		{Member: "127.0.0.1", Mode: "sideways"},
		{Member: "127.0.0.2", Mode: "drain", Reason: "from the peer"},
	} {
		peer.SetOverride(o)
	}
	waitAnswers(t, nodes, "127.0.0.1")
	dnstest.Eventually(t, 3*time.Second, "the drain kept", func() (bool, string) {
		data, _ := os.ReadFile(n.state)
		return strings.Contains(string(data), `"from the peer"`), string(data)
	})
	n.stop(t)
	n.start(t) // fails the test if the state file is refused
	if got := n.answers(t); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("after a restart: %v, want the peer's drain of 127.0.0.2 kept", got)
	}
}

// testLogger logs to stderr when DNSLB_TEST_LOG is set.
func testLogger() zerolog.Logger {
	if os.Getenv("DNSLB_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.DebugLevel)
}

// Each node's view of a member shows in the pools' status, and a node
// whose pools differ is reported as divergent on both sides.
func TestFleetViewsAndDivergence(t *testing.T) {
	port := freeLoopbackPort(t)
	newCountingBackend(t, fmt.Sprintf("127.0.0.1:%d", port))
	nodes := newFleetNodes(t, 2, port, nil) // 127.0.0.2 has no backend: down everywhere
	for _, n := range nodes {
		n.start(t)
	}
	waitFleetSize(t, nodes, 2)
	waitAnswers(t, nodes, "127.0.0.1")
	for _, n := range nodes {
		dnstest.Eventually(t, 5*time.Second, n.name+" shows every node's view", func() (bool, string) {
			views := map[string]map[string]string{}
			for _, m := range n.rt.Pools()[0].Members {
				views[m.Address] = m.Fleet
			}
			ok := fmt.Sprint(views["127.0.0.1"]) == "map[n0:up n1:up]" && fmt.Sprint(views["127.0.0.2"]) == "map[n0:down n1:down]"
			return ok, fmt.Sprint(views)
		})
		if fs, _ := n.rt.Fleet(); len(fs.Divergences) != 0 {
			t.Errorf("%s: divergences %+v with equal configs", n.name, fs.Divergences)
		}
	}

	nodes[1].fc.set(func(c *Config) {
		p := c.Pools["www.example.test."]
		p.MaxAnswers = 1
		c.Pools = map[string]PoolConfig{"www.example.test.": p} // a new map: the served config holds the old one
	})
	if err := nodes[1].rt.Reload(); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		other := nodes[1-i].name
		dnstest.Eventually(t, 5*time.Second, n.name+" reports "+other+" divergent", func() (bool, string) {
			fs, _ := n.rt.Fleet()
			return len(fs.Divergences) == 1 && fs.Divergences[0].Node == other && fs.Divergences[0].What == "config", fmt.Sprint(fs.Divergences)
		})
	}
}
