package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/miekg/dns"
)

// TestPoolSeveralChecks: members with two checks each, the second at the
// member's check_address (another backend, as an admin port on a NAT'd
// address would be). Stopping only the second check's target takes its
// member out of the answers; starting it again brings it back. The admin
// API shows which check failed.
func TestPoolSeveralChecks(t *testing.T) {
	be := startBackends(t, ip11, ip12)  // the answered addresses
	adm := startBackends(t, ip13, ip14) // their check addresses
	second := strings.TrimSuffix(httpCheck(adm.Port), "}") + ", address: check_address}"
	dir := t.TempDir()
	zone := filepath.Join(dir, "example.test.zone")
	if err := os.WriteFile(zone, []byte(zoneHead+"www IN A 127.0.0.11\nwww IN A 127.0.0.12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	addr := startDNSLB(t, fmt.Sprintf(`log: {level: debug, format: json}
admin: %q
zones:
  - {origin: example.test., file: %s}
pools:
  www.example.test.:
    ttl: 5
    checks:
      - %s
      - %s
    members:
      127.0.0.11: {check_address: 127.0.0.13}
      127.0.0.12: {check_address: 127.0.0.14}
`, adminAddr, zone, httpCheck(be.Port), second))
	waitChecksRunning(t, be)
	waitChecksRunning(t, adm)
	waitAnswerSet(t, addr, "www.example.test", dns.TypeA, riseBound()+5*time.Second, ip11, ip12)

	b14 := adm.get(t, ip14)
	b14.Stop()
	detect := waitAnswerSet(t, addr, "www.example.test", dns.TypeA, fallBound()+5*time.Second, ip11)
	t.Logf("second check of %s refused: out of the answers in %v", ip12, detect.Round(time.Millisecond))
	neverAnswers(t, addr, "www.example.test", dns.TypeA, 100, ip12)

	var pool admin.PoolStatus
	if err := adminGetJSON("http://"+adminAddr+"/api/v1/pools/www.example.test", &pool); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(pool.Members, func(m admin.MemberStatus) bool { return m.Address == ip12 })
	if i < 0 {
		t.Fatalf("no member %s in %+v", ip12, pool.Members)
	}
	m := pool.Members[i]
	want14 := fmt.Sprintf("%s:%d", ip14, adm.Port)
	if m.State != "down" || len(m.Checks) != 2 || !m.Checks[0].Healthy || m.Checks[1].Healthy ||
		m.Checks[1].Address != want14 || m.LastError == "" || m.LastError != m.Checks[1].LastError {
		t.Errorf("member %s in the API: %+v, want down by its second check (%s) with that check's error", ip12, m, want14)
	}

	b14.Start(t)
	back := waitAnswerSet(t, addr, "www.example.test", dns.TypeA, riseBound()+5*time.Second, ip11, ip12)
	t.Logf("second check of %s back: in the answers again in %v", ip12, back.Round(time.Millisecond))
}
