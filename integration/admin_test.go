package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/rs/zerolog"
	"golang.org/x/net/html"
)

// statusBackend is an admin.Backend with two pools (one with a member up,
// one down with an error and one drained; one with its only member down,
// failing open) and two zones, one of them failing to load.
type statusBackend struct {
	mu    sync.Mutex
	now   time.Time // the admin server's clock, fixed so relative times are exact
	pools []admin.PoolStatus
	zones []admin.ZoneStatus
	pages int                    // Pools calls, i.e. renders and API reads
	after func(b *statusBackend) // applied once after the first read
}

func newStatusBackend() *statusBackend {
	now := time.Now()
	return &statusBackend{
		now: now,
		pools: []admin.PoolStatus{{
			Name: "www.example.test.", Zone: "example.test.", Policy: "weighted", TTL: 30, MaxAnswers: 2,
			WhenAllDown: "all", Check: "http :80 /healthz every 2s",
			Members: []admin.MemberStatus{
				{Address: "192.0.2.1", State: "up", Healthy: true, Checked: true, Since: now.Add(-5 * time.Minute),
					Latency: 2 * time.Millisecond, Weight: 3, Share: 1},
				{Address: "192.0.2.2", State: "down", Checked: true, Since: now.Add(-20 * time.Second),
					LastError: "dial tcp 192.0.2.2:80: connect: connection refused", Weight: 1},
				{Address: "192.0.2.3", State: "drained", Healthy: true, Checked: true, Since: now.Add(-time.Hour),
					Latency: 900 * time.Microsecond, Weight: 1,
					Override: &admin.Override{Mode: admin.OverrideDrain, Reason: "kernel <upgrade>", Since: now.Add(-2 * time.Minute), Until: now.Add(28 * time.Minute)}},
			},
		}, {
			Name: "api.example.test.", Zone: "example.test.", Policy: "round-robin", TTL: 10,
			WhenAllDown: "all", Check: "tcp :443 every 2s", AllDown: true, Fallback: "all", AllDownFamilies: []string{"A"},
			Members: []admin.MemberStatus{
				{Address: "192.0.2.20", State: "down", Checked: true, Since: now.Add(-time.Minute),
					LastError: "dial tcp 192.0.2.20:443: i/o timeout", Weight: 1},
			},
		}},
		zones: []admin.ZoneStatus{
			{Origin: "example.test.", File: "zones/example.test.zone", Serial: 2026030101, Records: 8, LoadedAt: now.Add(-time.Minute)},
			{Origin: "broken.test.", File: "zones/broken.test.zone", Serial: 4, Records: 3, LoadedAt: now.Add(-time.Hour),
				Error: "zones/broken.test.zone:7: bad A record \"300.1.1.1\""},
		},
	}
}

func (b *statusBackend) Ready() bool { return true }
func (b *statusBackend) Pools() []admin.PoolStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]admin.PoolStatus, len(b.pools))
	for i, p := range b.pools {
		p.Members = append([]admin.MemberStatus(nil), p.Members...)
		out[i] = p
	}
	b.pages++
	if b.after != nil {
		b.after(b)
		b.after = nil
	}
	return out
}
func (b *statusBackend) Zones() []admin.ZoneStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]admin.ZoneStatus(nil), b.zones...)
}
func (b *statusBackend) SetOverride(netip.Addr, admin.OverrideMode, time.Time, string) error {
	return admin.ErrUnknownMember
}
func (b *statusBackend) Reload() error                  { return nil }
func (b *statusBackend) LastReload() (time.Time, error) { return time.Now().Add(-time.Minute), nil }

func startStatusServer(t *testing.T, b *statusBackend) string {
	t.Helper()
	return startStatusServerToken(t, b, "")
}

// startStatusServerToken is startStatusServer with an admin token.
func startStatusServerToken(t *testing.T, b *statusBackend, token string) string {
	t.Helper()
	opts := admin.Options{Refresh: 500 * time.Millisecond, Now: func() time.Time { return b.now }, Token: token}
	s := admin.NewServer("127.0.0.1:0", b, nil, opts, zerolog.Nop())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return "http://" + s.Addr() + "/"
}

// chromium runs headless Chromium with extra arguments and returns stdout.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin := requireTool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// renderedMember is one member row as Chromium rendered it.
type renderedMember struct {
	state, class, text string
}

// memberRows finds the member rows (tr with data-address) in a DOM dump.
func memberRows(t *testing.T, dom string) map[string]renderedMember {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]renderedMember{}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "tr" {
			continue
		}
		attr := map[string]string{}
		for _, a := range n.Attr {
			attr[a.Key] = a.Val
		}
		if addr, ok := attr["data-address"]; ok {
			rows[addr] = renderedMember{state: attr["data-state"], class: attr["class"], text: textOf(n)}
		}
	}
	return rows
}

// renderedPool is one pool card's class and heading text as rendered.
type renderedPool struct{ class, text string }

// poolHeadings finds the pool cards (section with data-pool) in a DOM dump.
func poolHeadings(t *testing.T, dom string) map[string]renderedPool {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]renderedPool{}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "section" {
			continue
		}
		attr := map[string]string{}
		for _, a := range n.Attr {
			attr[a.Key] = a.Val
		}
		name, ok := attr["data-pool"]
		if !ok {
			continue
		}
		rp := renderedPool{class: attr["class"]}
		for c := range n.Descendants() {
			if c.Type == html.ElementNode && c.Data == "h2" {
				rp.text = textOf(c)
				break
			}
		}
		out[name] = rp
	}
	return out
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// TestStatusPageInChromium loads the status page in headless Chromium and
// checks the rendered pools, member states, the down member's error and
// the zone load error.
func TestStatusPageInChromium(t *testing.T) {
	url := startStatusServer(t, newStatusBackend())
	dom := chromium(t, "--dump-dom", url)

	for _, want := range []string{
		`data-pool="www.example.test."`,
		"weighted", "1/3 up",
		`data-origin="broken.test."`, `zones/broken.test.zone:7: bad A record "300.1.1.1"`,
		"2026030101", "● ready",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if !strings.Contains(dom, `class="zone zone-error"`) {
		t.Error("the broken zone is not highlighted")
	}
	// The pool failing open carries the badge on its heading; the other
	// does not.
	headings := poolHeadings(t, dom)
	if h := headings["api.example.test."]; !strings.Contains(h.class, "alldown") ||
		!strings.Contains(h.text, "ALL DOWN – answering all (fail-open)") {
		t.Errorf("all-down pool heading %+v, want the alldown class and badge", h)
	}
	if h, ok := headings["www.example.test."]; !ok || strings.Contains(h.class, "alldown") || strings.Contains(h.text, "ALL DOWN") {
		t.Errorf("healthy pool heading %+v (found %v), want no all-down badge", h, ok)
	}
	rows := memberRows(t, dom)
	for _, tc := range []struct {
		addr, state string
		text        []string
	}{
		{"192.0.2.1", "up", []string{"up", "2.0 ms", "100.0%"}},
		{"192.0.2.2", "down", []string{"down", "dial tcp 192.0.2.2:80: connect: connection refused", "20s ago"}},
		{"192.0.2.3", "drained", []string{"drained", "kernel <upgrade>", "in 28m"}},
	} {
		r, ok := rows[tc.addr]
		if !ok {
			t.Errorf("no row for member %s; rows: %v", tc.addr, rows)
			continue
		}
		if r.state != tc.state || !strings.Contains(r.class, "state-"+tc.state) {
			t.Errorf("member %s rendered as state %q class %q, want %q", tc.addr, r.state, r.class, tc.state)
		}
		for _, w := range tc.text {
			if !strings.Contains(r.text, w) {
				t.Errorf("member %s row %q lacks %q", tc.addr, r.text, w)
			}
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	// DNSLB_STATUS_SCREENSHOT=/tmp/status.png keeps a picture to look at.
	if shot := os.Getenv("DNSLB_STATUS_SCREENSHOT"); shot != "" {
		chromium(t, "--screenshot="+shot, "--window-size=1280,900", "--hide-scrollbars", url)
		t.Logf("screenshot in %s", shot)
	}
}

// TestStatusPageRefreshes: the page fetches fresh data by itself. The member
// goes down after the first render; after a few refresh periods of
// (virtual) time, the DOM shows it down without a reload.
func TestStatusPageRefreshes(t *testing.T) {
	b := newStatusBackend()
	b.after = func(b *statusBackend) {
		m := &b.pools[0].Members[0]
		m.State, m.Healthy, m.LastError = "down", false, "HTTP 503 from /healthz"
	}
	url := startStatusServer(t, b)
	dom := chromium(t, "--virtual-time-budget=5000", "--dump-dom", url)
	r := memberRows(t, dom)["192.0.2.1"]
	if r.state != "down" || !strings.Contains(r.text, "HTTP 503 from /healthz") {
		b.mu.Lock()
		n := b.pages
		b.mu.Unlock()
		t.Errorf("after refreshing, 192.0.2.1 shows state %q (%q), want down with its error; %d renders",
			r.state, r.text, n)
	}
}

// TestStatusPageToken: with a token, the status page is a 401 that asks
// for basic auth; a browser that gives the token as the password (here in
// the URL, as headless Chromium has no prompt) gets the page, and its
// refreshes carry the credentials too.
func TestStatusPageToken(t *testing.T) {
	b := newStatusBackend()
	b.after = func(b *statusBackend) {
		m := &b.pools[0].Members[0]
		m.State, m.Healthy, m.LastError = "down", false, "HTTP 503 from /healthz"
	}
	url := startStatusServerToken(t, b, "s3cret")
	if dom := chromium(t, "--dump-dom", url); strings.Contains(dom, "data-pool") {
		t.Errorf("without credentials the page rendered:\n%s", dom)
	}
	withAuth := strings.Replace(url, "http://", "http://admin:s3cret@", 1)
	dom := chromium(t, "--virtual-time-budget=5000", "--dump-dom", withAuth)
	r := memberRows(t, dom)["192.0.2.1"]
	if r.state != "down" || !strings.Contains(r.text, "HTTP 503 from /healthz") {
		t.Errorf("after refreshing with basic auth, 192.0.2.1 shows state %q (%q), want down with its error\n%s", r.state, r.text, dom)
	}
}

// TestStatusPageServe runs the real thing: `dnslb serve` with an admin
// address, HTTP backends (one stopped), a drain and a failed reload through
// the CLI, then the status page in headless Chromium.
func TestStatusPageServe(t *testing.T) {
	requireTool(t, "chromium")
	be := startBackends(t, ip11, ip12, ip13)
	be.get(t, ip12).Stop()

	dir := t.TempDir()
	zone := filepath.Join(dir, "example.test.zone")
	broken := filepath.Join(dir, "broken.test.zone")
	adminWriteFile(t, zone, zoneHead+"www IN A 127.0.0.11\nwww IN A 127.0.0.12\nwww IN A 127.0.0.13\n")
	adminWriteFile(t, broken, strings.ReplaceAll(zoneHead, "example.test.", "broken.test."))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startDNSLB(t, fmt.Sprintf(`log: {level: debug, format: json}
admin: %q
zones:
  - {origin: example.test., file: %s}
  - {origin: broken.test., file: %s}
pools:
  www.example.test.:
    policy: round-robin
    check: %s
`, adminAddr, zone, broken, httpCheck(be.Port)))
	base := "http://" + adminAddr

	// Wait for the admin API and for both verdicts of the health checks.
	var pool admin.PoolStatus
	dnstest.Eventually(t, 10*checkInterval+10*time.Second, "the admin API showing 11 and 13 up, 12 down", func() (bool, string) {
		pool = admin.PoolStatus{}
		err := adminGetJSON(base+"/api/v1/pools/www.example.test", &pool)
		return err == nil && adminMemberState(pool, ip11) == "up" && adminMemberState(pool, ip13) == "up" &&
			adminMemberState(pool, ip12) == "down", fmt.Sprintf("%+v (%v)", pool, err)
	})

	cli := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(dnslbBin, append(args, "--admin", adminAddr)...)
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if asExit(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("dnslb %v: exit %d, want %d\n%s", args, code, wantCode, out)
		}
		return string(out)
	}
	cli(0, "drain", ip13, "--reason", "disk swap", "--for", "1h")
	if out := cli(1, "drain", "198.51.100.1"); !strings.Contains(out, "no pool has this member") {
		t.Errorf("drain of an unknown member:\n%s", out)
	}
	adminWriteFile(t, broken, strings.ReplaceAll(zoneHead, "example.test.", "broken.test.")+"bad IN A 300.1.1.1\n")
	if out := cli(1, "reload"); !strings.Contains(out, "broken.test.zone:7:") {
		t.Errorf("dnslb reload with a broken zone: want its file:line\n%s", out)
	}
	status := cli(0, "status")
	for _, want := range []string{"127.0.0.12  down", "connection refused", "127.0.0.13  drained", `"disk swap"`, "broken.test.zone:7:"} {
		if !strings.Contains(status, want) {
			t.Errorf("dnslb status lacks %q:\n%s", want, status)
		}
	}

	dom := chromium(t, "--dump-dom", base+"/")
	rows := memberRows(t, dom)
	for _, tc := range []struct{ addr, state, text string }{
		{ip11, "up", ""}, {ip12, "down", "connection refused"}, {ip13, "drained", "disk swap"},
	} {
		r := rows[tc.addr]
		if r.state != tc.state || !strings.Contains(r.class, "state-"+tc.state) || !strings.Contains(r.text, tc.text) {
			t.Errorf("member %s rendered as %q (class %q): %q; want %s with %q", tc.addr, r.state, r.class, r.text, tc.state, tc.text)
		}
	}
	for _, want := range []string{`data-pool="www.example.test."`, `class="zone zone-error" data-origin="broken.test."`, "broken.test.zone:7:", "Last reload failed"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}

func adminWriteFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func adminGetJSON(url string, v any) error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func adminMemberState(p admin.PoolStatus, addr string) string {
	for _, m := range p.Members {
		if m.Address == addr {
			return m.State
		}
	}
	return ""
}
