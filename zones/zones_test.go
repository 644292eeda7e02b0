package zones

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

func loadExample(t *testing.T) *Zone {
	t.Helper()
	z, err := Load(Source{Origin: "example.test.", FS: os.DirFS("testdata"), Path: "example.test.zone", Display: "testdata"})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return z
}

func TestLookup(t *testing.T) {
	z := loadExample(t)
	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		kind     Kind
		answer   []string
		target   string
		ns       []string
		glue     []string
		wildcard bool
	}{
		{name: "exact A", qname: "www.example.test.", qtype: dns.TypeA, kind: Success,
			answer: []string{"www.example.test. 60 IN A 192.0.2.10", "www.example.test. 60 IN A 192.0.2.11"}},
		{name: "exact AAAA", qname: "www.example.test.", qtype: dns.TypeAAAA, kind: Success,
			answer: []string{"www.example.test. 3600 IN AAAA 2001:db8::10"}},
		{name: "nodata", qname: "www.example.test.", qtype: dns.TypeMX, kind: NoData},
		{name: "apex SOA", qname: "example.test.", qtype: dns.TypeSOA, kind: Success,
			answer: []string{"example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2026112601 7200 3600 1209600 300"}},
		{name: "nxdomain", qname: "nope.example.test.", qtype: dns.TypeA, kind: NXDomain},
		{name: "nxdomain deep", qname: "x.y.nope.example.test.", qtype: dns.TypeA, kind: NXDomain},
		{name: "cname", qname: "alias.example.test.", qtype: dns.TypeA, kind: CNAME, target: "www.example.test.",
			answer: []string{"alias.example.test. 3600 IN CNAME www.example.test."}},
		{name: "cname asked for", qname: "alias.example.test.", qtype: dns.TypeCNAME, kind: Success,
			answer: []string{"alias.example.test. 3600 IN CNAME www.example.test."}},
		{name: "empty non-terminal", qname: "b.c.example.test.", qtype: dns.TypeA, kind: NoData},
		{name: "empty non-terminal top", qname: "c.example.test.", qtype: dns.TypeA, kind: NoData},
		{name: "below ent", qname: "a.b.c.example.test.", qtype: dns.TypeA, kind: Success,
			answer: []string{"a.b.c.example.test. 3600 IN A 192.0.2.1"}},
		{name: "wildcard", qname: "foo.wild.example.test.", qtype: dns.TypeA, kind: Success, wildcard: true,
			answer: []string{"foo.wild.example.test. 3600 IN A 192.0.2.99"}},
		{name: "wildcard deep", qname: "a.b.wild.example.test.", qtype: dns.TypeTXT, kind: Success, wildcard: true,
			answer: []string{`a.b.wild.example.test. 3600 IN TXT "wild text"`}},
		{name: "wildcard nodata", qname: "foo.wild.example.test.", qtype: dns.TypeMX, kind: NoData, wildcard: true},
		{name: "wildcard shadowed by existing name", qname: "exists.wild.example.test.", qtype: dns.TypeTXT, kind: NoData},
		{name: "below shadowing name: closest encloser is exists.wild, no wildcard there", qname: "x.exists.wild.example.test.", qtype: dns.TypeA, kind: NXDomain},
		{name: "wildcard owner itself", qname: "*.wild.example.test.", qtype: dns.TypeA, kind: Success,
			answer: []string{"*.wild.example.test. 3600 IN A 192.0.2.99"}},
		{name: "referral at cut", qname: "sub.example.test.", qtype: dns.TypeA, kind: Delegation,
			ns:   []string{"sub.example.test. 3600 IN NS ns.elsewhere.net.", "sub.example.test. 3600 IN NS ns.sub.example.test."},
			glue: []string{"ns.sub.example.test. 3600 IN A 192.0.2.54"}},
		{name: "referral below cut", qname: "deep.www.sub.example.test.", qtype: dns.TypeA, kind: Delegation,
			ns:   []string{"sub.example.test. 3600 IN NS ns.elsewhere.net.", "sub.example.test. 3600 IN NS ns.sub.example.test."},
			glue: []string{"ns.sub.example.test. 3600 IN A 192.0.2.54"}},
		{name: "glue name is referral too", qname: "ns.sub.example.test.", qtype: dns.TypeA, kind: Delegation,
			ns:   []string{"sub.example.test. 3600 IN NS ns.elsewhere.net.", "sub.example.test. 3600 IN NS ns.sub.example.test."},
			glue: []string{"ns.sub.example.test. 3600 IN A 192.0.2.54"}},
		{name: "DS at cut answered by parent", qname: "sub.example.test.", qtype: dns.TypeDS, kind: NoData},
		{name: "ANY is one RRset", qname: "www.example.test.", qtype: dns.TypeANY, kind: Success,
			answer: []string{"www.example.test. 60 IN A 192.0.2.10", "www.example.test. 60 IN A 192.0.2.11"}},
		{name: "srv", qname: "_sip._udp.example.test.", qtype: dns.TypeSRV, kind: Success,
			answer: []string{"_sip._udp.example.test. 3600 IN SRV 0 5 5060 mail.example.test."}},
		{name: "unknown type", qname: "unknown.example.test.", qtype: 65280, kind: Success,
			answer: []string{`unknown.example.test. 3600 CLASS1 TYPE65280 \# 4 0a000001`}},
		{name: "included file", qname: "included.example.test.", qtype: dns.TypeA, kind: Success,
			answer: []string{"included.example.test. 3600 IN A 192.0.2.77"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := z.Lookup(tc.qname, tc.qtype)
			if res.Kind != tc.kind {
				t.Fatalf("kind = %v, want %v (%+v)", res.Kind, tc.kind, res)
			}
			if got, want := dnstest.Section(res.Answer), tc.answer; strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("answer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if res.Target != tc.target {
				t.Errorf("target = %q, want %q", res.Target, tc.target)
			}
			if got, want := dnstest.Section(res.Ns), tc.ns; strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("ns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if got, want := dnstest.Section(res.Glue), tc.glue; strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("glue:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if res.Wildcard != tc.wildcard {
				t.Errorf("wildcard = %v, want %v", res.Wildcard, tc.wildcard)
			}
		})
	}
}

func TestWildcardDoesNotModifyZone(t *testing.T) {
	z := loadExample(t)
	before := dnstest.Section(z.RRset("*.wild.example.test.", dns.TypeA))
	z.Lookup("one.wild.example.test.", dns.TypeA)
	if after := dnstest.Section(z.RRset("*.wild.example.test.", dns.TypeA)); strings.Join(after, "|") != strings.Join(before, "|") {
		t.Fatalf("zone changed: %v -> %v", before, after)
	}
}

func TestZoneFacts(t *testing.T) {
	z := loadExample(t)
	if z.Serial() != 2026112601 {
		t.Errorf("serial = %d", z.Serial())
	}
	if z.NegativeTTL() != 300 {
		t.Errorf("negative TTL = %d, want 300", z.NegativeTTL())
	}
	if got := dnstest.Section(z.Additional(z.RRset("example.test.", dns.TypeMX))); len(got) != 1 || !strings.Contains(got[0], "192.0.2.25") {
		t.Errorf("additional for MX = %v", got)
	}
	if z.Records() != len(z.All()) {
		t.Errorf("Records() = %d, All() has %d", z.Records(), len(z.All()))
	}
}

func TestValidationErrors(t *testing.T) {
	const head = "$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
	tests := []struct {
		name string
		body string // appended after head, which is 4 lines long
		want []string
	}{
		{"cname beside data", "x CNAME www\nx A 192.0.2.2\n", []string{"z.zone:5: CNAME and other data at x.example.test. (A)"}},
		{"two cnames", "x CNAME a\nx CNAME b\n", []string{"z.zone:6: more than one CNAME record at x.example.test."}},
		{"out of zone", "www.example.net. A 192.0.2.2\n", []string{"z.zone:5: www.example.net. is out of zone example.test."}},
		{"soa not at apex", "x SOA a b 1 2 3 4 5\n", []string{"z.zone:5: SOA record for x.example.test. is not at the zone apex example.test."}},
		{"two soas", "@ SOA ns2 host 2 2 3 4 5\n", []string{"z.zone:5: more than one SOA record at the zone apex example.test."}},
		{"data below cut", "sub NS ns.sub\nns.sub A 192.0.2.3\nx.sub TXT hello\n", []string{"z.zone:7: x.sub.example.test. TXT is below the delegation at sub.example.test.: only glue (A/AAAA) may be there"}},
		{"data at cut", "sub NS ns.other.\nsub A 192.0.2.3\n", []string{"z.zone:6: sub.example.test. A is at the delegation point sub.example.test.: only NS and DS may be there"}},
		{"missing glue", "sub NS ns.sub\n", []string{"z.zone:5: NS ns.sub.example.test. for sub.example.test. has no glue (A or AAAA) in the zone"}},
		{"in-zone NS without address", "@ NS ns2\n", []string{"z.zone:5: NS ns2.example.test. for example.test. has no address records (A or AAAA) in the zone"}},
		{"class CH", "x CH TXT hello\n", []string{"z.zone:5: class CH: only IN is served"}},
		{"syntax", "x A 300.1.2.3\n", []string{`z.zone:5: bad A A: "300.1.2.3"`}},
		{"multi-line syntax", "y TXT (\n \"a\"\n)\nx IN MX ten mail\n", []string{`z.zone:8: bad MX Pref: "ten"`}},
		{"include not allowed out of root", "$INCLUDE ../etc/passwd\n", []string{"z.zone:5: failed to open"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"z.zone": {Data: []byte(head + tc.body)}}
			_, err := Load(Source{Origin: "example.test.", FS: fsys, Path: "z.zone"})
			if err == nil {
				t.Fatal("loaded; want errors")
			}
			errs := Errors(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, want := range tc.want {
				if !strings.HasPrefix(errs[i].Error(), want) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i].Error(), want)
				}
			}
		})
	}
}

func TestMissingSOAAndNS(t *testing.T) {
	_, err := parseText("example.test.", "z.zone", "www 300 A 192.0.2.1\n")
	if err == nil {
		t.Fatal("loaded a zone without SOA and NS")
	}
	msg := err.Error()
	for _, want := range []string{"z.zone: no SOA record at the zone apex example.test.", "z.zone: no NS records at the zone apex example.test."} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestIncludeErrorNamesIncludedFile(t *testing.T) {
	fsys := fstest.MapFS{
		"z.zone":       {Data: []byte("$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n$INCLUDE sub/inc.zone\n")},
		"sub/inc.zone": {Data: []byte("; comment\n\nok A 192.0.2.5\nbad CNAME x\nbad A 192.0.2.6\n")},
	}
	_, err := Load(Source{Origin: "example.test.", FS: fsys, Path: "z.zone", Display: "/etc/dnslb"})
	errs := Errors(err)
	if len(errs) != 1 || errs[0].File != "/etc/dnslb/sub/inc.zone" || errs[0].Line != 4 {
		t.Fatalf("errors = %v; want one at /etc/dnslb/sub/inc.zone:4", err)
	}
}

func TestTTLMismatchWarns(t *testing.T) {
	z, err := parseText("example.test.", "z.zone", "$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\nw 60 A 192.0.2.2\nw 120 A 192.0.2.3\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(z.Warnings) != 1 || z.Warnings[0].Line != 6 {
		t.Fatalf("warnings = %v", z.Warnings)
	}
	for _, rr := range z.RRset("w.example.test.", dns.TypeA) {
		if rr.Header().Ttl != 60 {
			t.Errorf("ttl = %d, want 60", rr.Header().Ttl)
		}
	}
}

func TestSetFind(t *testing.T) {
	parent, err := parseText("example.test.", "p", "@ 300 SOA ns1 host 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n")
	if err != nil {
		t.Fatal(err)
	}
	child, err := parseText("child.example.test.", "c", "@ 300 SOA ns1 host 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n")
	if err != nil {
		t.Fatal(err)
	}
	set, err := NewSet(parent, child)
	if err != nil {
		t.Fatal(err)
	}
	for qname, want := range map[string]string{
		"example.test.":           "example.test.",
		"www.example.test.":       "example.test.",
		"child.example.test.":     "child.example.test.",
		"a.b.child.example.test.": "child.example.test.",
		"example.net.":            "",
		"test.":                   "",
		".":                       "",
	} {
		got := ""
		if z := set.Find(qname); z != nil {
			got = z.Origin
		}
		if got != want {
			t.Errorf("Find(%q) = %q, want %q", qname, got, want)
		}
	}
	if _, err := NewSet(parent, parent); err == nil {
		t.Error("duplicate origins accepted")
	}
}

func TestSetParent(t *testing.T) {
	zone := func(origin string) *Zone {
		t.Helper()
		z, err := parseText(origin, origin, "@ 300 SOA ns1 host 1 2 3 4 5\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n")
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	root, tld, parent, child, grandchild := zone("."), zone("test."), zone("example.test."), zone("child.example.test."), zone("a.b.child.example.test.")
	for _, tc := range []struct {
		set  []*Zone
		of   *Zone
		want string
	}{
		{[]*Zone{parent, child}, child, "example.test."},
		{[]*Zone{parent, child, grandchild}, grandchild, "child.example.test."}, // over an empty non-terminal
		{[]*Zone{parent, grandchild}, grandchild, "example.test."},              // the closest served ancestor
		{[]*Zone{parent, child}, parent, ""},
		{[]*Zone{child}, child, ""},
		{[]*Zone{tld, parent}, parent, "test."},
		{[]*Zone{root, tld}, tld, "."},
		{[]*Zone{root, tld}, root, ""},
	} {
		set, err := NewSet(tc.set...)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if z := set.Parent(tc.of); z != nil {
			got = z.Origin
		}
		if got != tc.want {
			t.Errorf("Parent(%s) = %q, want %q", tc.of.Origin, got, tc.want)
		}
	}
}

func TestSplitEntries(t *testing.T) {
	text := "; c\n$TTL 1\n@ SOA a b (\n 1 ; x\n 2 3 4 5 )\n  A 1.2.3.4\nx TXT \"a;b(\" \\;\n\n"
	var got []entry
	splitEntries(text, func(e *entry) {
		c := *e
		c.tokens = append([]string(nil), e.tokens...)
		got = append(got, c)
	})
	var lines []int
	for _, e := range got {
		lines = append(lines, e.line)
	}
	want := []int{2, 3, 6, 7}
	if len(lines) != len(want) {
		t.Fatalf("lines = %v, want %v", lines, want)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("lines = %v, want %v", lines, want)
		}
	}
	if !got[2].ownerBlank || got[1].ownerBlank {
		t.Errorf("ownerBlank wrong: %+v", got)
	}
}

func TestFilesDigestAndWithSerial(t *testing.T) {
	z := loadExample(t)
	if len(z.Files) != 2 || z.Files[0] != "testdata/example.test.zone" || z.Files[1] != "testdata/inc/extra.zone" {
		t.Errorf("files = %v", z.Files)
	}
	again := loadExample(t)
	if again.Digest != z.Digest {
		t.Error("same files, different digests")
	}
	bumped := z.WithSerial(2026112699)
	if bumped.Serial() != 2026112699 || z.Serial() != 2026112601 {
		t.Errorf("serials: bumped %d, original %d", bumped.Serial(), z.Serial())
	}
	res := bumped.Lookup("example.test.", dns.TypeSOA)
	if res.Answer[0].(*dns.SOA).Serial != 2026112699 {
		t.Error("lookup of the bumped zone shows the old serial")
	}
	if z.Lookup("example.test.", dns.TypeSOA).Answer[0].(*dns.SOA).Serial != 2026112601 {
		t.Error("original changed")
	}
}
