package zones

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"testing/fstest"

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
	data, err := fs.ReadFile(src.FS, src.Path)
	if err != nil {
		return nil, ErrorList{{File: src.display(src.Path), Msg: err.Error()}}
	}
	zp := dns.NewZoneParser(bytes.NewReader(data), origin, src.Path)
	zp.SetIncludeAllowed(true)
	zp.SetIncludeFS(src.FS)

	// One record per line is the common case: size things once rather
	// than grow them through a million appends. (Parsing, positions and
	// indexing in parallel measured slower: the garbage collector already
	// uses the other core.)
	lines := bytes.Count(data, []byte{'\n'}) + 1
	b := builder{src: src, origin: origin, rrs: make([]dns.RR, 0, lines)}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		b.rrs = append(b.rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, ErrorList{fromParseError(err, src.display, src.display(src.Path))}
	}
	// Index after parsing rather than interleaved: measured faster, and
	// the long-lived index is not scattered among the parser's garbage.
	z := b.begin(len(b.rrs))
	for _, rr := range b.rrs {
		b.insert(z, rr)
	}
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

// Parse loads a zone from text, for tests and embedded examples. $INCLUDE is
// not allowed.
func Parse(origin, name, text string) (*Zone, error) {
	return Load(Source{Origin: origin, FS: fstest.MapFS{name: {Data: []byte(text)}}, Path: name})
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

func (b *builder) begin(sizeHint int) *Zone {
	z := &Zone{Origin: b.origin, File: b.src.display(b.src.Path), nodes: make(map[string]*node, sizeHint)}
	z.nodes[b.origin] = &node{name: b.origin}
	return z
}

// insert adds one record to the index.
func (b *builder) insert(z *Zone, rr dns.RR) {
	h := rr.Header()
	h.Name = CanonicalName(h.Name)
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
	n := z.ensure(h.Name)
	set := n.rrsets.get(h.Rrtype)
	if duplicate(set, rr) {
		return // as named: identical records collapse into one
	}
	if len(set) > 0 && set[0].Header().Ttl != h.Ttl {
		b.warnAt(rr, "TTL %d differs from the RRset's %d; using %d (RFC 2181 5.2)", h.Ttl, set[0].Header().Ttl, set[0].Header().Ttl)
		h.Ttl = set[0].Header().Ttl
	}
	n.rrsets.put(h.Rrtype, append(set, rr))
	z.records++
}

// finish checks the zone as a whole and turns the problems found into
// errors and warnings with their lines.
func (b *builder) finish(z *Zone) error {
	apex := z.nodes[b.origin]
	switch soas := apex.rrsets.get(dns.TypeSOA); len(soas) {
	case 0:
		b.errorAt(nil, "no SOA record at the zone apex %s", b.origin)
	case 1:
		z.SOA = soas[0].(*dns.SOA)
	default:
		b.errorAt(soas[1], "more than one SOA record at the zone apex %s", b.origin)
	}
	if len(apex.rrsets.get(dns.TypeNS)) == 0 {
		b.errorAt(nil, "no NS records at the zone apex %s", b.origin)
	}

	// Mark cuts first: whether a record is glue depends on every cut.
	for name, n := range z.nodes {
		if name != b.origin && len(n.rrsets.get(dns.TypeNS)) > 0 {
			n.cut = true
		}
	}
	for _, n := range z.nodes {
		b.checkNode(z, n)
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
func (z *Zone) ensure(name string) *node {
	n := z.nodes[name]
	if n != nil {
		return n
	}
	n = &node{name: name}
	z.nodes[name] = n
	for p := parentName(name); p != "" && p != z.Origin && isSubdomain(p, z.Origin); p = parentName(p) {
		if _, ok := z.nodes[p]; ok {
			break
		}
		z.nodes[p] = &node{name: p}
	}
	return n
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
	if cnames := n.rrsets.get(dns.TypeCNAME); len(cnames) > 0 {
		if len(cnames) > 1 {
			b.errorAt(cnames[1], "more than one CNAME record at %s", n.name)
		}
		for _, s := range n.rrsets {
			if t := s.typ; t != dns.TypeCNAME && !isDNSSECMeta(t) {
				b.errorAt(cnames[0], "CNAME and other data at %s (%s)", n.name, dns.TypeToString[t])
				break
			}
		}
	}
	// Below a cut only glue may live; at the cut only NS and DS.
	if cut := z.cutAbove(n.name); cut != "" {
		for _, s := range n.rrsets {
			if t, rrs := s.typ, s.rrs; t != dns.TypeA && t != dns.TypeAAAA {
				b.errorAt(rrs[0], "%s %s is below the delegation at %s: only glue (A/AAAA) may be there", n.name, dns.TypeToString[t], cut)
			}
		}
	} else if n.cut {
		for _, s := range n.rrsets {
			if t, rrs := s.typ, s.rrs; t != dns.TypeNS && t != dns.TypeDS && !isDNSSECMeta(t) {
				b.errorAt(rrs[0], "%s %s is at the delegation point %s: only NS and DS may be there", n.name, dns.TypeToString[t], n.name)
			}
		}
	}
}

// cutAbove returns the nearest delegation strictly above name, or "".
func (z *Zone) cutAbove(name string) string {
	for p := parentName(name); p != "" && p != z.Origin && isSubdomain(p, z.Origin); p = parentName(p) {
		if n := z.nodes[p]; n != nil && n.cut {
			return p
		}
	}
	return ""
}

// checkGlue requires addresses for every in-zone name server: glue below a
// delegation, or ordinary A/AAAA records in the zone's own data.
func (b *builder) checkGlue(z *Zone) {
	for _, n := range z.nodes {
		for _, rr := range n.rrsets.get(dns.TypeNS) {
			target := CanonicalName(rr.(*dns.NS).Ns)
			if !isSubdomain(target, z.Origin) {
				continue
			}
			t := z.nodes[target]
			if t == nil || (len(t.rrsets.get(dns.TypeA)) == 0 && len(t.rrsets.get(dns.TypeAAAA)) == 0) {
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
