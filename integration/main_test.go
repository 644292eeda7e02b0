package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// dnslbBin is the path of the binary built once for the whole package.
var dnslbBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dnslb-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dnslbBin = filepath.Join(dir, "dnslb")
	build := exec.Command("go", "build", "-o", dnslbBin, "../cmd/dnslb")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dnslb:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// inCI reports whether the tests run in CI, where nothing may skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// requireTool returns the path of an external program. Without it the test
// skips on a developer's machine and fails in CI.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if c := filepath.Join(dir, name); fileExists(c) {
				return c
			}
		}
		skipOrFail(t, fmt.Sprintf("%s not found (apt-get install it; .ci/run does)", name))
	}
	return p
}

// requireRoot skips (or fails in CI) when the test cannot create network namespaces.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for network namespaces")
	}
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if inCI() {
		t.Fatalf("CI=true and %s", why)
	}
	t.Skip(why)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
