package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dnslb/dnslb/healthcheck"
	"github.com/rs/zerolog"
)

// Packet is a received VRRP message and what the IP layer said about it.
type Packet struct {
	Src, Dst netip.Addr
	TTL      int // TTL / hop limit of the IP packet
	Data     []byte
}

// Net is what an instance needs from the operating system. The Linux
// implementation uses raw sockets, netlink and ARP/NDP; tests use a fake.
type Net interface {
	// Primary is the local address adverts are sent from (the tie-break).
	Primary() netip.Addr
	// Recv blocks for the next packet; it fails once Close was called.
	Recv() (Packet, error)
	// Send sends one VRRP message (already checksummed) to dst.
	Send(b []byte, dst netip.Addr) error
	// AddVIPs configures the virtual addresses; RemoveVIPs removes every copy.
	AddVIPs() error
	RemoveVIPs() error
	// Announce sends one burst of gratuitous ARPs / unsolicited NAs.
	Announce() error
	// Close releases the sockets; it is idempotent.
	Close() error
}

// Probe is one tracked object's check: nil means up.
type Probe interface {
	Check(ctx context.Context) error
}

// ProbeFunc adapts a function to Probe.
type ProbeFunc func(ctx context.Context) error

// Check calls f.
func (f ProbeFunc) Check(ctx context.Context) error { return f(ctx) }

// Status is a snapshot of one instance, for the admin API and logs.
type Status struct {
	Name      string            `json:"name"`
	Interface string            `json:"interface"`
	VRID      uint8             `json:"vrid"`
	State     string            `json:"state"`
	Priority  uint8             `json:"priority"`
	Master    string            `json:"master,omitempty"`
	Since     time.Time         `json:"since"`
	RxAdverts uint64            `json:"rx_adverts"`
	TxAdverts uint64            `json:"tx_adverts"`
	Drops     map[string]uint64 `json:"drops"`
	Tracks    []TrackStatus     `json:"tracks,omitempty"`
}

// TrackStatus is the state of one tracked object.
type TrackStatus struct {
	What   string `json:"what"`
	Up     bool   `json:"up"`
	Weight int    `json:"weight"`
}

// instance runs one Machine: it owns the Net, the trackers and the notifier.
type instance struct {
	spec   instanceSpec
	net    Net
	probes []Probe
	log    zerolog.Logger
	runner *healthcheck.Runner // runs the notify hooks

	m     *Machine
	since time.Time
	up    []bool // per track, owned by the run loop

	rx, tx atomic.Uint64
	drops  [numDropReasons]atomic.Uint64
	status atomic.Pointer[Status]
}

const (
	// notifyTimeout bounds a notify hook's run.
	notifyTimeout = 30 * time.Second
	// notifyStopTimeout bounds a STOP hook's: shutdown waits for it
	// (keepalived gives its stop scripts about a second).
	notifyStopTimeout = 5 * time.Second
	// notifyQueueMax bounds the transitions waiting for a slow hook; past
	// it the oldest waiting one is dropped, so the last run is the state
	// in force.
	notifyQueueMax = 256
)

func newInstance(spec instanceSpec, n Net, probes []Probe, log zerolog.Logger) *instance {
	in := &instance{
		runner: new(healthcheck.Runner),
		spec:   spec,
		net:    n,
		probes: probes,
		log:    log.With().Str("instance", spec.name).Uint8("vrid", spec.vrid).Logger(),
		up:     make([]bool, len(spec.tracks)),
	}
	for i := range in.up {
		in.up[i] = true
	}
	in.m = NewMachine(MachineConfig{
		VRID:         spec.vrid,
		Priority:     spec.priority,
		Interval:     spec.interval,
		Preempt:      spec.preempt,
		PreemptDelay: spec.preemptDelay,
		Primary:      n.Primary(),
		GARPDelay:    spec.garpDelay,
	})
	in.publish()
	return in
}

type trackEvent struct {
	idx int
	up  bool
	err error
}

// run drives the machine until ctx ends, then stops gracefully (priority-0
// advert, addresses removed) and closes the Net. Every goroutine it starts
// has ended when it returns.
func (in *instance) run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer in.net.Close()

	pkts := make(chan Packet, 16)
	tracks := make(chan trackEvent)
	notes := newNotifyQueue()
	loopCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	// recvErr is why the reader stopped the loop; it is written before
	// cancel, and read only after loopCtx is done. It is returned, not
	// logged: the caller says what a failed instance means.
	var recvErr error
	wg.Go(func() {
		defer close(pkts)
		for {
			p, err := in.net.Recv()
			if err != nil {
				if loopCtx.Err() == nil {
					recvErr = err
					cancel()
				}
				return
			}
			select {
			case pkts <- p:
			case <-loopCtx.Done():
				return
			}
		}
	})
	for i, p := range in.probes {
		wg.Go(func() { in.track(loopCtx, i, p, tracks) })
	}
	var nwg sync.WaitGroup
	nwg.Go(func() { in.notifier(notes) })
	defer nwg.Wait()
	defer notes.close() // the notifier runs what is queued (STOP last), then ends

	in.exec(in.m.Start(time.Now()), notes)
	in.log.Info().Str("state", in.m.State().String()).Uint8("priority", in.m.Priority()).
		Dur("advert_interval", in.spec.interval).Str("primary", in.net.Primary().String()).Msg("vip: instance started")

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		in.publish()
		if d := in.m.Deadline(); d.IsZero() {
			timer.Reset(time.Hour)
		} else {
			timer.Reset(time.Until(d))
		}
		select {
		case <-loopCtx.Done():
			in.exec(in.m.Stop(time.Now()), notes)
			in.publish()
			in.log.Info().Msg("vip: instance stopped")
			if ctx.Err() == nil {
				return fmt.Errorf("vip: instance %s: receive: %w", in.spec.name, recvErr)
			}
			return nil
		case <-timer.C:
			in.exec(in.m.Tick(time.Now()), notes)
		case p, ok := <-pkts:
			if !ok {
				continue // the reader ended; loopCtx is cancelled
			}
			in.receive(p, notes)
		case ev := <-tracks:
			in.trackChanged(ev, notes)
		}
	}
}

func (in *instance) receive(p Packet, notes *notifyQueue) {
	if p.Src == in.net.Primary() {
		in.drops[DropOwn].Add(1)
		return
	}
	a, err := Parse(p.Data, p.Src, p.Dst, p.TTL)
	if err == nil && a.VRID != in.spec.vrid {
		err = drop(DropVRID, "VRID %d from %s", a.VRID, p.Src)
	}
	if err == nil && !SameAddrs(a.Addrs, in.spec.advertised) {
		// Another router with our VRID but other addresses is a
		// misconfiguration (or a forgery); obeying it would give up our
		// addresses to a router that does not serve them.
		err = drop(DropAddrList, "addresses %v from %s, ours are %v", a.Addrs, p.Src, in.spec.advertised)
	}
	if err != nil {
		r := ReasonOf(err)
		in.drops[r].Add(1)
		ev := in.log.Warn()
		if r == DropVRID {
			ev = in.log.Debug()
		}
		ev.Err(err).Str("reason", r.String()).Msg("vip: advert dropped")
		return
	}
	in.rx.Add(1)
	if a.Interval != uint16(in.spec.interval/(10*time.Millisecond)) && a.Priority != PriorityStop {
		in.log.Debug().Str("from", p.Src.String()).Dur("interval", a.IntervalDuration()).Msg("vip: advert interval differs from ours; learning it")
	}
	in.exec(in.m.Receive(time.Now(), p.Src, a), notes)
}

// exec performs the machine's actions in order.
func (in *instance) exec(acts []Action, notes *notifyQueue) {
	for _, a := range acts {
		var err error
		switch a.Kind {
		case ActAddVIPs:
			err = in.net.AddVIPs()
		case ActRemoveVIPs:
			err = in.net.RemoveVIPs()
		case ActSendAdvert:
			err = in.sendAdvert(a.Priority)
		case ActSendGARP:
			err = in.net.Announce()
		case ActNotify:
			in.since = time.Now()
			in.log.Info().Str("from", a.From.String()).Str("to", a.To.String()).
				Uint8("priority", in.m.Priority()).Msg("vip: state change")
			if !in.spec.hooks.any() {
				break
			}
			if old, dropped := notes.push(notification{from: a.From, to: a.To, prio: in.m.Priority()}); dropped {
				in.log.Warn().Str("from", old.from.String()).Str("to", old.to.String()).Int("queued", notifyQueueMax).
					Msg("vip: notify hooks too slow; oldest queued transition skipped")
			}
		}
		if err != nil {
			in.log.Error().Err(err).Str("action", a.String()).Msg("vip: action failed")
		}
	}
}

func (in *instance) sendAdvert(prio uint8) error {
	adv := Advert{VRID: in.spec.vrid, Priority: prio, Interval: uint16(in.spec.interval / (10 * time.Millisecond)), Addrs: in.spec.advertised}
	dsts := in.spec.peers
	if len(dsts) == 0 {
		dsts = []netip.Addr{GroupIPv4}
		if !in.spec.is4 {
			dsts = []netip.Addr{GroupIPv6}
		}
	}
	var errs []error
	for _, dst := range dsts {
		b, err := adv.Marshal(in.net.Primary(), dst)
		if err == nil {
			err = in.net.Send(b, dst)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("advert to %s: %w", dst, err))
			continue
		}
		in.tx.Add(1)
	}
	return errors.Join(errs...)
}

// trackChanged recomputes the effective priority and the fault state.
func (in *instance) trackChanged(ev trackEvent, notes *notifyQueue) {
	in.up[ev.idx] = ev.up
	ts := in.spec.tracks[ev.idx]
	l := in.log.Warn()
	if ev.up {
		l = in.log.Info()
	}
	l.Err(ev.err).Str("track", ts.desc).Bool("up", ev.up).Msg("vip: tracked object changed")
	prio, fault := int(in.spec.priority), false
	for i, t := range in.spec.tracks {
		switch {
		case t.weight == 0 && !in.up[i]:
			fault = true
		case t.weight < 0 && !in.up[i], t.weight > 0 && in.up[i]:
			prio += t.weight
		}
	}
	now := time.Now()
	in.exec(in.m.SetPriority(now, prio), notes)
	in.exec(in.m.SetFault(now, fault), notes)
}

// track runs one probe on its schedule and reports changes after rise/fall
// consecutive results. At most one probe is in flight; each has a timeout.
func (in *instance) track(ctx context.Context, idx int, p Probe, out chan<- trackEvent) {
	ts := in.spec.tracks[idx]
	th := healthcheck.Thresholds{Rise: ts.rise, Fall: ts.fall, Up: true}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, ts.timeout)
		err := p.Check(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if th.Record(err == nil) {
			select {
			case out <- trackEvent{idx: idx, up: th.Up, err: err}:
			case <-ctx.Done():
				return
			}
		}
		t.Reset(ts.interval)
	}
}

// notification is one state change for the hooks.
type notification struct {
	from, to State // to is StateInit for the stop at shutdown
	prio     uint8 // the effective priority when it happened
}

// notifyQueue carries the transitions from the run loop to the notifier in
// order, without ever blocking the run loop on a slow hook.
type notifyQueue struct {
	mu      sync.Mutex
	pending []notification
	closed  bool
	wake    chan struct{} // one token: something was pushed, or closed
}

func newNotifyQueue() *notifyQueue { return &notifyQueue{wake: make(chan struct{}, 1)} }

// push queues n. When notifyQueueMax are already waiting, the oldest is
// dropped and returned.
func (q *notifyQueue) push(n notification) (old notification, dropped bool) {
	q.mu.Lock()
	if len(q.pending) >= notifyQueueMax {
		old, dropped = q.pending[0], true
		q.pending = q.pending[1:]
	}
	q.pending = append(q.pending, n)
	q.mu.Unlock()
	q.signal()
	return old, dropped
}

// close makes pop return false once the queue is empty.
func (q *notifyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *notifyQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default: // a token is pending: the notifier will look again
	}
}

// pop waits for the next transition; false once closed and empty.
func (q *notifyQueue) pop() (notification, bool) {
	for {
		q.mu.Lock()
		if len(q.pending) > 0 {
			n := q.pending[0]
			q.pending = q.pending[1:]
			q.mu.Unlock()
			return n, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return notification{}, false
		}
		<-q.wake
	}
}

// notifier runs the hooks of each transition, one at a time and in order,
// so a slow hook delays the later ones but never reorders them.
func (in *instance) notifier(q *notifyQueue) {
	for {
		n, ok := q.pop()
		if !ok {
			return
		}
		in.notify(n)
	}
}

// hookState is the state as keepalived names it to its notify scripts.
func hookState(s State) string {
	if s == StateInit {
		return "STOP" // Init is only entered by stopping
	}
	return s.String()
}

// notify runs n's hooks as keepalived does: the per-state hook with no
// arguments, then the generic one with TYPE NAME STATE PRIORITY; both
// also get the transition in the environment. The runner kills a hook
// with all it started at the timeout.
func (in *instance) notify(n notification) {
	state, prio := hookState(n.to), strconv.Itoa(int(n.prio))
	env := []string{
		"DNSLB_VIP_INSTANCE=" + in.spec.name,
		"DNSLB_VIP_STATE=" + state,
		"DNSLB_VIP_OLD_STATE=" + n.from.String(),
		"DNSLB_VIP_PRIORITY=" + prio,
		"DNSLB_VIP_INTERFACE=" + in.spec.ifname,
		"DNSLB_VIP_VRID=" + strconv.Itoa(int(in.spec.vrid)),
	}
	timeout := notifyTimeout
	if n.to == StateInit {
		timeout = notifyStopTimeout
	}
	run := func(key string, argv []string) {
		if err := in.runner.Run(context.Background(), argv, env, timeout); err != nil {
			in.log.Error().Err(err).Str("hook", key).Str("command", argv[0]).Str("state", state).Msg("vip: notify hook failed")
		}
	}
	if key, argv := in.spec.hooks.forState(n.to); argv != nil {
		run(key, argv)
	}
	if g := in.spec.hooks.notify; g != nil {
		run("notify", append(slices.Clip(g), "INSTANCE", in.spec.name, state, prio))
	}
}

func (in *instance) publish() {
	st := &Status{
		Name:      in.spec.name,
		Interface: in.spec.ifname,
		VRID:      in.spec.vrid,
		State:     in.m.State().String(),
		Priority:  in.m.Priority(),
		Since:     in.since,
		RxAdverts: in.rx.Load(),
		TxAdverts: in.tx.Load(),
		Drops:     map[string]uint64{},
	}
	if a := in.m.Master(); a.IsValid() && in.m.State() != StateInit && in.m.State() != StateFault {
		st.Master = a.String()
	}
	for _, r := range DropReasons() {
		st.Drops[r.String()] = in.drops[r].Load()
	}
	for i, t := range in.spec.tracks {
		st.Tracks = append(st.Tracks, TrackStatus{What: t.desc, Up: in.up[i], Weight: t.weight})
	}
	in.status.Store(st)
}

// Status returns the latest snapshot; safe from any goroutine.
func (in *instance) Status() Status { return *in.status.Load() }
