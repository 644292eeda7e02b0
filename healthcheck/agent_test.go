package healthcheck

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/fuzzguard"
)

func TestParseAgentLine(t *testing.T) {
	unset := AgentReport{Percent: -1, Weight: -1, MaxConn: -1}
	with := func(f func(*AgentReport)) AgentReport { r := unset; f(&r); return r }
	tests := []struct {
		line string
		want AgentReport
		err  string
	}{
		{"up\n", with(func(r *AgentReport) { r.Op = AgentUp }), ""},
		{"down", with(func(r *AgentReport) { r.Op = AgentDown }), ""},
		{"fail\r\n", with(func(r *AgentReport) { r.Op = AgentDown }), ""},
		{"stopped#maintenance window", with(func(r *AgentReport) { r.Op = AgentDown; r.Desc = "maintenance window" }), ""},
		{"down #disk full, sorry", with(func(r *AgentReport) { r.Op = AgentDown; r.Desc = "disk full, sorry" }), ""},
		{"ready", with(func(r *AgentReport) { r.Admin = AgentReady }), ""},
		{"drain", with(func(r *AgentReport) { r.Admin = AgentDrain }), ""},
		{"maint", with(func(r *AgentReport) { r.Admin = AgentMaint }), ""},
		{"75%", with(func(r *AgentReport) { r.Percent = 75 }), ""},
		{"0%", with(func(r *AgentReport) { r.Percent = 0 }), ""},
		{"weight:40%", with(func(r *AgentReport) { r.Percent = 40 }), ""},
		{"weight:12", with(func(r *AgentReport) { r.Weight = 12 }), ""},
		{"weight:12 50%", with(func(r *AgentReport) { r.Percent = 50 }), ""},
		{"50% weight:12", with(func(r *AgentReport) { r.Weight = 12 }), ""},
		{"maxconn:30", with(func(r *AgentReport) { r.MaxConn = 30 }), ""},
		{"up 25%", with(func(r *AgentReport) { r.Op = AgentUp; r.Percent = 25 }), ""},
		{"up,ready,\t100%  maxconn:5\n ignored after the line", with(func(r *AgentReport) {
			r.Op, r.Admin, r.Percent, r.MaxConn = AgentUp, AgentReady, 100, 5
		}), ""},
		{"drain up", with(func(r *AgentReport) { r.Op, r.Admin = AgentUp, AgentDrain }), ""},
		{"up down", with(func(r *AgentReport) { r.Op = AgentDown }), ""}, // the last word wins
		{"", unset, "empty agent line"},
		{" , \t\n", unset, "empty agent line"},
		{"\nup", unset, "empty agent line"},
		{"upp", unset, `unknown agent word "upp"`},
		{"up bogus", unset, `unknown agent word "bogus"`},
		{"UP", unset, `unknown agent word "UP"`},
		{"-5%", unset, "not a number"},
		{"1001%", unset, "out of range 0 to 1000"},
		{"%", unset, "not a number"},
		{"weight:257", unset, "out of range 0 to 256"},
		{"weight:", unset, "not a number"},
		{"maxconn:x", unset, "not a number"},
		{"99999999999%", unset, "not a number"},
		{strings.Repeat("up ", 200), unset, "longer than 512"},
	}
	for _, tt := range tests {
		got, err := ParseAgentLine([]byte(tt.line))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseAgentLine(%q) error = %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAgentLine(%q): %v", tt.line, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseAgentLine(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func FuzzParseAgentLine(f *testing.F) {
	for _, s := range []string{"up", "down#x", "up 25%,drain maxconn:3", "weight:7", "weight:50%", "ready\r\n", "", "#", "%%", ",,,"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var r AgentReport
		var err error
		fuzzguard.Run(t, "ParseAgentLine", fuzzguard.Limit, func() { r, err = ParseAgentLine(line) })
		if err != nil {
			return
		}
		if r.Percent > MaxAgentPercent || r.Weight > MaxAgentWeight || r.Percent < -1 || r.Weight < -1 || r.MaxConn < -1 {
			t.Fatalf("ParseAgentLine(%q) = %+v: out of bounds", line, r)
		}
		if r.Percent >= 0 && r.Weight >= 0 {
			t.Fatalf("ParseAgentLine(%q) = %+v: both a percentage and a weight", line, r)
		}
	})
}

// agentServer answers every connection with reply (and closes it) until
// the test ends.
func agentServer(t *testing.T, reply string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(reply))
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func TestProbeAgent(t *testing.T) {
	tests := []struct {
		reply string
		want  AgentReport
		err   string
	}{
		{"up 25%\n", AgentReport{Op: AgentUp, Percent: 25, Weight: -1, MaxConn: -1}, ""},
		{"drain", AgentReport{Admin: AgentDrain, Percent: -1, Weight: -1, MaxConn: -1}, ""}, // ended by the close
		{"what\n", AgentReport{}, "unknown agent word"},
		{strings.Repeat("x", 2000), AgentReport{}, "longer than"},
	}
	for _, tt := range tests {
		addr := agentServer(t, tt.reply)
		got, err := ProbeAgent(context.Background(), addr, 5*time.Second)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("reply %.20q: error = %v, want %q", tt.reply, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("reply %q: %+v, %v; want %+v", tt.reply, got, err, tt.want)
		}
	}
}

// An agent that accepts and says nothing is cut off by the timeout.
func TestProbeAgentTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c
		}
	}()
	_, err = ProbeAgent(context.Background(), netip.MustParseAddrPort(ln.Addr().String()), 50*time.Millisecond)
	if err == nil {
		t.Fatal("a silent agent gave a report")
	}
	(<-held).Close()
}
