package zones

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Error is one problem in a zone file, with where it is.
type Error struct {
	File string
	Line int // 0 when the line is not known
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrorList holds every problem found in one load, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Errors returns the individual problems inside err, if it came from this
// package; otherwise err itself as an Error without a line.
func Errors(err error) []*Error {
	var list ErrorList
	if errors.As(err, &list) {
		return list
	}
	var one *Error
	if errors.As(err, &one) {
		return []*Error{one}
	}
	if err == nil {
		return nil
	}
	return []*Error{{Msg: err.Error()}}
}

// parseErrorRE picks apart miekg/dns's ParseError text, whose fields are not
// exported: `FILE: dns: MESSAGE: "TOKEN" at line: L:C`.
var parseErrorRE = regexp.MustCompile(`^(?:(.*?): )?dns: (.*) at line: (\d+):(\d+)$`)

// fromParseError converts a zone parser error into an Error, mapping the
// parser's file name (relative to the include root) to the displayed one.
func fromParseError(err error, display func(string) string, fallbackFile string) *Error {
	m := parseErrorRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{File: fallbackFile, Msg: err.Error()}
	}
	line, _ := strconv.Atoi(m[3])
	file := fallbackFile
	if m[1] != "" {
		file = display(m[1])
	}
	return &Error{File: file, Line: line, Msg: m[2]}
}
