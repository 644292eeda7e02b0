package zones

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// minChunk is the least zone text worth a parser of its own: below it a
// goroutine and a parser cost more than they save.
const minChunk = 1 << 20

// chunk is a piece of a zone file for a zone parser of its own, with the
// state a parser of the whole file would have at its start.
type chunk struct {
	start, end int    // byte offsets in the file
	line       int    // the file's line number of start
	origin     string // the $ORIGIN in force at start
	ttl        string // the value of the $TTL in force at start; "" for the first chunk
}

// splitChunks cuts zone file text into at most n chunks of at least min
// bytes, or returns nil when it cannot prove a cut safe.
//
// A parser carries state from one record to the next: the $ORIGIN, the
// default TTL, the previous owner (for lines that start blank), and the
// lexer's parentheses, quotes and comments. A cut is made only where that
// state is known and can be handed over:
//   - at the start of a line, outside parentheses and quotes, that begins
//     with an explicit owner name (so no record borrows the previous owner);
//   - after a $TTL directive (a $TTL's value stays the default TTL whatever
//     records say, so it is replayed; without one, a record without a TTL
//     takes the previous record's, which would not cross a cut);
//   - with the $ORIGIN in force as the chunk parser's origin.
//
// $INCLUDE, $GENERATE, an unknown directive, a directive this does not
// read the way the parser does, or an unbalanced ')' make it give up.
//
// The cuts follow the lexer's rules but remain a guess about the parser,
// which, for one, reads some records on past a line's end without
// parentheses: parseChunks checks every cut.
func splitChunks(data []byte, origin string, n, min int) []chunk {
	if n < 2 || len(data) < 2*min {
		return nil
	}
	target := max(len(data)/n, min)
	chunks := []chunk{{line: 1, origin: origin}}
	var (
		line                     = 1
		depth                    int
		quoted, escaped, comment bool
		ttl                      string
	)
	for i := 0; i < len(data); {
		// i starts a line.
		if depth == 0 && !quoted {
			c := data[i]
			switch {
			case c == '$':
				next, ok := directive(data, i, &origin, &ttl)
				if !ok {
					return nil
				}
				i = next
				line++
				continue
			case ttl != "" && isOwnerStart(c) && i-chunks[len(chunks)-1].start >= target && len(chunks) < n:
				chunks[len(chunks)-1].end = i
				chunks = append(chunks, chunk{start: i, line: line, origin: origin, ttl: ttl})
			}
		}
		// The rest of the line, as the parser's lexer sees it.
		for i < len(data) {
			c := data[i]
			i++
			if c == '\n' {
				// Even escaped, a newline outside quotes ends a line.
				line++
				escaped, comment = false, false
				break
			}
			switch {
			case comment:
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				quoted = !quoted
			case quoted:
			case c == ';':
				comment = true
			case c == '(':
				depth++
			case c == ')':
				if depth--; depth < 0 {
					return nil // the parser's error to report
				}
			}
		}
	}
	if len(chunks) < 2 {
		return nil
	}
	chunks[len(chunks)-1].end = len(data)
	return chunks
}

// isOwnerStart reports whether a line that starts with c starts with an
// owner name (and nothing this splitter would have to reason about).
func isOwnerStart(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ';', '$', '(', ')', '"', '\\':
		return false
	}
	return true
}

// directive reads the directive line at data[i:], which starts with '$':
// $TTL and $ORIGIN update ttl and origin as the parser would. It returns
// where the next line starts, or false for any other directive and any
// line it cannot read exactly as the parser does.
func directive(data []byte, i int, origin, ttl *string) (int, bool) {
	word := func(j int) int {
		for j < len(data) && !isSpecial(data[j]) {
			j++
		}
		return j
	}
	end := word(i)
	if end == len(data) || (data[end] != ' ' && data[end] != '\t') {
		return 0, false
	}
	name := strings.ToUpper(string(data[i:end]))
	j := end
	for j < len(data) && (data[j] == ' ' || data[j] == '\t') {
		j++
	}
	vend := word(j)
	if vend == j {
		return 0, false
	}
	value := string(data[j:vend])
	// Then only blanks and a comment.
	k := vend
	for k < len(data) && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r') {
		k++
	}
	switch {
	case k == len(data):
	case data[k] == '\n':
		k++
	case data[k] == ';':
		nl := bytes.IndexByte(data[k:], '\n')
		if nl < 0 {
			k = len(data)
		} else {
			k += nl + 1
		}
	default:
		return 0, false
	}
	switch name {
	case "$TTL":
		*ttl = value
	case "$ORIGIN":
		abs, ok := absoluteName(value, *origin)
		if !ok {
			return 0, false
		}
		*origin = abs
	default:
		return 0, false
	}
	return k, true
}

// isSpecial reports whether c ends a word or needs the lexer's care.
func isSpecial(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ';', '(', ')', '"', '\\':
		return true
	}
	return false
}

// absoluteName resolves an $ORIGIN value against the origin in force, as
// the zone parser does.
func absoluteName(name, origin string) (string, bool) {
	if name == "@" {
		return origin, origin != ""
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return "", false
	}
	if dns.IsFqdn(name) {
		return name, true
	}
	if origin == "" {
		return "", false
	}
	if origin == "." {
		return name + origin, true
	}
	return name + "." + origin, true
}

// errChunks says that chunked parsing did not line up with what one parser
// does (the splitter guessed wrong): parse with one parser instead.
var errChunks = errors.New("chunked parse out of step")

// parseChunks parses every chunk at once, each with a zone parser of its
// own, and returns the records in file order, as one parser would, in all,
// which has a slot per line of the file: no chunk has more records than
// lines (there is no $GENERATE), so each fills its own stretch of all.
//
// Each parser reads from its chunk's start to the end of the file, so that
// it behaves as one parser would from there on, and stops after the first
// record that reaches past its chunk. That record must be the next
// parser's first: then the next parser started where a record starts, in
// the state one parser would have had there.
func parseChunks(src Source, data []byte, chunks []chunk, all []dns.RR) ([]dns.RR, error) {
	lines := len(all)
	got := make([][]dns.RR, len(chunks))
	next := make([]dns.RR, len(chunks))
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	for k, c := range chunks {
		endLine := lines + 1
		if k+1 < len(chunks) {
			endLine = chunks[k+1].line
		}
		// Capped: a chunk that outgrew its stretch would get its own
		// array rather than overwrite the next chunk's.
		region := all[c.line-1 : endLine-1 : endLine-1][:0]
		wg.Go(func() {
			got[k], next[k], errs[k] = parseChunk(src, data, c, region)
		})
	}
	wg.Wait()
	for k := range chunks {
		if k > 0 {
			prev := next[k-1]
			if prev == nil || len(got[k]) == 0 || prev.String() != got[k][0].String() {
				return nil, errChunks
			}
		}
		// The first problem in file order is the one a single parser,
		// which stops there, reports.
		if errs[k] != nil {
			return nil, errs[k]
		}
		if len(got[k]) > 0 && &got[k][0] != &all[chunks[k].line-1] {
			// Outgrew its stretch (it cannot): copying into all could
			// overwrite a stretch not yet copied.
			return nil, errChunks
		}
	}
	n := 0
	for _, rrs := range got {
		n += copy(all[n:], rrs) // leftwards, over stretches already copied
	}
	clear(all[n:])
	return all[:n], nil
}

// parseChunk parses chunk c of data into out. next is the first record
// that reaches past the chunk, nil at the end of the file. Errors name file
// lines, and come with the records read before them.
func parseChunk(src Source, data []byte, c chunk, out []dns.RR) (rrs []dns.RR, next dns.RR, err error) {
	r := &chunkReader{rest: data[c.start:]}
	before := 0 // lines the parser reads before the chunk's first
	if c.ttl != "" {
		r.prefix = "$TTL " + c.ttl + "\n"
		before = 1
	}
	end := c.end - c.start
	zp := dns.NewZoneParser(r, c.origin, src.Path)
	zp.SetIncludeAllowed(true)
	zp.SetIncludeFS(src.FS)
	for {
		from := r.read // where the previous record's line ended
		rr, ok := zp.Next()
		if !ok {
			break
		}
		if r.read <= end {
			out = append(out, rr)
			continue
		}
		// Read past the chunk: the next chunk's first record, unless
		// some of it is in this chunk.
		if !blankOrDirectives(r.rest[from:end]) {
			return out, nil, errChunks
		}
		return out, rr, nil
	}
	if err := zp.Err(); err != nil {
		e := fromParseError(err, src.display, src.display(src.Path))
		if e.Line > 0 {
			e.Line += c.line - 1 - before
		}
		return out, nil, ErrorList{e}
	}
	return out, nil, nil
}

// blankOrDirectives reports whether text is only blank lines, comments and
// directives: no part of a record.
func blankOrDirectives(text []byte) bool {
	for len(text) > 0 {
		line, rest, _ := bytes.Cut(text, []byte{'\n'})
		if t := bytes.TrimLeft(line, " \t\r"); len(t) > 0 && t[0] != ';' && line[0] != '$' {
			return false
		}
		text = rest
	}
	return true
}

// chunkReader feeds a chunk's parser: a $TTL line to replay, then the file
// from the chunk's start, byte by byte (the parser's lexer reads through
// io.ByteReader when it can), so that what it has read is known.
type chunkReader struct {
	prefix string
	rest   []byte
	read   int // bytes of rest read
}

func (r *chunkReader) ReadByte() (byte, error) {
	if r.prefix != "" {
		c := r.prefix[0]
		r.prefix = r.prefix[1:]
		return c, nil
	}
	if r.read == len(r.rest) {
		return 0, io.EOF
	}
	c := r.rest[r.read]
	r.read++
	return c, nil
}

func (r *chunkReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		p[n] = c
		n++
	}
	return n, nil
}
