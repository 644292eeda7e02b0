package integration

// BIND (named) as a signed secondary of dnslb's filtered view, beside
// the NSD and Knot ones in xfr_test.go.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// startBINDSecondary starts named in the foreground as a secondary of
// example.test. from primary, signed with tsigKeys[0], taking NOTIFY
// from it, and returns its address.
func startBINDSecondary(t *testing.T, primary string) string {
	t.Helper()
	named := requireTool(t, "named")
	k := tsigKeys[0]
	dir := t.TempDir()
	host, port, _ := strings.Cut(primary, ":")
	var lastOut string
	for range startAttempts {
		bport := freePort(t)
		conf := fmt.Sprintf(`options {
	directory %q;
	pid-file %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	allow-new-zones no;
};
key %q {
	algorithm %s;
	secret %q;
};
controls { };
zone "example.test." {
	type secondary;
	file "example.test.db";
	primaries port %s { %s key %q; };
	allow-notify { %s; };
};
`, dir, filepath.Join(dir, "named.pid"), bport, k.name, k.nsdAlg, k.secret, port, host, k.name, host)
		confPath := filepath.Join(dir, "named.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-g", "-c", confPath, "-n", "1"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		p, err := startProc(t, named, args...)
		if err != nil {
			t.Fatalf("starting named: %v", err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", bport)
		if err := waitAnswering(p, addr, "example.test."); err != nil {
			p.stop()
			lastOut = p.out.String()
			if addrInUse(lastOut) || strings.Contains(lastOut, "address in use") {
				continue
			}
			t.Fatalf("named on %s: %v\noutput:\n%s", addr, err, lastOut)
		}
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("named output:\n%s", p.out.String())
			}
		})
		return addr
	}
	t.Fatalf("named: no free port after %d attempts:\n%s", startAttempts, lastOut)
	return ""
}

// TestTransferFilteredToBIND: BIND as a signed secondary of a filtered
// zone loads it, answers it as dnslb does, follows a killed backend
// (NOTIFY, SOA, IXFR) and a restart of dnslb.
func TestTransferFilteredToBIND(t *testing.T) {
	requireTool(t, "named")
	be := startBackends(t, ip11, ip12, ip13)
	zone := opZone(2024060101, "www IN A 127.0.0.11\nwww IN A 127.0.0.12\nwww IN A 127.0.0.13\ntxt IN TXT \"kept\"\n")
	pools := fmt.Sprintf("  www.example.test.:\n    ttl: 5\n    check: %s\n", httpCheck(be.Port))
	transfer := `{view: filtered, allow: [{prefix: 127.0.0.1/32, key: xfr-key.}]%s}`
	o := newOpServer(t, zone, xfrConfig(fmt.Sprintf(transfer, ""), pools))
	sec := startBINDSecondary(t, o.dnsAddr)
	o.SetConfig(xfrConfig(fmt.Sprintf(transfer, `, notify: ["`+sec+`"]`), pools))
	before := o.reloads()
	o.Signal(syscall.SIGHUP)
	dnstest.Until(t, 10*time.Second, "the reload with notify", func() bool { return o.reloads() > before })
	waitChecksRunning(t, be)

	s0 := soaSerial(t, o.dnsAddr)
	waitSecondarySerial(t, sec, s0)
	zoneRRs, err := axfrOf(t, o.dnsAddr, true)
	if err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, zoneRRs, o.dnsAddr, sec)

	be.get(t, ip12).Stop()
	dnstest.Until(t, fallBound()+5*time.Second, "dnslb drops 12", func() bool {
		return !slices.Contains(poolAddrs(t, o.dnsAddr, "www.example.test", dns.TypeA), ip12)
	})
	lag := dnstest.Until(t, time.Second, "BIND drops 12 within a second of dnslb", func() bool {
		return !slices.Contains(poolAddrs(t, sec, "www.example.test", dns.TypeA), ip12)
	})
	t.Logf("BIND followed %v after dnslb's answer changed", lag)

	s1 := soaSerial(t, o.dnsAddr)
	o.Restart()
	s2 := soaSerial(t, o.dnsAddr)
	if !serialAfter(s2, s1) {
		t.Fatalf("serial %d after a restart, was %d", s2, s1)
	}
	waitSecondarySerial(t, sec, s2)
}
