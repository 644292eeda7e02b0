package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// Timings at advert_interval 200ms (both sides):
// Master_Down_Interval = 600ms + Skew; Skew(150) = 83ms, Skew(100) = 122ms.
const (
	mdi100 = 722 * time.Millisecond
	settle = 10 * time.Second // generous deadline for anything that should take ~1 s
)

// Two dnslb agents: election, kill -9 of the master (VIP left behind, moved
// by gratuitous ARP), restart (stale copy removed, preempt back), SIGTERM
// (priority 0: takeover within about Skew_Time), crash (link cut + kill -9).
func TestVIPPairFailover(t *testing.T) {
	l := newLab(t)
	mac1, mac2 := l.mac("lb1"), l.mac("lb2")
	notifyLog := filepath.Join(l.dir, "notify.log")
	notify := filepath.Join(l.dir, "notify.sh")
	if err := os.WriteFile(notify, []byte("#!/bin/sh\necho \"$@\" >> "+notifyLog+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lb1 := l.startVIP("lb1", 150, "    notify: "+notify)
	l.startVIP("lb2", 100, "")
	l.waitHolders(t, settle, "lb1")
	ping := l.ping(t)
	ping.waitTTL(t, settle, labTTL1, time.Time{})
	if got := l.clientNeigh(); got != mac1 {
		t.Fatalf("client resolves the VIP to %s, want lb1 %s", got, mac1)
	}
	l.holdersStay(t, time.Second, "lb1") // a stable election, no flapping
	if b, _ := os.ReadFile(notifyLog); string(b) != "INSTANCE front BACKUP 150\nINSTANCE front MASTER 150\n" {
		t.Fatalf("notify log %q", b)
	}

	// kill -9: the agent cannot clean up, the VIP stays on lb1; lb2 becomes
	// master and its gratuitous ARPs move the client although lb1 still
	// answers for the address.
	event := time.Now()
	lb1.kill(syscall.SIGKILL)
	lb1.wait(t, 5*time.Second)
	l.waitHolders(t, settle, "lb1", "lb2")
	ping.waitTTL(t, settle, labTTL2, event)
	dnstest.Until(t, settle, "client ARP entry moved to lb2", func() bool { return l.clientNeigh() == mac2 })
	gap, take := ping.outage(event, labTTL2)
	t.Logf("kill -9 master: client outage %v, first reply from lb2 after %v", gap, take)

	// Restart lb1: it removes the stale copy at start, then preempts back.
	event = time.Now()
	lb1 = l.startVIP("lb1", 150, "")
	l.waitHolders(t, settle, "lb1")
	ping.waitTTL(t, settle, labTTL1, event)
	dnstest.Until(t, settle, "client ARP entry back on lb1", func() bool { return l.clientNeigh() == mac1 })
	if !strings.Contains(lb1.logText(), "virtual address removed") {
		t.Fatal("restarted agent did not log removing the stale VIP")
	}
	gap, take = ping.outage(event, labTTL1)
	t.Logf("preempt back: client outage %v, first reply from lb1 after %v (Master_Down_Interval of lb1 = 683ms)", gap, take)
	l.holdersStay(t, time.Second, "lb1")

	// SIGTERM: priority 0 and the VIP removed before exit; lb2 takes over
	// after its Skew_Time (122ms), well before a Master_Down_Interval.
	event = time.Now()
	lb1.kill(syscall.SIGTERM)
	lb1.wait(t, 5*time.Second)
	if h := l.holders(); len(h) > 0 && h[0] == "lb1" {
		t.Fatalf("lb1 still holds the VIP after a graceful stop: %v", h)
	}
	l.waitHolders(t, settle, "lb2")
	ping.waitTTL(t, settle, labTTL2, event)
	gap, take = ping.outage(event, labTTL2)
	t.Logf("graceful stop (SIGTERM): client outage %v, first reply from lb2 after %v", gap, take)
	if take > mdi100 {
		t.Errorf("graceful takeover took %v: more than lb2's Master_Down_Interval %v, so the priority-0 advert was not used", take, mdi100)
	}

	// Crash: lb1 master again, then its link is cut and it is killed.
	lb1 = l.startVIP("lb1", 150, "")
	l.waitHolders(t, settle, "lb1")
	ping.waitTTL(t, settle, labTTL1, time.Now())
	event = time.Now()
	l.setPort("lb1", false)
	lb1.kill(syscall.SIGKILL)
	ping.waitTTL(t, settle, labTTL2, event)
	gap, take = ping.outage(event, labTTL2)
	t.Logf("crash (link cut + kill -9): client outage %v, first reply from lb2 after %v (Master_Down_Interval of lb2 = 722ms)", gap, take)
	l.setPort("lb1", true)
}

// One keepalived notify script serves both daemons: dnslb calls notify with
// the arguments keepalived does (its own, then INSTANCE NAME STATE
// PRIORITY), runs notify_master and the others first, and STOP at shutdown.
func TestVIPNotifyLikeKeepalived(t *testing.T) {
	l := newLab(t)
	// The script's first argument names its log; the rest is logged.
	script := filepath.Join(l.dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nlog=\""+l.dir+"/$1.log\"\nshift\necho \"$*\" >> \"$log\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	logOf := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(l.dir, name+".log"))
		return string(b)
	}
	hooks := "    notify: " + script + " dnslb"
	for _, h := range []string{"notify_master", "notify_backup", "notify_fault", "notify_stop"} {
		hooks += fmt.Sprintf("\n    %s: \"%s dnslb %s\"", h, script, h)
	}
	lb1 := l.startVIP("lb1", 150, hooks)
	l.waitHolders(t, settle, "lb1")
	ka := l.startKeepalivedVIP("lb2", 100, "0.2", labVIP, "    notify \""+script+" keepalived\"")
	dnstest.Until(t, settle, "the holder's hooks recording MASTER", func() bool {
		return logOf("dnslb") == "notify_backup\nINSTANCE front BACKUP 150\nnotify_master\nINSTANCE front MASTER 150\n"
	})
	dnstest.Until(t, settle, "keepalived's notify recording BACKUP", func() bool {
		return strings.Contains(logOf("keepalived"), "INSTANCE VI_1 BACKUP 100\n")
	})

	lb1.kill(syscall.SIGTERM)
	lb1.wait(t, 10*time.Second) // the STOP hooks have run
	if got, want := logOf("dnslb"), "notify_backup\nINSTANCE front BACKUP 150\nnotify_master\nINSTANCE front MASTER 150\nnotify_stop\nINSTANCE front STOP 150\n"; got != want {
		t.Fatalf("dnslb's hooks ran:\n%s\nwant:\n%s", got, want)
	}
	l.waitHolders(t, settle, "lb2")
	dnstest.Until(t, settle, "keepalived's notify recording MASTER", func() bool {
		return strings.Contains(logOf("keepalived"), "INSTANCE VI_1 BACKUP 100\nINSTANCE VI_1 MASTER 100\n")
	})
	ka.kill(syscall.SIGTERM)
	ka.wait(t, 10*time.Second)
	if got := logOf("keepalived"); !strings.HasSuffix(got, "INSTANCE VI_1 MASTER 100\nINSTANCE VI_1 STOP 100\n") {
		t.Fatalf("keepalived's notify at stop: %q", got)
	}
}

// Preemption off: a returning higher-priority host stays backup. It also
// removes a stale copy of the VIP it finds at start.
func TestVIPNoPreempt(t *testing.T) {
	l := newLab(t)
	l.startVIP("lb2", 100, "")
	l.waitHolders(t, settle, "lb2")
	l.must("-n", l.hosts["lb1"], "addr", "add", labVIP+"/24", "dev", labIface) // left over by a crash
	l.waitHolders(t, time.Second, "lb1", "lb2")
	l.startVIP("lb1", 150, "    preempt: false")
	l.waitHolders(t, settle, "lb2")
	l.holdersStay(t, 3*time.Second, "lb2") // > 4 Master_Down_Intervals
}

// A tracked object (exec) failing on the master lowers its priority below
// the backup's: the VIP moves, and comes back when it recovers.
func TestVIPTrackExec(t *testing.T) {
	l := newLab(t)
	flag := filepath.Join(l.dir, "dns-down")
	l.startVIP("lb1", 150, "    track:\n      - {exec: \"test ! -e "+flag+"\", weight: -60, interval: 100ms, fall: 2, rise: 2}")
	l.startVIP("lb2", 100, "")
	l.waitHolders(t, settle, "lb1")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l.waitHolders(t, settle, "lb2")
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	l.waitHolders(t, settle, "lb1")
}

// dnslb and keepalived (vrrp_version 3) in one VRID: the right master in both
// priority orders, and each takes over from the other on crash and on
// graceful stop; the higher priority preempts back.
func TestVIPKeepalivedInterop(t *testing.T) {
	for _, c := range []struct {
		name      string
		dnslbHost string // the other runs keepalived
	}{
		{"dnslb master, keepalived backup", "lb1"},
		{"keepalived master, dnslb backup", "lb2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t)
			kaHost := "lb2"
			if c.dnslbHost == "lb2" {
				kaHost = "lb1"
			}
			prio := map[string]int{"lb1": 150, "lb2": 100}
			startDnslb := func() *labProc { return l.startVIP(c.dnslbHost, prio[c.dnslbHost], "") }
			startKA := func() *labProc { return l.startKeepalived(kaHost, prio[kaHost], "0.2") }
			procs := map[string]func() *labProc{c.dnslbHost: startDnslb, kaHost: startKA}

			p := map[string]*labProc{"lb2": procs["lb2"]()}
			l.waitHolders(t, settle, "lb2")
			p["lb1"] = procs["lb1"]() // higher priority joins: preempts
			l.waitHolders(t, settle, "lb1")
			l.holdersStay(t, time.Second, "lb1")
			ping := l.ping(t)
			ping.waitTTL(t, settle, labTTL1, time.Time{})

			// crash of the master: link cut and kill -9
			event := time.Now()
			l.setPort("lb1", false)
			p["lb1"].kill(syscall.SIGKILL)
			p["lb1"].wait(t, 5*time.Second)
			ping.waitTTL(t, settle, labTTL2, event)
			gap, take := ping.outage(event, labTTL2)
			t.Logf("crash of %s on lb1: outage %v, lb2 answers after %v", p["lb1"].name, gap, take)
			l.setPort("lb1", true)

			// lb1 restarts (removing its stale copy) and preempts back
			p["lb1"] = procs["lb1"]()
			l.waitHolders(t, settle, "lb1")
			ping.waitTTL(t, settle, labTTL1, time.Now())

			// graceful stop of lb1: lb2 takes over after Skew_Time
			event = time.Now()
			p["lb1"].kill(syscall.SIGTERM)
			p["lb1"].wait(t, 5*time.Second)
			l.waitHolders(t, settle, "lb2")
			ping.waitTTL(t, settle, labTTL2, event)
			gap, take = ping.outage(event, labTTL2)
			t.Logf("graceful stop of %s on lb1: outage %v, lb2 answers after %v", p["lb1"].name, gap, take)
			if take > mdi100 {
				t.Errorf("graceful takeover took %v > Master_Down_Interval %v", take, mdi100)
			}

			// Neither side rejected the other's adverts.
			for _, pr := range l.processes() {
				log := pr.logText()
				for _, bad := range []string{"advert dropped", "nvalid", "checksum", "TTL"} {
					if strings.Contains(log, bad) {
						t.Errorf("%s logged %q", pr.name, bad)
					}
				}
				if strings.HasPrefix(pr.name, "keepalived") && !strings.Contains(log, "Entering BACKUP STATE") {
					t.Errorf("keepalived never entered BACKUP")
				}
			}
		})
	}
}

// A keepalived of another cluster, misconfigured with our VRID but its
// own address and a higher priority: dnslb ignores its adverts and keeps
// the VIP, and says why; keepalived, ignoring ours likewise, holds its own.
// Before, dnslb gave up the VIP to a router that does not serve it.
func TestVIPForeignAdvertsIgnored(t *testing.T) {
	const otherVIP = "192.0.2.200"
	l := newLab(t)
	dnslb := l.startVIP("lb1", 100, "")
	l.waitHolders(t, settle, "lb1")
	ka := l.startKeepalivedVIP("lb2", 200, "0.2", otherVIP)
	dnstest.Until(t, settle, "keepalived holding its own address", func() bool {
		return slices.Equal(l.holdersOf(otherVIP), []string{"lb2"})
	})
	l.holdersStay(t, 2*time.Second, "lb1") // ten of keepalived's adverts
	dnstest.Until(t, settle, "dnslb logging the foreign adverts", func() bool {
		return strings.Contains(dnslb.logText(), "address_mismatch")
	})
	if log := ka.logText(); !strings.Contains(log, "Entering MASTER STATE") {
		t.Errorf("keepalived never became master of its own address:\n%s", log)
	}
}

// An IPv6 instance: adverts from the link-local address to ff02::12, the VIP
// moves on graceful stop and the client's neighbour entry follows the
// unsolicited neighbour advertisements.
func TestVIPIPv6(t *testing.T) {
	const vip6 = "2001:db8:99::100"
	l := newLab(t)
	pingBin := requireTool(t, "ping")
	extra := "    addresses: [\"" + vip6 + "/64\"]"
	lb1 := l.startVIP("lb1", 150, extra)
	l.startVIP("lb2", 100, extra)
	wait6 := func(want ...string) {
		t.Helper()
		dnstest.Until(t, settle, fmt.Sprintf("IPv6 VIP on %v", want), func() bool { return slices.Equal(l.holdersOf(vip6), want) })
	}
	wait6("lb1")
	neigh := func() string {
		_, _ = exec.Command(l.ip, "netns", "exec", l.hosts["cl"], pingBin, "-6", "-c1", "-W1", vip6).CombinedOutput()
		s, _ := l.run("-n", l.hosts["cl"], "-6", "neigh", "show", vip6, "dev", labIface)
		if m := llRe.FindStringSubmatch(s); m != nil {
			return m[1]
		}
		return ""
	}
	mac1, mac2 := l.mac("lb1"), l.mac("lb2")
	dnstest.Until(t, settle, "client neighbour entry on lb1", func() bool { return neigh() == mac1 })
	lb1.kill(syscall.SIGTERM)
	lb1.wait(t, 5*time.Second)
	wait6("lb2")
	// No solicitation needed: the NA (override) updates the cached entry.
	s, _ := l.run("-n", l.hosts["cl"], "-6", "neigh", "show", vip6, "dev", labIface)
	dnstest.Until(t, settle, "client neighbour entry moved to lb2 ("+s+")", func() bool {
		s, _ := l.run("-n", l.hosts["cl"], "-6", "neigh", "show", vip6, "dev", labIface)
		m := llRe.FindStringSubmatch(s)
		return m != nil && m[1] == mac2
	})
}

// The example config validates; a broken one is rejected with key paths.
func TestVIPConfigCheck(t *testing.T) {
	out, err := exec.Command(dnslbBin, "vip", "--check", "--config", "../examples/vip.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("examples/vip.yaml: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("vip:\n  - {name: a, interface: eth0, vrid: 0, priority: 300, advert_interval: 15ms, addresses: [\"192.0.2.1/24\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(dnslbBin, "vip", "--check", "--config", bad).CombinedOutput()
	if err == nil {
		t.Fatalf("bad config accepted:\n%s", out)
	}
	for _, want := range []string{"vip[0].vrid", "vip[0].priority", "vip[0].advert_interval"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := os.WriteFile(bad, []byte("vip:\n  - {name: a, interface: eth0, vrid: 1, priority: 1, addresses: [\"192.0.2.1\"], bogus: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err = exec.Command(dnslbBin, "vip", "--check", "--config", bad).CombinedOutput(); err == nil || !strings.Contains(string(out), "bogus") {
		t.Fatalf("unknown key accepted: %v\n%s", err, out)
	}
}

// Without CAP_NET_ADMIN/CAP_NET_RAW the agent says so and exits.
func TestVIPNeedsCapabilities(t *testing.T) {
	requireRoot(t)
	setpriv := requireTool(t, "setpriv")
	out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		dnslbBin, "vip", "--config", "../examples/vip.yaml").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs CAP_NET_ADMIN and CAP_NET_RAW") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}
