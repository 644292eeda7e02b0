package vip

import (
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestShippedVIPMetricNames: every dnslb_vip_ metric that the shipped
// Grafana dashboard and alert rules query is one the agent's /metrics
// exports (the other dnslb names are checked against the built server by
// the integration tests).
func TestShippedVIPMetricNames(t *testing.T) {
	sw := &fakeSwitch{}
	in := newInstance(testSpec(150), sw.attach("192.0.2.11"), nil, zerolog.Nop())
	a := &Agent{instances: []*instance{in}}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`\bdnslb_vip_[a-zA-Z0-9_]+`)
	exported := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		// HELP lines too: a family with no series yet (drops by reason)
		// is still one the agent exports.
		line = strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if n := name.FindString(line); n != "" && strings.HasPrefix(line, n) {
			exported[n] = true
		}
	}
	used := 0
	for _, f := range []string{"../contrib/grafana/dnslb.json", "../contrib/prometheus/alerts.yml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(data), -1) {
			used++
			if !exported[n] {
				t.Errorf("%s uses %s, which the VIP agent does not export (it exports %v)", f, n, exported)
			}
		}
	}
	if used == 0 {
		t.Error("the shipped dashboard and rules use no dnslb_vip_ metric")
	}
}
