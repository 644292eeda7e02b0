package fleet

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// retention is how long a lifted or expired override is kept after it
// stopped mattering. It has to outlast any partition a node may come back
// from with the old override, or that override would return.
const retention = 7 * 24 * time.Hour

// leaveWait bounds how long Close waits for its goodbyes and for
// memberlist's leave broadcast: a node being stopped should not hang.
const leaveWait = time.Second

// Node states, as Node.State and Stats.Members name them.
const (
	stateAlive   = "alive"
	stateSuspect = "suspect"
	stateDead    = "dead"
	stateLeft    = "left"
)

// Fleet is this node's membership of a fleet. Create with New, Start to
// join, Close to leave. Its methods are safe for concurrent use, also
// after Close (they then report the last state known and send nothing).
type Fleet struct {
	cfg     Config
	name    string
	now     func() time.Time
	timing  Timing
	log     zerolog.Logger
	ml      *memberlist.Memberlist
	addr    string
	changes chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	started  bool
	closing  bool
	hlc      int64 // highest stamp wall seen or made
	ovs      map[string]Override
	inc      int64  // this incarnation's start, orders observations across restarts
	seq      uint64 // this incarnation's last observation or meta change
	obs      map[string]Observation
	obsVer   version
	obsSet   bool
	meta     Meta
	metaVer  version
	metaSet  bool
	nodes    map[string]*peer // the others, by name
	seenPeer bool
	out      map[string]*outbox // what is still to send, by peer
	msgs     map[[2]string]uint64
	rejected map[string]uint64
}

// peer is what this node knows of another node.
type peer struct {
	name string
	addr net.IP
	port uint16
	// known: memberlist has told about it. A message can come before
	// the join event; until the event its data is kept but not counted.
	known       bool
	state       string
	bye         bool // it said it is leaving
	lastContact time.Time
	meta        Meta
	metaVer     version
	metaSet     bool
	obs         map[string]Observation
	obsVer      version
}

func (p *peer) live() bool {
	return p.known && (p.state == stateAlive || p.state == stateSuspect)
}

func (p *peer) address() string {
	if p.addr == nil {
		return ""
	}
	return net.JoinHostPort(p.addr.String(), strconv.Itoa(int(p.port)))
}

// withDefaults fills the zero fields of t from DefaultTiming.
func (t Timing) withDefaults() Timing {
	d := DefaultTiming
	if t.ProbeInterval > 0 {
		d.ProbeInterval = t.ProbeInterval
	}
	if t.ProbeTimeout > 0 {
		d.ProbeTimeout = t.ProbeTimeout
	}
	if t.SuspicionMult > 0 {
		d.SuspicionMult = t.SuspicionMult
	}
	if t.GossipInterval > 0 {
		d.GossipInterval = t.GossipInterval
	}
	if t.PushPullInterval > 0 {
		d.PushPullInterval = t.PushPullInterval
	}
	if t.RetryJoin > 0 {
		d.RetryJoin = t.RetryJoin
	}
	return d
}

// splitAddr parses host:port where host is an IP address (memberlist
// binds and advertises addresses, not names); an empty host is "".
func splitAddr(what, s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("fleet: %s %q: %w", what, s, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("fleet: %s %q: bad port: %w", what, s, err)
	}
	if host != "" && net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("fleet: %s %q: host must be an IP address", what, s)
	}
	return host, int(port), nil
}

// New validates cfg and creates the node, listening on Bind; it does not
// join yet.
func New(cfg Config) (*Fleet, error) {
	if cfg.Cluster == "" {
		return nil, errors.New("fleet: Cluster is empty")
	}
	label := "dnslb/" + cfg.Cluster
	if len(label) > memberlist.LabelMaxSize {
		return nil, fmt.Errorf("fleet: Cluster %q is too long (at most %d bytes)", cfg.Cluster, memberlist.LabelMaxSize-len("dnslb/"))
	}
	var keys [][]byte
	for i, k := range cfg.Keys {
		switch len(k) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("fleet: key %d is %d bytes, want 16, 24 or 32", i+1, len(k))
		}
		keys = append(keys, slices.Clone(k))
	}
	name := cfg.NodeName
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("fleet: no NodeName and no host name: %w", err)
		}
		name = h
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	timing := cfg.Timing.withDefaults()

	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	mc.Label = label
	mc.ProbeInterval = timing.ProbeInterval
	mc.ProbeTimeout = timing.ProbeTimeout
	mc.SuspicionMult = timing.SuspicionMult
	mc.GossipInterval = timing.GossipInterval
	mc.PushPullInterval = timing.PushPullInterval
	// A node cut off from every other has no one to confirm its
	// suspicions, and memberlist then waits the longest suspicion time:
	// twice the shortest, not six times, so that it knows it is isolated
	// within a few seconds.
	mc.SuspicionMaxTimeoutMult = 2
	// A join or a push-pull with a node that drops packets gives up
	// soon; the background join tries again.
	mc.TCPTimeout = 2 * time.Second
	if cfg.Transport == nil || cfg.Bind != "" {
		host, port, err := splitAddr("Bind", cfg.Bind)
		if err != nil {
			return nil, err
		}
		if host == "" {
			host = "0.0.0.0"
		}
		mc.BindAddr, mc.BindPort, mc.AdvertisePort = host, port, port
	}
	if cfg.Advertise != "" {
		host, port, err := splitAddr("Advertise", cfg.Advertise)
		if err != nil {
			return nil, err
		}
		mc.AdvertiseAddr = host
		if port != 0 {
			mc.AdvertisePort = port
		}
	}
	if len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("fleet: keys: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	}

	f := &Fleet{
		cfg:     cfg,
		name:    name,
		now:     now,
		timing:  timing,
		log:     cfg.Log,
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}),
		ovs:     map[string]Override{},
		// The real clock, not cfg.Now: a restart must order after the
		// previous run even under a test's frozen clock.
		inc:      time.Now().UnixNano(),
		nodes:    map[string]*peer{},
		out:      map[string]*outbox{},
		msgs:     map[[2]string]uint64{},
		rejected: map[string]uint64{},
	}
	mc.Logger = log.New(logWriter{f}, "", 0)
	d := &delegate{f}
	mc.Delegate = d
	mc.Events = d
	mc.Ping = d
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("fleet: start gossip on %q: %w", cfg.Bind, err)
	}
	// Under the lock: a node may join, and a drain start, before Create
	// has returned.
	f.mu.Lock()
	f.ml = ml
	f.mu.Unlock()
	self := ml.LocalNode()
	f.addr = net.JoinHostPort(self.Addr.String(), strconv.Itoa(int(self.Port)))
	return f, nil
}

// Name is this node's name in the fleet.
func (f *Fleet) Name() string { return f.name }

// Addr is the host:port the other nodes reach this node at (with Bind
// port 0, the port picked), what their Join lists.
func (f *Fleet) Addr() string { return f.addr }

// Restore loads overrides kept across a restart (before Start). They are
// merged last-writer-wins with what the node already has, and this
// node's clock is raised above them so that its next change wins.
func (f *Fleet) Restore(ovs []Override) {
	f.mu.Lock()
	var changed []string
	for _, o := range ovs {
		if f.mergeLocked(o) {
			changed = append(changed, o.Member)
		}
	}
	f.sendOverridesLocked("", changed)
	f.mu.Unlock()
	if len(changed) > 0 {
		f.poke()
	}
}

// Start joins the fleet in the background and keeps this node in it: it
// tries the seeds until one answers, and later, every Timing.RetryJoin,
// the nodes it has seen fail (not those that left) and, while it is
// isolated, the seeds again. memberlist itself never rejoins a node it
// has declared dead, so without this a partition that heals would leave
// both sides apart for good. Start does not wait for the join: serving
// must not wait on a seed that drops packets. ctx ends the retries; the
// node stays in the fleet until Close.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closing:
		return errors.New("fleet: Start after Close")
	case f.started:
		return errors.New("fleet: started twice")
	}
	f.started = true
	f.wg.Add(1)
	go f.stayJoined(ctx)
	return nil
}

// reconnectEvery is how many RetryJoin ticks pass between attempts to
// reach a failed node while the fleet is otherwise whole.
const reconnectEvery = 5

func (f *Fleet) stayJoined(ctx context.Context) {
	defer f.wg.Done()
	seeds := slices.Clone(f.cfg.Join)
	joined := len(seeds) == 0
	if !joined {
		joined = f.join(seeds, true)
	}
	t := time.NewTicker(f.timing.RetryJoin)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-f.done:
			return
		case <-t.C:
		}
		if !joined {
			// Another node may have found this one meanwhile: then
			// there is a fleet to be in already.
			joined = f.ml.NumMembers() > 1 || f.join(seeds, false)
			continue
		}
		isolated := f.Isolated()
		if !isolated && tick%reconnectEvery != 0 {
			continue
		}
		targets := f.failedAddrs()
		if isolated {
			targets = append(targets, seeds...)
		}
		if len(targets) > 0 {
			f.join(targets, false)
		}
	}
}

// join tries addrs and reports whether one answered.
func (f *Fleet) join(addrs []string, first bool) bool {
	n, err := f.ml.Join(addrs)
	switch {
	case n > 0:
		f.log.Info().Int("answered", n).Strs("tried", addrs).Msg("fleet joined")
		return true
	case first:
		f.log.Warn().Err(err).Strs("join", addrs).Dur("retry", f.timing.RetryJoin).Msg("fleet: no seed answered; retrying in the background")
	default:
		f.log.Debug().Err(err).Strs("tried", addrs).Msg("fleet: no node answered")
	}
	return false
}

// failedAddrs are the addresses of the nodes memberlist declared dead,
// without a goodbye: a partition or a crash, from which they may be back.
func (f *Fleet) failedAddrs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.nodes {
		if p.known && p.state == stateDead && !p.bye {
			if a := p.address(); a != "" {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Close leaves the fleet, stops memberlist and waits for its goroutines.
// It tells the live nodes first, so that they stop counting this node's
// observations at once rather than when they find it dead. Calling it
// again returns the first call's result.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() { f.closeErr = f.close() })
	return f.closeErr
}

func (f *Fleet) close() error {
	f.mu.Lock()
	f.closing = true
	var to []*memberlist.Node
	for _, p := range f.nodes {
		if p.live() {
			to = append(to, &memberlist.Node{Name: p.name, Addr: p.addr, Port: p.port})
		}
	}
	bye := f.encodeLocked(&message{Type: typeLeave})
	f.mu.Unlock()
	close(f.done)

	var byes sync.WaitGroup
	for _, n := range to {
		byes.Add(1)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer byes.Done()
			if err := f.ml.SendReliable(n, bye); err != nil {
				f.log.Debug().Err(err).Str("node", n.Name).Msg("fleet: goodbye not sent")
				return
			}
			f.count("out", typeLeave)
		}()
	}
	sent := make(chan struct{})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		byes.Wait()
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(leaveWait):
	}

	if err := f.ml.Leave(leaveWait); err != nil {
		// The others find this node dead instead: slower, not wrong.
		f.log.Warn().Err(err).Msg("fleet: leave not broadcast")
	}
	err := f.ml.Shutdown()
	f.wg.Wait()
	if err != nil {
		return fmt.Errorf("fleet: shutdown: %w", err)
	}
	return nil
}

// poke signals Changes without blocking: one pending signal is enough,
// the consumer reads the whole state.
func (f *Fleet) poke() {
	select {
	case f.changes <- struct{}{}:
	default:
	}
}

// stampLocked returns the next stamp of this node: above its clock and
// above every stamp it has seen, so that a change made after seeing
// another wins over it even when this node's clock is behind.
func (f *Fleet) stampLocked() Stamp {
	wall := f.now().UnixNano()
	if wall <= f.hlc {
		wall = f.hlc + 1
	}
	f.hlc = wall
	return Stamp{Wall: wall, Node: f.name}
}

// Stamped returns o stamped as this node's next change (and Since set to
// now if zero) without storing or sending it, so that the caller can
// persist the change before making it with SetOverride.
func (f *Fleet) Stamped(o Override) Override {
	f.mu.Lock()
	defer f.mu.Unlock()
	o.Stamp = f.stampLocked()
	if o.Since.IsZero() {
		o.Since = f.now()
	}
	return o
}

// SetOverride stamps o (its Stamp is set here), stores it and sends it to
// every live node. It returns the stamped override. An o that already
// carries a stamp of this node (from Stamped) keeps it: the caller may
// have persisted it. Since is set to now if zero.
func (f *Fleet) SetOverride(o Override) Override {
	f.mu.Lock()
	if o.Stamp.Node != f.name || o.Stamp.Wall == 0 {
		o.Stamp = f.stampLocked()
	} else if o.Stamp.Wall > f.hlc {
		f.hlc = o.Stamp.Wall
	}
	if o.Since.IsZero() {
		o.Since = f.now()
	}
	if f.mergeLocked(o) {
		f.sendOverridesLocked("", []string{o.Member})
	}
	f.mu.Unlock()
	f.poke()
	return o
}

// collectable reports whether o has not mattered for longer than
// retention: a tombstone that old, or an override expired that long ago.
func collectable(o Override, now time.Time) bool {
	cut := now.Add(-retention)
	if o.Mode == "" {
		return o.Stamp.Wall < cut.UnixNano()
	}
	return !o.Until.IsZero() && o.Until.Before(cut)
}

// mergeLocked takes o into the store if it is newer than the stored
// override of its member (last writer wins) and reports whether it did.
// Every stamp seen raises the clock, even of an override not taken.
func (f *Fleet) mergeLocked(o Override) bool {
	if o.Stamp.Wall > f.hlc {
		f.hlc = o.Stamp.Wall
	}
	if collectable(o, f.now()) {
		return false
	}
	if cur, ok := f.ovs[o.Member]; ok && !cur.Stamp.Less(o.Stamp) {
		return false
	}
	f.ovs[o.Member] = o
	return true
}

// sortedOverridesLocked collects the garbage and returns the stored
// overrides that keep(o), by member.
func (f *Fleet) sortedOverridesLocked(keep func(Override) bool) []Override {
	now := f.now()
	out := []Override{}
	for m, o := range f.ovs {
		if collectable(o, now) {
			delete(f.ovs, m)
			continue
		}
		if keep(o) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b Override) int { return strings.Compare(a.Member, b.Member) })
	return out
}

// Overrides returns the overrides in force now: not lifted, not expired,
// by member. An override expiring does not signal Changes: a consumer
// that cares about Until sets its own timer.
func (f *Fleet) Overrides() []Override {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	return f.sortedOverridesLocked(func(o Override) bool {
		return o.Mode != "" && (o.Until.IsZero() || o.Until.After(now))
	})
}

// AllOverrides returns every override known, tombstones included, for the
// state file, by member. Tombstones and expired overrides are dropped
// once they are older than a week.
func (f *Fleet) AllOverrides() []Override {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sortedOverridesLocked(func(Override) bool { return true })
}

func obsEqual(a, b map[string]Observation) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x.Up != y.Up || x.Checked != y.Checked || !x.Since.Equal(y.Since) {
			return false
		}
	}
	return true
}

func metaEqual(a, b Meta) bool {
	if a.ConfigHash != b.ConfigHash || len(a.Serials) != len(b.Serials) {
		return false
	}
	for k, x := range a.Serials {
		if y, ok := b.Serials[k]; !ok || x != y {
			return false
		}
	}
	return true
}

func copyObs(m map[string]Observation) map[string]Observation {
	out := make(map[string]Observation, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyMeta(m Meta) Meta {
	if m.Serials != nil {
		s := make(map[string]uint32, len(m.Serials))
		for k, v := range m.Serials {
			s[k] = v
		}
		m.Serials = s
	}
	return m
}

// nextVersionLocked orders this node's observation and meta changes.
func (f *Fleet) nextVersionLocked() version {
	f.seq++
	return version{Inc: f.inc, Seq: f.seq}
}

// Publish sets this node's observations (the full set, by target key)
// and sends them to the other nodes if they changed.
func (f *Fleet) Publish(obs map[string]Observation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.obsSet && obsEqual(f.obs, obs) {
		return
	}
	f.obs = copyObs(obs)
	f.obsVer = f.nextVersionLocked()
	f.obsSet = true
	f.enqueueAllLocked("", func(b *outbox) { b.obs = true })
}

// SetMeta sets what this node says about its config, and sends it to the
// other nodes if it changed.
func (f *Fleet) SetMeta(m Meta) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.metaSet && metaEqual(f.meta, m) {
		return
	}
	f.meta = copyMeta(m)
	f.metaVer = f.nextVersionLocked()
	f.metaSet = true
	f.enqueueAllLocked("", func(b *outbox) { b.meta = true })
}

// Nodes returns every known node, this one first, then by name: also the
// dead and left ones, with what they last said. Memberlist v0.7.0 does
// not expose its suspicion of a node, so a suspect node shows "alive".
func (f *Fleet) Nodes() []Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Node{{
		Name: f.name, Addr: f.addr, State: stateAlive, Self: true, LastContact: f.now(),
		Meta: copyMeta(f.meta), Observations: copyObs(f.obs),
	}}
	for _, name := range f.sortedPeersLocked(false) {
		p := f.nodes[name]
		out = append(out, Node{
			Name: p.name, Addr: p.address(), State: p.state, LastContact: p.lastContact,
			Meta: copyMeta(p.meta), Observations: copyObs(p.obs),
		})
	}
	return out
}

// sortedPeersLocked returns the names of the known peers (only the live
// ones if live), sorted.
func (f *Fleet) sortedPeersLocked(live bool) []string {
	var names []string
	for name, p := range f.nodes {
		if p.known && (!live || p.live()) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Alive returns the names of the live nodes (alive or suspect), this one
// included, sorted.
func (f *Fleet) Alive() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.aliveLocked()
}

func (f *Fleet) aliveLocked() []string {
	names := append(f.sortedPeersLocked(true), f.name)
	slices.Sort(names)
	return names
}

// Isolated reports whether this node is cut off: it has seeds or has
// seen peers, and no other node is alive.
func (f *Fleet) Isolated() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sortedPeersLocked(true)) == 0 && (len(f.cfg.Join) > 0 || f.seenPeer)
}

// PeerObservations returns the observations of key by the live nodes
// other than this one, by node name.
func (f *Fleet) PeerObservations(key string) map[string]Observation {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]Observation{}
	for name, p := range f.nodes {
		if !p.live() {
			continue
		}
		if o, ok := p.obs[key]; ok {
			out[name] = o
		}
	}
	return out
}

// Owners returns the k live nodes that probe key, by rendezvous hashing
// over Alive; k <= 0 or k >= len(Alive) is every live node. Every node
// that sees the same live nodes computes the same owners.
func (f *Fleet) Owners(key string, k int) []string {
	return owners(f.Alive(), key, k)
}

// Owns reports whether this node is one of key's k owners.
func (f *Fleet) Owns(key string, k int) bool {
	return slices.Contains(f.Owners(key, k), f.name)
}

// Divergences lists the live nodes whose config or zone serials differ
// from this node's, by node, what and zone. A node that has not said
// yet (or this node before SetMeta) is not divergent; a zone only one
// side serves is not either: the config hash tells that.
func (f *Fleet) Divergences() []Divergence {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.metaSet {
		return nil
	}
	var out []Divergence
	for _, name := range f.sortedPeersLocked(true) {
		p := f.nodes[name]
		if !p.metaSet {
			continue
		}
		if p.meta.ConfigHash != f.meta.ConfigHash {
			out = append(out, Divergence{Node: name, What: "config", Theirs: p.meta.ConfigHash, Ours: f.meta.ConfigHash})
		}
		var zones []string
		for z, s := range f.meta.Serials {
			if t, ok := p.meta.Serials[z]; ok && t != s {
				zones = append(zones, z)
			}
		}
		slices.Sort(zones)
		for _, z := range zones {
			out = append(out, Divergence{Node: name, What: "serial", Zone: z,
				Theirs: strconv.FormatUint(uint64(p.meta.Serials[z]), 10),
				Ours:   strconv.FormatUint(uint64(f.meta.Serials[z]), 10)})
		}
	}
	return out
}

// Stats returns the counters: nodes by state (this one included) and
// copies of the message and rejection counts.
func (f *Fleet) Stats() Stats {
	st := Stats{Members: map[string]int{}, Messages: map[[2]string]uint64{}, Rejected: map[string]uint64{}}
	for _, n := range f.Nodes() {
		st.Members[n.State]++
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range f.msgs {
		st.Messages[k] = v
	}
	for k, v := range f.rejected {
		st.Rejected[k] = v
	}
	return st
}

func (f *Fleet) count(dir, typ string) {
	f.mu.Lock()
	f.msgs[[2]string{dir, typ}]++
	f.mu.Unlock()
}

func (f *Fleet) reject(reason string) {
	f.mu.Lock()
	f.rejected[reason]++
	f.mu.Unlock()
}

// Changes is poked (buffer one, never blocks the sender) whenever the
// overrides, a peer's observations or meta, or the membership change. It
// is never closed: a consumer stops on its own context.
func (f *Fleet) Changes() <-chan struct{} { return f.changes }

// Decide is the fleet's state of one target under policy p, from the
// checked observations of the nodes that observe it (unchecked ones are
// ignored); with none it is prev. Under Local, several observations are
// decided as under Majority: the caller passes only its own when it
// probes the target itself. An unknown policy is Majority.
func Decide(p HealthPolicy, obs []Observation, prev bool) bool {
	var up, down int
	for _, o := range obs {
		switch {
		case !o.Checked:
		case o.Up:
			up++
		default:
			down++
		}
	}
	n := up + down
	switch {
	case n == 0:
		return prev
	case p == AnyUp:
		return up > 0
	case p == Local && n == 1:
		return up == 1
	default:
		return down*2 <= n
	}
}
