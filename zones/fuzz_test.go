package zones

import (
	"bytes"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dnslb/dnslb/internal/fuzzguard"
	"github.com/miekg/dns"
)

// perRecord is added to the limit of one input for every record the zone
// parser produces: a zone is as big as it says ($GENERATE makes 65,536
// records of one line, by design), but loading must cost time linear in
// that. It is about three times what a record costs Load under the
// fuzzer's instrumentation on a busy 2-core machine (12 µs; 5 µs without
// it): room for noise, none for anything quadratic.
const perRecord = 30 * time.Microsecond

// limitFor is the time limit of loading file from fsys.
func limitFor(fsys fs.FS, file string) time.Duration {
	if !fuzzguard.Fuzzing() {
		return fuzzguard.Limit
	}
	stop := fuzzguard.Watchdog("the bare zone parser", 10*time.Second)
	defer stop()
	return fuzzguard.Limit + time.Duration(parserRecords(fsys, file))*perRecord
}

// FuzzLoad loads arbitrary zone text that may $INCLUDE a second arbitrary
// file: no input may panic; a zone that loads has its SOA at the apex and
// as many records as it lists; one that does not names a file for every
// problem.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"testdata/example.test.zone", "testdata/inc/extra.zone"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "included IN A 192.0.2.77\n")
	}
	for _, tc := range chunkCases {
		f.Add(tc.text, "")
	}
	head := "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n"
	for _, seed := range [][2]string{
		{head + "$INCLUDE inc/extra.zone\n", "x A 192.0.2.1\n"},
		{head + "$INCLUDE inc/extra.zone sub\n", "x A 192.0.2.1\n@ TXT here\n"},
		{head + "$INCLUDE inc/extra.zone\n", "$INCLUDE inc/extra.zone\n"}, // includes itself
		{head + "$INCLUDE inc/extra.zone\n$INCLUDE inc/extra.zone\n", "$INCLUDE inc/extra.zone\n$INCLUDE inc/extra.zone\n"},
		{head + "$INCLUDE ../outside.zone\n", ""},
		{head + "$INCLUDE /etc/passwd\n", ""},
		{head + "$INCLUDE inc\n", ""}, // a directory
		{head + "$INCLUDE inc/extra.zone\n", "@ SOA ns1 hostmaster 2 3600 600 86400 60\n"},
		{head + "$GENERATE 1-100 h$ A 192.0.2.$\n", ""},
		{head + "$GENERATE 0-65535 h$ A 192.0.2.1\n", ""},
		{head + "www CNAME a\nwww A 192.0.2.1\n", ""},
		{head + "sub NS ns.sub\nns.sub A 192.0.2.1\nx.sub A 192.0.2.2\n", ""},
		{"@ SOA ns1 hostmaster 1 3600 600 86400 60\n", ""},
		{"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, text, include string) {
		fsys := fstest.MapFS{
			"z.zone":         {Data: []byte(text)},
			"inc/extra.zone": {Data: []byte(include)},
		}
		var z *Zone
		var err error
		fuzzguard.Run(t, "Load", limitFor(fsys, "z.zone"), func() { z, err = Load(Source{Origin: "example.test.", FS: fsys, Path: "z.zone", Display: "conf"}) })
		if err != nil {
			list := Errors(err)
			if len(list) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			for _, e := range list {
				if !strings.HasPrefix(e.File, "conf/") || e.Msg == "" {
					t.Fatalf("problem without its file or message: %#v", e)
				}
			}
			return
		}
		if z.SOA == nil || CanonicalName(z.SOA.Hdr.Name) != "example.test." {
			t.Fatalf("zone without its apex SOA: %v", z.SOA)
		}
		if n := len(z.All()); n != z.Records() {
			t.Fatalf("All() has %d records, Records() says %d", n, z.Records())
		}
		if r := z.Lookup("example.test.", 6); len(r.Answer) != 1 {
			t.Fatalf("apex SOA lookup: %+v", r)
		}
	})
}

// parserRecords counts the records miekg/dns's zone parser alone produces
// from file (up to its first error), includes and $GENERATE expanded.
func parserRecords(fsys fs.FS, file string) int {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return 0
	}
	zp := dns.NewZoneParser(bytes.NewReader(data), "example.test.", file)
	zp.SetIncludeAllowed(true)
	zp.SetIncludeFS(regularFiles{fsys})
	n := 0
	for _, ok := zp.Next(); ok; _, ok = zp.Next() {
		n++
	}
	return n
}
