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
func recordPositions(fsys fs.FS, name string, data []byte, depth int, visit func(name string, data []byte)) ([]pos, bool) {
	if depth > 8 {
		return nil, false
	}
	if data == nil {
		var err error
		if data, err = fs.ReadFile(fsys, name); err != nil {
			return nil, false
		}
	}
	if visit != nil {
		visit(name, data)
	}
	out := make([]pos, 0, strings.Count(string(data), "\n")+1)
	ok := true
	splitEntries(string(data), func(e *entry) {
		if !ok || !e.any {
			return
		}
		first := ""
		if len(e.tokens) > 0 {
			first = strings.ToUpper(e.tokens[0])
		}
		switch {
		case first == "$INCLUDE" && !e.ownerBlank:
			if len(e.tokens) < 2 {
				ok = false
				return
			}
			inc := e.tokens[1]
			if !path.IsAbs(inc) {
				inc = path.Join(path.Dir(name), inc)
			}
			inc = strings.TrimLeft(path.Clean(inc), "/")
			sub, subOK := recordPositions(fsys, inc, nil, depth+1, visit)
			out = append(out, sub...)
			ok = ok && subOK
		case first == "$GENERATE" && !e.ownerBlank:
			n, good := generateCount(e.tokens)
			if !good {
				ok = false
				return
			}
			for range n {
				out = append(out, pos{file: name, line: e.line})
			}
		case strings.HasPrefix(first, "$") && !e.ownerBlank:
			// $ORIGIN, $TTL: no record.
		default:
			out = append(out, pos{file: name, line: e.line})
		}
	})
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
	tokens     []string // a directive's words (records keep none)
	ownerBlank bool     // the entry began with white space (owner omitted)
	directive  bool
	any        bool // it has a word at all
}

// splitEntries splits zone file text into logical entries (one line, or
// several joined by parentheses, without comments) and calls each for
// every one, in order. The entry is reused: each must not keep it.
func splitEntries(text string, each func(*entry)) {
	var (
		e       entry
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
			// Only directives need their words; a record is just counted
			// (a million-record zone would otherwise make a million
			// strings per word).
			if cur.directive || !cur.any && tok.Len() > 0 && tok.String()[0] == '$' {
				cur.directive = true
				cur.tokens = append(cur.tokens, strings.Clone(tok.String()))
			}
			cur.any = true
			tok.Reset()
			inTok = false
		}
	}
	start := func(blank bool) {
		if cur == nil {
			e = entry{line: line, ownerBlank: blank, tokens: e.tokens[:0]}
			cur = &e
		}
	}
	end := func() {
		flushTok()
		each(cur)
		cur = nil
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
				end()
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
		end()
	}
}
