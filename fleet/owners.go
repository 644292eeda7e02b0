package fleet

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// score is node's weight for key in rendezvous hashing. It must be the
// same on every node, in every run and release: FNV-1a with no seed,
// then a 64-bit finaliser (MurmurHash3's) so that the key's last bytes
// move the high bits as much as its first.
func score(node, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// owners returns the k of alive with the highest scores for key (ties to
// the lower name), sorted by name; k <= 0 or k >= len(alive) is all.
// Removing a node moves only the keys it owned: the others' scores do
// not change.
func owners(alive []string, key string, k int) []string {
	if k <= 0 || k >= len(alive) {
		out := slices.Clone(alive)
		slices.Sort(out)
		return out
	}
	type scored struct {
		name  string
		score uint64
	}
	s := make([]scored, len(alive))
	for i, n := range alive {
		s[i] = scored{n, score(n, key)}
	}
	slices.SortFunc(s, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	out := make([]string, k)
	for i := range out {
		out[i] = s[i].name
	}
	slices.Sort(out)
	return out
}
