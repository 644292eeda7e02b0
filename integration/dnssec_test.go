package integration

// End-to-end DNSSEC: dnslb signs a zone with a health-checked pool
// online; real validators (unbound with dnslb's KSK as trust anchor,
// BIND's delv, Knot's kdig) validate its answers while a backend goes
// down and comes back.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// signedFleetZone is a zone whose www is a pool of two backends.
func signedZone(t *testing.T) (zoneDir string) {
	t.Helper()
	dir := t.TempDir()
	zone := `$ORIGIN example.test.
$TTL 300
@       IN SOA  ns1 hostmaster 1 7200 900 1209600 300
        IN NS   ns1
ns1     IN A    127.0.0.53
www     IN A    127.0.0.11
www     IN A    127.0.0.12
txt     IN TXT  "hello"
*.wild  IN A    192.0.2.7
`
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// kskOf returns dnslb's KSK DNSKEY record (flags 257) for a trust anchor.
func kskOf(t *testing.T, addr string) *dns.DNSKEY {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeDNSKEY)
	m.SetEdns0(1232, true)
	resp := query(t, addr, "tcp", m)
	for _, rr := range resp.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok && k.Flags == 257 {
			return k
		}
	}
	t.Fatalf("no KSK in %v", resp.Answer)
	return nil
}

func askValidating(t *testing.T, resolver, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, true)
	return query(t, resolver, "udp", m)
}

func TestDNSSECValidatedByUnbound(t *testing.T) {
	be := startBackends(t, ip11, ip12)
	zdir := signedZone(t)
	addr := startDNSLB(t, fmt.Sprintf(`log: {level: info, format: json}
zones:
  - origin: example.test.
    file: %s
    dnssec: {keys: %s}
pools:
  www.example.test.:
    policy: round-robin
    ttl: 1
    check: %s
`, filepath.Join(zdir, "example.test.zone"), filepath.Join(zdir, "keys"), httpCheck(be.Port)))
	ksk := kskOf(t, addr)
	resolver := startUnboundConf(t, addr, "validator iterator", fmt.Sprintf("    trust-anchor: \"%s\"\n    val-log-level: 2", strings.ReplaceAll(ksk.String(), "\t", " ")))

	secure := func(what, name string, qtype uint16, rcode int, answers int) {
		t.Helper()
		resp := askValidating(t, resolver, name, qtype)
		if !resp.AuthenticatedData || resp.Rcode != rcode {
			t.Errorf("%s: AD %v rcode %s, want AD and %s: %v", what, resp.AuthenticatedData, dns.RcodeToString[resp.Rcode], dns.RcodeToString[rcode], resp)
		}
		if answers >= 0 {
			n := 0
			for _, rr := range resp.Answer {
				if rr.Header().Rrtype == qtype {
					n++
				}
			}
			if n != answers {
				t.Errorf("%s: %d %s records, want %d: %v", what, n, dns.TypeToString[qtype], answers, resp.Answer)
			}
		}
	}
	secure("pool, both up", "www.example.test.", dns.TypeA, dns.RcodeSuccess, 2)
	secure("static TXT", "txt.example.test.", dns.TypeTXT, dns.RcodeSuccess, 1)
	secure("NODATA", "www.example.test.", dns.TypeMX, dns.RcodeSuccess, 0)
	// Compact denial: a name that does not exist is NOERROR with the
	// NXNAME bit, proven like a NODATA.
	secure("non-existent name", "nope.example.test.", dns.TypeA, dns.RcodeSuccess, 0)
	secure("wildcard", "x.wild.example.test.", dns.TypeA, dns.RcodeSuccess, 1)

	// A backend goes down: the pool's new answer is signed as well.
	be.get(t, ip12).Stop()
	dnstest.Eventually(t, 10*time.Second, "127.0.0.12 out of the validated answer", func() (bool, string) {
		resp := askValidating(t, resolver, "www.example.test.", dns.TypeA)
		return resp.AuthenticatedData && len(resp.Answer) == 2 /* A + RRSIG */ && strings.Contains(resp.Answer[0].String(), ip11), fmt.Sprint(resp)
	})
	be.get(t, ip12).Start(t)
	dnstest.Eventually(t, 10*time.Second, "127.0.0.12 back in the validated answer", func() (bool, string) {
		resp := askValidating(t, resolver, "www.example.test.", dns.TypeA)
		n := 0
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype == dns.TypeA {
				n++
			}
		}
		return resp.AuthenticatedData && n == 2, fmt.Sprint(resp)
	})

	// BIND's delv, anchored at the zone, validates straight from dnslb.
	delv := requireTool(t, "delv")
	anchors := filepath.Join(t.TempDir(), "anchors.conf")
	anchorConf := fmt.Sprintf("trust-anchors {\n  example.test. static-key %d %d %d %q;\n};\n", ksk.Flags, ksk.Protocol, ksk.Algorithm, ksk.PublicKey)
	if err := os.WriteFile(anchors, []byte(anchorConf), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(addr, ":")
	for _, q := range [][]string{{"www.example.test.", "A"}, {"nope.example.test.", "A"}, {"example.test.", "DNSKEY"}} {
		out, err := exec.Command(delv, "@"+host, "-p", port, "-a", anchors, "+root=example.test.", "+tcp", q[0], q[1]).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "fully validated") {
			t.Errorf("delv %s %s: %v\n%s", q[0], q[1], err, out)
		}
	}

	// kdig +dnssec shows the signatures.
	kdig := requireTool(t, "kdig")
	out, err := exec.Command(kdig, "@"+host, "-p", port, "+dnssec", "+tcp", "www.example.test.", "A").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RRSIG\tA 13 3 ") {
		t.Errorf("kdig +dnssec: %v\n%s", err, out)
	}
}
