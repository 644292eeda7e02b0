package zones

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dnslb/dnslb/internal/fuzzguard"
	"github.com/miekg/dns"
)

const chunkHead = "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n"

// chunkCases are zone texts whose records a chunked parse must reproduce
// exactly. split says whether the text can be cut at all; fallback, that
// the chunks do not line up and one parser must parse it.
var chunkCases = []struct {
	name            string
	text            string
	split, fallback bool
}{
	{name: "plain", split: true, text: chunkHead + "a A 192.0.2.1\nb A 192.0.2.2\nc AAAA 2001:db8::1\nd TXT x\n"},
	{name: "parentheses across lines", split: true, text: chunkHead +
		"a A 192.0.2.1\nsoa2 TXT ( one\ntwo ; comment ( \"\n3600 600\nxyz 192.0.2.9 )\nb A 192.0.2.2\n"},
	{name: "quoted strings with semicolons, parentheses and newlines", split: true, text: chunkHead +
		"t TXT \"a;b(\" \"c\\\"d)\"\nq TXT \"first\nx A 192.0.2.9\n\" end\nu TXT \";\" (\n\")\"\n)\nv A 192.0.2.3\n"},
	{name: "origin changes", split: true, text: chunkHead +
		"a A 192.0.2.1\n$ORIGIN sub.example.test.\nb A 192.0.2.2\n$ORIGIN deeper ; relative\nc A 192.0.2.3\n" +
		"$origin @\nd A 192.0.2.4\n$ORIGIN Example.TEST.\ne A 192.0.2.5\n@ TXT apex\n"},
	{name: "blank owners after a cut", split: true, text: chunkHead +
		"www A 192.0.2.1\n    A 192.0.2.2\n\tAAAA 2001:db8::1\n  60 TXT \"x\"\nmail A 192.0.2.25\n MX 10 mail\n"},
	{name: "comments blank lines and CRLF", split: true, text: strings.ReplaceAll(chunkHead+
		"; a comment\n\na A 192.0.2.1 ; trailing\n;x A 192.0.2.9\nb A 192.0.2.2\n", "\n", "\r\n")},
	{name: "escapes", split: true, text: chunkHead +
		"a\\ b TXT x\ne TXT \\\"q\\;\nh\\( TXT \\(\ni A 192.0.2.4\n"},
	{name: "backslash before a newline", split: true, text: chunkHead + "a A 192.0.2.1\nf TXT x\\\ng A 192.0.2.3\n"},
	{name: "ttl changes", split: true, text: chunkHead +
		"a A 192.0.2.1\n$TTL 60\nb A 192.0.2.2\nc 10 A 192.0.2.3\nd A 192.0.2.4\n$ttl 1h ; units\ne A 192.0.2.5\n"},
	{name: "explicit TTLs before the first $TTL", split: true, text: "@ 100 SOA ns1 hostmaster 1 3600 600 86400 60\n" +
		"@ NS ns1\nns1 50 A 192.0.2.53\nx A 192.0.2.1\n$TTL 300\nc A 192.0.2.3\nd 50 A 192.0.2.4\ne A 192.0.2.5\n"},
	{name: "class is per record", split: true, text: chunkHead + "x CH TXT y\nz TXT w\nw IN A 192.0.2.1\nv A 192.0.2.2\n"},
	{name: "no $TTL: not cut", split: false, text: "@ 100 SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\n" +
		"a 50 A 192.0.2.1\nb A 192.0.2.2\nc A 192.0.2.3\n"},
	{name: "$GENERATE: not cut", split: false, text: chunkHead + "a A 192.0.2.1\n$GENERATE 1-3 h$ A 192.0.2.$\nb A 192.0.2.2\n"},
	{name: "$INCLUDE: not cut", split: false, text: chunkHead + "a A 192.0.2.1\n$INCLUDE other.zone\nb A 192.0.2.2\n"},
	{name: "unknown directive: not cut", split: false, text: chunkHead + "a A 192.0.2.1\n$FOO 1\nb A 192.0.2.2\n"},
	{name: "error in a later chunk", split: true, text: chunkHead + "a A 192.0.2.1\nb A 192.0.2.2\nc A 192.0.2.300\nd A 192.0.2.4\n"},
	{name: "error on the first line of a chunk", split: true, text: chunkHead + "a A 192.0.2.1\nb BOGUS x\nc A 192.0.2.3\n"},
	{name: "errors in two chunks", split: true, text: chunkHead + "a A 192.0.2.1\nb A x\nc A 192.0.2.3\nd A y\n"},
	{name: "extra closing parenthesis", split: false, text: chunkHead + "a A 192.0.2.1\nb A 192.0.2.2 )\nc A 192.0.2.3\n"},
	{name: "unclosed parenthesis", split: true, text: chunkHead + "a A 192.0.2.1\nb TXT ( x\nc A 192.0.2.3\n"},
	{name: "unclosed quote", split: true, text: chunkHead + "a A 192.0.2.1\nb TXT \"x\nc A 192.0.2.3\n"},
	{name: "bad $ORIGIN", split: false, text: chunkHead + "a A 192.0.2.1\n$ORIGIN a..b\nc A 192.0.2.3\n"},
	{name: "bad $TTL", split: true, text: chunkHead + "a A 192.0.2.1\n$TTL soon\nb A 192.0.2.2\nc A 192.0.2.3\n"},
	{name: "no final newline", split: true, text: chunkHead + "a A 192.0.2.1\nb A 192.0.2.2"},
	// Found by FuzzChunkedParse: a record without data is an error before
	// more text, a dynamic update at the end of the input; an incomplete
	// SOA reads on into the next line.
	{name: "record without data before a cut", split: true, text: "$TTL 0\n S A\n0"},
	{name: "incomplete record before a cut", split: true, text: "$TTL 0\n SOA 0\n00"},
	// The parser takes data wrapped onto the next line even without
	// parentheses: the chunks do not line up.
	{name: "SOA wrapped without parentheses", split: true, fallback: true, text: "$TTL 300\n" +
		"@ SOA ns1 hostmaster 1 3600 600\n86400 60\n@ NS ns1\nx A 192.0.2.1\n"},
	{name: "MX wrapped without parentheses", split: true, fallback: true, text: "$TTL 300\n@ MX 10\nmail\nx A 192.0.2.1\n"},
}

// lineSlots returns a slot per line of data, as Load gives the parsers.
func lineSlots(data []byte) []dns.RR {
	return make([]dns.RR, bytes.Count(data, []byte{'\n'})+1)
}

func chunkSource(data []byte) Source {
	return Source{Origin: "example.test.", FS: fstest.MapFS{"z": {Data: data}}, Path: "z", Display: "dir"}
}

// parsed parses text with the given parallelism and renders the outcome.
func parsed(t *testing.T, text string, workers, min int) string {
	t.Helper()
	data := []byte(text)
	rrs, err := parseRecords(chunkSource(data), "example.test.", data, lineSlots(data)[:0], workers, min)
	return render(rrs, err)
}

func render(rrs []dns.RR, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, rr := range rrs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestChunkedParseMatchesSequential(t *testing.T) {
	for _, tc := range chunkCases {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.text)
			chunks := splitChunks(data, "example.test.", 64, 1)
			if got := chunks != nil; got != tc.split {
				t.Fatalf("split = %v, want %v (%+v)", got, tc.split, chunks)
			}
			want := parsed(t, tc.text, 1, 1)
			if got := parsed(t, tc.text, 64, 1); got != want {
				t.Errorf("chunked parse:\n%s\nwant (one parser):\n%s", got, want)
			}
			if chunks == nil {
				return
			}
			// Without falling back to one parser, where it should not.
			rrs, err := parseChunks(chunkSource(data), data, chunks, lineSlots(data))
			if fellBack := errors.Is(err, errChunks); fellBack != tc.fallback {
				t.Fatalf("fell back = %v, want %v", fellBack, tc.fallback)
			}
			if got := render(rrs, err); !tc.fallback && got != want {
				t.Errorf("chunks alone:\n%s\nwant (one parser):\n%s", got, want)
			}
		})
	}
}

func TestChunkErrorLines(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
	}{
		{"bad address", chunkHead + "a A 192.0.2.1\nb A 192.0.2.2\nc A 192.0.2.300\nd A 192.0.2.4\n", 7},
		{"first of two", chunkHead + "a A 192.0.2.1\nb A x\nc A 192.0.2.3\nd A y\n", 6},
		{"after a multi-line record", chunkHead + "m TXT ( a\nb\nc )\nn A 192.0.2.1\no A bad\n", 9},
		{"in the first chunk", "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS bad..name\nns1 A 192.0.2.53\na A 192.0.2.1\n", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.text)
			chunks := splitChunks(data, "example.test.", 64, 1)
			if chunks == nil {
				t.Fatal("not split: the test proves nothing")
			}
			_, err := parseChunks(chunkSource(data), data, chunks, lineSlots(data))
			errs := Errors(err)
			if len(errs) != 1 || errs[0].Line != tc.line || errs[0].File != "dir/z" {
				t.Fatalf("errors = %v, want one at dir/z:%d", err, tc.line)
			}
		})
	}
}

func TestSplitChunks(t *testing.T) {
	text := "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n" + // 1-2
		"a TXT ( x\ny z )\n" + // 3-4: no cut at 4
		"   A 192.0.2.1\n" + // 5: blank owner, no cut
		"$ORIGIN sub.example.test.\n" + // 6
		"b A 192.0.2.2\n" + // 7
		"; c\n" + // 8
		"$TTL 60\n" + // 9
		"c A 192.0.2.3\n" // 10
	chunks := splitChunks([]byte(text), "example.test.", 64, 1)
	var got []string
	for _, c := range chunks {
		got = append(got, fmt.Sprintf("%d %s %s %q", c.line, c.origin, c.ttl, text[c.start:c.end]))
	}
	want := []string{
		`1 example.test.  "$TTL 300\n"`,
		`2 example.test. 300 "@ SOA ns1 hostmaster 1 3600 600 86400 60\n"`,
		`3 example.test. 300 "a TXT ( x\ny z )\n   A 192.0.2.1\n$ORIGIN sub.example.test.\n"`,
		`7 sub.example.test. 300 "b A 192.0.2.2\n; c\n$TTL 60\n"`,
		`10 sub.example.test. 60 "c A 192.0.2.3\n"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("chunks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Fewer workers, bigger chunks: cuts only where there is room.
	if chunks := splitChunks([]byte(text), "example.test.", 2, 1); len(chunks) != 2 || chunks[1].line != 7 {
		t.Errorf("two workers: %+v", chunks)
	}
	if chunks := splitChunks([]byte(text), "example.test.", 1, 1); chunks != nil {
		t.Errorf("one worker: %+v", chunks)
	}
	if chunks := splitChunks([]byte(text), "example.test.", 64, len(text)); chunks != nil {
		t.Errorf("below the minimum: %+v", chunks)
	}
}

func TestLoadLargeChunked(t *testing.T) {
	data := largeZone(20_000)
	src := Source{Origin: "big.test.", FS: fstest.MapFS{"big.test.zone": {Data: data}}, Path: "big.test.zone"}
	one, err := parseRecords(src, "big.test.", data, lineSlots(data)[:0], 1, minChunk)
	if err != nil {
		t.Fatal(err)
	}
	chunks := splitChunks(data, "big.test.", 8, 1024)
	if len(chunks) != 8 {
		t.Fatalf("%d chunks, want 8", len(chunks))
	}
	many, err := parseChunks(src, data, chunks, lineSlots(data)) // no falling back
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != len(many) {
		t.Fatalf("%d records in parallel, %d in one", len(many), len(one))
	}
	for i := range one {
		if !dns.IsDuplicate(one[i], many[i]) || one[i].Header().Ttl != many[i].Header().Ttl {
			t.Fatalf("record %d: %v, want %v", i, many[i], one[i])
		}
	}
}

func FuzzChunkedParse(f *testing.F) {
	for _, tc := range chunkCases {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		limit := limitFor(chunkSource([]byte(text)).FS, "z")
		var want, got string
		fuzzguard.Run(t, "one parser", limit, func() { want = parsed(t, text, 1, 1) })
		fuzzguard.Run(t, "64 chunks", limit, func() { got = parsed(t, text, 64, 1) })
		if got != want {
			t.Errorf("chunked parse of %q:\n%s\nwant (one parser):\n%s", text, got, want)
		}
	})
}
