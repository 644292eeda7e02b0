package integration

// EDNS Client Subnet (RFC 7871): a sticky pool answers by the client's
// subnet, with dig's +subnet and through unbound's subnetcache module.

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ecsRecords is a sticky pool of eight members and a static name.
const ecsRecords = `static IN A 192.0.2.25
www 60 IN A 127.0.0.11
www 60 IN A 127.0.0.12
www 60 IN A 127.0.0.13
www 60 IN A 127.0.0.14
www 60 IN A 127.0.0.15
www 60 IN A 127.0.0.16
www 60 IN A 127.0.0.17
www 60 IN A 127.0.0.18
`

const ecsPools = `  www.example.test.:
    policy: sticky
    sticky: {ecs: true, ipv4_prefix: 24, ipv6_prefix: 56}
`

// digECS runs dig with +subnet=subnet and returns the echoed option as
// dig prints it ("198.51.100.0/24/24", "" without one), the answer's
// addresses in order and the status.
func digECS(t *testing.T, addr, name, subnet string) (ecs string, first []string, status string) {
	t.Helper()
	dig := requireTool(t, "dig")
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"@" + host, "-p", port, "+time=2", "+tries=2", "+nocookie", "+norec", name, "A"}
	if subnet != "" {
		args = append(args, "+subnet="+subnet)
	}
	out, err := exec.Command(dig, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	r := parseDig(string(out))
	if m := regexp.MustCompile(`(?m)^; CLIENT-SUBNET: (\S+)$`).FindStringSubmatch(r.raw); m != nil {
		ecs = m[1]
	}
	// The sections of parseDig are sorted: read the order from the raw
	// output.
	in := false
	for _, line := range strings.Split(r.raw, "\n") {
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in:
			if f := strings.Fields(line); len(f) == 5 && f[3] == "A" {
				first = append(first, f[4])
			}
		}
	}
	return ecs, first, r.status
}

// TestECSDig: dig +subnet to a sticky pool: the option comes back with
// scope 24 (the source prefix for a shorter one); two clients of one /24
// get the same first member, and /24s spread over the members; a static
// name echoes scope 0; a query without the option gets none.
func TestECSDig(t *testing.T) {
	requireTool(t, "dig")
	addr := startPoolDNSLB(t, ecsRecords, ecsPools)

	for _, tc := range []struct{ subnet, want string }{
		{"198.51.100.0/24", "198.51.100.0/24/24"},
		{"198.51.100.77/32", "198.51.100.77/32/24"},
		{"198.51.96.0/20", "198.51.96.0/20/20"},
		{"2001:db8:1:200::/64", "2001:db8:1:200::/64/56"},
		{"0", "0.0.0.0/0/0"},
	} {
		for range 2 { // the second from the cache
			ecs, first, status := digECS(t, addr, "www.example.test", tc.subnet)
			if ecs != tc.want || status != "NOERROR" || len(first) != 8 {
				t.Errorf("+subnet=%s: CLIENT-SUBNET %q, %s, %v; want %q, NOERROR, eight members", tc.subnet, ecs, status, first, tc.want)
			}
		}
	}
	if ecs, _, _ := digECS(t, addr, "static.example.test", "198.51.100.0/24"); ecs != "198.51.100.0/24/0" {
		t.Errorf("static name: CLIENT-SUBNET %q, want scope 0", ecs)
	}
	if ecs, _, _ := digECS(t, addr, "www.example.test", ""); ecs != "" {
		t.Errorf("no +subnet: CLIENT-SUBNET %q in the reply, want none", ecs)
	}

	// Two clients in one /24 get one first member, every time.
	_, a, _ := digECS(t, addr, "www.example.test", "198.51.100.7/32")
	for _, host := range []string{"198.51.100.200/32", "198.51.100.7/32", "198.51.100.0/24"} {
		if _, b, _ := digECS(t, addr, "www.example.test", host); b[0] != a[0] {
			t.Errorf("+subnet=%s leads with %s, 198.51.100.7 with %s: one /24, two members", host, b[0], a[0])
		}
	}
	// Distinct /24s spread.
	firsts := map[string]int{}
	for i := range 32 {
		_, f, _ := digECS(t, addr, "www.example.test", fmt.Sprintf("203.0.%d.0/24", i))
		firsts[f[0]]++
	}
	if len(firsts) < 4 {
		t.Errorf("32 subnets lead with only %v of 8 members", firsts)
	}
}

// askFrom sends a recursive query for name/A to the resolver at addr from
// the local address src (a loopback address: all of 127/8 is local).
func askFrom(t *testing.T, addr, src, name string) []string {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second,
		Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		t.Fatalf("%s from %s through %s: %v", name, src, addr, err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("%s from %s: rcode %s\n%v", name, src, dns.RcodeToString[r.Rcode], r)
	}
	return addrsOf(r)
}

// TestECSUnbound: through unbound as a real ECS resolver (the subnetcache
// module, send-client-subnet for dnslb's address), clients on different
// /24s get their own sticky backends, keep them, and unbound caches each
// answer for its /24 (scope 24): asking again, from the cache or not,
// gives the same first member; the first members follow the /24s as
// dnslb hashes them (dig +subnet straight to dnslb).
func TestECSUnbound(t *testing.T) {
	requireTool(t, "unbound")
	requireTool(t, "dig")
	dnslbAddr := startPoolDNSLB(t, ecsRecords, ecsPools)
	host, _, _ := strings.Cut(dnslbAddr, ":")
	ub := startUnboundModules(t, dnslbAddr, "subnetcache validator iterator", fmt.Sprintf(`    send-client-subnet: %s
    max-client-subnet-ipv4: 24
    client-subnet-zone: example.test.
    # unbound rotates RRsets by default: keep dnslb's order.
    rrset-roundrobin: no`, host))

	// Clients on /24s of loopback, as two networks behind one resolver.
	clients := []string{"127.0.1.1", "127.0.2.1", "127.0.3.1", "127.0.4.1", "127.0.5.1", "127.0.6.1"}
	firsts := map[string]bool{}
	for _, c := range clients {
		prefix := c[:strings.LastIndex(c, ".")] + ".0/24"
		_, direct, _ := digECS(t, dnslbAddr, "www.example.test", prefix)
		for i := range 3 {
			got := askFrom(t, ub, c, "www.example.test")
			if got[0] != direct[0] {
				t.Fatalf("client %s, query %d: through unbound %v lead with %s; dnslb answers %s with %s first", c, i, got, got[0], prefix, direct[0])
			}
			// Another host of the same /24 shares the answer.
			other := c[:strings.LastIndex(c, ".")] + ".9"
			if o := askFrom(t, ub, other, "www.example.test"); o[0] != got[0] {
				t.Fatalf("client %s leads with %s, %s of its /24 with %s", c, got[0], other, o[0])
			}
		}
		firsts[direct[0]] = true
	}
	if len(firsts) < 2 {
		t.Errorf("six /24s behind one resolver all lead with %v: no spread", firsts)
	}
}
