package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsUDPSize is the EDNS0 buffer size advertised by dns checks (the DNS flag
// day 2020 value).
const dnsUDPSize = 1232

// dnsChecker sends one query over UDP (retrying over TCP if the answer is
// truncated) and checks the rcode and, optionally, the answer.
type dnsChecker struct {
	name    string
	qtype   uint16
	rcode   int
	answer  string
	addr    netip.Addr // Answer parsed as an address, if it is one
	timeout time.Duration
}

func newDNSChecker(s Spec) (*dnsChecker, error) {
	qtype, ok := dns.StringToType[s.QType]
	if !ok {
		return nil, fmt.Errorf("check.qtype: unknown query type %q", s.QType)
	}
	rcode, ok := dns.StringToRcode[s.Rcode]
	if !ok {
		return nil, fmt.Errorf("check.rcode: unknown rcode %q", s.Rcode)
	}
	c := &dnsChecker{
		name:    dns.Fqdn(s.Name),
		qtype:   qtype,
		rcode:   rcode,
		answer:  s.Answer,
		timeout: s.Timeout,
	}
	if a, err := netip.ParseAddr(s.Answer); err == nil {
		c.addr = a.Unmap()
	}
	return c, nil
}

func (c *dnsChecker) Check(ctx context.Context, addr netip.AddrPort) error {
	ctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	fail := func(err error) error {
		return fmt.Errorf("dns check %s %s @%s: %w", c.name, dns.TypeToString[c.qtype], addr, timeoutErr(ctx, err, c.timeout))
	}
	q := new(dns.Msg)
	q.SetQuestion(c.name, c.qtype)
	q.SetEdns0(dnsUDPSize, false)

	r, err := c.exchange(ctx, "udp", q, addr)
	if err == nil && r.Truncated {
		r, err = c.exchange(ctx, "tcp", q, addr)
	}
	if err != nil {
		return fail(err)
	}
	if r.Rcode != c.rcode {
		return fail(fmt.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode]))
	}
	if c.answer != "" && !c.matches(r.Answer) {
		return fail(fmt.Errorf("no answer record matches %q (%d answer records)", c.answer, len(r.Answer)))
	}
	return nil
}

// exchange sends q over network and reads the reply. Cancelling ctx (not only
// its deadline) interrupts the read.
func (c *dnsChecker) exchange(ctx context.Context, network string, q *dns.Msg, addr netip.AddrPort) (*dns.Msg, error) {
	client := &dns.Client{Net: network, UDPSize: dnsUDPSize, Timeout: c.timeout}
	conn, err := client.DialContext(ctx, addr.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r, _, err := client.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), err)
		}
		return nil, err
	}
	return r, nil
}

// matches reports whether one of rrs matches c.answer.
func (c *dnsChecker) matches(rrs []dns.RR) bool {
	for _, rr := range rrs {
		if c.addr.IsValid() {
			var a netip.Addr
			switch rr := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(rr.A)
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(rr.AAAA)
			}
			if a.IsValid() && a.Unmap() == c.addr {
				return true
			}
			continue
		}
		data := strings.TrimPrefix(rr.String(), rr.Header().String())
		if strings.Contains(data, c.answer) {
			return true
		}
	}
	return false
}
