package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
)

func TestPrintFleet(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fs := admin.FleetStatus{Name: "prod", Node: "ns1", Health: "majority", ProbesPerTarget: 1, Isolated: true,
		Nodes: []admin.FleetNode{
			{Name: "ns1", Address: "192.0.2.11:7946", State: "alive", Self: true,
				Observations: map[string]admin.FleetObservation{"a": {Up: true}, "b": {}}},
			{Name: "ns2", Address: "192.0.2.12:7946", State: "dead", LastContact: now.Add(-90 * time.Second), Down: 1,
				Observations: map[string]admin.FleetObservation{"c": {Checked: true}}},
		},
		Divergences: []admin.Divergence{
			{Node: "ns2", What: "serial", Zone: "example.test.", Theirs: "8", Ours: "7"},
			{Node: "ns2", What: "config", Theirs: "bb", Ours: "aa"},
		}}
	var b strings.Builder
	printFleet(&b, fs, now)
	out := b.String()
	for _, want := range []string{
		"fleet prod: health majority, 1 probe(s) per target; ISOLATED",
		"NODE             ADDRESS          STATE  LAST CONTACT  TARGETS  DOWN",
		"ns1 (this node)  192.0.2.11:7946  alive  -             2        0",
		"ns2              192.0.2.12:7946  dead   1m30s ago     1        1",
		"ns2 disagrees on example.test.: serial 8 there, 7 here",
		"ns2 disagrees on the pools' config: bb there, aa here",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
