package integration

// The catalog zone (RFC 9432): Knot, configured with dnslb's catalog
// alone, learns the member zones from it, transfers and serves them, and
// picks up a zone a reload adds.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

const catalogZone = "catalog.dnslb.invalid."

// catalogConfig is the op config with example.test. (and other.test.
// when withOther) transferable to 127.0.0.1 and listed in the catalog,
// hidden.test. transferable but left out, and the catalog's NOTIFY going
// to notify ("" none).
func catalogConfig(withOther bool, notify string) string {
	cfg := opConfig(plainAdmin, "    transfer: {allow: [{prefix: 127.0.0.1}]}\n", "")
	cfg += "  - {origin: hidden.test., file: hidden.test.zone, transfer: {allow: [{prefix: 127.0.0.1}], catalog: false}}\n"
	if withOther {
		cfg += "  - {origin: other.test., file: other.test.zone, transfer: {allow: [{prefix: 127.0.0.1}]}}\n"
	}
	n := ""
	if notify != "" {
		n = fmt.Sprintf(", notify: [%q]", notify)
	}
	return cfg + fmt.Sprintf("catalog: {zone: %s, allow: [{prefix: 127.0.0.1}]%s}\n", catalogZone, n)
}

// otherZone is a zone like opZone's, at origin.
func otherZone(origin string, serial uint32) string {
	return strings.ReplaceAll(opZone(serial, "www IN A 192.0.2.77\ntxt IN TXT \"other\"\n"), "example.test.", origin)
}

// startKnotCatalog starts knotd with one zone, dnslb's catalog, that it
// interprets (catalog-role: interpret): its members are transferred from
// primary too. It returns knotd's address.
func startKnotCatalog(t *testing.T, primary string) string {
	t.Helper()
	knotd := requireTool(t, "knotd")
	dir := t.TempDir()
	host, port, _ := strings.Cut(primary, ":")
	var lastOut string
	for range startAttempts {
		kport := freePort(t)
		conf := fmt.Sprintf(`server:
    listen: 127.0.0.1@%d
    rundir: %q
database:
    storage: %q
log:
  - target: stderr
    any: info
remote:
  - id: dnslb
    address: %s@%s
acl:
  - id: notify
    address: %s
    action: notify
template:
  - id: default
    storage: %q
  - id: member
    storage: %q
    master: dnslb
    acl: notify
zone:
  - domain: %s
    master: dnslb
    acl: notify
    catalog-role: interpret
    catalog-template: member
`, kport, dir, dir, host, port, host, dir, dir, catalogZone)
		confPath := filepath.Join(dir, "knot.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := startProc(t, knotd, "-c", confPath)
		if err != nil {
			t.Fatalf("starting knotd: %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", kport)
		if err := waitAnswering(p, addr, catalogZone); err != nil {
			p.stop()
			lastOut = p.out.String()
			if addrInUse(lastOut) {
				continue
			}
			t.Fatalf("knotd on %s: %v\noutput:\n%s", addr, err, lastOut)
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("knotd output:\n%s", p.out.String())
			}
		})
		return addr
	}
	t.Fatalf("knotd: no free port after %d attempts:\n%s", startAttempts, lastOut)
	return ""
}

// zoneSOA is addr's authoritative SOA of zone, or nil.
func zoneSOA(addr, zone string) (*dns.SOA, string) {
	m := new(dns.Msg)
	m.SetQuestion(zone, dns.TypeSOA)
	r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
	if err != nil {
		return nil, err.Error()
	}
	if len(r.Answer) == 1 && r.Authoritative {
		if soa, ok := r.Answer[0].(*dns.SOA); ok {
			return soa, ""
		}
	}
	return nil, fmt.Sprintf("rcode %s, answer %v", dns.RcodeToString[r.Rcode], r.Answer)
}

// waitServes waits until sec answers zone's SOA with the serial primary
// does.
func waitServes(t *testing.T, primary, sec, zone string) {
	t.Helper()
	want, why := zoneSOA(primary, zone)
	if want == nil {
		t.Fatalf("dnslb's SOA of %s: %s", zone, why)
	}
	dnstest.Eventually(t, 20*time.Second, fmt.Sprintf("Knot serves %s serial %d", zone, want.Serial), func() (bool, string) {
		got, why := zoneSOA(sec, zone)
		if got == nil {
			return false, why
		}
		return got.Serial == want.Serial, fmt.Sprintf("serial %d", got.Serial)
	})
}

// digAXFR transfers zone from addr with dig and returns its records, one
// normalised line each.
func digAXFR(t *testing.T, addr, zone string) []string {
	t.Helper()
	dig := requireTool(t, "dig")
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command(dig, "@"+host, "-p", port, "+noall", "+answer", "AXFR", zone).CombinedOutput()
	if err != nil {
		t.Fatalf("dig AXFR %s: %v\n%s", zone, err, out)
	}
	var rrs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, ";") {
			rrs = append(rrs, strings.Join(strings.Fields(l), " "))
		}
	}
	return rrs
}

// TestCatalogToKnot: Knot with only dnslb's catalog zone learns its
// members, serves them as dnslb does (a zone with catalog: false is not
// among them), serves a zone a reload adds, told by NOTIFY, and stops
// serving one a reload takes out.
func TestCatalogToKnot(t *testing.T) {
	requireTool(t, "knotd")
	files := func(o *opServer) {
		for name, content := range map[string]string{"hidden.test.zone": otherZone("hidden.test.", 7), "other.test.zone": otherZone("other.test.", 9)} {
			if err := os.WriteFile(filepath.Join(o.dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	o := newOpServer(t, opZone(2024060101, xfrRecords), catalogConfig(false, ""), files)

	cat := digAXFR(t, o.dnsAddr, catalogZone)
	joined := strings.Join(cat, "\n")
	for _, want := range []string{
		catalogZone + " 0 IN NS invalid.",
		"version." + catalogZone + " 0 IN TXT \"2\"",
		"zones." + catalogZone + " 0 IN PTR example.test.",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("dig AXFR of the catalog lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "hidden.test.") {
		t.Errorf("the catalog lists hidden.test. (catalog: false):\n%s", joined)
	}

	sec := startKnotCatalog(t, o.dnsAddr)
	// Knot does not answer queries for a catalog it interprets: its
	// members show it has it.
	waitServes(t, o.dnsAddr, sec, "example.test.")
	zoneRRs, err := axfrOf(t, o.dnsAddr, false)
	if err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, zoneRRs, o.dnsAddr, sec)
	if soa, _ := zoneSOA(sec, "hidden.test."); soa != nil {
		t.Errorf("Knot serves hidden.test., which is not in the catalog")
	}

	s0, _ := zoneSOA(o.dnsAddr, catalogZone)
	o.SetConfig(catalogConfig(true, sec))
	before := o.reloads()
	o.Signal(syscall.SIGHUP)
	dnstest.Until(t, 10*time.Second, "the reload adding other.test.", func() bool { return o.reloads() > before })
	s1, _ := zoneSOA(o.dnsAddr, catalogZone)
	if s0 == nil || s1 == nil || !serialAfter(s1.Serial, s0.Serial) {
		t.Fatalf("catalog serial %v after adding a zone, was %v", s1, s0)
	}
	waitServes(t, o.dnsAddr, sec, "other.test.")
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.other.test.", dns.TypeA}, {"txt.other.test.", dns.TypeTXT}} {
		a, b := askAuth(t, o.dnsAddr, q.name, q.qtype), askAuth(t, sec, q.name, q.qtype)
		if missing, extra := dnstest.Diff(dnstest.NormSection(a.Answer), dnstest.NormSection(b.Answer)); len(missing)+len(extra) > 0 || len(a.Answer) == 0 {
			t.Errorf("%s: Knot lacks %v and adds %v (dnslb: %v)", q.name, missing, extra, a.Answer)
		}
	}

	// catalog: false takes it out again: Knot stops serving it.
	o.SetConfig(strings.Replace(catalogConfig(true, sec), "file: other.test.zone, transfer: {allow: [{prefix: 127.0.0.1}]}", "file: other.test.zone, transfer: {allow: [{prefix: 127.0.0.1}], catalog: false}", 1))
	before = o.reloads()
	o.Signal(syscall.SIGHUP)
	dnstest.Until(t, 10*time.Second, "the reload leaving other.test. out", func() bool { return o.reloads() > before })
	dnstest.Eventually(t, 20*time.Second, "Knot stops serving other.test.", func() (bool, string) {
		soa, why := zoneSOA(sec, "other.test.")
		return soa == nil, why
	})
	if soa, _ := zoneSOA(sec, "example.test."); soa == nil {
		t.Errorf("Knot stopped serving example.test. too")
	}
}
