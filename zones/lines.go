package zones

import (
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// pos is where one record was written.
type pos struct {
	file string // relative to the include root, as the parser names it
	line int
}

// recordPositions finds the file and starting line of every record in a zone
// file, in the order the zone parser returns them, following $INCLUDE and
// expanding $GENERATE counts. The zone parser does not report positions of
// the records it returns, and validation errors (CNAME beside other data,
// data below a cut…) must name a line.
//
// It only splits text into entries; the zone parser stays the authority on
// what the entries mean. If the two disagree on the count, the caller drops
// the positions rather than point at wrong lines.
//
// visit, if not nil, sees every file read (the zone file and its includes).
func recordPositions(fsys fs.FS, name string, depth int, visit func(name string, data []byte)) ([]pos, bool) {
	if depth > 8 {
		return nil, false
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, false
	}
	if visit != nil {
		visit(name, data)
	}
	var out []pos
	ok := true
	for _, e := range splitEntries(string(data)) {
		if len(e.tokens) == 0 {
			continue
		}
		first := strings.ToUpper(e.tokens[0])
		switch {
		case first == "$INCLUDE" && !e.ownerBlank:
			if len(e.tokens) < 2 {
				return out, false
			}
			inc := e.tokens[1]
			if !path.IsAbs(inc) {
				inc = path.Join(path.Dir(name), inc)
			}
			inc = strings.TrimLeft(path.Clean(inc), "/")
			sub, subOK := recordPositions(fsys, inc, depth+1, visit)
			out = append(out, sub...)
			ok = ok && subOK
		case first == "$GENERATE" && !e.ownerBlank:
			n, good := generateCount(e.tokens)
			if !good {
				return out, false
			}
			for range n {
				out = append(out, pos{file: name, line: e.line})
			}
		case strings.HasPrefix(first, "$") && !e.ownerBlank:
			// $ORIGIN, $TTL: no record.
		default:
			out = append(out, pos{file: name, line: e.line})
		}
	}
	return out, ok
}

func generateCount(tokens []string) (int, bool) {
	if len(tokens) < 2 {
		return 0, false
	}
	rng := tokens[1]
	step := 1
	if i := strings.IndexByte(rng, '/'); i >= 0 {
		s, err := strconv.Atoi(rng[i+1:])
		if err != nil || s <= 0 {
			return 0, false
		}
		step, rng = s, rng[:i]
	}
	lo, hi, found := strings.Cut(rng, "-")
	if !found {
		return 0, false
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || b < a {
		return 0, false
	}
	return (b-a)/step + 1, true
}

type entry struct {
	line       int
	tokens     []string
	ownerBlank bool // the entry began with white space (owner omitted)
}

// splitEntries splits zone file text into logical entries: one line, or
// several joined by parentheses, without comments.
func splitEntries(text string) []entry {
	var (
		out     []entry
		cur     *entry
		tok     strings.Builder
		inTok   bool
		quoted  bool
		escaped bool
		depth   int
		line    = 1
		atBOL   = true // at the beginning of a physical line, at depth 0
	)
	flushTok := func() {
		if inTok {
			cur.tokens = append(cur.tokens, tok.String())
			tok.Reset()
			inTok = false
		}
	}
	start := func(blank bool) {
		if cur == nil {
			out = append(out, entry{line: line, ownerBlank: blank})
			cur = &out[len(out)-1]
		}
	}
	blankStart := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if escaped {
			tok.WriteByte(c)
			escaped = false
			if c == '\n' {
				line++
			}
			continue
		}
		if quoted {
			switch c {
			case '\\':
				escaped = true
				tok.WriteByte(c)
			case '"':
				quoted = false
			case '\n':
				line++
				tok.WriteByte(c)
			default:
				tok.WriteByte(c)
			}
			continue
		}
		switch c {
		case ';':
			for i < len(text) && text[i] != '\n' {
				i++
			}
			i-- // let the newline be handled below
		case '\n':
			line++
			if depth == 0 && cur != nil {
				flushTok()
				cur = nil
			} else if cur != nil {
				flushTok()
			}
			atBOL = depth == 0
			blankStart = false
		case ' ', '\t', '\r':
			if cur != nil {
				flushTok()
			} else if atBOL {
				blankStart = true
			}
			atBOL = false
		case '(':
			start(blankStart)
			flushTok()
			depth++
			atBOL = false
		case ')':
			if cur != nil {
				flushTok()
			}
			if depth > 0 {
				depth--
			}
			atBOL = false
		case '"':
			start(blankStart)
			quoted = true
			inTok = true
			atBOL = false
		case '\\':
			start(blankStart)
			escaped = true
			inTok = true
			tok.WriteByte(c)
			atBOL = false
		default:
			start(blankStart)
			inTok = true
			tok.WriteByte(c)
			atBOL = false
		}
	}
	if cur != nil {
		flushTok()
	}
	return out
}
