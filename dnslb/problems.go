package dnslb

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dnslb/dnslb/zones"
	"github.com/rs/zerolog"
)

// Problem is one thing wrong with a config or a zone, with where it is:
// the file and line, and for config problems the key path
// ("pools[www.example.test.].check.interval").
type Problem struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Key  string `json:"key,omitempty"`
	Msg  string `json:"problem"`
}

// String is the one form every command prints: "file:line: key: what".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Log adds the problem's fields to a log event.
func (p Problem) Log(ev *zerolog.Event) *zerolog.Event {
	if p.File != "" {
		ev = ev.Str("file", p.File)
	}
	if p.Line > 0 {
		ev = ev.Int("line", p.Line)
	}
	if p.Key != "" {
		ev = ev.Str("key", p.Key)
	}
	return ev.Str("problem", p.Msg)
}

// Problems is every problem one load or build found, zone problems before
// the config problems that may follow from them. It is an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// keyed is a config problem found after decoding, placed later by the
// config's Locate.
func keyed(key, format string, args ...any) Problem {
	return Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// ProblemsOf lists the problems inside err: Problems and zone errors keep
// their places; any other error is one problem per line of its text.
func ProblemsOf(err error) Problems {
	if err == nil {
		return nil
	}
	var ps Problems
	if errors.As(err, &ps) {
		return ps
	}
	var zl zones.ErrorList
	var ze *zones.Error
	if errors.As(err, &zl) || errors.As(err, &ze) {
		return fromZoneErrors(zones.Errors(err))
	}
	var out Problems
	for _, e := range leaves(err) {
		for _, line := range strings.Split(e.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, Problem{Msg: line})
			}
		}
	}
	return out
}

// leaves lists the errors at the bottom of errors.Join trees.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

func fromZoneErrors(errs []*zones.Error) Problems {
	out := make(Problems, 0, len(errs))
	for _, e := range errs {
		out = append(out, Problem{File: e.File, Line: e.Line, Msg: e.Msg})
	}
	return out
}

// place gives key-path problems the config file and the key's line.
func (l *Loaded) place(ps Problems) Problems {
	for i := range ps {
		if ps[i].File != "" || ps[i].Key == "" {
			continue
		}
		ps[i].File = l.File
		if l.Locate != nil {
			ps[i].Line = l.Locate(ps[i].Key)
		}
	}
	return ps
}
