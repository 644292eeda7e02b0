package answer

import (
	"fmt"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/dnsserver"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// fakeTransfers allows requests signed with key (any when ""), and
// transfers SOA, n TXT records, SOA.
type fakeTransfers struct {
	key      string
	n        int
	finished chan error
}

func (f *fakeTransfers) Transfer(r *TransferRequest) ([]dns.RR, bool) {
	if f.key != "" && r.Key != f.key {
		return nil, false
	}
	soa, _ := dns.NewRR("example.test. 3600 IN SOA ns1.example.test. h.example.test. 7 3600 600 86400 300")
	rrs := []dns.RR{soa}
	for i := range f.n {
		rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: fmt.Sprintf("r%d.example.test.", i), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
			Txt: []string{"a record long enough to need several messages for the whole zone"}})
	}
	return append(rrs, soa), true
}

func (f *fakeTransfers) Finished(_ *TransferRequest, err error) {
	select {
	case f.finished <- err:
	default:
	}
}

func transferServer(t *testing.T, tr Transfers) string {
	t.Helper()
	auth := NewAuthority(tsigView(t), 0, nil)
	auth.SetTransfers(tr)
	srv := dnsserver.New(dnsserver.Options{Listen: []string{"127.0.0.1:0"}}, auth, zerolog.Nop())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addrs()[0]
}

// TestAXFRSignedStream: a signed AXFR comes back as many messages, each
// signed as RFC 8945 5.3.1 says (miekg/dns's client verifies every one,
// the later ones over the previous MAC), holding every record in order.
func TestAXFRSignedStream(t *testing.T) {
	const n = 3000
	ft := &fakeTransfers{key: "xfr-key.", n: n, finished: make(chan error, 1)}
	addr := transferServer(t, ft)
	m := new(dns.Msg)
	m.SetAxfr("example.test.")
	m.SetTsig("xfr-key.", dns.HmacSHA256, 300, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{"xfr-key.": testSecret}}
	ch, err := tr.In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var got []dns.RR
	envelopes := 0
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("envelope %d: %v", envelopes, env.Error)
		}
		envelopes++
		got = append(got, env.RR...)
	}
	if len(got) != n+2 || envelopes < 5 {
		t.Fatalf("%d records in %d messages, want %d in several", len(got), envelopes, n+2)
	}
	for i := range n {
		if want := fmt.Sprintf("r%d.example.test.", i); got[i+1].Header().Name != want {
			t.Fatalf("record %d is %s, want %s", i+1, got[i+1].Header().Name, want)
		}
	}
	if err := <-ft.finished; err != nil {
		t.Errorf("Finished(%v)", err)
	}
}

// TestTransferRefusals: what is not allowed is refused, and the shapes
// RFC 1995 and 5936 leave to the server.
func TestTransferRefusals(t *testing.T) {
	addr := transferServer(t, &fakeTransfers{key: "xfr-key.", finished: make(chan error, 1)})
	ixfrNoSOA := new(dns.Msg)
	ixfrNoSOA.SetQuestion("example.test.", dns.TypeIXFR)
	ixfrNoSOA.SetTsig("xfr-key.", dns.HmacSHA256, 300, time.Now().Unix())
	ixfrUnsigned := new(dns.Msg)
	ixfrUnsigned.SetQuestion("example.test.", dns.TypeIXFR)
	axfr := new(dns.Msg)
	axfr.SetAxfr("example.test.")
	for _, tc := range []struct {
		name  string
		net   string
		m     *dns.Msg
		sign  bool
		rcode int
	}{
		{"unsigned AXFR", "tcp", axfr, false, dns.RcodeRefused},
		{"AXFR over UDP", "udp", axfr, false, dns.RcodeNotImplemented},
		{"IXFR without the client's SOA", "tcp", ixfrNoSOA, true, dns.RcodeFormatError},
		{"IXFR without the SOA, not allowed", "udp", ixfrUnsigned, false, dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &dns.Client{Net: tc.net, Timeout: 2 * time.Second}
			if tc.sign {
				c.TsigSecret = map[string]string{"xfr-key.": testSecret}
			}
			resp, _, err := c.Exchange(tc.m.Copy(), addr)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
}
