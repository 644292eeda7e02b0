package xfr

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
)

func rrs(t *testing.T, lines ...string) []dns.RR {
	t.Helper()
	out := make([]dns.RR, len(lines))
	for i, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out[i] = rr
	}
	return out
}

func soaLine(serial int) string {
	return fmt.Sprintf("example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. %d 3600 600 86400 60", serial)
}

func lines(rrs []dns.RR) []string {
	out := dnstest.NormSection(rrs)
	slices.Sort(out)
	return out
}

// TestApplyIXFR: an IXFR reply applies to the copy held, difference by
// difference; a reply that does not fit the copy is an error (and the
// caller falls back on AXFR).
func TestApplyIXFR(t *testing.T) {
	have := rrs(t, soaLine(1), "www.example.test. 60 IN A 192.0.2.1", "www.example.test. 60 IN A 192.0.2.2", "txt.example.test. 60 IN TXT \"one\"")
	a1, a2, a3 := "www.example.test. 60 IN A 192.0.2.1", "www.example.test. 60 IN A 192.0.2.2", "www.example.test. 60 IN A 192.0.2.3"
	txt := "txt.example.test. 60 IN TXT \"one\""
	cases := []struct {
		name     string
		reply    []string
		want     []string // nil: an error
		typ      string
		upToDate bool
	}{
		{name: "up to date", reply: []string{soaLine(1)}, typ: "IXFR", upToDate: true},
		{name: "one difference", reply: []string{soaLine(2), soaLine(1), a1, soaLine(2), a3, soaLine(2)},
			want: []string{soaLine(2), a2, a3, txt}, typ: "IXFR"},
		{name: "two differences", reply: []string{soaLine(3), soaLine(1), a1, soaLine(2), a3, soaLine(2), txt, soaLine(3), soaLine(3)},
			want: []string{soaLine(3), a2, a3}, typ: "IXFR"},
		{name: "deleted and added back", reply: []string{soaLine(3), soaLine(1), a1, soaLine(2), soaLine(2), soaLine(3), a1, soaLine(3)},
			want: []string{soaLine(3), a1, a2, txt}, typ: "IXFR"},
		{name: "the whole zone instead", reply: []string{soaLine(5), a3, soaLine(5)}, want: []string{soaLine(5), a3}, typ: "AXFR"},
		{name: "from another serial", reply: []string{soaLine(3), soaLine(2), a1, soaLine(3), soaLine(3)}},
		{name: "deletes what the copy lacks", reply: []string{soaLine(2), soaLine(1), a3, soaLine(2), soaLine(2)}},
		{name: "no closing SOA", reply: []string{soaLine(2), soaLine(1), a1, soaLine(2), a3}},
		{name: "newer SOA alone", reply: []string{soaLine(2)}},
		{name: "not an SOA first", reply: []string{a1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := applyIXFR(have, have[0].(*dns.SOA), rrs(t, c.reply...))
			if c.want == nil && !c.upToDate {
				if err == nil {
					t.Fatalf("applied: %v", got.Records)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != c.typ || got.UpToDate != c.upToDate {
				t.Fatalf("type %s, up to date %v; want %s, %v", got.Type, got.UpToDate, c.typ, c.upToDate)
			}
			if c.upToDate {
				return
			}
			if g, w := lines(got.Records), lines(rrs(t, c.want...)); !slices.Equal(g, w) {
				t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
			if _, ok := got.Records[0].(*dns.SOA); !ok {
				t.Fatalf("first record %v, want the SOA", got.Records[0])
			}
		})
	}
	if have[1].Header().Ttl != 60 || have[1].Header().Name != "www.example.test." {
		t.Fatalf("the copy held was changed: %v", have[1])
	}
}

const pullZone = `$TTL 300
@ SOA ns1 hostmaster %d 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.1
www 60 A 192.0.2.10
www 60 A 192.0.2.11
%s`

var pullKey = &dnstest.PrimaryKey{Name: "xfr-key.", Algorithm: dns.HmacSHA256,
	Secret: base64.StdEncoding.EncodeToString([]byte("pull secret, 32 bytes long.....!"))}

func primaryOf(p *dnstest.Primary, k *dnstest.PrimaryKey) Primary {
	pr := Primary{Addr: netip.MustParseAddrPort(p.Addr)}
	if k != nil {
		pr.Key = &Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret}
	}
	return pr
}

// TestPull: AXFR without a copy, IXFR with one, AXFR again when the
// primary answers IXFR with the whole zone; the SOA query and every
// transfer signed, and unsigned or wrongly signed ones failing.
func TestPull(t *testing.T) {
	p := dnstest.NewPrimary(t, "example.test.", fmt.Sprintf(pullZone, 1, ""), pullKey)
	pr := primaryOf(p, pullKey)
	ctx := context.Background()

	soa, err := QuerySOA(ctx, "example.test.", pr, 0)
	if err != nil || soa.Serial != 1 {
		t.Fatalf("SOA: %v, %v", soa, err)
	}
	got, err := Pull(ctx, "example.test.", pr, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "AXFR" || len(got.Records) != 5 {
		t.Fatalf("%s of %d records, want AXFR of 5: %v", got.Type, len(got.Records), got.Records)
	}

	p.Set(t, fmt.Sprintf(pullZone, 2, "www 60 A 192.0.2.12\n"))
	p.Set(t, fmt.Sprintf(pullZone, 3, "www 60 A 192.0.2.12\nnew TXT \"three\"\n"))
	ixfr, err := Pull(ctx, "example.test.", pr, got.Records, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ixfr.Type != "IXFR" || ixfr.Records[0].(*dns.SOA).Serial != 3 || len(ixfr.Records) != 7 {
		t.Fatalf("%s: %v", ixfr.Type, ixfr.Records)
	}
	up, err := Pull(ctx, "example.test.", pr, ixfr.Records, 0)
	if err != nil || !up.UpToDate {
		t.Fatalf("up to date: %+v, %v", up, err)
	}

	p.SetIXFR(false)
	full, err := Pull(ctx, "example.test.", pr, got.Records, 0)
	if err != nil {
		t.Fatal(err)
	}
	if full.Type != "AXFR" || !slices.Equal(lines(full.Records), lines(ixfr.Records)) {
		t.Fatalf("%s: %v\nwant %v", full.Type, full.Records, ixfr.Records)
	}

	wrong := pr
	wrong.Key = &Key{Name: pullKey.Name, Algorithm: pullKey.Algorithm, Secret: base64.StdEncoding.EncodeToString([]byte("another secret"))}
	for name, q := range map[string]Primary{"unsigned": {Addr: pr.Addr}, "wrong secret": wrong} {
		if _, err := QuerySOA(ctx, "example.test.", q, 0); err == nil {
			t.Errorf("%s SOA query succeeded", name)
		}
		if _, err := Pull(ctx, "example.test.", q, nil, 0); err == nil {
			t.Errorf("%s AXFR succeeded", name)
		}
	}
	for _, r := range p.Requests() {
		if strings.HasPrefix(r, "refused") {
			return
		}
	}
	t.Fatalf("the primary refused nothing: %v", p.Requests())
}

// TestPullUnsignedReply: a reply without a TSIG to a signed request is
// not taken, whatever it holds.
func TestPullUnsignedReply(t *testing.T) {
	p := dnstest.NewPrimary(t, "example.test.", fmt.Sprintf(pullZone, 1, ""), nil)
	pr := primaryOf(p, pullKey) // signs; the primary answers unsigned
	if _, err := QuerySOA(context.Background(), "example.test.", pr, 0); err == nil {
		t.Fatal("an unsigned SOA reply was taken")
	}
	if _, err := Pull(context.Background(), "example.test.", pr, nil, 0); err == nil {
		t.Fatal("an unsigned AXFR was taken")
	}
}
