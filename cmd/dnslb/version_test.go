package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveBuild(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/dnslb/dnslb", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	installed := &debug.BuildInfo{GoVersion: "go1.99.2",
		Main: debug.Module{Path: "github.com/dnslb/dnslb", Version: "v1.4.0"}}
	tests := []struct {
		name           string
		ver, rev, when string
		bi             *debug.BuildInfo
		want           buildInfo
	}{
		{"no build info", "dev", "", "", nil,
			buildInfo{Version: "dev", GoVersion: runtime.Version()}},
		{"vcs stamps", "dev", "", "", vcs,
			buildInfo{Version: "dev", Commit: "0123456789abcdef", Date: "2026-01-02T03:04:05Z", Modified: true, GoVersion: "go1.99.1"}},
		{"ldflags win", "1.2.0", "feedface", "2026-03-04T00:00:00Z", vcs,
			buildInfo{Version: "1.2.0", Commit: "feedface", Date: "2026-03-04T00:00:00Z", GoVersion: "go1.99.1"}},
		{"ldflags version only", "1.2.0", "", "", vcs,
			buildInfo{Version: "1.2.0", Commit: "0123456789abcdef", Date: "2026-01-02T03:04:05Z", Modified: true, GoVersion: "go1.99.1"}},
		{"go install @version", "dev", "", "", installed,
			buildInfo{Version: "v1.4.0", GoVersion: "go1.99.2"}},
		{"empty ldflags version", "", "", "", nil,
			buildInfo{Version: "dev", GoVersion: runtime.Version()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolveBuild(tt.ver, tt.rev, tt.when, tt.bi); got != tt.want {
				t.Errorf("resolveBuild = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--version"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"dnslb version ", "\ncommit: ", "\ndate: ", "\ngo: " + runtime.Version()} {
		if !strings.Contains(got, want) {
			t.Errorf("--version output lacks %q:\n%s", want, got)
		}
	}
}
