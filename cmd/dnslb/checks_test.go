package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestPoolChecksConfig: `checks:` and the address rule are validated by
// `dnslb check`, each problem with its file, line and key path.
func TestPoolChecksConfig(t *testing.T) {
	// www has two members (192.0.2.10, .11), solo one (192.0.2.20).
	const zone = goodZone + "www A 192.0.2.11\nsolo A 192.0.2.20\n"
	const head = "zones:\n  - {origin: example.test., file: z.zone}\npools:\n  www.example.test.:\n" // body from line 5
	const www = "pools[www.example.test.]"
	tests := []struct {
		name string
		yaml string
		want []problemAt // none: the file is ok
	}{
		{"two checks", head + "    checks:\n      - {type: http, port: 8080, path: /healthz}\n      - {type: tcp, port: 9000}\n", nil},
		{"check_address", head + "    checks:\n      - {type: http, port: 8080}\n      - {type: tcp, port: 9000, address: check_address}\n" +
			"    members:\n      192.0.2.10: {check_address: 10.0.0.10}\n      192.0.2.11: {check_address: 10.0.0.11}\n", nil},
		{"fixed address in a pool of one", "zones:\n  - {origin: example.test., file: z.zone}\npools:\n  solo.example.test.:\n" +
			"    checks:\n      - {type: tcp, port: 9000, address: 10.0.0.20}\n", nil},
		{"check and checks", head + "    check: {type: tcp, port: 80}\n    checks:\n      - {type: tcp, port: 81}\n",
			[]problemAt{{line: 6, msg: www + ".checks: check and checks together; write the check as one of checks"}}},
		{"checks entry invalid", head + "    checks:\n      - {type: tcp, port: 80}\n      - type: http\n        port: 70000\n",
			[]problemAt{{line: 8, msg: www + ".checks[1].port: 70000 out of range 0-65535"}}},
		{"checks entry without type", head + "    checks:\n      - {port: 80}\n",
			[]problemAt{{line: 6, msg: www + ".checks[0].type: missing (tcp, http, https, dns, exec or none)"}}},
		{"checks unknown key", head + "    checks:\n      - type: tcp\n        port: 80\n        adress: 10.0.0.1\n",
			[]problemAt{{line: 8, msg: www + ".checks[0].adress: unknown key"}}},
		{"address not an IP", head + "    checks:\n      - type: tcp\n        port: 80\n        address: backend.example\n",
			[]problemAt{{line: 8, msg: www + `.checks[0].address: "backend.example" is not an IP address, member or check_address`}}},
		{"fixed address with two members", head + "    checks:\n      - {type: http, port: 8080}\n      - type: tcp\n        port: 9000\n        address: 10.0.0.10\n",
			[]problemAt{{line: 9, msg: www + ".checks[1].address: a fixed address would be probed for each of the pool's 2 members; " +
				"give each member its own with members[ADDR].check_address and address: check_address"}}},
		{"check_address missing", head + "    checks:\n      - {type: tcp, port: 9000, address: check_address}\n" +
			"    members:\n      192.0.2.10: {check_address: 10.0.0.10}\n      192.0.2.11: {weight: 2}\n",
			[]problemAt{{line: 9, msg: www + ".members[192.0.2.11].check_address: not set, and " + www + ".checks[0].address is check_address"}}},
		{"check_address not an IP", head + "    check: {type: tcp, port: 80}\n    members:\n      192.0.2.10: {check_address: nat.example}\n",
			[]problemAt{{line: 7, msg: www + `.members[192.0.2.10].check_address: "nat.example" is not an IP address`}}},
		{"check_address unused", head + "    check: {type: tcp, port: 80}\n    members:\n      192.0.2.10: {check_address: 10.0.0.10}\n",
			[]problemAt{{line: 7, msg: www + ".members[192.0.2.10].check_address: no check of the pool probes it (give one of checks address: check_address)"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"dnslb.yaml": tc.yaml, "z.zone": zone})
			file := filepath.Join(dir, "dnslb.yaml")
			var out, errw bytes.Buffer
			n := runCheck(file, &out, &errw)
			if len(tc.want) == 0 {
				if n != 0 {
					t.Fatalf("%d problems:\n%s", n, errw.String())
				}
				return
			}
			got := strings.Split(strings.TrimSpace(errw.String()), "\n")
			if n != len(tc.want) || len(got) != len(tc.want) {
				t.Fatalf("got %d problems:\n%s\nwant %d: %+v", n, errw.String(), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if re := w.re(file); !re.MatchString(got[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], re)
				}
			}
		})
	}
}
