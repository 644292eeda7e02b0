package vip

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP state (RFC 5798 6.4), plus Fault for tracking failures.
type State int

// States. Init is RFC 5798's Initialize.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ActionKind is what the shell must do for a transition.
type ActionKind int

// Actions, executed by the shell in the order the Machine returns them.
const (
	// ActAddVIPs: configure every virtual address on the interface.
	ActAddVIPs ActionKind = iota
	// ActRemoveVIPs: remove every virtual address (idempotent reconciliation).
	ActRemoveVIPs
	// ActSendAdvert: send one advertisement with Action.Priority.
	ActSendAdvert
	// ActSendGARP: announce the virtual addresses (gratuitous ARP / unsolicited NA).
	ActSendGARP
	// ActNotify: the state changed from Action.From to Action.To.
	ActNotify
)

func (k ActionKind) String() string {
	switch k {
	case ActAddVIPs:
		return "AddVIPs"
	case ActRemoveVIPs:
		return "RemoveVIPs"
	case ActSendAdvert:
		return "SendAdvert"
	case ActSendGARP:
		return "SendGARP"
	case ActNotify:
		return "Notify"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one step the shell performs.
type Action struct {
	Kind     ActionKind
	Priority uint8 // ActSendAdvert
	From, To State // ActNotify
}

func (a Action) String() string {
	switch a.Kind {
	case ActSendAdvert:
		return fmt.Sprintf("SendAdvert(%d)", a.Priority)
	case ActNotify:
		return fmt.Sprintf("Notify(%s->%s)", a.From, a.To)
	}
	return a.Kind.String()
}

// MachineConfig is the protocol configuration of one virtual router.
type MachineConfig struct {
	VRID uint8
	// Priority is the configured priority, 1..255 (255: address owner).
	Priority uint8
	// Interval is the Advertisement_Interval, a multiple of 10 ms.
	Interval time.Duration
	Preempt  bool
	// PreemptDelay: after Start (or leaving Fault), do not preempt a
	// lower-priority master for this long (keepalived's preempt_delay).
	PreemptDelay time.Duration
	// Primary is the local primary address, for the tie-break.
	Primary netip.Addr
	// GARPDelay: when > 0, repeat the announcement this long after becoming
	// master (keepalived's garp_master_delay).
	GARPDelay time.Duration
}

// Machine is the pure VRRPv3 state machine of one virtual router. It does no
// I/O and reads no clock: every method takes the current time and returns the
// actions to perform; Deadline says when Tick must be called next. It is not
// safe for concurrent use.
type Machine struct {
	cfg       MachineConfig
	state     State
	prio      uint8
	fault     bool
	mai       time.Duration // Master_Adver_Interval
	master    netip.Addr    // last master heard from (Backup)
	preemptOK time.Time     // preemption allowed from this time

	masterDownAt time.Time
	advertAt     time.Time
	garpAt       time.Time
}

// NewMachine returns a machine in StateInit.
func NewMachine(cfg MachineConfig) *Machine {
	return &Machine{cfg: cfg, prio: cfg.Priority, mai: cfg.Interval}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority (configured, adjusted by tracking).
func (m *Machine) Priority() uint8 { return m.prio }

// Master returns the address of the master last heard from in Backup.
func (m *Machine) Master() netip.Addr { return m.master }

// MasterAdverInterval returns the interval learned from the master.
func (m *Machine) MasterAdverInterval() time.Duration { return m.mai }

// SkewTime is ((256 - Priority) * Master_Adver_Interval) / 256.
func (m *Machine) SkewTime() time.Duration {
	return time.Duration(256-int(m.prio)) * m.mai / 256
}

// MasterDownInterval is 3 * Master_Adver_Interval + Skew_Time.
func (m *Machine) MasterDownInterval() time.Duration { return 3*m.mai + m.SkewTime() }

// Deadline returns when Tick must next be called; zero when no timer runs.
func (m *Machine) Deadline() time.Time {
	var d time.Time
	for _, t := range []time.Time{m.masterDownAt, m.advertAt, m.garpAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Start is the Startup event: stale virtual addresses are removed first, then
// the owner becomes Master and everybody else Backup (or Fault if tracking
// says so).
func (m *Machine) Start(now time.Time) []Action {
	if m.state != StateInit {
		return nil
	}
	m.preemptOK = now.Add(m.cfg.PreemptDelay)
	acts := []Action{{Kind: ActRemoveVIPs}}
	switch {
	case m.fault:
		return m.toFault(acts)
	case m.prio == PriorityOwner:
		return m.toMaster(now, acts)
	default:
		m.mai = m.cfg.Interval
		return m.toBackup(now, acts)
	}
}

// Stop is the Shutdown event: a master sends a priority-0 advertisement so a
// backup takes over after Skew_Time; the addresses are removed in every state.
func (m *Machine) Stop(now time.Time) []Action {
	var acts []Action
	if m.state == StateMaster {
		acts = append(acts, Action{Kind: ActSendAdvert, Priority: PriorityStop})
	}
	acts = append(acts, Action{Kind: ActRemoveVIPs})
	return m.transition(StateInit, acts)
}

// Receive handles a validated advertisement for this VRID from src.
func (m *Machine) Receive(now time.Time, src netip.Addr, a Advert) []Action {
	if a.VRID != m.cfg.VRID {
		return nil
	}
	switch m.state {
	case StateBackup:
		switch {
		case a.Priority == PriorityStop:
			m.masterDownAt = now.Add(m.SkewTime())
		case !m.preempting(now) || a.Priority >= m.prio:
			m.mai = a.IntervalDuration()
			m.master = src
			m.masterDownAt = now.Add(m.MasterDownInterval())
		default:
			// A lower-priority master: let Master_Down_Timer run out and preempt.
		}
		return nil
	case StateMaster:
		switch {
		case a.Priority == PriorityStop:
			m.advertAt = now.Add(m.cfg.Interval)
			return []Action{{Kind: ActSendAdvert, Priority: m.prio}}
		case a.Priority > m.prio || (a.Priority == m.prio && src.Compare(m.cfg.Primary) > 0):
			m.mai = a.IntervalDuration()
			m.master = src
			return m.toBackup(now, []Action{{Kind: ActRemoveVIPs}})
		default:
			// A lower-priority router thinks it is master (e.g. after a
			// partition): re-assert at once instead of waiting for the timer.
			m.advertAt = now.Add(m.cfg.Interval)
			return []Action{{Kind: ActSendAdvert, Priority: m.prio}, {Kind: ActSendGARP}}
		}
	}
	return nil
}

// Tick runs the timers that are due at now.
func (m *Machine) Tick(now time.Time) []Action {
	var acts []Action
	switch m.state {
	case StateBackup:
		if !m.masterDownAt.IsZero() && !now.Before(m.masterDownAt) {
			return m.toMaster(now, nil)
		}
	case StateMaster:
		if !m.advertAt.IsZero() && !now.Before(m.advertAt) {
			m.advertAt = now.Add(m.cfg.Interval)
			acts = append(acts, Action{Kind: ActSendAdvert, Priority: m.prio})
		}
		if !m.garpAt.IsZero() && !now.Before(m.garpAt) {
			m.garpAt = time.Time{}
			acts = append(acts, Action{Kind: ActSendGARP})
		}
	}
	return acts
}

// SetPriority sets the effective priority from tracking. The owner's 255 is
// never changed; others are clamped to 1..254. A master advertises the new
// priority at once so that a better backup can preempt without delay.
func (m *Machine) SetPriority(now time.Time, p int) []Action {
	if m.cfg.Priority == PriorityOwner {
		return nil
	}
	p = min(max(p, 1), 254)
	if uint8(p) == m.prio {
		return nil
	}
	m.prio = uint8(p)
	if m.state == StateMaster {
		m.advertAt = now.Add(m.cfg.Interval)
		return []Action{{Kind: ActSendAdvert, Priority: m.prio}}
	}
	return nil
}

// SetFault enters or leaves the Fault state (a tracked object with weight 0
// failed). A master leaving for Fault sends a priority-0 advertisement.
func (m *Machine) SetFault(now time.Time, fault bool) []Action {
	if fault == m.fault {
		return nil
	}
	m.fault = fault
	switch {
	case fault && m.state == StateMaster:
		return m.toFault([]Action{{Kind: ActSendAdvert, Priority: PriorityStop}, {Kind: ActRemoveVIPs}})
	case fault && m.state == StateBackup:
		return m.toFault([]Action{{Kind: ActRemoveVIPs}})
	case !fault && m.state == StateFault:
		m.preemptOK = now.Add(m.cfg.PreemptDelay)
		if m.prio == PriorityOwner {
			return m.toMaster(now, nil)
		}
		m.mai = m.cfg.Interval
		return m.toBackup(now, nil)
	}
	return nil
}

func (m *Machine) preempting(now time.Time) bool {
	return m.cfg.Preempt && !now.Before(m.preemptOK)
}

func (m *Machine) toMaster(now time.Time, acts []Action) []Action {
	m.master = m.cfg.Primary
	acts = append(acts,
		Action{Kind: ActAddVIPs},
		Action{Kind: ActSendAdvert, Priority: m.prio},
		Action{Kind: ActSendGARP})
	acts = m.transition(StateMaster, acts)
	m.advertAt = now.Add(m.cfg.Interval)
	if m.cfg.GARPDelay > 0 {
		m.garpAt = now.Add(m.cfg.GARPDelay)
	}
	return acts
}

func (m *Machine) toBackup(now time.Time, acts []Action) []Action {
	acts = m.transition(StateBackup, acts)
	m.masterDownAt = now.Add(m.MasterDownInterval())
	return acts
}

func (m *Machine) toFault(acts []Action) []Action { return m.transition(StateFault, acts) }

// transition clears every timer, switches state and appends the notification.
func (m *Machine) transition(to State, acts []Action) []Action {
	m.masterDownAt, m.advertAt, m.garpAt = time.Time{}, time.Time{}, time.Time{}
	from := m.state
	m.state = to
	if from != to {
		acts = append(acts, Action{Kind: ActNotify, From: from, To: to})
	}
	return acts
}
