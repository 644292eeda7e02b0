package healthcheck

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestNewSnapshot(t *testing.T) {
	for _, n := range []int{0, 1, statusChunk, statusChunk + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			in := map[TargetKey]Status{}
			for i := range n {
				k := TargetKey{Check: "tcp", Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 80)}
				in[k] = Status{Up: i%3 != 0, Checked: true}
			}
			s := NewSnapshot(7, in)
			if s.Generation != 7 || s.Len() != n {
				t.Fatalf("generation %d, len %d; want 7, %d", s.Generation, s.Len(), n)
			}
			seen := 0
			for k, st := range s.All() {
				seen++
				if want := in[k]; st != want || s.Up(k) != want.Up {
					t.Errorf("%s: %+v (up %v), want %+v", k, st, s.Up(k), want)
				}
			}
			if seen != n {
				t.Errorf("All yielded %d statuses, want %d", seen, n)
			}
			unknown := TargetKey{Check: "tcp", Addr: netip.MustParseAddrPort("192.0.2.1:80")}
			if !s.Up(unknown) {
				t.Error("an unknown key must be up")
			}
		})
	}
}
