package answer

import (
	"fmt"
	"testing"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

// A small cache has a small front table, so many names share its slots:
// every answer must still be the one for its own question, on the first
// ask and from the cache, and the LRU's evictions must not matter.
func TestCacheFrontSlotsShared(t *testing.T) {
	cached := NewAuthority(testView(t), 0, nil)
	cached.SetCacheBytes(64 << 10) // 4 KiB per shard, about 10 entries; 32 front slots
	plain := NewAuthority(testView(t), 0, nil)
	plain.SetCacheBytes(0)
	var names []string
	for i := range 150 {
		names = append(names, fmt.Sprintf("n%d.wild.example.test.", i), fmt.Sprintf("nx%d.example.test.", i))
	}
	names = append(names, "mail.example.test.", "example.test.")
	for round := range 4 { // odd rounds ask each question twice in a row: hits

		for i, name := range names {
			for _, qt := range []uint16{dns.TypeA, dns.TypeMX} {
				id := uint16(round*1000 + i)
				want := serve(t, plain, dnstest.Query(t, name, qt, id), false)
				for range 1 + round%2 {
					got := serve(t, cached, dnstest.Query(t, name, qt, id), false)
					if got.String() != want.String() {
						t.Fatalf("round %d %s/%d:\n%s\nwant\n%s", round, name, qt, got, want)
					}
				}
			}
		}
	}
	if hits, _ := cached.CacheStats(); hits < uint64(len(names)) {
		t.Errorf("%d cache hits, want at least %d", hits, len(names))
	}
}
