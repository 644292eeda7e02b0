package vip

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// recorder writes an executable script name in dir that appends one line
// to log per run: its name, each argument in brackets, and after a bar the
// DNSLB_VIP_ environment (instance old>new priority interface/vrid).
func recorder(t *testing.T, dir, name, log string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	script := `#!/bin/sh
{
  printf '%s' '` + name + `'
  for a in "$@"; do printf ' [%s]' "$a"; done
  printf ' | %s %s>%s %s %s/%s\n' "$DNSLB_VIP_INSTANCE" "$DNSLB_VIP_OLD_STATE" "$DNSLB_VIP_STATE" \
    "$DNSLB_VIP_PRIORITY" "$DNSLB_VIP_INTERFACE" "$DNSLB_VIP_VRID"
} >> '` + log + `'
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func readLog(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// hookSpec builds an instance spec through the config, as the agent does:
// a 10ms advert interval, one weight-0 track and one weight -20 track
// (their probes are the test's).
func hookSpec(t *testing.T, ic InstanceConfig) instanceSpec {
	t.Helper()
	ic.Name, ic.Interface, ic.VRID, ic.Priority = "front", "eth0", 51, 100
	ic.AdvertInterval = 10 * time.Millisecond
	ic.Addresses = []string{"192.0.2.100/24"}
	ic.Track = []TrackConfig{
		{Interface: "eth0", Weight: 0, Interval: 10 * time.Millisecond},
		{Interface: "eth1", Weight: -20, Interval: 10 * time.Millisecond},
	}
	specs, err := Config{Instances: []InstanceConfig{ic}}.specs()
	if err != nil {
		t.Fatal(err)
	}
	return specs[0]
}

// flag is a probe that fails while down is set.
func flag(down *atomic.Bool) Probe {
	return ProbeFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("down")
		}
		return nil
	})
}

// advert delivers an advert for VRID 51 from hiAddr to n. interval is in
// centiseconds; the maximum keeps a backup from timing out the sender.
func advert(t *testing.T, n *fakeNet, prio uint8, interval uint16) {
	t.Helper()
	b, err := Advert{VRID: 51, Priority: prio, Interval: interval, Addrs: []netip.Addr{vip4}}.Marshal(hiAddr, GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	n.in <- Packet{Src: hiAddr, Dst: GroupIPv4, TTL: 255, Data: b}
}

func waitState(t *testing.T, r *running, want string) {
	t.Helper()
	dnstest.Until(t, 10*time.Second, "state "+want, func() bool { return r.state() == want })
}

// Every transition runs the per-state hook (no arguments) and then notify
// with keepalived's INSTANCE NAME STATE PRIORITY after its own arguments;
// both get the transition in the environment. STOP comes at shutdown.
func TestNotifyHooksAsKeepalived(t *testing.T) {
	env := func(from, to, prio string) string { return " | front " + from + ">" + to + " " + prio + " eth0/51" }
	hooks := func(from, to, prio string) []string {
		return []string{
			"notify_" + strings.ToLower(to) + env(from, to, prio),
			"notify [a b] [c] [INSTANCE] [front] [" + to + "] [" + prio + "]" + env(from, to, prio),
		}
	}
	cat := func(ls ...[]string) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l...)
		}
		return out
	}
	toMaster := cat(hooks("INIT", "BACKUP", "100"), hooks("BACKUP", "MASTER", "100"))
	tests := []struct {
		name  string
		drive func(t *testing.T, r *running, n *fakeNet, fault, lower *atomic.Bool)
		want  []string
	}{
		{
			name:  "BACKUP to MASTER, STOP",
			drive: func(*testing.T, *running, *fakeNet, *atomic.Bool, *atomic.Bool) {},
			want:  cat(toMaster, hooks("MASTER", "STOP", "100")),
		},
		{
			name: "MASTER to BACKUP on a higher priority",
			drive: func(t *testing.T, r *running, n *fakeNet, _, _ *atomic.Bool) {
				advert(t, n, 200, MaxAdvertCentis)
				waitState(t, r, "BACKUP")
			},
			want: cat(toMaster, hooks("MASTER", "BACKUP", "100"), hooks("BACKUP", "STOP", "100")),
		},
		{
			name: "FAULT when a weight-0 track fails",
			drive: func(t *testing.T, r *running, _ *fakeNet, fault, _ *atomic.Bool) {
				fault.Store(true)
				waitState(t, r, "FAULT")
			},
			want: cat(toMaster, hooks("MASTER", "FAULT", "100"), hooks("FAULT", "STOP", "100")),
		},
		{
			name: "the priority in force after tracking",
			drive: func(t *testing.T, r *running, n *fakeNet, _, lower *atomic.Bool) {
				lower.Store(true) // 100-20: still master alone, no transition
				dnstest.Until(t, 10*time.Second, "priority 80", func() bool { return r.in.Status().Priority == 80 })
				advert(t, n, 90, MaxAdvertCentis)
				waitState(t, r, "BACKUP")
			},
			want: cat(toMaster, hooks("MASTER", "BACKUP", "80"), hooks("BACKUP", "STOP", "80")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "log")
			spec := hookSpec(t, InstanceConfig{
				Notify:       recorder(t, dir, "notify", log) + ` 'a b' "c"`,
				NotifyMaster: recorder(t, dir, "notify_master", log),
				NotifyBackup: recorder(t, dir, "notify_backup", log),
				NotifyFault:  recorder(t, dir, "notify_fault", log),
				NotifyStop:   recorder(t, dir, "notify_stop", log),
			})
			n := (&fakeSwitch{}).attach("192.0.2.11")
			var fault, lower atomic.Bool
			r := start(t, spec, n, flag(&fault), flag(&lower))
			waitState(t, r, "MASTER")
			tt.drive(t, r, n, &fault, &lower)
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			// stop waits for the hooks: the log is complete.
			if got := readLog(t, log); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("hooks ran:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// A hook that blocks neither holds up the state machine nor lets later
// transitions overtake it: they run after it, in order.
func TestNotifySlowHookKeepsOrder(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	gate := filepath.Join(dir, "gate")
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}
	slow := filepath.Join(dir, "slow-master")
	script := "#!/bin/sh\necho \"master $DNSLB_VIP_OLD_STATE begins\" >> '" + log + "'\nread x < '" + gate + "'\necho \"master $DNSLB_VIP_OLD_STATE ends\" >> '" + log + "'\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := hookSpec(t, InstanceConfig{NotifyMaster: slow, Notify: recorder(t, dir, "notify", log)})
	n := (&fakeSwitch{}).attach("192.0.2.11")
	var never atomic.Bool
	r := start(t, spec, n, flag(&never), flag(&never))
	began := func(k int) func() bool {
		return func() bool { return strings.Count(strings.Join(readLog(t, log), "\n"), "begins") == k }
	}
	waitState(t, r, "MASTER")
	dnstest.Until(t, 10*time.Second, "the master hook running", began(1))

	// While the hook blocks, the machine goes on: BACKUP, MASTER again, STOP.
	advert(t, n, 200, MaxAdvertCentis)
	waitState(t, r, "BACKUP")
	advert(t, n, 200, 1) // a 10ms interval: its Master_Down_Interval passes at once
	waitState(t, r, "MASTER")
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	waitState(t, r, "INIT")
	if got := readLog(t, log); len(got) != 2 || got[1] != "master BACKUP begins" {
		t.Fatalf("hooks ran past the blocked one: %q", got)
	}

	release := func() {
		dnstest.Until(t, 10*time.Second, "the hook reading the gate", func() bool {
			f, err := os.OpenFile(gate, os.O_WRONLY|syscall.O_NONBLOCK, 0) // ENXIO until a reader opens it
			if err != nil {
				return false
			}
			defer f.Close()
			_, err = f.Write([]byte("go\n"))
			return err == nil
		})
	}
	release()
	dnstest.Until(t, 10*time.Second, "the second master hook running", began(2))
	release()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	env := func(from, to string) string { return " | front " + from + ">" + to + " 100 eth0/51" }
	want := []string{
		"notify [INSTANCE] [front] [BACKUP] [100]" + env("INIT", "BACKUP"),
		"master BACKUP begins",
		"master BACKUP ends",
		"notify [INSTANCE] [front] [MASTER] [100]" + env("BACKUP", "MASTER"),
		"notify [INSTANCE] [front] [BACKUP] [100]" + env("MASTER", "BACKUP"),
		"master BACKUP begins",
		"master BACKUP ends",
		"notify [INSTANCE] [front] [MASTER] [100]" + env("BACKUP", "MASTER"),
		"notify [INSTANCE] [front] [STOP] [100]" + env("MASTER", "STOP"),
	}
	if got := readLog(t, log); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("hooks ran:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Past notifyQueueMax waiting transitions the oldest is dropped, so the
// last one queued (the state in force) always runs.
func TestNotifyQueueDropsOldest(t *testing.T) {
	q := newNotifyQueue()
	for i := range notifyQueueMax {
		if _, dropped := q.push(notification{prio: uint8(i)}); dropped {
			t.Fatalf("push %d dropped", i)
		}
	}
	old, dropped := q.push(notification{to: StateMaster, prio: 255})
	if !dropped || old.prio != 0 {
		t.Fatalf("full push: dropped %v %+v, want the first", dropped, old)
	}
	q.close()
	var last notification
	n := 0
	for {
		x, ok := q.pop()
		if !ok {
			break
		}
		if n == 0 && x.prio != 1 {
			t.Fatalf("first popped %+v, want prio 1", x)
		}
		last, n = x, n+1
	}
	if n != notifyQueueMax || last.to != StateMaster {
		t.Fatalf("popped %d, last %+v", n, last)
	}
}
