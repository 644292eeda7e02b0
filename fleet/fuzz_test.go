package fleet

import (
	"testing"

	"github.com/dnslb/dnslb/internal/fuzzguard"
)

// FuzzReceive feeds what another node could send (a direct message or a
// push-pull state) to a node: no input may panic, hang or cost more than
// the per-input limit, and whatever is taken in must leave the node's
// views consistent.
func FuzzReceive(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"type":"override","from":"b","overrides":[{"member":"192.0.2.10","mode":"drain","since":"2026-01-01T00:00:00Z","stamp":{"wall":5,"node":"b"}}]}`,
		`{"v":1,"type":"state","from":"b","overrides":[{"member":"192.0.2.10","mode":"","stamp":{"wall":9,"node":"c"}}],"observations":{"version":{"inc":1,"seq":2},"set":{"192.0.2.10:80 tcp":{"up":false,"checked":true}}},"meta":{"version":{"inc":1,"seq":1},"meta":{"config_hash":"ab","serials":{"example.test.":7}}}}`,
		`{"v":1,"type":"observations","from":"c","observations":{"version":{"inc":3,"seq":1},"set":{}}}`,
		`{"v":1,"type":"leave","from":"c"}`,
		`{"v":2,"type":"meta","from":"c","meta":{}}`,
		`{"v":1,"type":"override","from":"b","overrides":[{"member":"","stamp":{}}]}`,
		`[]`, `{`, ``,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	n, err := New(Config{Cluster: "test", NodeName: "a", Bind: "127.0.0.1:0", Timing: fast, Log: testLog("a")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	f.Fuzz(func(t *testing.T, buf []byte, state bool) {
		fuzzguard.Run(t, "receive", fuzzguard.Limit, func() {
			n.receive(append([]byte(nil), buf...), state)
			for _, o := range n.Overrides() {
				if o.Mode == "" {
					t.Fatalf("a lifted override is in force: %+v", o)
				}
			}
			_ = n.Nodes()
			_ = n.Divergences()
			_ = n.Owners("192.0.2.10:80 tcp", 1)
		})
	})
}
