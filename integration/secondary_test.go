package integration

// dnslb as a secondary: a zone pulled from a real primary (Knot) by
// AXFR/IXFR with TSIG, its pool applied to the pulled records, and an
// edit there, NOTIFY'd, answered by dnslb within a second.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// knotPrimaryZone is example.test. at serial with www's records.
func knotPrimaryZone(serial int, www ...string) string {
	z := fmt.Sprintf("$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n", serial)
	for _, a := range www {
		z += "www 60 A " + a + "\n"
	}
	return z
}

func TestSecondaryOfKnot(t *testing.T) {
	knotd := requireTool(t, "knotd")
	knotc := requireTool(t, "knotc")
	k := tsigKeys[0]
	dir := t.TempDir()
	zonePath := filepath.Join(dir, "example.test.zone")
	if err := os.WriteFile(zonePath, []byte(knotPrimaryZone(1, "192.0.2.10", "192.0.2.11")), 0o644); err != nil {
		t.Fatal(err)
	}
	lbPort := freePort(t)
	lbAddr := fmt.Sprintf("127.0.0.1:%d", lbPort)
	confPath := filepath.Join(dir, "knot.conf")
	knotAddr, kp := startOnFreePort(t, "knotd", knotd, "example.test.", func(kport int) []string {
		conf := knotConfHead(kport, dir, k) + fmt.Sprintf(`remote:
  - id: dnslb
    address: 127.0.0.1@%d
    key: %s
acl:
  - id: xfr
    address: 127.0.0.1
    key: %s
    action: transfer
template:
  - id: default
    storage: %q
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
zone:
  - domain: example.test.
    file: %q
    notify: dnslb
    acl: xfr
`, lbPort, k.name, k.name, dir, zonePath)
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{"-c", confPath}
	})

	cfg := fmt.Sprintf(`log: {level: info, format: json}
state_file: %s
zones:
  - origin: example.test.
    primary: {address: %q, key: %s}
pools:
  www.example.test.:
    policy: round-robin
    ttl: 20
tsig:
  keys:
    - {name: %s, algorithm: %s, secret: %q}
`, filepath.Join(dir, "dnslb.state.json"), knotAddr, k.name, k.name, k.nsdAlg, k.secret)
	cfgPath := filepath.Join(dir, "dnslb.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	lb, err := startProc(t, dnslbBin, "serve", "--config", cfgPath, "--listen", lbAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lb.stop()
		if t.Failed() {
			t.Logf("dnslb output:\n%s", lb.out.String())
		}
	})
	if err := waitAnswering(lb, lbAddr, "."); err != nil {
		t.Fatalf("dnslb on %s: %v", lbAddr, err)
	}
	www := func() ([]string, uint32) {
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		r := query(t, lbAddr, "udp", m)
		var got []string
		var ttl uint32
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.A.String())
				ttl = a.Hdr.Ttl
			}
		}
		slices.Sort(got)
		return got, ttl
	}
	dnstest.Eventually(t, 10*time.Second, "dnslb serving the pulled zone's pool", func() (bool, string) {
		got, ttl := www()
		return slices.Equal(got, []string{"192.0.2.10", "192.0.2.11"}) && ttl == 20, fmt.Sprintf("%v ttl %d", got, ttl)
	})

	// An edit on the primary: Knot NOTIFYs dnslb, which pulls (IXFR) and
	// answers the new member within a second.
	if err := os.WriteFile(zonePath, []byte(knotPrimaryZone(2, "192.0.2.10", "192.0.2.11", "192.0.2.12")), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out, err := exec.Command(knotc, "-c", confPath, "zone-reload", "example.test.").CombinedOutput(); err != nil {
		t.Fatalf("knotc zone-reload: %v\n%s", err, out)
	}
	dnstest.Eventually(t, 5*time.Second, "the edit answered by dnslb", func() (bool, string) {
		got, _ := www()
		return len(got) == 3, fmt.Sprint(got)
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("the edit took %v to reach dnslb's answers, want within 1s", d)
	} else {
		t.Logf("edit on Knot answered by dnslb after %v", d)
	}

	// The pull above was signed: Knot refuses an unsigned one.
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeAXFR)
	if r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, knotAddr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
		t.Errorf("Knot transfers without the key: the test's ACL is open")
	}

	// A restart with the primary stopped serves the kept copy.
	lb.stop()
	kp.stop()
	lb2, err := startProc(t, dnslbBin, "serve", "--config", cfgPath, "--listen", lbAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lb2.stop()
		if t.Failed() {
			t.Logf("restarted dnslb output:\n%s", lb2.out.String())
		}
	})
	if err := waitAnswering(lb2, lbAddr, "."); err != nil {
		t.Fatalf("restarted dnslb on %s: %v", lbAddr, err)
	}
	dnstest.Eventually(t, 10*time.Second, "the kept copy served after a restart without the primary", func() (bool, string) {
		got, _ := www()
		return len(got) == 3, fmt.Sprint(got)
	})
}
