package dnstest

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// NormRR renders rr in presentation form with its owner and the names in
// its rdata lower-cased: servers that compress against a 0x20-mixed
// question write those names in the question's case.
func NormRR(rr dns.RR) string {
	rr = dns.Copy(rr)
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	switch r := rr.(type) {
	case *dns.CNAME:
		r.Target = strings.ToLower(r.Target)
	case *dns.NS:
		r.Ns = strings.ToLower(r.Ns)
	case *dns.MX:
		r.Mx = strings.ToLower(r.Mx)
	case *dns.SRV:
		r.Target = strings.ToLower(r.Target)
	case *dns.SOA:
		r.Ns = strings.ToLower(r.Ns)
		r.Mbox = strings.ToLower(r.Mbox)
	case *dns.PTR:
		r.Ptr = strings.ToLower(r.Ptr)
	case *dns.DNAME:
		r.Target = strings.ToLower(r.Target)
	}
	return rr.String()
}

// NormSection is a section as a sorted list of NormRR lines, without the
// OPT pseudo-record: a section compared as a set (a multiset, exactly).
func NormSection(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, NormRR(rr))
	}
	slices.Sort(out)
	return out
}

// Section is a section as a sorted list of records in presentation form,
// single-spaced (as tests write them), without the OPT pseudo-record, and
// with names as they are: for tests of code that must keep the case of what
// it was given, where NormSection would hide a change of case.
func Section(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

// Diff compares two sections as multisets of lines: missing are in want
// and not in got, extra in got and not in want.
func Diff(want, got []string) (missing, extra []string) {
	w := map[string]int{}
	for _, s := range want {
		w[s]++
	}
	for _, s := range got {
		if w[s] > 0 {
			w[s]--
		} else {
			extra = append(extra, s)
		}
	}
	for _, s := range want {
		if w[s] > 0 {
			missing = append(missing, s)
			w[s]--
		}
	}
	return missing, extra
}

// SameSection reports whether two sections hold the same records, in any
// order (names compared without case).
func SameSection(a, b []dns.RR) bool {
	return slices.Equal(NormSection(a), NormSection(b))
}

// NormLines is NormSection for records written in presentation form, as
// tests write the sections they expect: each line is parsed (so spacing and
// the case of class and type do not matter) and normalised as NormRR does.
func NormLines(t testing.TB, lines ...string) []string {
	t.Helper()
	rrs := make([]dns.RR, 0, len(lines))
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil || rr == nil {
			t.Fatalf("dnstest: record %q: %v", l, err)
		}
		rrs = append(rrs, rr)
	}
	return NormSection(rrs)
}
