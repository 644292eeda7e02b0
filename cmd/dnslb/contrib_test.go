package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestPackagedConfig checks the config the .deb installs as
// /etc/dnslb/dnslb.yaml, beside the example zone it installs with it.
func TestPackagedConfig(t *testing.T) {
	cfg, err := os.ReadFile("../../contrib/deb/dnslb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	zone, err := os.ReadFile("../../examples/zones/example.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{
		"dnslb.yaml":              string(cfg),
		"zones/example.test.zone": string(zone),
	})
	var out, errw bytes.Buffer
	if n := runCheck(filepath.Join(dir, "dnslb.yaml"), &out, &errw); n != 0 {
		t.Errorf("contrib/deb/dnslb.yaml has %d problems:\n%s", n, errw.String())
	}
}
