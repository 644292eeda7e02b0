package xfr

import (
	"context"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// NOTIFY (RFC 1996): every new serial of a zone (a filtered zone's change,
// a reload, a start) is announced to the zone's notify targets, over UDP,
// until each answers or the retries run out. A newer serial replaces the
// announcement of an older one still being retried.

// Key is a TSIG key NOTIFY messages are signed with.
type Key struct {
	Name      string // canonical
	Algorithm string // miekg/dns's name, e.g. dns.HmacSHA256
	Secret    string // base64
}

// Target is where a zone's NOTIFY goes, and the key that signs it (nil:
// unsigned).
type Target struct {
	Addr netip.AddrPort
	Key  *Key
}

// notifyTries and DefaultNotifyTimeout: RFC 1996 3.6 wants retries
// with a timeout; five tries, the wait doubling from a second, span about
// 15 s and outlast a secondary's restart.
const (
	notifyTries          = 5
	DefaultNotifyTimeout = time.Second
)

type jobKey struct {
	zone string
	addr netip.AddrPort
}

// notification is one zone's new serial to announce.
type notification struct {
	zone    string
	soa     *dns.SOA
	targets []Target
}

// pendingLocked lists the zones whose serial was not announced yet and
// marks them announced. s.mu is held.
func (s *Server) pendingLocked() []notification {
	var out []notification
	for origin, e := range s.cur.Load().zones {
		soa := e.zone.SOA
		if e.c != nil {
			soa = e.c.soa
		}
		if last, ok := s.notified[origin]; ok && last == soa.Serial {
			continue
		}
		s.notified[origin] = soa.Serial
		if len(e.cfg.Notify) > 0 {
			out = append(out, notification{zone: origin, soa: soa, targets: e.cfg.Notify})
		}
	}
	return out
}

// send starts announcing ns, replacing announcements of the same zone to
// the same target still being retried. Only Run calls it.
func (s *Server) send(ctx context.Context, jobs map[jobKey]context.CancelFunc, ns []notification) {
	for _, n := range ns {
		for _, t := range n.targets {
			k := jobKey{n.zone, t.Addr}
			if cancel := jobs[k]; cancel != nil {
				cancel()
			}
			jctx, cancel := context.WithCancel(ctx)
			jobs[k] = cancel
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer cancel()
				s.notify(jctx, n.zone, n.soa, t)
			}()
		}
	}
}

// notify sends one NOTIFY until it is answered, the tries run out or ctx
// ends.
func (s *Server) notify(ctx context.Context, zone string, soa *dns.SOA, t Target) {
	m := new(dns.Msg)
	m.SetNotify(zone)
	m.Answer = []dns.RR{soa}
	c := &dns.Client{Net: "udp", Timeout: s.opts.NotifyTimeout}
	if t.Key != nil {
		c.TsigSecret = map[string]string{t.Key.Name: t.Key.Secret}
	}
	log := s.opts.Log.With().Str("zone", zone).Uint32("serial", soa.Serial).Str("secondary", t.Addr.String()).Logger()
	backoff := s.opts.NotifyTimeout
	var lastErr error
	for try := range notifyTries {
		m.Id = dns.Id()
		m.Extra = nil // the previous try's TSIG
		if t.Key != nil {
			m.SetTsig(t.Key.Name, t.Key.Algorithm, 300, time.Now().Unix())
		}
		r, err := exchange(ctx, c, m, t.Addr.String())
		switch {
		case ctx.Err() != nil:
			return // a newer serial, or shutting down
		case err == nil && r.Rcode == dns.RcodeSuccess:
			s.opts.Count(zone, "NOTIFY", "ok")
			log.Debug().Int("try", try+1).Msg("notify answered")
			return
		case err == nil:
			lastErr = rcodeError(r.Rcode)
		default:
			lastErr = err
		}
		if try+1 < notifyTries {
			tm := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
			backoff *= 2
		}
	}
	s.opts.Count(zone, "NOTIFY", "failed")
	log.Warn().Err(lastErr).Int("tries", notifyTries).Msg("notify not answered; the secondary picks the change up at its next refresh")
}

type rcodeError int

func (e rcodeError) Error() string { return "answered " + dns.RcodeToString[int(e)] }

// exchange is c.ExchangeContext, except that ctx ending closes the socket
// and so stops waiting for the answer at once (miekg/dns honours only
// the context's deadline): a shutdown does not wait out a NOTIFY.
func exchange(ctx context.Context, c *dns.Client, m *dns.Msg, addr string) (*dns.Msg, error) {
	co, err := c.DialContext(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	stop := context.AfterFunc(ctx, func() { co.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, co)
	return r, err
}
