package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// The shipped dashboard and alert rules, relative to this package.
const (
	dashboardFile = "../contrib/grafana/dnslb.json"
	alertsFile    = "../contrib/prometheus/alerts.yml"
)

// metricName finds the dnslb metric names in a PromQL expression (or any
// text): names are what a query selects, so a misspelt or renamed one
// silently draws nothing.
var metricName = regexp.MustCompile(`\bdnslb_[a-zA-Z0-9_]+`)

// dashboardQueries returns every PromQL expression of the shipped Grafana
// dashboard: the panels' targets and the variables' queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("%s: panel %q has a target without expr", dashboardFile, p.Title)
			}
			out = append(out, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil || q.Query == "" {
			t.Errorf("%s: variable query %s: %v", dashboardFile, v.Query, err)
		}
		out = append(out, q.Query)
	}
	if len(out) < 10 {
		t.Fatalf("%s: only %d queries", dashboardFile, len(out))
	}
	return out
}

// shippedNames returns the dnslb metric names the dashboard and the alert
// rules use, with where each is used.
func shippedNames(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	for _, q := range dashboardQueries(t) {
		for _, n := range metricName.FindAllString(q, -1) {
			names[n] = dashboardFile
		}
	}
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricName.FindAllString(string(rules), -1) {
		names[n] = alertsFile
	}
	return names
}

// TestShippedMetricNames: every dnslb metric the shipped dashboard and
// alert rules query is one the built binary exports, seen on a live
// /metrics of a server that answered, health-checked (one member down),
// drained, reloaded and dropped a packet, so that every family has
// series. The VIP agent's names (dnslb_vip_*) are checked against its
// collector in package vip (TestShippedVIPMetricNames). The dashboard's
// queries must also parse as PromQL (promtool, on CI).
func TestShippedMetricNames(t *testing.T) {
	be := startBackends(t, ip11)
	pools := fmt.Sprintf(`  www.example.test.:
    policy: round-robin
    check: %s
`, httpCheck(be.Port))
	o := newOpServer(t, opZone(3, "www IN A 127.0.0.11\nwww IN A 127.0.0.12\n"), opConfig(plainAdmin, "", pools))
	dnstest.Eventually(t, 10*checkInterval+10*time.Second, "127.0.0.12 down", func() (bool, string) {
		m := o.poolMember("www.example.test.", ip12)
		return m.State == "down", m.State
	})
	askAuth(t, o.dnsAddr, "www.example.test.", dns.TypeA)
	askAuth(t, o.dnsAddr, "www.example.test.", dns.TypeA) // a cache hit
	sendRaw(t, o.dnsAddr, "udp", []byte{0xde, 0xad, 0xbe}, 300*time.Millisecond)
	if code, body := o.do("POST", "/api/v1/members/"+ip12+"/drain", o.token, nil); code != http.StatusOK {
		t.Fatalf("drain: HTTP %d: %s", code, body)
	}
	if code, body := o.do("POST", "/api/v1/reload", o.token, nil); code != http.StatusOK {
		t.Fatalf("reload: HTTP %d: %s", code, body)
	}
	exported := map[string]bool{}
	dnstest.Eventually(t, 10*time.Second, "every family of the drop and the reload exported", func() (bool, string) {
		_, body := o.do("GET", "/metrics", o.token, nil)
		for _, line := range strings.Split(string(body), "\n") {
			if n := metricName.FindString(line); n != "" && strings.HasPrefix(line, n) {
				exported[n] = true // a sample: histograms' _bucket, _sum, _count too
			}
		}
		return exported["dnslb_dropped_queries_total"] && exported["dnslb_reloads_total"], fmt.Sprint(len(exported), " names")
	})

	used := shippedNames(t)
	var names []string
	for n := range used {
		names = append(names, n)
	}
	slices.Sort(names)
	vip := 0
	for _, n := range names {
		if strings.HasPrefix(n, "dnslb_vip_") {
			vip++
			continue
		}
		if strings.HasPrefix(n, "dnslb_fleet_") {
			continue // exported by a node in a fleet only: checkFleetMetrics checks them
		}
		if strings.HasPrefix(n, "dnslb_dnssec_") {
			continue // exported for signed zones only: dnslb.TestSignedZoneRuntime checks them
		}
		if !exported[n] {
			t.Errorf("%s uses %s, which dnslb does not export", used[n], n)
		}
	}
	if vip == 0 {
		t.Errorf("neither the dashboard nor the rules use a dnslb_vip_ metric: the VIP state is not shown")
	}
	if t.Failed() {
		var all []string
		for n := range exported {
			all = append(all, n)
		}
		slices.Sort(all)
		t.Logf("exported: %s", strings.Join(all, " "))
	}
}

// TestShippedDashboardPromQL: every query of the dashboard parses, with
// Grafana's variables put in (promtool checks them as recording rules).
func TestShippedDashboardPromQL(t *testing.T) {
	promtool := requireTool(t, "promtool")
	vars := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$pool", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for i, q := range dashboardQueries(t) {
		// A variable's label_values(selector, label) is Grafana's: its
		// selector is the PromQL.
		if m := labelValues.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		expr, _ := json.Marshal(vars.Replace(q)) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s\n%s", err, out, b.String())
	}
}
