package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Build stamps, set by a packager with
//
//	go build -ldflags "-X main.version=1.2.0 -X main.commit=$(git rev-parse HEAD) -X main.date=2026-01-02T03:04:05Z"
//
// Left empty (version "dev"), they come from what the Go toolchain records
// in the binary (debug.ReadBuildInfo): the module version of a `go install
// …@version`, and the git revision and commit time of a build in a clone.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo says which dnslb this is: `--version`, the serving log line and
// dnslb_build_info carry it.
type buildInfo struct {
	Version string
	Commit  string // the git revision; "" when unknown
	// Date is the build date given by ldflags, else the commit's time
	// (which keeps rebuilds of one commit identical).
	Date      string
	Modified  bool   // built from a tree with uncommitted changes
	GoVersion string // the toolchain that built the binary
}

// currentBuild is the running binary's buildInfo.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return resolveBuild(version, commit, date, bi)
}

// resolveBuild prefers the ldflags stamps and fills what they leave out
// from bi (nil when the binary carries no build info).
func resolveBuild(ver, rev, when string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: ver, Commit: rev, Date: when, GoVersion: runtime.Version()}
	if b.Version == "" {
		b.Version = "dev"
	}
	if bi == nil {
		return b
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	// "(devel)" is what a build outside any version control reports.
	if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	vcsRev, vcsTime, modified := "", "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcsRev = s.Value
		case "vcs.time":
			vcsTime = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if b.Commit == "" {
		b.Commit = vcsRev
		// The tree's state is only known for the revision the toolchain read.
		b.Modified = modified
	}
	if b.Date == "" {
		b.Date = vcsTime
	}
	return b
}

// String is the text of `dnslb --version`: "dnslb version V" first, as
// cobra prints it, then one "key: value" line each.
func (b buildInfo) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "dnslb version %s\n", b.Version)
	c := b.Commit
	if c == "" {
		c = "unknown"
	}
	if b.Modified {
		c += " (modified)"
	}
	fmt.Fprintf(&s, "commit: %s\n", c)
	d := b.Date
	if d == "" {
		d = "unknown"
	}
	fmt.Fprintf(&s, "date: %s\n", d)
	fmt.Fprintf(&s, "go: %s %s/%s\n", b.GoVersion, runtime.GOOS, runtime.GOARCH)
	return s.String()
}

// pageVersion is the version as the status page shows it: with the short
// commit, so that two nodes on different builds of one version differ.
func (b buildInfo) pageVersion() string {
	v := b.Version
	if c := b.Commit; c != "" {
		v += " (" + c[:min(len(c), 12)]
		if b.Modified {
			v += ", modified"
		}
		v += ")"
	}
	return v
}
