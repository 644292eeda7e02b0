package admin

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fleetBackend is a fakeBackend that is a node of a fleet.
type fleetBackend struct {
	*fakeBackend
	fleet FleetStatus
}

func (b *fleetBackend) Fleet() (FleetStatus, bool) { return b.fleet, true }

func testFleet() FleetStatus {
	return FleetStatus{Name: "prod", Node: "ns1", Health: "majority", ProbesPerTarget: 1,
		Nodes: []FleetNode{
			{Name: "ns1", Address: "192.0.2.11:7946", State: "alive", Self: true, ConfigHash: "aa11",
				Observations: map[string]FleetObservation{"192.0.2.1:80 http": {Up: true, Checked: true}}},
			{Name: "ns2", Address: "192.0.2.12:7946", State: "alive", LastContact: t0.Add(-2 * time.Second), ConfigHash: "bb22",
				Observations: map[string]FleetObservation{"192.0.2.2:80 http": {Up: false, Checked: true}}, Down: 1},
			{Name: "ns3", Address: "192.0.2.13:7946", State: "dead", LastContact: t0.Add(-time.Minute), Observations: map[string]FleetObservation{}},
		},
		Divergences: []Divergence{
			{Node: "ns2", What: "config", Theirs: "bb22", Ours: "aa11"},
			{Node: "ns2", What: "serial", Zone: "example.test.", Theirs: "8", Ours: "7"},
		}}
}

func TestFleetEndpoint(t *testing.T) {
	s := startServer(t, newFakeBackend(), nil, Options{})
	wantJSONError(t, do(t, "GET", "http://"+s.Addr()+"/api/v1/fleet", "", ""), 404, "not in a fleet")
	page := string(do(t, "GET", "http://"+s.Addr()+"/", "", "").body)
	if strings.Contains(page, "Fleet") {
		t.Error("the page of a node in no fleet has a fleet section")
	}

	fb := &fleetBackend{newFakeBackend(), testFleet()}
	s = startServer(t, fb, nil, Options{})
	r := do(t, "GET", "http://"+s.Addr()+"/api/v1/fleet", "", "")
	if r.code != 200 {
		t.Fatalf("GET /api/v1/fleet: %d %s", r.code, r.body)
	}
	var got FleetStatus
	decodeStrict(t, r.body, &got)
	if got.Name != "prod" || len(got.Nodes) != 3 || got.Nodes[1].Observations["192.0.2.2:80 http"].Up || got.Nodes[1].Down != 1 || len(got.Divergences) != 2 {
		t.Errorf("fleet %+v", got)
	}
	for _, field := range []string{`"isolated":false`, `"probes_per_target":1`, `"last_contact":"2026-03-01T11:59:58Z"`, `"config_hash":"bb22"`, `"what":"serial"`, `"zone":"example.test."`} {
		var compact bytes.Buffer
		_ = json.Compact(&compact, r.body)
		if !strings.Contains(compact.String(), field) {
			t.Errorf("fleet JSON lacks %s: %s", field, r.body)
		}
	}

	fb.fleet.Isolated = true
	fb.pools[0].Members[1].Fleet = map[string]string{"ns1": "down", "ns2": "down", "ns3": "up"}
	page = string(do(t, "GET", "http://"+s.Addr()+"/", "", "").body)
	for _, want := range []string{
		`<section class="card fleet">`,
		`health: majority, 1 probe(s) per target`,
		`>ISOLATED</span>`,
		`<tr class="node state-dead" data-node="ns3">`,
		`ns1 <span class="muted">(this node)</span>`,
		`ns2 disagrees on the serial of example.test.: 8 there, 7 here`,
		`config (bb22 there, aa11 here)`,
		`<span class="muted fleet-view" title="ns1 down, ns2 down, ns3 up">fleet: 1/3 up</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestClientFleet(t *testing.T) {
	fb := &fleetBackend{newFakeBackend(), testFleet()}
	s := NewServer("127.0.0.1:0", fb, nil, Options{Now: func() time.Time { return t0 }}, zerolog.Nop())
	hs := httptest.NewServer(s.handler)
	t.Cleanup(hs.Close)
	c, err := NewClient(hs.URL, ClientOptions{HTTPClient: hs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := c.Fleet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fs.Node != "ns1" || len(fs.Nodes) != 3 || fs.Nodes[2].State != "dead" {
		t.Errorf("client fleet %+v", fs)
	}
	_, err = clientFor(t, newFakeBackend(), "", "").Fleet(t.Context())
	wantAPIError(t, err, 404, "not in a fleet")
}
