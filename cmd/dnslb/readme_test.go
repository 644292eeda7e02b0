package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEConfigExamples checks every YAML example in the README with
// `dnslb check`, so the documentation cannot drift from what the server
// accepts.
func TestREADMEConfigExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	zone, err := os.ReadFile("../../examples/zones/example.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d YAML examples in the README; want the server's and the VIP agent's", len(blocks))
	}
	for i, b := range blocks {
		dir := writeFiles(t, map[string]string{
			"dnslb.yaml":              string(b[1]),
			"zones/example.test.zone": string(zone),
		})
		var out, errw bytes.Buffer
		if n := runCheck(filepath.Join(dir, "dnslb.yaml"), &out, &errw); n != 0 {
			t.Errorf("README example %d has %d problems:\n%s\n%s", i+1, n, strings.ReplaceAll(errw.String(), dir+"/", ""), b[1])
		}
	}
}
