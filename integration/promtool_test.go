package integration

import (
	"bytes"
	"net/http"
	"os/exec"
	"testing"

	"github.com/miekg/dns"
)

// TestPromtoolCheckMetrics lints a live /metrics with Prometheus' own
// checker (names, suffixes, help, units), with a pool answered so its
// series are there.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := requireTool(t, "promtool")
	pools := `  www.example.test.:
    policy: round-robin
`
	o := newOpServer(t, opZone(3, "www IN A 192.0.2.10\nwww IN A 192.0.2.11\n"), opConfig(plainAdmin, "", pools))
	if r := askAuth(t, o.dnsAddr, "www.example.test.", dns.TypeA); len(r.Answer) == 0 {
		t.Fatalf("www A: no answer:\n%v", r)
	}
	code, body := o.do("GET", "/metrics", o.token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", code)
	}
	for _, name := range []string{"dnslb_pool_answers_total", "dnslb_zone_serial", "dnslb_build_info", "dnslb_tcp_connections_open"} {
		if !bytes.Contains(body, []byte("\n"+name)) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
