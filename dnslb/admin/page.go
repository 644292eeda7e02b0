package admin

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

// pageData is what page.html renders.
type pageData struct {
	Now         time.Time
	About       About
	Ready       bool
	ReloadAt    time.Time
	ReloadError string
	Pools       []pagePool
	Zones       []ZoneStatus
	Fleet       *FleetStatus // nil: in no fleet
	Members     int
	Up          int
	Down        int // down or forced down
	Drained     int
	ZoneErrors  int
	RefreshMS   int64
}

type pagePool struct {
	PoolStatus
	Up    int
	Total int
	// FamilyNote qualifies the all-down badge of a dual-stack pool with
	// one family down: "A only", "AAAA only"; "" otherwise.
	FamilyNote string
}

func newPageTemplate() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{
		"ago":        ago,
		"until":      untilText,
		"latency":    latencyText,
		"pct":        pct,
		"stamp":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"lines":      func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") },
		"modeLabel":  modeLabel,
		"fallback":   fallbackText,
		"join":       strings.Join,
		"since":      func(now, t time.Time) string { return humanDuration(now.Sub(t)) },
		"fleetUp":    fleetUp,
		"fleetViews": fleetViews,
	}).Parse(pageHTML))
}

func (s *Server) handlePage(w http.ResponseWriter, _ *http.Request) {
	d := pageData{Now: s.opts.Now(), About: s.opts.About, Ready: s.backend.Ready(), RefreshMS: s.opts.Refresh.Milliseconds()}
	at, err := s.backend.LastReload()
	d.ReloadAt = at
	if err != nil {
		d.ReloadError = err.Error()
	}
	for _, p := range s.backend.Pools() {
		pp := pagePool{PoolStatus: p, Total: len(p.Members), FamilyNote: familyNote(p)}
		for _, m := range p.Members {
			switch m.State {
			case "up":
				pp.Up++
			case "down", "forced-down":
				d.Down++
			case "drained":
				d.Drained++
			}
		}
		d.Up += pp.Up
		d.Members += pp.Total
		d.Pools = append(d.Pools, pp)
	}
	d.Zones = s.backend.Zones()
	d.Fleet = s.fleetOf()
	for _, z := range d.Zones {
		if z.Error != "" {
			d.ZoneErrors++
		}
	}
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, d); err != nil {
		s.log.Error().Err(err).Msg("rendering the status page")
		http.Error(w, "rendering the status page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	_, _ = w.Write(buf.Bytes())
}

// ago renders t relative to now: "12s ago", "3m 4s ago"; "—" for never.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + humanDuration(-d)
	}
	return humanDuration(d) + " ago"
}

// untilText renders an expiry: "in 29m 59s", "expired", "no expiry".
func untilText(now, t time.Time) string {
	if t.IsZero() {
		return "no expiry"
	}
	if !t.After(now) {
		return "expired"
	}
	return "in " + humanDuration(t.Sub(now))
}

// humanDuration is a short, two-unit rendering: 45s, 3m 4s, 2h 5m, 3d 4h.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func latencyText(d time.Duration, checked bool) string {
	if !checked || d <= 0 {
		return "—"
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// pct renders a 0..1 share as a percentage number, clamped.
func pct(f float64) string {
	if math.IsNaN(f) || f < 0 {
		f = 0
	}
	if f > 1 {
		f = 1
	}
	return fmt.Sprintf("%.1f", f*100)
}

func modeLabel(m OverrideMode) string {
	switch m {
	case OverrideDrain:
		return "drained"
	case OverrideForceDown:
		return "forced down"
	default:
		return string(m)
	}
}

// fallbackText says what a pool in its when_all_down fallback answers.
func fallbackText(f string) string {
	switch f {
	case "all":
		return "answering all (fail-open)"
	case "backup":
		return "answering backups"
	case "empty":
		return "answering NODATA (empty)"
	default:
		return "answering " + f
	}
}

// familyNote is "A only" or "AAAA only" when a pool with members of both
// families is all down in one of them.
func familyNote(p PoolStatus) string {
	if len(p.AllDownFamilies) != 1 {
		return ""
	}
	var v4, v6 bool
	for _, m := range p.Members {
		if a, err := netip.ParseAddr(m.Address); err == nil {
			v4 = v4 || a.Is4()
			v6 = v6 || !a.Is4()
		}
	}
	if v4 && v6 {
		return p.AllDownFamilies[0] + " only"
	}
	return ""
}

// fleetUp summarises the nodes' views of a member: "2/3 up".
func fleetUp(views map[string]string) string {
	up := 0
	for _, v := range views {
		if v == "up" {
			up++
		}
	}
	return fmt.Sprintf("%d/%d up", up, len(views))
}

// fleetViews lists them: "ns1 up, ns2 down".
func fleetViews(views map[string]string) string {
	parts := make([]string, 0, len(views))
	for _, n := range slices.Sorted(maps.Keys(views)) {
		parts = append(parts, n+" "+views[n])
	}
	return strings.Join(parts, ", ")
}
