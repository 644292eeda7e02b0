package dnslb

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// gatherFamilies scrapes the runtime's registry.
func gatherFamilies(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// seriesValues returns name's values keyed by the value of label.
func seriesValues(mfs map[string]*dto.MetricFamily, name, label string) map[string]float64 {
	out := map[string]float64{}
	mf := mfs[name]
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		key := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				key = l.GetValue()
			}
		}
		switch {
		case m.Counter != nil:
			out[key] = m.GetCounter().GetValue()
		case m.Gauge != nil:
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestMetricsPoolAnswersAndZoneSerial(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "7", "")
	fc := baseConfig(dir)
	rt := newTestRuntime(t, dir, fc, zerolog.Nop())

	const asks = 6 // the first a miss, the rest cache hits: both count
	for range asks {
		if resp := askRT(t, rt, "www.example.test.", dns.TypeA); len(resp.Answer) != 2 {
			t.Fatalf("www A: %v", resp)
		}
	}
	mfs := gatherFamilies(t, rt.Metrics())
	leads := seriesValues(mfs, "dnslb_pool_answers_total", "member")
	var sum float64
	for _, v := range leads {
		sum += v
	}
	if len(leads) != 2 || sum != asks {
		t.Errorf("dnslb_pool_answers_total by member = %v, want 2 members summing to %d", leads, asks)
	}
	if mf := mfs["dnslb_pool_answers_total"]; mf != nil && mf.GetType() != dto.MetricType_COUNTER {
		t.Errorf("dnslb_pool_answers_total is a %v", mf.GetType())
	}
	if got := seriesValues(mfs, "dnslb_zone_serial", "zone"); got["example.test."] != 7 {
		t.Errorf("dnslb_zone_serial = %v, want example.test. 7", got)
	}

	writeZone(t, dir, "8", "")
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	mfs = gatherFamilies(t, rt.Metrics())
	if got := seriesValues(mfs, "dnslb_zone_serial", "zone"); got["example.test."] != 8 {
		t.Errorf("after reload: dnslb_zone_serial = %v, want example.test. 8", got)
	}
	// The counters survive the reload.
	sum = 0
	for _, v := range seriesValues(mfs, "dnslb_pool_answers_total", "member") {
		sum += v
	}
	if sum != asks {
		t.Errorf("after reload: dnslb_pool_answers_total sums to %v, want %d", sum, asks)
	}
}

// Under OpenMetrics a counter's family name drops "_total": a gauge named
// like that family collides with it (dnslb_tcp_connections did).
func TestMetricsNoOpenMetricsCollision(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	rt := newTestRuntime(t, dir, baseConfig(dir), zerolog.Nop())
	mfs := gatherFamilies(t, rt.Metrics())
	if mfs["dnslb_tcp_connections_open"] == nil {
		t.Error("no dnslb_tcp_connections_open")
	}
	for name, mf := range mfs {
		if mf.GetType() == dto.MetricType_COUNTER || !strings.HasPrefix(name, "dnslb_") {
			continue
		}
		if c := mfs[name+"_total"]; c != nil && c.GetType() == dto.MetricType_COUNTER {
			t.Errorf("%s (%v) collides with the counter %s_total under OpenMetrics", name, mf.GetType(), name)
		}
	}
}

func TestSetBuildInfo(t *testing.T) {
	m := NewMetrics()
	if err := m.SetBuildInfo("1.2.3", "abc", "go1.99"); err != nil {
		t.Fatal(err)
	}
	mf := gatherFamilies(t, m)["dnslb_build_info"]
	if mf == nil || len(mf.GetMetric()) != 1 {
		t.Fatalf("dnslb_build_info: %v", mf)
	}
	got := map[string]string{}
	for _, l := range mf.GetMetric()[0].GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	want := map[string]string{"version": "1.2.3", "commit": "abc", "goversion": "go1.99"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, got[k], v, got)
		}
	}
	if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("dnslb_build_info = %v, want 1", v)
	}
	if err := m.SetBuildInfo("1.2.3", "abc", "go1.99"); err == nil {
		t.Error("a second SetBuildInfo: no error")
	}
}
