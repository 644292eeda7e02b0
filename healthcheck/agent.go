package healthcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// AgentOp is the operating state an agent reports (HAProxy's agent-check
// words up, down, fail, stopped).
type AgentOp uint8

// The operating states; AgentOpUnset: the line did not say.
const (
	AgentOpUnset AgentOp = iota
	AgentUp
	AgentDown
)

// AgentAdmin is the administrative state an agent reports (ready, drain,
// maint).
type AgentAdmin uint8

// The administrative states; AgentAdminUnset: the line did not say.
const (
	AgentAdminUnset AgentAdmin = iota
	AgentReady
	AgentDrain
	AgentMaint
)

// AgentReport is what one agent line says. Fields the line did not send
// are unset: HAProxy's rule is that what an agent does not advertise stays
// as it was, so a report is merged into the previous state (Merge).
type AgentReport struct {
	Op    AgentOp
	Admin AgentAdmin
	// Percent is the weight as a percentage of the configured weight
	// ("75%", "weight:75%"); -1: not sent.
	Percent int
	// Weight is an absolute weight ("weight:N", 0 to 256); -1: not sent.
	// The later of Percent and Weight on a line wins; the other is -1.
	Weight int
	// MaxConn is "maxconn:N"; -1: not sent. Kept and shown, not used for
	// answers: DNS cannot count connections.
	MaxConn int
	// Desc is the description after '#' ("down#disk full"), if any.
	Desc string
}

// Agent line bounds: HAProxy's words are short, and an agent that sends
// more is not speaking the protocol.
const (
	// MaxAgentLine is the most bytes read for one agent line.
	MaxAgentLine = 512
	// MaxAgentPercent bounds "N%": a member may report spare capacity
	// above its configured weight, within reason.
	MaxAgentPercent = 1000
	// MaxAgentWeight bounds "weight:N", as HAProxy does.
	MaxAgentWeight = 256
)

// ParseAgentLine parses one agent-check line (HAProxy's text protocol):
// words separated by spaces, tabs or commas, in any order, the line ending
// at the first '\r' or '\n'. A word with '#' ends the line: what follows
// is a description. An unknown word is an error, and nothing of the line
// applies: half a report would be a guess at what the agent meant.
func ParseAgentLine(line []byte) (AgentReport, error) {
	r := AgentReport{Percent: -1, Weight: -1, MaxConn: -1}
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	if len(line) > MaxAgentLine {
		return AgentReport{}, fmt.Errorf("agent line longer than %d bytes", MaxAgentLine)
	}
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		r.Desc = string(bytes.TrimSpace(line[i+1:]))
		line = line[:i]
	}
	words := 0
	for len(line) > 0 {
		i := bytes.IndexAny(line, " \t,")
		w := line
		if i >= 0 {
			w, line = line[:i], line[i+1:]
		} else {
			line = nil
		}
		if len(w) == 0 {
			continue
		}
		words++
		if err := r.word(w); err != nil {
			return AgentReport{}, err
		}
	}
	if words == 0 {
		return AgentReport{}, errors.New("empty agent line")
	}
	return r, nil
}

// word applies one word of an agent line to r.
func (r *AgentReport) word(w []byte) error {
	switch string(w) {
	case "up":
		r.Op = AgentUp
	case "down", "fail", "stopped":
		r.Op = AgentDown
	case "ready":
		r.Admin = AgentReady
	case "drain":
		r.Admin = AgentDrain
	case "maint":
		r.Admin = AgentMaint
	default:
		switch {
		case bytes.HasPrefix(w, []byte("weight:")):
			v := w[len("weight:"):]
			if pct, ok := bytes.CutSuffix(v, []byte("%")); ok {
				n, err := agentNumber(pct, MaxAgentPercent)
				if err != nil {
					return fmt.Errorf("agent word %q: %w", w, err)
				}
				r.Percent, r.Weight = n, -1
				return nil
			}
			n, err := agentNumber(v, MaxAgentWeight)
			if err != nil {
				return fmt.Errorf("agent word %q: %w", w, err)
			}
			r.Weight, r.Percent = n, -1
		case bytes.HasPrefix(w, []byte("maxconn:")):
			n, err := agentNumber(w[len("maxconn:"):], 1<<30)
			if err != nil {
				return fmt.Errorf("agent word %q: %w", w, err)
			}
			r.MaxConn = n
		case bytes.HasSuffix(w, []byte("%")):
			n, err := agentNumber(w[:len(w)-1], MaxAgentPercent)
			if err != nil {
				return fmt.Errorf("agent word %q: %w", w, err)
			}
			r.Percent, r.Weight = n, -1
		default:
			return fmt.Errorf("unknown agent word %q", w)
		}
	}
	return nil
}

// agentNumber reads a decimal in [0, limit]: digits only, no sign.
func agentNumber(b []byte, limit int) (int, error) {
	if len(b) == 0 || len(b) > 10 {
		return 0, errors.New("not a number")
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n > limit {
		return 0, fmt.Errorf("out of range 0 to %d", limit)
	}
	return n, nil
}

// ProbeAgent connects to an agent at addr and reads its line: up to the
// first '\r' or '\n', or the end of the stream, at most MaxAgentLine bytes,
// within timeout (and ctx).
func ProbeAgent(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (AgentReport, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return AgentReport{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl) // a deadline on a fresh conn cannot fail usefully
	}
	buf := make([]byte, MaxAgentLine+1)
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if bytes.ContainsAny(buf[:n], "\r\n") {
			break
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return AgentReport{}, fmt.Errorf("agent %s: %w", addr, err)
		}
	}
	r, err := ParseAgentLine(buf[:n])
	if err != nil {
		return AgentReport{}, fmt.Errorf("agent %s: %w", addr, err)
	}
	return r, nil
}
