package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// The listen tests run dnslb in the VRRP lab's namespaces (netlab_test.go),
// with dig as the client on cl: dig drops a UDP reply that comes from
// another address than the one it asked (";; reply from unexpected
// source"), as resolvers do, and then times out. Port 53: the namespaces
// are this test's own, so nothing else can hold it.

// listenZone is the zone the listen tests serve.
const listenZone = `$ORIGIN example.test.
$TTL 300
@    SOA ns1 hostmaster 1 3600 600 86400 60
     NS  ns1
ns1  A   192.0.2.11
www  A   192.0.2.80
`

// listenConfig writes a dnslb config for the lab with the given top-level
// lines (listen, freebind) and returns its path.
func (l *lab) listenConfig(name, lines string) string {
	l.t.Helper()
	zone := filepath.Join(l.dir, "example.test.zone")
	if err := os.WriteFile(zone, []byte(listenZone), 0o644); err != nil {
		l.t.Fatal(err)
	}
	cfg := fmt.Sprintf("%s\nstate_file: %s.state.json\nlog: {level: info, format: json}\nzones:\n  - {origin: example.test., file: %s}\n", lines, name, zone)
	path := filepath.Join(l.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return path
}

// digFromClient asks server (an IP address) for www.example.test A from
// the client namespace, once, and returns dig's output and whether it got
// the answer.
func (l *lab) digFromClient(server string, args ...string) (string, bool) {
	l.t.Helper()
	dig := requireTool(l.t, "dig")
	argv := append([]string{"netns", "exec", l.hosts["cl"], dig, "@" + server, "-p", "53", "+time=1", "+tries=1", "+nocookie"}, args...)
	argv = append(argv, "www.example.test", "A")
	out, err := exec.Command(l.ip, argv...).CombinedOutput()
	ok := err == nil && strings.Contains(string(out), "status: NOERROR") &&
		strings.Contains(string(out), "192.0.2.80") && strings.Contains(string(out), " aa")
	return string(out), ok
}

// waitDig waits until server answers the client.
func (l *lab) waitDig(t *testing.T, server string) {
	t.Helper()
	dnstest.Eventually(t, startupDeadline, "an answer from "+server, func() (bool, string) {
		out, ok := l.digFromClient(server)
		return ok, "dig:\n" + out
	})
}

// TestListenWildcardReplyAddress: dnslb listening on 0.0.0.0:53 and [::]:53
// together (which used to fail: "address already in use") answers UDP
// queries to the host's second IPv4 and IPv6 addresses from those
// addresses, and TCP too.
func TestListenWildcardReplyAddress(t *testing.T) {
	l := newLab(t)
	ns := l.hosts["lb1"]
	// lb1 holds a second address of each family, as a host holding a VIP.
	l.must("-n", ns, "addr", "add", "192.0.2.21/24", "dev", labIface)
	l.must("-n", ns, "addr", "add", "2001:db8:99::21/64", "dev", labIface, "nodad")
	cfg := l.listenConfig("lb1", `listen: ["0.0.0.0:53", "[::]:53"]`)
	p := l.start("dnslb-lb1", "lb1", dnslbBin, "serve", "--config", cfg)
	l.waitDig(t, "192.0.2.11")
	select {
	case <-p.done:
		t.Fatalf("dnslb exited: %v\n%s", p.err, p.logText())
	default:
	}
	for _, server := range []string{"192.0.2.11", "192.0.2.21", "2001:db8:99::11", "2001:db8:99::21"} {
		for _, transport := range []string{"+notcp", "+tcp"} {
			if out, ok := l.digFromClient(server, transport); !ok {
				t.Errorf("dig @%s %s: no answer (a reply from the wrong source address is dropped):\n%s", server, transport, out)
			}
		}
	}
}

// TestListenFreebind: with freebind, dnslb on a backup starts listening on
// a VIP the host does not hold yet and answers on it once the address is
// added; without freebind it cannot start.
func TestListenFreebind(t *testing.T) {
	l := newLab(t)
	ns := l.hosts["lb2"]
	const vip4, vip6 = "192.0.2.150", "2001:db8:99::150"
	listen := fmt.Sprintf(`listen: ["%s", "%s"]`, net.JoinHostPort(vip4, "53"), net.JoinHostPort(vip6, "53"))

	without := l.start("dnslb-nofreebind", "lb2", dnslbBin, "serve", "--config", l.listenConfig("nofreebind", listen))
	without.wait(t, startupDeadline)
	if without.err == nil || !strings.Contains(without.logText(), "cannot assign requested address") {
		t.Fatalf("without freebind: exit %v, want a failure to bind; log:\n%s", without.err, without.logText())
	}

	p := l.start("dnslb-lb2", "lb2", dnslbBin, "serve", "--config", l.listenConfig("lb2", listen+"\nfreebind: true"))
	dnstest.Until(t, startupDeadline, "dnslb listening on both VIPs", func() bool {
		select {
		case <-p.done:
			t.Fatalf("dnslb exited: %v\n%s", p.err, p.logText())
		default:
		}
		return strings.Count(p.logText(), `"message":"listening"`) == 2
	})
	l.must("-n", ns, "addr", "add", vip4+"/24", "dev", labIface)
	l.must("-n", ns, "addr", "add", vip6+"/64", "dev", labIface, "nodad")
	for _, server := range []string{vip4, vip6} {
		l.waitDig(t, server)
		if out, ok := l.digFromClient(server, "+tcp"); !ok {
			t.Errorf("dig @%s +tcp: no answer:\n%s", server, out)
		}
	}
}
