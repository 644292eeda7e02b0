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
	for _, denial := range []string{"compact", "nsec3"} {
		t.Run(denial, func(t *testing.T) { testValidatedByUnbound(t, denial) })
	}
}

func testValidatedByUnbound(t *testing.T, denial string) {
	be := startBackends(t, ip11, ip12)
	zdir := signedZone(t)
	addr := startDNSLB(t, fmt.Sprintf(`log: {level: info, format: json}
zones:
  - origin: example.test.
    file: %s
    dnssec: {keys: %s, denial: %s}
pools:
  www.example.test.:
    policy: round-robin
    ttl: 1
    check: %s
`, filepath.Join(zdir, "example.test.zone"), filepath.Join(zdir, "keys"), denial, httpCheck(be.Port)))
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
	// NXNAME bit, proven like a NODATA; NSEC3 proves the NXDOMAIN.
	nx := dns.RcodeSuccess
	if denial == "nsec3" {
		nx = dns.RcodeNameError
	}
	secure("non-existent name", "nope.example.test.", dns.TypeA, nx, 0)
	secure("non-existent name below one", "a.b.nope.example.test.", dns.TypeA, nx, 0)
	secure("empty non-terminal", "wild.example.test.", dns.TypeA, dns.RcodeSuccess, 0)
	secure("NODATA at the apex", "example.test.", dns.TypeTXT, dns.RcodeSuccess, 0)
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

// TestDNSSECSignedTransfer: a signed zone transferred out (view:
// filtered, so health shows in it) is a signed zone with a full NSEC
// chain, which ldns-verify-zone accepts, before and after a backend
// goes down; IXFR of a signed zone is answered with the whole zone.
func TestDNSSECSignedTransfer(t *testing.T) {
	verify := requireTool(t, "ldns-verify-zone")
	be := startBackends(t, ip11, ip12)
	zdir := signedZone(t)
	zone, err := os.ReadFile(filepath.Join(zdir, "example.test.zone"))
	if err != nil {
		t.Fatal(err)
	}
	// A delegation with glue, which stays unsigned and out of the chain.
	zone = append(zone, "sub     IN NS   ns.sub\nns.sub  IN A    192.0.2.99\n"...)
	if err := os.WriteFile(filepath.Join(zdir, "example.test.zone"), zone, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startDNSLB(t, fmt.Sprintf(`log: {level: info, format: json}
zones:
  - origin: example.test.
    file: %s
    dnssec: {keys: %s}
    transfer: {view: filtered, allow: [{prefix: 127.0.0.1/32}]}
pools:
  www.example.test.:
    policy: round-robin
    ttl: 1
    check: %s
`, filepath.Join(zdir, "example.test.zone"), filepath.Join(zdir, "keys"), httpCheck(be.Port)))

	transfer := func(qtype uint16) []dns.RR {
		t.Helper()
		m := new(dns.Msg)
		if qtype == dns.TypeIXFR {
			m.SetIxfr("example.test.", 1, "ns1.example.test.", "hostmaster.example.test.")
		} else {
			m.SetAxfr("example.test.")
		}
		env, err := (&dns.Transfer{}).In(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		var rrs []dns.RR
		for e := range env {
			if e.Error != nil {
				t.Fatal(e.Error)
			}
			rrs = append(rrs, e.RR...)
		}
		return rrs
	}
	check := func(what string, rrs []dns.RR, wantWWW int) {
		t.Helper()
		var b strings.Builder
		www, sigs, nsecs := 0, 0, 0
		for _, rr := range rrs[:len(rrs)-1] { // one SOA, as a zone file has
			b.WriteString(rr.String() + "\n")
			switch rr.Header().Rrtype {
			case dns.TypeA:
				if rr.Header().Name == "www.example.test." {
					www++
				}
			case dns.TypeRRSIG:
				sigs++
			case dns.TypeNSEC:
				nsecs++
			}
		}
		file := filepath.Join(t.TempDir(), "signed.zone")
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(verify, "-V", "3", file).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Zone is verified and complete") {
			t.Errorf("%s: ldns-verify-zone: %v\n%s\n%s", what, err, out, b.String())
		}
		if www != wantWWW || sigs == 0 || nsecs == 0 {
			t.Errorf("%s: %d www A, %d RRSIG, %d NSEC", what, www, sigs, nsecs)
		}
	}
	check("AXFR", transfer(dns.TypeAXFR), 2)
	be.get(t, ip12).Stop()
	dnstest.Eventually(t, 10*time.Second, "the filtered view without 127.0.0.12", func() (bool, string) {
		rrs := transfer(dns.TypeAXFR)
		return !strings.Contains(fmt.Sprint(rrs), ip12), fmt.Sprint(len(rrs), " records")
	})
	check("AXFR, a backend down", transfer(dns.TypeAXFR), 1)
	// The new serial is a new copy of the zone: its answers are signed
	// still (they were not when signers were found by the zone's copy).
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	m.SetEdns0(1232, true)
	if resp := query(t, addr, "udp", m); !strings.Contains(fmt.Sprint(resp.Answer), "RRSIG") {
		t.Errorf("answer after the serial changed is unsigned: %v", resp.Answer)
	}
	ixfr := transfer(dns.TypeIXFR)
	if len(ixfr) < 3 || ixfr[1].Header().Rrtype == dns.TypeSOA {
		t.Fatalf("IXFR of a signed zone: want the whole zone (AXFR form), got %d records starting %v", len(ixfr), ixfr[:min(2, len(ixfr))])
	}
	check("IXFR", ixfr, 1)
}
