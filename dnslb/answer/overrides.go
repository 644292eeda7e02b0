package answer

import "net/netip"

// Overrides is an immutable set of operator overrides (drain, force-down)
// by member address. A nil *Overrides holds none.
type Overrides struct {
	byAddr map[netip.Addr]Override
	gen    uint64
}

// NewOverrides builds a set; gen must differ from the previous set's.
func NewOverrides(m map[netip.Addr]Override, gen uint64) *Overrides {
	c := make(map[netip.Addr]Override, len(m))
	for a, o := range m {
		c[a.Unmap()] = o
	}
	return &Overrides{byAddr: c, gen: gen}
}

// Has reports whether addr is drained or forced down.
func (o *Overrides) Has(addr netip.Addr) bool {
	if o == nil || len(o.byAddr) == 0 {
		return false
	}
	_, ok := o.byAddr[addr]
	return ok
}

// Drained reports whether addr is drained.
func (o *Overrides) Drained(addr netip.Addr) bool {
	if o == nil || len(o.byAddr) == 0 {
		return false
	}
	ov, ok := o.byAddr[addr]
	return ok && ov.Mode == OverrideDrain
}

// Get returns addr's override.
func (o *Overrides) Get(addr netip.Addr) (Override, bool) {
	if o == nil {
		return Override{}, false
	}
	ov, ok := o.byAddr[addr]
	return ov, ok
}

// Generation identifies the set.
func (o *Overrides) Generation() uint64 {
	if o == nil {
		return 0
	}
	return o.gen
}

// Clone returns a copy of the overrides, to build the next set from.
func (o *Overrides) Clone() map[netip.Addr]Override {
	c := map[netip.Addr]Override{}
	if o != nil {
		for a, ov := range o.byAddr {
			c[a] = ov
		}
	}
	return c
}
