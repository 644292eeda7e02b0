package vip

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"
)

// TestAgentHandler: the admin endpoints of `dnslb vip` serve the
// instances' state as JSON and as Prometheus metrics.
func TestAgentHandler(t *testing.T) {
	sw := &fakeSwitch{}
	in := newInstance(testSpec(150), sw.attach("192.0.2.11"), nil, zerolog.Nop())
	a := &Agent{instances: []*instance{in}}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return resp
	}

	resp := get("/healthz")
	resp.Body.Close()

	resp = get("/api/v1/vip")
	var st []Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(st) != 1 || st[0].Name != "front" || st[0].VRID != 51 || st[0].Priority != 150 || st[0].State != StateInit.String() {
		t.Fatalf("status %+v", st)
	}

	resp = get("/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	state := families["dnslb_vip_state"]
	if state == nil {
		t.Fatalf("no dnslb_vip_state in %v", families)
	}
	ones := 0
	for _, m := range state.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if m.GetGauge().GetValue() == 1 {
			ones++
			if labels["instance"] != "front" || !strings.EqualFold(labels["state"], StateInit.String()) {
				t.Errorf("current state series %v", labels)
			}
		}
	}
	if ones != 1 {
		t.Errorf("%d states at 1, want exactly one", ones)
	}
	if p := families["dnslb_vip_priority"]; p == nil || p.GetMetric()[0].GetGauge().GetValue() != 150 {
		t.Errorf("priority: %v", p)
	}
}
