package zones

import (
	"hash/maphash"
	"math/bits"
)

// nodeIndex finds a zone's nodes by canonical name. The nodes live in one
// slice and an open-addressing hash table maps names to their positions.
//
// A Go map would cost a zone of a million names about 50 bytes a name (its
// tables are half empty just past a power of two) plus an allocation per
// node; this costs 8 bytes a slot, and no allocation per node. Each slot
// keeps 32 bits of the name's hash, so a probe rarely touches a node whose
// name does not match.
//
// It is filled while a zone is built and only read afterwards.
type nodeIndex struct {
	seed  maphash.Seed
	slots []uint64 // 0: empty; else the hash's high 32 bits, then position+1
	nodes []node
	sink  uint64 // keeps prefetch's loads from being optimised away
}

// maxLoadNum/maxLoadDen is the fraction of slots that may be used before
// the table grows: linear probing stays short below it.
const (
	maxLoadNum = 3
	maxLoadDen = 4
)

func newNodeIndex(hint int) nodeIndex {
	x := nodeIndex{seed: maphash.MakeSeed(), nodes: make([]node, 0, hint)}
	x.slots = make([]uint64, slotsFor(hint))
	return x
}

// slotsFor returns a power of two of slots that holds n names below the
// maximum load factor, maxLoadNum/maxLoadDen.
func slotsFor(n int) int {
	need := n*maxLoadDen/maxLoadNum + 1
	return 1 << bits.Len(uint(need-1))
}

func (x *nodeIndex) hash(name string) uint64 { return maphash.String(x.seed, name) }

// prefetch loads the slots where names of hashes hs start their probes.
// Slots are scattered over megabytes: touching those of several names
// before looking them up lets the processor fetch them in parallel, where
// each lookup alone would wait for its own cache and TLB misses in turn.
func (x *nodeIndex) prefetch(hs []uint64) {
	if len(x.slots) == 0 {
		return
	}
	mask := uint64(len(x.slots) - 1)
	var sum uint64
	for _, h := range hs {
		sum += x.slots[h&mask]
	}
	x.sink += sum
}

// find returns the position of name's node, or -1.
func (x *nodeIndex) find(name string) int { return x.findHash(name, x.hash(name)) }

// findHash is find for a name whose hash is h.
func (x *nodeIndex) findHash(name string, h uint64) int {
	if len(x.slots) == 0 {
		return -1
	}
	tag := h >> 32
	mask := uint64(len(x.slots) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := x.slots[p]
		if s == 0 {
			return -1
		}
		if s>>32 == tag {
			if i := int(uint32(s)) - 1; x.nodes[i].name == name {
				return i
			}
		}
	}
}

// add appends a node for name, which must not be in the index yet, and
// returns its position. It may move the nodes: pointers to them taken
// before do not see later changes.
func (x *nodeIndex) add(name string) int { return x.addHash(name, x.hash(name)) }

// addHash is add for a name whose hash is h.
func (x *nodeIndex) addHash(name string, h uint64) int {
	if (len(x.nodes)+1)*maxLoadDen > len(x.slots)*maxLoadNum {
		x.grow()
	}
	i := len(x.nodes)
	x.nodes = append(x.nodes, node{name: name})
	x.place(h, i)
	return i
}

func (x *nodeIndex) place(h uint64, i int) {
	mask := uint64(len(x.slots) - 1)
	p := h & mask
	for x.slots[p] != 0 {
		p = (p + 1) & mask
	}
	x.slots[p] = h>>32<<32 | uint64(i+1)
}

func (x *nodeIndex) grow() {
	x.rehash(max(2*len(x.slots), slotsFor(len(x.nodes)+1)))
}

func (x *nodeIndex) rehash(slots int) {
	x.slots = make([]uint64, slots)
	for i := range x.nodes {
		x.place(maphash.String(x.seed, x.nodes[i].name), i)
	}
}

// shrink gives back what was reserved for nodes that did not come (the
// index is sized by lines, and names often own several).
func (x *nodeIndex) shrink() {
	x.nodes = clip(x.nodes)
	if n := slotsFor(len(x.nodes)); n < len(x.slots) {
		x.rehash(n)
	}
}

// len returns the number of nodes.
func (x *nodeIndex) len() int { return len(x.nodes) }
