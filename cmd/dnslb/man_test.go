package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

var updateMan = flag.Bool("update-man", false, "rewrite contrib/man from the commands (go test ./cmd/dnslb -run TestManPages -update-man)")

// manDir is where the man pages the .deb ships are kept.
const manDir = "../../contrib/man"

// genManPages writes dnslb(1) and a page per command into dir.
func genManPages(t *testing.T, dir string) {
	t.Helper()
	root := newRootCommand()
	root.InitDefaultCompletionCmd() // as Execute adds it: `dnslb completion`
	var noTag func(*cobra.Command)
	noTag = func(c *cobra.Command) {
		c.DisableAutoGenTag = true // no generation date in the text
		for _, sub := range c.Commands() {
			noTag(sub)
		}
	}
	noTag(root)
	header := &doc.GenManHeader{Section: "1", Source: "dnslb", Manual: "dnslb manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		t.Fatal(err)
	}
}

// thLine is a page's title line, which carries the day it was generated:
// left out of the comparison.
var thLine = regexp.MustCompile(`(?m)^\.TH .*$`)

// TestManPagesCurrent fails when contrib/man is not what the commands'
// help generates: a flag or command changed without -update-man.
func TestManPagesCurrent(t *testing.T) {
	fresh := t.TempDir()
	genManPages(t, fresh)
	if *updateMan {
		old, _ := filepath.Glob(filepath.Join(manDir, "*.1"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(manDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := func(dir string) []string {
		files, err := filepath.Glob(filepath.Join(dir, "*.1"))
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = filepath.Base(f)
		}
		return files
	}
	want := names(fresh)
	for _, name := range want {
		b, err := os.ReadFile(filepath.Join(fresh, name))
		if err != nil {
			t.Fatal(err)
		}
		if *updateMan {
			if err := os.WriteFile(filepath.Join(manDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(filepath.Join(manDir, name))
		if err != nil {
			t.Errorf("%s: %v: run go test ./cmd/dnslb -run TestManPages -update-man", name, err)
			continue
		}
		if !bytes.Equal(thLine.ReplaceAll(have, nil), thLine.ReplaceAll(b, nil)) {
			t.Errorf("contrib/man/%s is stale: run go test ./cmd/dnslb -run TestManPages -update-man", name)
		}
	}
	if got := names(manDir); !slices.Equal(got, want) {
		t.Errorf("contrib/man has %v, the commands make %v: run go test ./cmd/dnslb -run TestManPages -update-man", got, want)
	}
}
