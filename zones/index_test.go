package zones

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

func TestNodeIndex(t *testing.T) {
	for _, hint := range []int{0, 1, 10, 5000} {
		t.Run(fmt.Sprint("hint ", hint), func(t *testing.T) {
			x := newNodeIndex(hint)
			const n = 3000
			for i := range n {
				if got := x.add(fmt.Sprintf("n%d.example.", i)); got != i {
					t.Fatalf("add %d = %d", i, got)
				}
			}
			x.shrink()
			if len(x.slots) > slotsFor(n) {
				t.Errorf("%d slots after shrink, want %d", len(x.slots), slotsFor(n))
			}
			for i := range n {
				if got := x.find(fmt.Sprintf("n%d.example.", i)); got != i {
					t.Fatalf("find %d = %d", i, got)
				}
			}
			for _, name := range []string{"n3000.example.", "example.", "", "N1.example."} {
				if got := x.find(name); got != -1 {
					t.Errorf("find %q = %d, want -1", name, got)
				}
			}
		})
	}
}

func TestRRsetsWrittenApart(t *testing.T) {
	z, err := parseText("example.test.", "z", `$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
www A 192.0.2.2
mail A 192.0.2.25
www AAAA 2001:db8::1
www A 192.0.2.3
www 60 A 192.0.2.4
mail MX 10 mail
www A 192.0.2.1
@ NS ns1
mail A 192.0.2.26
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"www A":     "www.example.test. 300 IN A 192.0.2.1|www.example.test. 300 IN A 192.0.2.2|www.example.test. 300 IN A 192.0.2.3|www.example.test. 300 IN A 192.0.2.4",
		"www AAAA":  "www.example.test. 300 IN AAAA 2001:db8::1",
		"mail A":    "mail.example.test. 300 IN A 192.0.2.25|mail.example.test. 300 IN A 192.0.2.26",
		"mail MX":   "mail.example.test. 300 IN MX 10 mail.example.test.",
		"@ NS":      "example.test. 300 IN NS ns1.example.test.",
		"ns1 A":     "ns1.example.test. 300 IN A 192.0.2.53",
		"www TXT":   "",
		"other A":   "",
		"mail AAAA": "",
	}
	for q, w := range want {
		name, typ, _ := strings.Cut(q, " ")
		owner := "example.test."
		if name != "@" {
			owner = name + "." + owner
		}
		rrs := z.RRset(owner, dns.StringToType[typ])
		if got := strings.Join(dnstest.Section(rrs), "|"); got != w {
			t.Errorf("%s:\n got %s\nwant %s", q, got, w)
		}
	}
	if z.Records() != 11 {
		t.Errorf("records = %d, want 11 (duplicates collapse)", z.Records())
	}
	if len(z.All()) != z.Records() {
		t.Errorf("All has %d records, want %d", len(z.All()), z.Records())
	}
	if len(z.Warnings) != 1 || z.Warnings[0].Line != 10 {
		t.Errorf("warnings = %v, want the TTL of line 10", z.Warnings)
	}
	// Appending to an answer must not change the zone.
	for _, q := range []struct {
		name string
		typ  uint16
	}{{"ns1.example.test.", dns.TypeA}, {"www.example.test.", dns.TypeA}, {"mail.example.test.", dns.TypeA}} {
		before := strings.Join(dnstest.Section(z.RRset(q.name, q.typ)), "|")
		_ = append(z.RRset(q.name, q.typ), &dns.A{Hdr: dns.RR_Header{Name: "x."}})
		if after := strings.Join(dnstest.Section(z.RRset(q.name, q.typ)), "|"); after != before {
			t.Errorf("%s changed: %s", q.name, after)
		}
		if res := z.Lookup("mail.example.test.", dns.TypeMX); len(res.Answer) != 1 {
			t.Errorf("MX after append: %v", res.Answer)
		}
	}
}

func TestTypes(t *testing.T) {
	z, err := parseText("example.test.", "z", `$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
www A 192.0.2.1
www AAAA 2001:db8::1
a.b A 192.0.2.9
`)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"www.example.test.":   "[A AAAA]",
		"example.test.":       "[NS SOA]",
		"b.example.test.":     "[]", // an empty non-terminal
		"other.example.test.": "[]",
	} {
		var got []string
		for _, typ := range z.Types(name) {
			got = append(got, dns.TypeToString[typ])
		}
		slices.Sort(got)
		if s := fmt.Sprint(got); s != want && !(want == "[]" && got == nil) {
			t.Errorf("Types(%s) = %s, want %s", name, s, want)
		}
	}
}
