package dnsserver

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// udpBurst is how many queries the UDP benchmark's client has outstanding:
// enough that the server reads them in batches, as under load.
const udpBurst = 16

// BenchmarkUDPServe measures the UDP path through the server (read batch,
// answer, send batch) with a client on loopback that sends bursts of
// queries and reads the replies: on a specific address and on a wildcard
// one (where every reply carries its source address). ns/query is the
// wall time per query; cpu-ns/query the process's CPU time (server and
// client), which other load on the machine disturbs less.
func BenchmarkUDPServe(b *testing.B) {
	for _, tc := range []struct{ name, listen string }{
		{"specific", "127.0.0.1:0"},
		{"wildcard", "0.0.0.0:0"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := startServerOn(b, Options{UDPSockets: 1}, tc.listen)
			_, port, _ := net.SplitHostPort(srv.Addrs()[0])
			c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", port))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			wire := benchWire(b, "www.example.test.", dns.TypeA)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			start, cpu0 := time.Now(), cpuTime(b)
			queries := 0
			for b.Loop() {
				for range udpBurst {
					if _, err := c.Write(wire); err != nil {
						b.Fatal(err)
					}
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				for range udpBurst {
					if _, err := c.Read(buf); err != nil {
						b.Fatal(err)
					}
				}
				queries += udpBurst
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(queries), "ns/query")
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(queries), "cpu-ns/query")
		})
	}
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
