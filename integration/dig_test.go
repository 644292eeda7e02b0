package integration

// Tests with dig, the real client: each invocation runs against NSD and
// dnslb serving the same zones; the parsed outputs (status, flags, section
// contents as sets, names lower-cased) must agree, and dnslb's output must
// show what a user expects to see.

import (
	"net"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// digResult is dig's output, parsed.
type digResult struct {
	raw      string
	status   string
	flags    map[string]bool
	ednsLine string              // "; EDNS: version: 0, flags: do; udp: 1232"
	question []string            // as printed (case kept)
	sections map[string][]string // ANSWER/AUTHORITY/ADDITIONAL, normalized, sorted
	retried  bool                // ";; Truncated, retrying in TCP mode."
}

func runDig(t *testing.T, addr string, args ...string) digResult {
	t.Helper()
	dig := requireTool(t, "dig")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{"@" + host, "-p", port, "+time=2", "+tries=2", "+nocookie"}, args...)
	out, err := exec.Command(dig, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	return parseDig(string(out))
}

func parseDig(out string) digResult {
	r := digResult{raw: out, flags: map[string]bool{}, sections: map[string][]string{}}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; Truncated, retrying in TCP mode"):
			r.retried = true
		case strings.HasPrefix(line, ";; ->>HEADER<<-"):
			if i := strings.Index(line, "status: "); i >= 0 {
				r.status = strings.TrimSuffix(strings.Fields(line[i+len("status: "):])[0], ",")
			}
		case strings.HasPrefix(line, ";; flags:"):
			f := strings.TrimPrefix(line, ";; flags:")
			if i := strings.Index(f, ";"); i >= 0 {
				f = f[:i]
			}
			for _, x := range strings.Fields(f) {
				r.flags[x] = true
			}
		case strings.HasPrefix(line, "; EDNS:"):
			r.ednsLine = line
		case strings.HasPrefix(line, ";; QUESTION SECTION:"):
			section = "QUESTION"
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			section = "ANSWER"
		case strings.HasPrefix(line, ";; AUTHORITY SECTION:"):
			section = "AUTHORITY"
		case strings.HasPrefix(line, ";; ADDITIONAL SECTION:"):
			section = "ADDITIONAL"
		case strings.TrimSpace(line) == "":
			section = ""
		case strings.HasPrefix(line, ";;"):
			section = ""
		case section == "QUESTION":
			r.question = append(r.question, strings.Join(strings.Fields(line), " "))
		case section != "" && !strings.HasPrefix(line, ";"):
			r.sections[section] = append(r.sections[section], strings.ToLower(strings.Join(strings.Fields(line), " ")))
		}
	}
	for _, s := range r.sections {
		sort.Strings(s)
	}
	return r
}

func flagList(f map[string]bool) string {
	var l []string
	for k := range f {
		l = append(l, k)
	}
	sort.Strings(l)
	return strings.Join(l, " ")
}

// compareDig asserts dnslb's dig output matches NSD's. With anyRRset the
// answer section is not compared (which single RRset answers ANY is the
// server's choice, RFC 8482; the case's check asserts there is one).
func compareDig(t *testing.T, want, got digResult, anyRRset bool) {
	t.Helper()
	if want.status != got.status {
		t.Errorf("status: NSD %s, dnslb %s", want.status, got.status)
	}
	if flagList(want.flags) != flagList(got.flags) {
		t.Errorf("flags: NSD [%s], dnslb [%s]", flagList(want.flags), flagList(got.flags))
	}
	if want.ednsLine != got.ednsLine {
		t.Errorf("EDNS: NSD %q, dnslb %q", want.ednsLine, got.ednsLine)
	}
	if strings.Join(want.question, "|") != strings.Join(got.question, "|") {
		t.Errorf("question: NSD %q, dnslb %q", want.question, got.question)
	}
	if want.retried != got.retried {
		t.Errorf("dig retried over TCP after TC: NSD %v, dnslb %v", want.retried, got.retried)
	}
	for _, s := range []string{"ANSWER", "AUTHORITY", "ADDITIONAL"} {
		if s == "ANSWER" && anyRRset {
			continue
		}
		missing, extra := dnstest.Diff(want.sections[s], got.sections[s])
		if len(missing)+len(extra) > 0 {
			t.Errorf("%s section: missing %q, extra %q", s, missing, extra)
		}
	}
	if t.Failed() {
		t.Logf("dnslb's dig output:\n%s", got.raw)
	}
}

func TestDig(t *testing.T) {
	requireTool(t, "dig")
	nsdAddr, lbAddr := startPair(t)

	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, r digResult)
	}{
		{"A over UDP", []string{"+norec", "www.example.test", "A"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "NOERROR", "qr aa", "ANSWER", "www.example.test. 3600 in a 192.0.2.10", "www.example.test. 3600 in a 192.0.2.11")
		}},
		{"A over TCP", []string{"+norec", "+tcp", "www.example.test", "A"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "NOERROR", "qr aa", "ANSWER", "www.example.test. 3600 in a 192.0.2.10", "www.example.test. 3600 in a 192.0.2.11")
		}},
		{"RD copied, RA clear", []string{"+rec", "www.example.test", "AAAA"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "NOERROR", "qr aa rd", "ANSWER", "www.example.test. 3600 in aaaa 2001:db8::10")
			if !strings.Contains(r.raw, "WARNING: recursion requested but not available") {
				t.Errorf("dig should warn that recursion is not available:\n%s", r.raw)
			}
		}},
		{"0x20 question echoed", []string{"+norec", "wWw.ExAmPlE.tEsT", "A"}, func(t *testing.T, r digResult) {
			if len(r.question) != 1 || !strings.HasPrefix(r.question[0], ";wWw.ExAmPlE.tEsT. ") {
				t.Errorf("question not echoed with its case: %q", r.question)
			}
		}},
		{"NXDOMAIN", []string{"+norec", "nope.example.test", "A"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "NXDOMAIN", "qr aa", "AUTHORITY",
				"example.test. 300 in soa ns1.example.test. hostmaster.example.test. 2024010101 7200 900 1209600 300")
		}},
		{"NODATA low negative TTL", []string{"+norec", "low.test", "TXT"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "NOERROR", "qr aa", "AUTHORITY",
				"low.test. 60 in soa ns.low.test. admin.low.test. 1 3600 600 86400 3600")
		}},
		{"CNAME chain", []string{"+norec", "chain1.example.test", "A"}, nil},
		{"cross-zone CNAME", []string{"+norec", "cross.example.test", "A"}, nil},
		{"wildcard", []string{"+norec", "anything.wild.example.test", "A"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "NOERROR", "qr aa", "ANSWER", "anything.wild.example.test. 3600 in a 192.0.2.99")
		}},
		{"referral", []string{"+norec", "www.sub.example.test", "A"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "NOERROR", "qr", "AUTHORITY",
				"sub.example.test. 3600 in ns ns1.sub.example.test.", "sub.example.test. 3600 in ns ns.other.test.")
		}},
		{"MX with additional", []string{"+norec", "example.test", "MX"}, nil},
		{"SRV", []string{"+norec", "_sip._tcp.example.test", "SRV"}, nil},
		{"ANY minimal", []string{"+norec", "anyorder.example.test", "ANY"}, func(t *testing.T, r digResult) {
			types := map[string]bool{}
			for _, l := range r.sections["ANSWER"] {
				if f := strings.Fields(l); len(f) >= 4 {
					types[f[3]] = true
				}
			}
			if len(types) != 1 {
				t.Errorf("ANY should return exactly one RRset, got %v", r.sections["ANSWER"])
			}
		}},
		{"refused", []string{"+norec", "www.example.net", "A"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "REFUSED", "qr", "")
		}},
		{"DO bit", []string{"+norec", "+dnssec", "www.example.test", "A"}, func(t *testing.T, r digResult) {
			if !strings.Contains(r.ednsLine, "flags: do;") || !strings.Contains(r.ednsLine, "udp: 1232") {
				t.Errorf("EDNS line %q, want DO echoed and udp 1232", r.ednsLine)
			}
		}},
		{"BADVERS", []string{"+norec", "+edns=1", "+noednsnegotiation", "www.example.test", "A"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "BADVERS", "qr", "")
		}},
		{"no EDNS", []string{"+norec", "+noedns", "www.example.test", "A"}, func(t *testing.T, r digResult) {
			if r.ednsLine != "" {
				t.Errorf("OPT in reply to a query without EDNS: %q", r.ednsLine)
			}
		}},
		// Truncation: dig gets TC over UDP and retries over TCP by itself.
		{"truncation then TCP retry", []string{"+norec", "+noedns", "big.example.test", "TXT"}, func(t *testing.T, r digResult) {
			if !r.retried {
				t.Errorf("dig did not see TC and retry over TCP:\n%s", r.raw)
			}
			if r.flags["tc"] || len(r.sections["ANSWER"]) != 6 {
				t.Errorf("after the TCP retry want the full answer (6 TXT, no tc); flags [%s], %d answers",
					flagList(r.flags), len(r.sections["ANSWER"]))
			}
		}},
		{"truncation ignored", []string{"+norec", "+noedns", "+ignore", "big.example.test", "TXT"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "NOERROR", "qr aa tc", "")
			if len(r.sections["ANSWER"]) != 0 {
				t.Errorf("truncated reply should have an empty answer (as NSD), got %d records", len(r.sections["ANSWER"]))
			}
		}},
		{"EDNS 1232 fits", []string{"+norec", "+bufsize=1232", "+ignore", "big.example.test", "TXT"}, func(t *testing.T, r digResult) {
			if r.flags["tc"] || len(r.sections["ANSWER"]) != 6 {
				t.Errorf("want 6 TXT without tc; flags [%s], %d answers", flagList(r.flags), len(r.sections["ANSWER"]))
			}
		}},
		{"big over TCP", []string{"+norec", "+tcp", "+noedns", "big.example.test", "TXT"}, nil},
		{"CH class for a zone name", []string{"+norec", "-c", "CH", "example.test", "SOA"}, func(t *testing.T, r digResult) {
			wantDig(t, r, "REFUSED", "qr", "")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := runDig(t, nsdAddr, c.args...)
			got := runDig(t, lbAddr, c.args...)
			compareDig(t, want, got, strings.Contains(strings.Join(c.args, " "), " ANY"))
			if c.check != nil {
				c.check(t, got)
			}
		})
	}
}

// wantDig checks status, exact flags and that section holds the given lines
// (already normalized: lower case, single spaces).
func wantDig(t *testing.T, r digResult, status, flags, section string, lines ...string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %s, want %s", r.status, status)
	}
	wf := strings.Fields(flags)
	sort.Strings(wf)
	if got := flagList(r.flags); got != strings.Join(wf, " ") {
		t.Errorf("flags [%s], want [%s]", got, strings.Join(wf, " "))
	}
	have := map[string]bool{}
	for _, l := range r.sections[section] {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("%s section lacks %q; has %q", section, l, r.sections[section])
		}
	}
	if t.Failed() {
		t.Logf("dig output:\n%s", r.raw)
	}
}
