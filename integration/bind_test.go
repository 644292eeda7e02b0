package integration

// BIND (named) as a signed secondary of dnslb's filtered view, beside
// the NSD and Knot ones in xfr_test.go.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startBINDSecondary starts named in the foreground as a secondary of
// example.test. from primary, signed with tsigKeys[0], taking NOTIFY
// from it, and returns its address.
func startBINDSecondary(t *testing.T, primary string) string {
	t.Helper()
	named := requireTool(t, "named")
	k := tsigKeys[0]
	dir := t.TempDir()
	host, pport, _ := strings.Cut(primary, ":")
	addr, _ := startOnFreePort(t, "named", named, "example.test.", func(port int) []string {
		conf := fmt.Sprintf(`options {
	directory %q;
	pid-file %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	allow-new-zones no;
};
key %q {
	algorithm %s;
	secret %q;
};
controls { };
zone "example.test." {
	type secondary;
	file "example.test.db";
	primaries port %s { %s key %q; };
	allow-notify { %s; };
};
`, dir, filepath.Join(dir, "named.pid"), port, k.name, k.nsdAlg, k.secret, pport, host, k.name, host)
		confPath := filepath.Join(dir, "named.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-g", "-c", confPath, "-n", "1"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "root")
		}
		return args
	})
	return addr
}

// TestTransferFilteredToBIND: BIND as a signed secondary of a filtered
// zone, as Knot in TestTransferFilteredToKnot.
func TestTransferFilteredToBIND(t *testing.T) {
	requireTool(t, "named")
	testFilteredSecondary(t, "BIND", startBINDSecondary)
}
