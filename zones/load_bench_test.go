package zones

import (
	"fmt"
	"strconv"
	"testing"
	"testing/fstest"
)

// largeZone returns a zone file of n A records at distinct names, the shape
// of a big load-balancer or reverse zone.
func largeZone(n int) []byte {
	b := make([]byte, 0, n*24+128)
	b = append(b, "$ORIGIN big.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n"...)
	for i := range n {
		b = append(b, 'h')
		b = strconv.AppendInt(b, int64(i), 10)
		b = fmt.Appendf(b, " A 10.%d.%d.%d\n", i>>16&255, i>>8&255, i&255)
	}
	return b
}

func BenchmarkLoadLarge(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		data := largeZone(n)
		fsys := fstest.MapFS{"big.test.zone": {Data: data}}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				z, err := Load(Source{Origin: "big.test.", FS: fsys, Path: "big.test.zone"})
				if err != nil {
					b.Fatal(err)
				}
				if z.Records() != n+3 {
					b.Fatalf("records = %d, want %d", z.Records(), n+3)
				}
			}
		})
	}
}
