package integration

// End-to-end tests of a fleet: several `dnslb serve` processes joined by
// their fleet: block (hashicorp/memberlist), sharing drains and health
// observations. Three nodes on loopback addresses, or A and B in the root
// namespace and C in a namespace of its own (fleet_lab_test.go) where a
// test cuts C's path to a backend or its gossip with nftables. Backends
// are the pool tests' HTTP servers (backend_test.go), which count the
// probes they get.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const (
	fleetCluster  = "prod"
	fleetPool     = "www.example.test"
	fleetInterval = 200 * time.Millisecond
	// fleetJoinWithin bounds a fleet's forming (and a node's rejoining)
	// on loopback or one veth: memberlist joins in milliseconds, so this
	// is margin for a loaded machine.
	fleetJoinWithin = 10 * time.Second
	// fleetDetectWithin bounds memberlist's noticing a node gone silent
	// (probe 500 ms, suspicion ×3 on the fleet's default timing) with
	// margin.
	fleetDetectWithin = 15 * time.Second
)

// fleetLoopbackHosts are the addresses of loopback nodes a, b, c, d and
// fleetBackendIPs the loopback backends (pool members).
var (
	fleetLoopbackHosts = []string{"127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"}
	fleetBackendIPs    = []string{"127.0.0.51", "127.0.0.52", "127.0.0.53"}
)

// newFleetKey returns a gossip key: base64 of 32 random bytes.
func newFleetKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// fleetCommon is what the nodes of one fleet share.
type fleetCommon struct {
	Members []string // the pool's members (A records of www)
	Port    int      // the backends' port, probed by the check
	Key     string   // gossip key ("" none: loopback only)
	Health  string   // "" (local, the default) | majority | any-up
	PPT     int      // probes_per_target
	// CheckExtra is appended to the check's flow mapping (", watch: false").
	CheckExtra string
	// NoFleet leaves the fleet: block out (the lab's own self-test).
	NoFleet bool
}

// fleetRun is one test's fleet: every node started, for cleanup and for
// printing every node's log when the test fails.
type fleetRun struct {
	t      *testing.T
	common fleetCommon
	mu     sync.Mutex
	nodes  []*fleetNode
}

func newFleetRun(t *testing.T, c fleetCommon) *fleetRun {
	t.Helper()
	fr := &fleetRun{t: t, common: c}
	t.Cleanup(func() {
		fr.mu.Lock()
		nodes := slices.Clone(fr.nodes)
		fr.mu.Unlock()
		for _, n := range nodes {
			n.stopQuiet()
		}
		if t.Failed() {
			for _, n := range nodes {
				for i, p := range n.procs {
					t.Logf("---- node %s, process %d (dns %s, admin %s, gossip %s) ----\n%s",
						n.Name, i+1, n.DNS, n.Admin, n.Gossip, tail([]byte(p.out.String()), 80))
				}
			}
		}
	})
	return fr
}

// fleetNodeSpec is one node of a fleet.
type fleetNodeSpec struct {
	Name      string
	Host      string   // the address of its DNS listener and gossip
	AdminHost string   // its admin listener's address ("": Host)
	NS        *fleetNS // run inside this namespace (nil: the root namespace)
	Join      []*fleetNode
	Key       *string // overrides the fleet's key (nil: fleetCommon.Key)
}

// fleetNode is one running (or stopped) dnslb of a fleet.
type fleetNode struct {
	t    *testing.T
	fr   *fleetRun
	spec fleetNodeSpec
	Name string
	dir  string
	cfg  string // config path
	join []string

	DNS, Admin, Gossip string // host:port each
	GossipPort         int

	p     *proc
	procs []*proc // every process started, for the failure output
	http  *http.Client
}

// startFleetNode writes the node's config (with a fresh state file) into a
// temp dir, picks free ports (again, with new ones, when one was taken
// meanwhile), starts `dnslb serve --config FILE --listen HOST:PORT` and
// waits until it answers DNS over UDP and TCP and its admin /healthz. It
// does not wait for the fleet: see waitAlive.
func startFleetNode(t *testing.T, fr *fleetRun, spec fleetNodeSpec) *fleetNode {
	t.Helper()
	if spec.AdminHost == "" {
		spec.AdminHost = spec.Host
	}
	n := &fleetNode{t: t, fr: fr, spec: spec, Name: spec.Name, dir: t.TempDir(),
		http: &http.Client{Timeout: 5 * time.Second}}
	// Registered after TempDir's removal, so it runs before it: the
	// process stops before its directory goes.
	t.Cleanup(n.stopQuiet)
	n.cfg = filepath.Join(n.dir, "dnslb.yaml")
	for _, j := range spec.Join {
		n.join = append(n.join, j.Gossip)
	}
	zone := zoneHead
	for _, m := range fr.common.Members {
		zone += "www IN A " + m + "\n"
	}
	if err := os.WriteFile(filepath.Join(n.dir, "example.test.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	fr.mu.Lock()
	fr.nodes = append(fr.nodes, n)
	fr.mu.Unlock()
	n.start(true)
	return n
}

// port picks a free port for host: checked there in the root namespace;
// inside a fresh namespace every port is free but ours, so a port free on
// the root's loopback does.
func (n *fleetNode) port(host string) int {
	if n.spec.NS != nil && host == n.spec.NS.NSIP {
		return freePort(n.t)
	}
	return freePortAt(n.t, host)
}

func (n *fleetNode) config() string {
	c := n.fr.common
	var b strings.Builder
	fmt.Fprintf(&b, `log: {level: info, format: json}
admin: %q
rrl: off
state_file: %s
zones:
  - {origin: example.test., file: %s}
pools:
  %s.:
    policy: round-robin
    ttl: 5
    max_answers: 0
    check: {type: http, port: %d, path: %s, interval: %s, timeout: 150ms, rise: 1, fall: 2%s}
`, n.Admin, filepath.Join(n.dir, "dnslb.state.json"), filepath.Join(n.dir, "example.test.zone"),
		fleetPool, c.Port, healthPath, fleetInterval, c.CheckExtra)
	if c.NoFleet {
		return b.String()
	}
	key := c.Key
	if n.spec.Key != nil {
		key = *n.spec.Key
	}
	join, _ := json.Marshal(n.join)
	if n.join == nil {
		join = []byte("[]")
	}
	fmt.Fprintf(&b, `fleet:
  name: %s
  node: %s
  bind: %q
  join: %s
`, fleetCluster, n.Name, n.Gossip, join)
	if key != "" {
		fmt.Fprintf(&b, "  key: %q\n", key)
	}
	if c.Health != "" {
		fmt.Fprintf(&b, "  health: %s\n", c.Health)
	}
	fmt.Fprintf(&b, "  probes_per_target: %d\n", c.PPT)
	return b.String()
}

// start runs the node; fresh picks new ports (a restart keeps its own
// unless they were taken meanwhile).
func (n *fleetNode) start(fresh bool) {
	n.t.Helper()
	var lastOut string
	for attempt := 0; attempt < startAttempts; attempt++ {
		if fresh || attempt > 0 {
			n.DNS = net.JoinHostPort(n.spec.Host, strconv.Itoa(n.port(n.spec.Host)))
			n.Admin = net.JoinHostPort(n.spec.AdminHost, strconv.Itoa(n.port(n.spec.AdminHost)))
			n.GossipPort = n.port(n.spec.Host)
			n.Gossip = net.JoinHostPort(n.spec.Host, strconv.Itoa(n.GossipPort))
		}
		cfg := n.config()
		if err := os.WriteFile(n.cfg, []byte(cfg), 0o644); err != nil {
			n.t.Fatal(err)
		}
		argv := []string{dnslbBin, "serve", "--config", n.cfg, "--listen", n.DNS}
		if n.spec.NS != nil {
			argv = n.spec.NS.Exec(argv...)
		}
		p, err := startProc(n.t, argv[0], argv[1:]...)
		if err != nil {
			n.t.Fatalf("starting node %s: %v", n.Name, err)
		}
		n.fr.mu.Lock()
		n.p = p
		n.procs = append(n.procs, p)
		n.fr.mu.Unlock()
		err = waitAnswering(p, n.DNS, "example.test.")
		if err == nil {
			err = n.waitAdmin()
		}
		if err == nil {
			return
		}
		p.stop()
		lastOut = p.out.String()
		if addrInUse(lastOut) || strings.Contains(lastOut, "address in use") {
			continue
		}
		n.t.Fatalf("node %s (dns %s, admin %s, gossip %s): %v\nconfig:\n%s\noutput:\n%s",
			n.Name, n.DNS, n.Admin, n.Gossip, err, cfg, lastOut)
	}
	n.t.Fatalf("node %s: no free ports after %d attempts; last output:\n%s", n.Name, startAttempts, lastOut)
}

func (n *fleetNode) waitAdmin() error {
	deadline := time.Now().Add(startupDeadline)
	for time.Now().Before(deadline) {
		if n.p.hasExited() {
			return fmt.Errorf("exited before the admin API answered: %v", n.p.err)
		}
		if resp, err := n.http.Get("http://" + n.Admin + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(pollStep) // poll interval
	}
	return fmt.Errorf("admin API on %s: no /healthz 200 within %v", n.Admin, startupDeadline)
}

// Stop sends SIGTERM and waits for a clean exit (status 0): the node
// leaves the fleet and saves its state file.
func (n *fleetNode) Stop() {
	n.t.Helper()
	if n.p.hasExited() {
		n.t.Fatalf("node %s had exited already: %v", n.Name, n.p.err)
	}
	_ = n.p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.p.exited:
		if n.p.err != nil {
			n.t.Fatalf("node %s exited with %v after SIGTERM", n.Name, n.p.err)
		}
	case <-time.After(stopDeadline + 3*time.Second):
		n.p.stop()
		n.t.Fatalf("node %s did not exit within %v of SIGTERM", n.Name, stopDeadline+3*time.Second)
	}
}

func (n *fleetNode) stopQuiet() {
	if n.p != nil {
		n.p.stop()
	}
}

// Restart starts a stopped node again with the same config, state file
// and (if free) ports.
func (n *fleetNode) Restart() {
	n.t.Helper()
	if !n.p.hasExited() {
		n.t.Fatalf("node %s: Restart while running", n.Name)
	}
	n.start(false)
}

// Running reports whether the node's process runs.
func (n *fleetNode) Running() bool { return n.p != nil && !n.p.hasExited() }

// Log is the current process's output.
func (n *fleetNode) Log() string { return n.p.out.String() }

// Addrs asks the node for the pool's A records.
func (n *fleetNode) Addrs(t testing.TB) []string {
	t.Helper()
	return poolAddrs(t, n.DNS, fleetPool, dns.TypeA)
}

// CLI runs a dnslb admin command against the node.
func (n *fleetNode) CLI(t testing.TB, args ...string) cliResult {
	t.Helper()
	return runCLI(t, append(args, "--admin", n.Admin)...)
}

// mustCLI runs the command and wants exit 0.
func (n *fleetNode) mustCLI(t testing.TB, args ...string) cliResult {
	t.Helper()
	r := n.CLI(t, args...)
	if r.code != 0 {
		t.Fatalf("node %s: dnslb %s: %s", n.Name, strings.Join(args, " "), r)
	}
	return r
}

// The contract's GET /api/v1/fleet.
type fleetStatus struct {
	Name            string            `json:"name"`
	Node            string            `json:"node"`
	Health          string            `json:"health"`
	ProbesPerTarget int               `json:"probes_per_target"`
	Isolated        bool              `json:"isolated"`
	Nodes           []fleetNodeStatus `json:"nodes"`
	Divergences     []fleetDivergence `json:"divergences"`
}

type fleetNodeStatus struct {
	Name         string                      `json:"name"`
	Address      string                      `json:"address"`
	State        string                      `json:"state"`
	Self         bool                        `json:"self"`
	LastContact  string                      `json:"last_contact"`
	ConfigHash   string                      `json:"config_hash"`
	Observations map[string]fleetObservation `json:"observations"`
}

type fleetObservation struct {
	Up      bool   `json:"up"`
	Checked bool   `json:"checked"`
	Since   string `json:"since"`
}

type fleetDivergence struct {
	Node   string `json:"node"`
	What   string `json:"what"`
	Zone   string `json:"zone"`
	Theirs string `json:"theirs"`
	Ours   string `json:"ours"`
}

// get GETs path on the admin listener.
func (n *fleetNode) get(path string) (int, []byte, error) {
	resp, err := n.http.Get("http://" + n.Admin + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// fleet reads /api/v1/fleet; an error says why it could not.
func (n *fleetNode) fleet() (fleetStatus, []byte, error) {
	var st fleetStatus
	code, b, err := n.get("/api/v1/fleet")
	if err != nil {
		return st, nil, err
	}
	if code != http.StatusOK {
		return st, b, fmt.Errorf("GET /api/v1/fleet on %s: HTTP %d: %.300s", n.Name, code, b)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, b, fmt.Errorf("GET /api/v1/fleet on %s: %v: %.500s", n.Name, err, b)
	}
	return st, b, nil
}

func (n *fleetNode) mustFleet(t testing.TB) fleetStatus {
	t.Helper()
	st, _, err := n.fleet()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// aliveNames lists the nodes in state alive, sorted.
func (st fleetStatus) aliveNames() []string {
	var out []string
	for _, nd := range st.Nodes {
		if nd.State == "alive" {
			out = append(out, nd.Name)
		}
	}
	sort.Strings(out)
	return out
}

func (st fleetStatus) node(name string) (fleetNodeStatus, bool) {
	for _, nd := range st.Nodes {
		if nd.Name == name {
			return nd, true
		}
	}
	return fleetNodeStatus{}, false
}

// observation is node name's published view of the target at ipPort
// (target keys start with the probed address:port).
func (st fleetStatus) observation(name, ipPort string) (fleetObservation, bool) {
	nd, ok := st.node(name)
	if !ok {
		return fleetObservation{}, false
	}
	for k, o := range nd.Observations {
		if k == ipPort || strings.HasPrefix(k, ipPort+" ") {
			return o, true
		}
	}
	return fleetObservation{}, false
}

// waitAlive waits until every one of nodes sees exactly want alive
// (default: the nodes' own names) and returns how long that took.
func waitAlive(t testing.TB, within time.Duration, nodes []*fleetNode, want ...string) time.Duration {
	t.Helper()
	if want == nil {
		for _, n := range nodes {
			want = append(want, n.Name)
		}
	}
	want = slices.Clone(want)
	sort.Strings(want)
	return dnstest.Eventually(t, within, fmt.Sprintf("every node sees %v alive", want), func() (bool, string) {
		var state []string
		ok := true
		for _, n := range nodes {
			st, _, err := n.fleet()
			if err != nil {
				return false, err.Error()
			}
			got := st.aliveNames()
			if !slices.Equal(got, want) {
				ok = false
			}
			state = append(state, fmt.Sprintf("%s sees %v", n.Name, got))
		}
		return ok, strings.Join(state, "; ")
	})
}

// metrics scrapes the node's /metrics.
func (n *fleetNode) metrics(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	code, data, err := n.get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("node %s: GET /metrics: %d %v", n.Name, code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("node %s: parsing /metrics: %v", n.Name, err)
	}
	return mfs
}

// metric is the sum of the family's series with labels want, and how many
// series there were.
func (n *fleetNode) metric(t testing.TB, name string, want map[string]string) (float64, int) {
	t.Helper()
	return metricSum(n.metrics(t), name, want)
}

// answersAll reports whether every node answers exactly want, and what
// they answered.
func answersAll(t testing.TB, nodes []*fleetNode, want []string) (bool, string) {
	ok := true
	var state []string
	for _, n := range nodes {
		got := n.Addrs(t)
		if !sameAddrs(got, want...) {
			ok = false
		}
		state = append(state, fmt.Sprintf("%s %v", n.Name, got))
	}
	return ok, strings.Join(state, "; ")
}

// waitAnswers waits until every node answers exactly want.
func waitAnswers(t testing.TB, within time.Duration, nodes []*fleetNode, want ...string) time.Duration {
	t.Helper()
	return dnstest.Eventually(t, within, fmt.Sprintf("every node answers %v", want), func() (bool, string) {
		return answersAll(t, nodes, want)
	})
}

// keepsAnswering fails if, within d, a node answers without ip.
func keepsAnswering(t testing.TB, d time.Duration, nodes []*fleetNode, ip string) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for _, n := range nodes {
			if got := n.Addrs(t); !slices.Contains(got, ip) {
				t.Fatalf("node %s answered %v, without %s, which must stay", n.Name, got, ip)
			}
		}
		time.Sleep(pollStep) // a poll interval over a fixed window
	}
}

// without is set minus drop.
func without(set []string, drop ...string) []string {
	var out []string
	for _, s := range set {
		if !slices.Contains(drop, s) {
			out = append(out, s)
		}
	}
	return out
}

// startLoopbackFleet starts nodes a, b, c (…) on 127.0.0.41… ; each joins
// the ones started before it.
func startLoopbackFleet(t *testing.T, fr *fleetRun, names ...string) []*fleetNode {
	t.Helper()
	var nodes []*fleetNode
	for i, name := range names {
		nodes = append(nodes, startFleetNode(t, fr, fleetNodeSpec{Name: name, Host: fleetLoopbackHosts[i], Join: slices.Clone(nodes)}))
	}
	return nodes
}

// startLabFleet starts a and b in the root namespace on ns.HostIP (admin
// API on loopback, so the CLI may change things) and c inside ns.
func startLabFleet(t *testing.T, fr *fleetRun, ns *fleetNS) (a, b, c *fleetNode) {
	t.Helper()
	a = startFleetNode(t, fr, fleetNodeSpec{Name: "a", Host: ns.HostIP, AdminHost: "127.0.0.1"})
	b = startFleetNode(t, fr, fleetNodeSpec{Name: "b", Host: ns.HostIP, AdminHost: "127.0.0.1", Join: []*fleetNode{a}})
	c = startFleetNode(t, fr, fleetNodeSpec{Name: "c", Host: ns.NSIP, NS: ns, Join: []*fleetNode{a, b}})
	return a, b, c
}

// percentile is the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

// statusListsNode reports whether `dnslb status` output has, after a line
// naming the fleet, a row that starts with the node's name and shows state.
func statusListsNode(out, name, state string) bool {
	inFleet := false
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(strings.ToLower(l), "fleet") {
			inFleet = true
			continue
		}
		if f := strings.Fields(l); inFleet && len(f) > 0 && f[0] == name && slices.Contains(f, state) {
			return true
		}
	}
	return false
}

// checkFleetAPI holds the nodes' /api/v1/fleet to the contract's schema
// and to what a settled fleet of exactly these nodes says.
func checkFleetAPI(t *testing.T, nodes []*fleetNode, health string, ppt int) {
	t.Helper()
	var hashes []string
	for _, n := range nodes {
		st, raw, err := n.fleet()
		if err != nil {
			t.Fatal(err)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(raw, &top); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"name", "node", "health", "probes_per_target", "isolated", "nodes", "divergences"} {
			if _, ok := top[k]; !ok {
				t.Errorf("node %s: /api/v1/fleet has no %q: %.400s", n.Name, k, raw)
			}
		}
		if st.Name != fleetCluster || st.Node != n.Name || st.Health != health || st.ProbesPerTarget != ppt || st.Isolated {
			t.Errorf("node %s: /api/v1/fleet says name %q node %q health %q probes_per_target %d isolated %v; want %q %q %q %d false",
				n.Name, st.Name, st.Node, st.Health, st.ProbesPerTarget, st.Isolated, fleetCluster, n.Name, health, ppt)
		}
		if len(st.Divergences) != 0 {
			t.Errorf("node %s: divergences %+v in a fleet of one config", n.Name, st.Divergences)
		}
		selves := 0
		for _, nd := range st.Nodes {
			if nd.Self {
				selves++
				if nd.Name != n.Name {
					t.Errorf("node %s: self is %q", n.Name, nd.Name)
				}
			}
			if _, err := time.Parse(time.RFC3339, nd.LastContact); err != nil {
				t.Errorf("node %s: last_contact of %s %q is not RFC 3339", n.Name, nd.Name, nd.LastContact)
			}
			if nd.Address == "" || nd.ConfigHash == "" {
				t.Errorf("node %s: node %s without address or config_hash: %+v", n.Name, nd.Name, nd)
			}
			if nd.Self {
				hashes = append(hashes, nd.ConfigHash)
			}
		}
		if selves != 1 {
			t.Errorf("node %s: %d nodes marked self", n.Name, selves)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(hashes)))) != 1 {
		t.Errorf("config hashes of one config differ: %v", hashes)
	}
}

// checkFleetMetrics wants every node's fleet metrics to say: all alive,
// messages exchanged, not isolated, no divergent node.
func checkFleetMetrics(t *testing.T, nodes []*fleetNode) {
	t.Helper()
	for _, n := range nodes {
		mfs := n.metrics(t)
		if v, c := metricSum(mfs, "dnslb_fleet_members", map[string]string{"state": "alive"}); c == 0 || int(v) != len(nodes) {
			t.Errorf("node %s: dnslb_fleet_members{state=alive} = %v (%d series), want %d", n.Name, v, c, len(nodes))
		}
		for _, dir := range []string{"in", "out"} {
			if v, c := metricSum(mfs, "dnslb_fleet_messages_total", map[string]string{"direction": dir}); c == 0 || v <= 0 {
				t.Errorf("node %s: dnslb_fleet_messages_total{direction=%s} = %v (%d series), want > 0", n.Name, dir, v, c)
			}
		}
		if v, c := metricSum(mfs, "dnslb_fleet_isolated", nil); c != 1 || v != 0 {
			t.Errorf("node %s: dnslb_fleet_isolated = %v (%d series), want 0", n.Name, v, c)
		}
		if v, c := metricSum(mfs, "dnslb_fleet_divergent_nodes", nil); c != 1 || v != 0 {
			t.Errorf("node %s: dnslb_fleet_divergent_nodes = %v (%d series), want 0", n.Name, v, c)
		}
		if v, c := metricSum(mfs, "dnslb_fleet_rejected_total", nil); c != 3 || v != 0 {
			t.Errorf("node %s: dnslb_fleet_rejected_total = %v (%d series), want 0 in each of decrypt, label, malformed", n.Name, v, c)
		}
		// The fleet's names in the shipped alerts and dashboard, which
		// TestShippedMetricNames leaves to this test (a node in no fleet
		// exports none of them).
		for name := range shippedNames(t) {
			if _, ok := mfs[name]; strings.HasPrefix(name, "dnslb_fleet_") && !ok {
				t.Errorf("node %s: the shipped rules use %s, which a fleet node does not export", n.Name, name)
			}
		}
	}
}

// TestFleetDrainReachesEveryNode: three nodes on loopback; a drain made
// through node A's CLI is out of A's, B's and C's answers within 1 s of
// the command returning, and an undrain back in every one within 1 s,
// over 20 cycles (p50 and p99 logged). The fleet's API, metrics and
// `dnslb status` describe the three nodes.
func TestFleetDrainReachesEveryNode(t *testing.T) {
	be := startBackends(t, fleetBackendIPs...)
	fr := newFleetRun(t, fleetCommon{Members: fleetBackendIPs, Port: be.Port, Key: newFleetKey()})
	nodes := startLoopbackFleet(t, fr, "a", "b", "c")
	a := nodes[0]
	took := waitAlive(t, fleetJoinWithin, nodes)
	t.Logf("3 nodes alive on every node %v after the last start", took.Round(time.Millisecond))
	be.waitHits(t, 2, 10*time.Second)
	waitAnswers(t, 5*time.Second, nodes, fleetBackendIPs...)

	checkFleetAPI(t, nodes, "local", 0)
	checkFleetMetrics(t, nodes)
	for _, n := range nodes {
		out := n.mustCLI(t, "status").stdout
		for _, name := range []string{"a", "b", "c"} {
			if !statusListsNode(out, name, "alive") {
				t.Errorf("node %s: dnslb status has no fleet section with a row for %s, alive:\n%s", n.Name, name, out)
			}
		}
	}

	member := fleetBackendIPs[0]
	rest := without(fleetBackendIPs, member)
	const cycles = 20
	var drains, undrains []time.Duration
	for i := 0; i < cycles; i++ {
		a.mustCLI(t, "drain", member, "--reason", fmt.Sprintf("fleet cycle %d", i))
		drains = append(drains, waitAnswers(t, 5*time.Second, nodes, rest...))
		a.mustCLI(t, "undrain", member)
		undrains = append(undrains, waitAnswers(t, 5*time.Second, nodes, fleetBackendIPs...))
	}
	t.Logf("drain via a, out of a, b and c: p50 %v p99 %v (max %v); undrain back in all: p50 %v p99 %v (max %v); %d cycles, polled every %v",
		percentile(drains, 50).Round(time.Millisecond), percentile(drains, 99).Round(time.Millisecond), slices.Max(drains).Round(time.Millisecond),
		percentile(undrains, 50).Round(time.Millisecond), percentile(undrains, 99).Round(time.Millisecond), slices.Max(undrains).Round(time.Millisecond),
		cycles, dnstest.PollStep)
	for i := range drains {
		if drains[i] >= time.Second {
			t.Errorf("cycle %d: the drain took %v to reach every node, want < 1s", i, drains[i])
		}
		if undrains[i] >= time.Second {
			t.Errorf("cycle %d: the undrain took %v to reach every node, want < 1s", i, undrains[i])
		}
	}
}

// TestFleetRestartedNodeCatchesUp: B stops (SIGTERM) with a drain in its
// state file; while it is down that drain is lifted through A and another
// member drained through C. B started again on the same config and state
// file answers the current overrides as soon as it has joined (at most
// 2 s after its first answer), never the stale set after that.
func TestFleetRestartedNodeCatchesUp(t *testing.T) {
	be := startBackends(t, fleetBackendIPs...)
	fr := newFleetRun(t, fleetCommon{Members: fleetBackendIPs, Port: be.Port, Key: newFleetKey()})
	nodes := startLoopbackFleet(t, fr, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	waitAlive(t, fleetJoinWithin, nodes)
	be.waitHits(t, 2, 10*time.Second)
	waitAnswers(t, 5*time.Second, nodes, fleetBackendIPs...)

	m1, m2, m3 := fleetBackendIPs[0], fleetBackendIPs[1], fleetBackendIPs[2]
	a.mustCLI(t, "drain", m1, "--reason", "before b stops")
	waitAnswers(t, 2*time.Second, nodes, m2, m3)

	b.Stop()
	waitAlive(t, fleetDetectWithin, []*fleetNode{a, c}, "a", "c")
	a.mustCLI(t, "undrain", m1)
	c.mustCLI(t, "drain", m2, "--reason", "while b is down")
	waitAnswers(t, 2*time.Second, []*fleetNode{a, c}, m1, m3)

	// Record every answer B gives from its first one on.
	log := startAnswerLog(b.DNS, fleetPool+".")
	defer log.close()
	started := time.Now()
	b.Restart()
	t.Logf("b answering again %v after its start", time.Since(started).Round(time.Millisecond))
	joined := waitAnswers(t, 2*time.Second+time.Since(started), []*fleetNode{b}, m1, m3)
	waitAlive(t, fleetJoinWithin, nodes)
	// From now on B must keep answering the current set.
	for i := 0; i < 50; i++ {
		if got := b.Addrs(t); !sameAddrs(got, m1, m3) {
			t.Fatalf("b answered %v after it had caught up, want %v", got, []string{m1, m3})
		}
	}
	log.mu.Lock()
	samples := slices.Clone(log.samples)
	log.mu.Unlock()
	if len(samples) == 0 {
		t.Fatal("no answer of b recorded")
	}
	first := samples[0]
	var lastStale time.Time
	stale := 0
	for _, s := range samples {
		if !sameAddrs(s.addrs, m1, m3) {
			lastStale = s.at
			stale++
		}
	}
	staleFor := time.Duration(0)
	if stale > 0 {
		staleFor = lastStale.Sub(first.at)
	}
	t.Logf("restarted b: first answer %v (current %v); %d of %d answers stale, the last %v after the first; caught up in %v of polling",
		first.addrs, []string{m1, m3}, stale, len(samples), staleFor.Round(time.Millisecond), joined.Round(time.Millisecond))
	if staleFor > 2*time.Second {
		t.Errorf("b served the stale set for %v after its first answer, want <= 2s (the join)", staleFor)
	}
}

// TestFleetMajorityIgnoresOnePath: health: majority; C, in its own
// namespace, loses its path to one backend (an nftables drop inside its
// namespace): C sees it down, but the member stays in every node's
// answers, C's included. Stopping the backend for real takes it out of
// every node's answers.
func TestFleetMajorityIgnoresOnePath(t *testing.T) {
	ns := newFleetNS(t, 3)
	be := startBackends(t, ns.Extra...)
	fr := newFleetRun(t, fleetCommon{Members: ns.Extra, Port: be.Port, Key: newFleetKey(), Health: "majority"})
	a, b, c := startLabFleet(t, fr, ns)
	nodes := []*fleetNode{a, b, c}
	waitAlive(t, fleetJoinWithin, nodes)
	be.waitHits(t, 2*3, 10*time.Second) // all three nodes probe each backend
	waitAnswers(t, 5*time.Second, nodes, ns.Extra...)

	cut := ns.Extra[0]
	target := net.JoinHostPort(cut, strconv.Itoa(be.Port))
	ns.CutTCP(cut, be.Port)
	// C really sees it down (else the rest proves nothing), and says so.
	dnstest.Eventually(t, 5*time.Second, "c's own view of "+target+" down, seen by a and by c", func() (bool, string) {
		var state []string
		ok := true
		for _, n := range []*fleetNode{a, c} {
			st, _, err := n.fleet()
			if err != nil {
				return false, err.Error()
			}
			o, found := st.observation("c", target)
			ok = ok && found && o.Checked && !o.Up
			state = append(state, fmt.Sprintf("%s: c's observation %+v (found %v)", n.Name, o, found))
		}
		return ok, strings.Join(state, "; ")
	})
	keepsAnswering(t, 2*time.Second, nodes, cut) // 10 check intervals
	t.Logf("%s cut from c alone: still answered by a, b and c", target)

	be.get(t, cut).Stop()
	took := waitAnswers(t, 3*time.Second, nodes, ns.Extra[1:]...)
	t.Logf("%s really down: out of every node's answers in %v", target, took.Round(time.Millisecond))

	ns.Unblock()
	be.get(t, cut).Start(t)
	waitAnswers(t, 3*time.Second, nodes, ns.Extra...)
}

// TestFleetPartitionedNodeServesOwnView: C's gossip with A and B is
// dropped inside its namespace (DNS, the admin API and the checks still
// pass). C says it is isolated, keeps answering by its own checks (a
// backend stopped leaves C's answers on C's own), misses a drain made
// on A meanwhile, and once the rule is gone rejoins (not isolated, three
// alive) and takes the drain.
func TestFleetPartitionedNodeServesOwnView(t *testing.T) {
	ns := newFleetNS(t, 3)
	be := startBackends(t, ns.Extra...)
	fr := newFleetRun(t, fleetCommon{Members: ns.Extra, Port: be.Port, Key: newFleetKey()})
	a, b, c := startLabFleet(t, fr, ns)
	nodes := []*fleetNode{a, b, c}
	waitAlive(t, fleetJoinWithin, nodes)
	be.waitHits(t, 2*3, 10*time.Second)
	waitAnswers(t, 5*time.Second, nodes, ns.Extra...)
	if v, _ := c.metric(t, "dnslb_fleet_isolated", nil); v != 0 {
		t.Fatalf("c: dnslb_fleet_isolated %v before the partition", v)
	}

	ns.CutGossip(c.GossipPort, ns.HostIP, a.GossipPort, b.GossipPort)
	cutAt := time.Now()
	isoTook := dnstest.Eventually(t, fleetDetectWithin, "c isolated (API and metric)", func() (bool, string) {
		st, _, err := c.fleet()
		if err != nil {
			return false, err.Error()
		}
		v, _ := c.metric(t, "dnslb_fleet_isolated", nil)
		return st.Isolated && v == 1, fmt.Sprintf("isolated %v, metric %v, alive %v", st.Isolated, v, st.aliveNames())
	})
	waitAlive(t, fleetDetectWithin, []*fleetNode{a, b}, "a", "b")
	t.Logf("gossip cut: c isolated after %v, a and b without c after %v", isoTook.Round(time.Millisecond),
		time.Since(cutAt).Round(time.Millisecond))

	// A drain made on the majority side reaches A and B only.
	drained := ns.Extra[1]
	a.mustCLI(t, "drain", drained, "--reason", "during the partition")
	waitAnswers(t, 2*time.Second, []*fleetNode{a, b}, without(ns.Extra, drained)...)
	if got := c.Addrs(t); !slices.Contains(got, drained) {
		t.Fatalf("c, cut off from the fleet, answered %v without %s drained on a: the partition leaks", got, drained)
	}
	// C decides by its own checks.
	down := ns.Extra[2]
	be.get(t, down).Stop()
	tookC := waitAnswers(t, 3*time.Second, []*fleetNode{c}, without(ns.Extra, down)...)
	waitAnswers(t, 3*time.Second, []*fleetNode{a, b}, without(ns.Extra, drained, down)...)
	t.Logf("backend %s stopped: out of isolated c's answers in %v", down, tookC.Round(time.Millisecond))
	be.get(t, down).Start(t)
	waitAnswers(t, 3*time.Second, []*fleetNode{c}, ns.Extra...)

	ns.Unblock()
	healed := time.Now()
	rejoin := dnstest.Eventually(t, fleetJoinWithin+fleetDetectWithin, "c in touch again", func() (bool, string) {
		st, _, err := c.fleet()
		if err != nil {
			return false, err.Error()
		}
		v, _ := c.metric(t, "dnslb_fleet_isolated", nil)
		return !st.Isolated && v == 0, fmt.Sprintf("isolated %v, metric %v, alive %v", st.Isolated, v, st.aliveNames())
	})
	waitAlive(t, fleetJoinWithin, nodes)
	waitAnswers(t, 15*time.Second, nodes, without(ns.Extra, drained)...)
	t.Logf("healed: c not isolated after %v, the drain in c's answers %v after healing", rejoin.Round(time.Millisecond),
		time.Since(healed).Round(time.Millisecond))
}

// TestFleetWrongKeyRejected: a fourth node with another key (same fleet
// name) that joins A is never alive in A's view, counts in A's rejected
// messages, and its drain does not change A's answers.
func TestFleetWrongKeyRejected(t *testing.T) {
	be := startBackends(t, fleetBackendIPs...)
	fr := newFleetRun(t, fleetCommon{Members: fleetBackendIPs, Port: be.Port, Key: newFleetKey()})
	nodes := startLoopbackFleet(t, fr, "a", "b", "c")
	a := nodes[0]
	waitAlive(t, fleetJoinWithin, nodes)
	be.waitHits(t, 2, 10*time.Second)
	waitAnswers(t, 5*time.Second, nodes, fleetBackendIPs...)
	rejected0, _ := a.metric(t, "dnslb_fleet_rejected_total", nil)

	other := newFleetKey()
	d := startFleetNode(t, fr, fleetNodeSpec{Name: "intruder", Host: fleetLoopbackHosts[3], Join: []*fleetNode{a}, Key: &other})
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		st := a.mustFleet(t)
		if nd, ok := st.node("intruder"); ok && (nd.State == "alive" || nd.State == "suspect") {
			t.Fatalf("a lists the node with the wrong key as %s: %+v", nd.State, nd)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval over a fixed window
	}
	dnstest.Eventually(t, 3*time.Second, "a's dnslb_fleet_rejected_total growing", func() (bool, string) {
		v, _ := a.metric(t, "dnslb_fleet_rejected_total", nil)
		return v > rejected0, fmt.Sprintf("%v (was %v)", v, rejected0)
	})

	member := fleetBackendIPs[0]
	d.mustCLI(t, "drain", member, "--reason", "intruder")
	waitAnswers(t, 2*time.Second, []*fleetNode{d}, without(fleetBackendIPs, member)...) // it took effect there
	keepsAnswering(t, 1500*time.Millisecond, nodes, member)
	waitAlive(t, time.Second, nodes, "a", "b", "c")
}

// probeCounts counts the requests each backend gets over window.
func probeCounts(be *backendSet, window time.Duration) []int64 {
	base := make([]int64, len(be.Backends))
	for i, b := range be.Backends {
		base[i] = b.Hits()
	}
	time.Sleep(window) // the measurement window itself, not synchronisation
	out := make([]int64, len(be.Backends))
	for i, b := range be.Backends {
		out[i] = b.Hits() - base[i]
	}
	return out
}

func sum64(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// TestFleetProbeSharing: with probes_per_target: 1 on three nodes each
// backend is probed about once per interval fleet-wide; with 0, three
// times as often (measured too, for the comparison). A node stopped, its
// targets go to the others: every backend keeps getting probes.
func TestFleetProbeSharing(t *testing.T) {
	be := startBackends(t, fleetBackendIPs...)
	const window = 3 * time.Second
	single := float64(window) / float64(fleetInterval) // one prober's probes per backend
	settle := func(t *testing.T, nodes []*fleetNode) {
		t.Helper()
		waitAlive(t, fleetJoinWithin, nodes)
		be.waitHits(t, 2, 10*time.Second)
		waitAnswers(t, 5*time.Second, nodes, fleetBackendIPs...)
	}

	var all []int64
	t.Run("every node probes", func(t *testing.T) {
		fr := newFleetRun(t, fleetCommon{Members: fleetBackendIPs, Port: be.Port, Key: newFleetKey(), CheckExtra: ", watch: false"})
		nodes := startLoopbackFleet(t, fr, "a", "b", "c")
		settle(t, nodes)
		all = probeCounts(be, window)
		t.Logf("probes_per_target 0: %v probes per backend in %v (one prober: %.0f)", all, window, single)
	})

	fr := newFleetRun(t, fleetCommon{Members: fleetBackendIPs, Port: be.Port, Key: newFleetKey(), PPT: 1, CheckExtra: ", watch: false"})
	nodes := startLoopbackFleet(t, fr, "a", "b", "c")
	settle(t, nodes)
	// Settled when a's view shows each target observed by one node.
	owners := map[string][]string{}
	dnstest.Eventually(t, 5*time.Second, "each target observed by exactly one node", func() (bool, string) {
		st, _, err := nodes[0].fleet()
		if err != nil {
			return false, err.Error()
		}
		clear(owners)
		ok := true
		for _, ip := range fleetBackendIPs {
			target := net.JoinHostPort(ip, strconv.Itoa(be.Port))
			for _, nd := range st.Nodes {
				if o, found := st.observation(nd.Name, target); found && o.Checked {
					owners[ip] = append(owners[ip], nd.Name)
				}
			}
			ok = ok && len(owners[ip]) == 1
		}
		return ok, fmt.Sprint(owners)
	})
	shared := probeCounts(be, window)
	t.Logf("probes_per_target 1: %v probes per backend in %v (one prober: %.0f); owners %v", shared, window, single, owners)
	for i, n := range shared {
		if float64(n) >= 1.6*single || float64(n) <= 0.5*single {
			t.Errorf("backend %s: %d probes in %v with probes_per_target 1, want about %.0f (0.5×-1.6×)", fleetBackendIPs[i], n, window, single)
		}
		if all != nil && float64(n) >= 0.6*float64(all[i]) {
			t.Errorf("backend %s: %d probes shared vs %d unshared: no reduction", fleetBackendIPs[i], n, all[i])
		}
	}
	if all != nil {
		t.Logf("reduction: %d probes unshared, %d shared (%.2f×)", sum64(all), sum64(shared), float64(sum64(all))/float64(max(sum64(shared), 1)))
	}

	// Stop the node that probes the most targets.
	count := map[string]int{}
	for _, names := range owners {
		for _, o := range names {
			count[o]++
		}
	}
	victim := nodes[0]
	for _, n := range nodes {
		if count[n.Name] > count[victim.Name] {
			victim = n
		}
	}
	var rest []*fleetNode
	var restNames []string
	for _, n := range nodes {
		if n != victim {
			rest = append(rest, n)
			restNames = append(restNames, n.Name)
		}
	}
	victim.Stop()
	stopped := time.Now()
	waitAlive(t, fleetDetectWithin, rest, restNames...)
	// Every backend probed again at about one prober's rate.
	dnstest.Eventually(t, 5*time.Second, "every backend probed after "+victim.Name+" stopped", func() (bool, string) {
		c := probeCounts(be, 2*fleetInterval+fleetInterval/2)
		return !slices.Contains(c, 0), fmt.Sprint(c)
	})
	t.Logf("%s (owner of %d targets) stopped: every backend probed again within %v", victim.Name, count[victim.Name],
		time.Since(stopped).Round(time.Millisecond))
	after := probeCounts(be, window)
	t.Logf("after %s stopped: %v probes per backend in %v", victim.Name, after, window)
	for i, n := range after {
		if float64(n) >= 1.6*single || float64(n) <= 0.5*single {
			t.Errorf("backend %s: %d probes in %v after %s stopped, want about %.0f", fleetBackendIPs[i], n, window, victim.Name, single)
		}
	}
}

// TestFleetLabPlumbing checks the lab itself without a fleet: two plain
// dnslb servers, one in the root namespace and one in the test's
// namespace, probe the same backends; an nftables drop in the namespace
// takes the member out of the namespace's server alone; a gossip cut
// leaves DNS and the admin API reachable; the probe counters count about
// one probe per interval per server.
func TestFleetLabPlumbing(t *testing.T) {
	ns := newFleetNS(t, 3)
	be := startBackends(t, ns.Extra...)
	fr := newFleetRun(t, fleetCommon{Members: ns.Extra, Port: be.Port, NoFleet: true, CheckExtra: ", watch: false"})
	a := startFleetNode(t, fr, fleetNodeSpec{Name: "a", Host: ns.HostIP, AdminHost: "127.0.0.1"})
	c := startFleetNode(t, fr, fleetNodeSpec{Name: "c", Host: ns.NSIP, NS: ns})
	nodes := []*fleetNode{a, c}
	be.waitHits(t, 4, 10*time.Second)
	waitAnswers(t, 5*time.Second, nodes, ns.Extra...)

	counts := probeCounts(be, 2*time.Second)
	want := 2 * float64(2*time.Second) / float64(fleetInterval)
	t.Logf("two servers: %v probes per backend in 2s (expected %.0f)", counts, want)
	for i, n := range counts {
		if float64(n) >= 1.6*want || float64(n) <= 0.5*want {
			t.Errorf("backend %s: %d probes, want about %.0f", ns.Extra[i], n, want)
		}
	}

	cut := ns.Extra[0]
	ns.CutTCP(cut, be.Port)
	took := waitAnswers(t, 3*time.Second, []*fleetNode{c}, ns.Extra[1:]...)
	t.Logf("c's path to %s cut: out of c's answers in %v", cut, took.Round(time.Millisecond))
	keepsAnswering(t, time.Second, []*fleetNode{a}, cut)
	ns.Unblock()
	waitAnswers(t, 3*time.Second, nodes, ns.Extra...)

	// A gossip cut, aimed here at c's DNS port as if it were c's gossip
	// port: that port goes dark both ways, the admin API and a's DNS do
	// not, and removing the rules opens it again.
	_, cPort, _ := net.SplitHostPort(c.DNS)
	_, aPort, _ := net.SplitHostPort(a.DNS)
	cp, _ := strconv.Atoi(cPort)
	ap, _ := strconv.Atoi(aPort)
	ns.CutGossip(cp, ns.HostIP, ap)
	probe := new(dns.Msg)
	probe.SetQuestion("example.test.", dns.TypeSOA)
	wire, _ := probe.Pack()
	for _, netw := range []string{"udp", "tcp"} {
		if r, err := dnstest.Exchange(netw, c.DNS, wire, 300*time.Millisecond); err == nil && r != nil {
			t.Fatalf("c's port %s answered over %s through the cut:\n%s", cPort, netw, ns.Ruleset())
		}
	}
	waitAnswers(t, 2*time.Second, []*fleetNode{a}, ns.Extra...)
	if code, _, err := c.get("/metrics"); err != nil || code != http.StatusOK {
		t.Fatalf("c's admin API through the gossip cut: %d %v", code, err)
	}
	ns.Unblock()
	waitAnswers(t, 2*time.Second, nodes, ns.Extra...)

	// Stop and restart keep the ports; stopping a backend takes it out.
	c.Stop()
	c.Restart()
	waitAnswers(t, 5*time.Second, nodes, ns.Extra...)
	be.get(t, cut).Stop()
	waitAnswers(t, 3*time.Second, nodes, ns.Extra[1:]...)
}
