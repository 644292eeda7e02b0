package zones

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"runtime"
	"strings"

	"github.com/miekg/dns"
)

// Source says where a zone comes from.
type Source struct {
	// Origin is the zone's apex.
	Origin string
	// FS is the root that the zone file and every $INCLUDE must stay inside
	// (normally the config file's directory).
	FS fs.FS
	// Path is the zone file's slash-separated path inside FS.
	Path string
	// Display names FS's root in messages (e.g. the config directory), so
	// that errors name files the way the operator wrote them. Optional.
	Display string
}

func (s Source) display(p string) string {
	if s.Display == "" || s.Display == "." {
		return p
	}
	return path.Join(s.Display, p)
}

// Load reads, parses, validates and indexes one zone. On failure the error
// is an ErrorList naming every problem with its file and line.
func Load(src Source) (*Zone, error) {
	origin := CanonicalName(src.Origin)
	if _, ok := dns.IsDomainName(origin); !ok {
		return nil, ErrorList{{File: src.display(src.Path), Msg: fmt.Sprintf("invalid origin %q", src.Origin)}}
	}
	src.FS = regularFiles{src.FS}
	data, err := fs.ReadFile(src.FS, src.Path)
	if err != nil {
		return nil, ErrorList{{File: src.display(src.Path), Msg: err.Error()}}
	}
	// One record per line is the common case: size the records and the
	// index once rather than grow them through a million appends. Both are
	// allocated before parsing: the collector then starts from a heap that
	// holds them, and runs fewer times while the records pile up
	// (measured: 10% less time to load a million records, and a lower
	// peak).
	lines := bytes.Count(data, []byte{'\n'}) + 1
	rrs := make([]dns.RR, 0, lines)
	b := builder{src: src, origin: origin}
	z := b.begin(lines)
	b.rrs, err = parseRecords(src, origin, data, rrs, runtime.GOMAXPROCS(0), minChunk)
	if err != nil {
		return nil, err
	}
	// Index after parsing rather than interleaved: measured faster, and
	// the long-lived index is not scattered among the parser's garbage.
	b.insertAll(z)
	// Which files the zone read (for the digest and for watching them):
	// a walk of the text, needed only when there are $INCLUDEs. Record
	// positions come from the same walk, needed only to report problems.
	var files []string
	h := sha256.New()
	walk := func() []pos {
		files = files[:0]
		h.Reset()
		positions, ok := recordPositions(src.FS, src.Path, data, 0, func(name string, data []byte) {
			files = append(files, src.display(name))
			fmt.Fprintf(h, "%s %d\n", name, len(data))
			h.Write(data)
		})
		if !ok || len(positions) != len(b.rrs) {
			return nil
		}
		return positions
	}
	if hasInclude(data) {
		b.positions = walk()
	} else {
		files = []string{src.display(src.Path)}
		fmt.Fprintf(h, "%s %d\n", src.Path, len(data))
		h.Write(data)
		b.positionsOf = func() []pos {
			return recordPositionsOnly(src, data, len(b.rrs))
		}
	}
	var pr struct {
		files  []string
		digest [32]byte
	}
	pr.files = files
	copy(pr.digest[:], h.Sum(nil))
	if err := b.finish(z); err != nil {
		return nil, err
	}
	z.Files = pr.files
	z.Digest = pr.digest
	return z, nil
}

// parseRecords parses a zone file as one zone parser would, into buf, whose
// capacity is the file's line count: in parallel, on up to workers chunks
// of at least min bytes, when the file can be cut safely (see splitChunks).
func parseRecords(src Source, origin string, data []byte, buf []dns.RR, workers, min int) ([]dns.RR, error) {
	if chunks := splitChunks(data, origin, workers, min); chunks != nil {
		rrs, err := parseChunks(src, data, chunks, buf[:cap(buf)])
		if !errors.Is(err, errChunks) {
			return rrs, err
		}
		clear(buf[:cap(buf)]) // keep no record of the attempt alive
	}
	zp := dns.NewZoneParser(bytes.NewReader(data), origin, src.Path)
	zp.SetIncludeAllowed(true)
	zp.SetIncludeFS(src.FS)
	rrs := buf[:0]
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, ErrorList{fromParseError(err, src.display, src.display(src.Path))}
	}
	return rrs, nil
}

type builder struct {
	src       Source
	origin    string
	rrs       []dns.RR
	positions []pos // positions[i] is where rrs[i] was written
	// positionsOf computes positions when a problem first needs them.
	positionsOf func() []pos
	pending     []pending
	lineOf      map[dns.RR]pos // built on the first problem

	nsNodes    []int // nodes owning NS, at the apex or cuts
	cnameNodes []int // nodes owning a CNAME
}

// pending is a problem found while records stream in, before their lines
// are known.
type pending struct {
	rr      dns.RR // nil: the zone as a whole
	msg     string
	warning bool
}

func (b *builder) errorAt(rr dns.RR, format string, args ...any) {
	b.pending = append(b.pending, pending{rr: rr, msg: fmt.Sprintf(format, args...)})
}

func (b *builder) warnAt(rr dns.RR, format string, args ...any) {
	b.pending = append(b.pending, pending{rr: rr, msg: fmt.Sprintf(format, args...), warning: true})
}

func (b *builder) problem(rr dns.RR, msg string) *Error {
	e := &Error{File: b.src.display(b.src.Path), Msg: msg}
	if rr == nil {
		return e
	}
	if b.positions == nil && b.positionsOf != nil {
		b.positions, b.positionsOf = b.positionsOf(), nil
	}
	if b.lineOf == nil && b.positions != nil {
		b.lineOf = make(map[dns.RR]pos, len(b.rrs))
		for i, r := range b.rrs {
			b.lineOf[r] = b.positions[i]
		}
	}
	if p, ok := b.lineOf[rr]; ok {
		e.File, e.Line = b.src.display(p.file), p.line
	}
	return e
}

// begin returns an empty zone with room for about names names, each with
// one RRset.
func (b *builder) begin(names int) *Zone {
	z := &Zone{
		Origin: b.origin,
		File:   b.src.display(b.src.Path),
		nodes:  newNodeIndex(names + 1),
		sets:   make([]rrset, 0, names),
	}
	z.nodes.add(b.origin) // at 0, which Zone.at relies on
	return z
}

// insertAll adds every record to the index, in file order.
func (b *builder) insertAll(z *Zone) {
	z.rrs = b.rrs
	// Hash a few owners ahead and touch their slots (see prefetch).
	const ahead = 16
	var hashes [ahead]uint64
	for lo := 0; lo < len(b.rrs); lo += ahead {
		hi := min(lo+ahead, len(b.rrs))
		for i := lo; i < hi; i++ {
			h := b.rrs[i].Header()
			h.Name = CanonicalName(h.Name)
			hashes[i-lo] = z.nodes.hash(h.Name)
		}
		// A loop of its own, short enough for the loads to be in flight
		// together.
		z.nodes.prefetch(hashes[:hi-lo])
		for i := lo; i < hi; i++ {
			b.insert(z, i, hashes[i-lo])
		}
	}
}

// insert adds record i, whose canonical owner name has hash hash, to the
// index.
func (b *builder) insert(z *Zone, i int, hash uint64) {
	rr := b.rrs[i]
	h := rr.Header()
	if h.Class != dns.ClassINET {
		b.errorAt(rr, "class %s: only IN is served", dns.ClassToString[h.Class])
		return
	}
	if !isSubdomain(h.Name, b.origin) {
		b.errorAt(rr, "%s is out of zone %s", h.Name, b.origin)
		return
	}
	if h.Rrtype == dns.TypeSOA && h.Name != b.origin {
		b.errorAt(rr, "SOA record for %s is not at the zone apex %s", h.Name, b.origin)
		return
	}
	ni := z.ensure(h.Name, hash)
	n := z.at(ni)
	s := z.setOf(n, h.Rrtype)
	if s == nil {
		if n.nsets == math.MaxUint16 {
			b.errorAt(rr, "more than %d types of record at %s", math.MaxUint16, h.Name)
			return
		}
		// An RRset starts as a window on the records, the one record
		// long.
		z.addSet(n, rrset{typ: h.Rrtype, at: uint32(i), n: 1})
		switch h.Rrtype {
		case dns.TypeNS:
			b.nsNodes = append(b.nsNodes, ni)
		case dns.TypeCNAME:
			b.cnameNodes = append(b.cnameNodes, ni)
		}
		z.nrecords++
		return
	}
	set := z.records(*s)
	if duplicate(set, rr) {
		return // as named: identical records collapse into one
	}
	if set[0].Header().Ttl != h.Ttl {
		b.warnAt(rr, "TTL %d differs from the RRset's %d; using %d (RFC 2181 5.2)", h.Ttl, set[0].Header().Ttl, set[0].Header().Ttl)
		h.Ttl = set[0].Header().Ttl
	}
	switch {
	case s.inExtra:
		z.extra[s.at] = append(z.extra[s.at], rr)
	case int(s.at+s.n) == i:
		s.n++ // the next line: the window grows
	default:
		// Written apart from the rest of its RRset: give it records of
		// its own.
		z.extra = append(z.extra, append(set, rr))
		*s = rrset{typ: s.typ, inExtra: true, at: uint32(len(z.extra) - 1)}
	}
	z.nrecords++
}

// setOf returns n's RRset of type t, or nil. The pointer is good until
// the next addSet.
func (z *Zone) setOf(n *node, t uint16) *rrset {
	sets := z.setsOf(n)
	for i := range sets {
		if sets[i].typ == t {
			return &sets[i]
		}
	}
	return nil
}

// addSet gives n another RRset. A node's RRsets must be adjacent in
// z.sets: those of a name written again after other names move to the end.
func (z *Zone) addSet(n *node, s rrset) {
	if end := int(n.first) + int(n.nsets); n.nsets > 0 && end != len(z.sets) {
		z.sets = append(z.sets, z.sets[n.first:end]...)
		n.first = uint32(len(z.sets) - int(n.nsets))
	} else if n.nsets == 0 {
		n.first = uint32(len(z.sets))
	}
	z.sets = append(z.sets, s)
	n.nsets++
}

// finish checks the zone as a whole and turns the problems found into
// errors and warnings with their lines.
func (b *builder) finish(z *Zone) error {
	// Nothing is added from here on: give back what the size estimates
	// over-reserved.
	z.nodes.shrink()
	z.sets = clip(z.sets)
	z.rrs = clip(z.rrs)
	apex := z.at(0)
	switch soas := z.get(apex, dns.TypeSOA); len(soas) {
	case 0:
		b.errorAt(nil, "no SOA record at the zone apex %s", b.origin)
	case 1:
		z.SOA = soas[0].(*dns.SOA)
		// WithSerial swaps the SOA's records: keep them apart from the
		// records the copies share.
		if s := z.setOf(apex, dns.TypeSOA); !s.inExtra {
			z.extra = append(z.extra, []dns.RR{z.SOA})
			*s = rrset{typ: s.typ, inExtra: true, at: uint32(len(z.extra) - 1)}
		}
	default:
		b.errorAt(soas[1], "more than one SOA record at the zone apex %s", b.origin)
	}
	if len(z.get(apex, dns.TypeNS)) == 0 {
		b.errorAt(nil, "no NS records at the zone apex %s", b.origin)
	}

	// Mark cuts first: whether a record is glue depends on every cut.
	cuts := false
	for _, i := range b.nsNodes {
		if i != 0 {
			z.at(i).cut = true
			cuts = true
		}
	}
	// Without a cut, only names owning a CNAME can break a rule: skip the
	// walk over every name.
	if cuts {
		for i := range z.nodes.len() {
			b.checkNode(z, z.at(i))
		}
	} else {
		for _, i := range b.cnameNodes {
			b.checkNode(z, z.at(i))
		}
	}
	b.checkGlue(z)

	var errs ErrorList
	var warnings []*Error
	for _, p := range b.pending {
		if p.warning {
			warnings = append(warnings, b.problem(p.rr, p.msg))
		} else {
			errs = append(errs, b.problem(p.rr, p.msg))
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return errs
	}
	sortErrors(warnings)
	z.Warnings = warnings
	return nil
}

// ensure returns the node for name, creating it and every missing ancestor
// up to the apex (empty non-terminals).
// hash is name's hash in the index. It returns the node's position: adding
// nodes may move them.
func (z *Zone) ensure(name string, hash uint64) int {
	if i := z.nodes.findHash(name, hash); i >= 0 {
		return i
	}
	i := z.nodes.addHash(name, hash)
	for p := parentName(name); p != "" && p != z.Origin && isSubdomain(p, z.Origin); p = parentName(p) {
		if z.nodes.find(p) >= 0 {
			break
		}
		z.nodes.add(p)
	}
	return i
}

// clip returns s without spare capacity worth copying it for.
func clip[E any](s []E) []E {
	if cap(s)-len(s) > len(s)/8+64 {
		return append([]E(nil), s...)
	}
	return s
}

func duplicate(set []dns.RR, rr dns.RR) bool {
	for _, have := range set {
		if dns.IsDuplicate(have, rr) {
			return true
		}
	}
	return false
}

func isDNSSECMeta(t uint16) bool {
	return t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3
}

func (b *builder) checkNode(z *Zone, n *node) {
	if cnames := z.get(n, dns.TypeCNAME); len(cnames) > 0 {
		if len(cnames) > 1 {
			b.errorAt(cnames[1], "more than one CNAME record at %s", n.name)
		}
		for _, s := range z.setsOf(n) {
			if t := s.typ; t != dns.TypeCNAME && !isDNSSECMeta(t) {
				b.errorAt(cnames[0], "CNAME and other data at %s (%s)", n.name, dns.TypeToString[t])
				break
			}
		}
	}
	// Below a cut only glue may live; at the cut only NS and DS.
	if cut := z.cutAbove(n.name); cut != "" {
		for _, s := range z.setsOf(n) {
			if t, rrs := s.typ, z.records(s); t != dns.TypeA && t != dns.TypeAAAA {
				b.errorAt(rrs[0], "%s %s is below the delegation at %s: only glue (A/AAAA) may be there", n.name, dns.TypeToString[t], cut)
			}
		}
	} else if n.cut {
		for _, s := range z.setsOf(n) {
			if t, rrs := s.typ, z.records(s); t != dns.TypeNS && t != dns.TypeDS && !isDNSSECMeta(t) {
				b.errorAt(rrs[0], "%s %s is at the delegation point %s: only NS and DS may be there", n.name, dns.TypeToString[t], n.name)
			}
		}
	}
}

// cutAbove returns the nearest delegation strictly above name, or "".
func (z *Zone) cutAbove(name string) string {
	for p := parentName(name); p != "" && p != z.Origin && isSubdomain(p, z.Origin); p = parentName(p) {
		if n := z.find(p); n != nil && n.cut {
			return p
		}
	}
	return ""
}

// checkGlue requires addresses for every in-zone name server: glue below a
// delegation, or ordinary A/AAAA records in the zone's own data.
func (b *builder) checkGlue(z *Zone) {
	for _, i := range b.nsNodes {
		n := z.at(i)
		for _, rr := range z.get(n, dns.TypeNS) {
			target := CanonicalName(rr.(*dns.NS).Ns)
			if !isSubdomain(target, z.Origin) {
				continue
			}
			t := z.find(target)
			if t == nil || (len(z.get(t, dns.TypeA)) == 0 && len(z.get(t, dns.TypeAAAA)) == 0) {
				kind := "address records"
				if z.cutAbove(target) != "" || (t != nil && t.cut) {
					kind = "glue"
				}
				b.errorAt(rr, "NS %s for %s has no %s (A or AAAA) in the zone", target, n.name, kind)
			}
		}
	}
}

func sortErrors(errs []*Error) {
	// Stable order for messages and tests: by file, then line.
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && lessError(errs[j], errs[j-1]); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

func lessError(a, b *Error) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return strings.Compare(a.Msg, b.Msg) < 0
}

// DigestFiles hashes the given files (as a Zone lists them in Files) the
// way Load does, to tell whether a zone changed on disk without parsing it.
// ok is false if a file cannot be read.
func DigestFiles(src Source, files []string) (d [32]byte, ok bool) {
	src.FS = regularFiles{src.FS}
	h := sha256.New()
	for _, f := range files {
		name := f
		if src.Display != "" && src.Display != "." {
			name = strings.TrimPrefix(strings.TrimPrefix(f, src.Display), "/")
		}
		data, err := fs.ReadFile(src.FS, name)
		if err != nil {
			return d, false
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	copy(d[:], h.Sum(nil))
	return d, true
}

// hasInclude reports whether a zone file's text has an $INCLUDE (in any
// letter case) anywhere; a false positive only costs a scan.
func hasInclude(data []byte) bool {
	const word = "$INCLUDE"
	for i := bytes.IndexByte(data, '$'); i >= 0; {
		if len(data)-i >= len(word) && strings.EqualFold(string(data[i:i+len(word)]), word) {
			return true
		}
		j := bytes.IndexByte(data[i+1:], '$')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// recordPositionsOnly walks a zone file without includes for the record
// positions; nil if they do not match the n records parsed.
func recordPositionsOnly(src Source, data []byte, n int) []pos {
	positions, ok := recordPositions(src.FS, src.Path, data, 0, nil)
	if !ok || len(positions) != n {
		return nil
	}
	return positions
}

// regularFiles opens regular files only. Opening a FIFO or a device for
// reading can block until something writes to it, and a zone read must
// fail, not hang: a reload would never end.
type regularFiles struct{ fsys fs.FS }

func (r regularFiles) Open(name string) (fs.File, error) {
	fi, err := fs.Stat(r.fsys, name)
	if err != nil {
		return r.fsys.Open(name) // its own error ("open x: no such file…")
	}
	if !fi.Mode().IsRegular() {
		what := "not a regular file"
		switch t := fi.Mode().Type(); {
		case t&fs.ModeNamedPipe != 0:
			what = "a named pipe (FIFO), not a regular file"
		case t&fs.ModeDir != 0:
			what = "a directory, not a file"
		case t&(fs.ModeDevice|fs.ModeCharDevice) != 0:
			what = "a device, not a regular file"
		case t&fs.ModeSocket != 0:
			what = "a socket, not a regular file"
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New(what)}
	}
	return r.fsys.Open(name)
}
