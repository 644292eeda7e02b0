package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/dnslb/dnssec"
	"github.com/miekg/dns"
)

func TestDNSSECDS(t *testing.T) {
	zone, err := os.ReadFile("../../examples/zones/example.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{
		"dnslb.yaml":              "zones:\n  - {origin: example.test., file: zones/example.test.zone, dnssec: {keys: k}}\n  - {origin: plain.test., file: zones/plain.zone}\n",
		"zones/example.test.zone": string(zone),
		"zones/plain.zone":        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n",
	})
	cfg := filepath.Join(dir, "dnslb.yaml")
	if _, _, err := runCmd(t, newRootCommand(), "dnssec", "ds", "example.test.", "--config", cfg); err == nil || !strings.Contains(err.Error(), "no keys for example.test.") {
		t.Errorf("without keys: %v", err)
	}
	if _, _, err := runCmd(t, newRootCommand(), "dnssec", "ds", "plain.test", "--config", cfg); err == nil || !strings.Contains(err.Error(), "no dnssec: block") {
		t.Errorf("unsigned zone: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "k"), 0o700); err != nil {
		t.Fatal(err)
	}
	ksk, err := dnssec.Generate(filepath.Join(dir, "k"), "example.test.", dnssec.ECDSAP256SHA256, dnssec.KSK, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dnssec.Generate(filepath.Join(dir, "k"), "example.test.", dnssec.ECDSAP256SHA256, dnssec.ZSK, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCmd(t, newRootCommand(), "dnssec", "ds", "example.test", "--config", cfg, "--dnskey")
	if err != nil {
		t.Fatal(err)
	}
	want := ksk.DNSKEY.ToDS(dns.SHA256)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q: want the KSK's DS and DNSKEY", out)
	}
	rr, err := dns.NewRR(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	if ds, ok := rr.(*dns.DS); !ok || ds.KeyTag != want.KeyTag || !strings.EqualFold(ds.Digest, want.Digest) || ds.DigestType != dns.SHA256 {
		t.Errorf("DS %v, want %v", rr, want)
	}
	if !strings.Contains(lines[1], "DNSKEY\t257 3 13") {
		t.Errorf("DNSKEY line %q", lines[1])
	}
}

func TestPrintZonesSigned(t *testing.T) {
	var b strings.Builder
	printZones(&b, []admin.ZoneStatus{{Origin: "example.test.", Serial: 3, DNSSEC: &admin.ZoneDNSSEC{Keys: []admin.DNSSECKey{
		{Tag: 111, Role: "ksk", State: "active"}, {Tag: 222, Role: "zsk", State: "active"}, {Tag: 333, Role: "zsk", State: "published"}}}}}, time.Now())
	if !strings.Contains(b.String(), "ok; signed by ksk 111, zsk 222") {
		t.Errorf("zones:\n%s", b.String())
	}
}
