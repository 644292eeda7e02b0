package integration

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"golang.org/x/net/html"
)

// layoutScript runs in a wrapper page around the status page, loaded in an
// iframe of exactly the width under test: headless Chromium will not make
// its window narrower than 500 px for --dump-dom (a screenshot it does
// take at the asked width), and an iframe's width is exact. It measures
// the rendered page and writes the result, as JSON, into pre#layout of the
// wrapper, which --dump-dom prints.
const layoutScript = `
function box(el) {
  if (!el) { return null; }
  var r = el.getBoundingClientRect();
  return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height};
}
function measure() {
  var d = frame.contentDocument, w = frame.contentWindow;
  var res = {innerWidth: w.innerWidth, scrollWidth: d.documentElement.scrollWidth,
    cut: [], key: {}, downRow: null, downBadge: null};
  // Everything drawn inside the header, the about line, the pool headings,
  // the fallback notes and the member rows must lie inside the viewport and
  // inside every ancestor that clips (overflow other than visible): a
  // column cut off by a card's overflow:hidden does not widen the page.
  var sel = "header *, #about *, .card h2 *, [data-fallback-note], tr.member td, tr.member td *";
  d.querySelectorAll(sel).forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) { return; }
    var bad = r.left < -0.5 || r.right > w.innerWidth + 0.5;
    for (var a = el.parentElement; a && !bad && a !== d.body; a = a.parentElement) {
      var ov = w.getComputedStyle(a).overflowX;
      if (ov !== "visible") {
        var ar = a.getBoundingClientRect();
        bad = r.left < ar.left - 0.5 || r.right > ar.right + 0.5;
      }
    }
    if (bad) {
      res.cut.push((el.tagName + "." + el.className + " " + (el.textContent || "").trim()).slice(0, 80) +
        " at " + Math.round(r.left) + ".." + Math.round(r.right));
    }
  });
  for (var k in keys) { res.key[k] = box(d.querySelector(keys[k])); }
  var host = d.querySelector(keys["host name"]);
  res.host = host ? host.textContent : "";
  res.downRow = box(d.querySelector(downRow));
  res.downBadge = box(d.querySelector(downRow + " .badge.state"));
  document.getElementById("layout").textContent = JSON.stringify(res);
}
var frame = document.getElementById("frame");
frame.addEventListener("load", measure);
frame.src = "/";
`

// shotHeight is the height of the screenshots, in CSS pixels (and in
// pixels: the scale factor is forced to 1).
const shotHeight = 2000

// layoutResult is what layoutScript measured.
type layoutResult struct {
	InnerWidth  float64         `json:"innerWidth"`
	ScrollWidth float64         `json:"scrollWidth"`
	Cut         []string        `json:"cut"`
	Key         map[string]*box `json:"key"`
	Host        string          `json:"host"`
	DownRow     *box            `json:"downRow"`
	DownBadge   *box            `json:"downBadge"`
}

type box struct {
	Left, Top, Right, Bottom, Width, Height float64
}

// TestStatusPageLayout runs `dnslb serve` with a pool with one member down
// and one drained, and a pool in its when_all_down fallback, and renders the status page in
// headless Chromium at a phone's width (390 px) and a desktop's (1280):
// the page must not overflow sideways, nothing in the member rows, the
// headings or the header may be cut off, the key cells (pool name, member
// address, state, host name, fallback note) must be inside the viewport,
// and in the screenshot the down member's row must be drawn: its red state
// badge is there, not a blank block.
func TestStatusPageLayout(t *testing.T) {
	requireTool(t, "chromium")
	be := startBackends(t, ip11, ip12, ip13)
	be.get(t, ip12).Stop()

	dir := t.TempDir()
	zone := filepath.Join(dir, "example.test.zone")
	adminWriteFile(t, zone, zoneHead+"www IN A 127.0.0.11\nwww IN A 127.0.0.12\nwww IN A 127.0.0.13\napi IN A 127.0.0.14\n")
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startDNSLB(t, fmt.Sprintf(`log: {level: info, format: json}
admin: %q
zones:
  - {origin: example.test., file: %s}
pools:
  www.example.test.:
    policy: round-robin
    check: %s
  api.example.test.:
    when_all_down: all
    check: %s
`, adminAddr, zone, httpCheck(be.Port), httpCheck(be.Port)))
	base := "http://" + adminAddr
	var www, api admin.PoolStatus
	dnstest.Eventually(t, 10*checkInterval+10*time.Second, "11 up, 12 down and api in fallback", func() (bool, string) {
		www, api = admin.PoolStatus{}, admin.PoolStatus{}
		err := adminGetJSON(base+"/api/v1/pools/www.example.test", &www)
		if err == nil {
			err = adminGetJSON(base+"/api/v1/pools/api.example.test", &api)
		}
		return err == nil && adminMemberState(www, ip11) == "up" && adminMemberState(www, ip12) == "down" && api.AllDown,
			fmt.Sprintf("%+v %+v (%v)", www, api, err)
	})
	// A primary down by its checks: www answers at its degraded TTL
	// (default min(ttl, 5)), and so does api in fallback.
	if !www.Degraded || www.TTLDegraded != 5 || !api.Degraded {
		t.Errorf("www degraded %v at TTL %d, api degraded %v; want both degraded, at 5 s",
			www.Degraded, www.TTLDegraded, api.Degraded)
	}

	// A drained member: its override cell has the most text of a row.
	req, err := http.NewRequest("POST", base+"/api/v1/members/"+ip13+"/drain",
		strings.NewReader(`{"reason": "kernel upgrade and a reboot of the host", "for": "1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("drain %s: %s", ip13, resp.Status)
	}

	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("os.Hostname: %q, %v", host, err)
	}
	// The wrapper and the page on one origin, so that the wrapper's
	// script can measure inside the iframe; the page's own framing ban
	// (X-Frame-Options, CSP frame-ancestors) is lifted for that.
	target, _ := url.Parse(base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		r.Header.Del("X-Frame-Options")
		r.Header.Del("Content-Security-Policy")
		return nil
	}
	downRow := fmt.Sprintf(`section[data-pool="www.example.test."] tr[data-address=%q]`, ip12)
	keys := map[string]string{
		"pool name":      `section[data-pool="www.example.test."] h2 .name`,
		"member address": downRow + " td.addr",
		"member state":   downRow + " .badge.state",
		"host name":      "#host",
		"fallback note":  `section[data-pool="api.example.test."] [data-fallback-note]`,
	}
	keysJSON, _ := json.Marshal(keys)
	downJSON, _ := json.Marshal(downRow)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /layout", func(w http.ResponseWriter, r *http.Request) {
		width := r.URL.Query().Get("w")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0}</style></head><body>
<iframe id="frame" style="border:0;display:block;width:%spx;height:3000px"></iframe>
<pre id="layout"></pre>
<script>var keys = %s; var downRow = %s;%s</script></body></html>`, width, keysJSON, downJSON, layoutScript)
	})
	mux.Handle("/", proxy)
	wrap := httptest.NewServer(mux)
	t.Cleanup(wrap.Close)

	for _, width := range []int{390, 1280} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			dom := chromium(t, "--force-device-scale-factor=1", "--hide-scrollbars",
				fmt.Sprintf("--window-size=%d,3200", max(width+100, 600)), "--dump-dom",
				fmt.Sprintf("%s/layout?w=%d", wrap.URL, width))
			res := parseLayout(t, dom)
			if res.InnerWidth != float64(width) {
				t.Fatalf("the page was laid out %v px wide, want %d", res.InnerWidth, width)
			}
			if res.ScrollWidth > res.InnerWidth {
				t.Errorf("horizontal overflow: the page is %v px wide in a %v px viewport", res.ScrollWidth, res.InnerWidth)
			}
			for _, c := range res.Cut {
				t.Errorf("cut off: %s", c)
			}
			for name, sel := range keys {
				b := res.Key[name]
				if b == nil || b.Width == 0 || b.Height == 0 {
					t.Errorf("%s (%s) is not rendered", name, sel)
				} else if b.Left < 0 || b.Right > float64(width) || b.Top < 0 {
					t.Errorf("%s (%s) at %+v is outside the %d px viewport", name, sel, *b, width)
				}
			}
			if res.Host != host {
				t.Errorf("the page names the host %q, want %q", res.Host, host)
			}
			if res.DownRow == nil || res.DownBadge == nil {
				t.Fatalf("no down row or badge measured: %+v", res)
			}
			if res.DownRow.Bottom > shotHeight {
				t.Fatalf("the down row at %+v is below the %d px screenshot", *res.DownRow, shotHeight)
			}

			shot := filepath.Join(t.TempDir(), "page.png")
			if keep := os.Getenv("DNSLB_STATUS_SCREENSHOT"); keep != "" {
				shot = fmt.Sprintf("%s.%d.png", strings.TrimSuffix(keep, ".png"), width)
			}
			chromium(t, "--force-device-scale-factor=1", "--hide-scrollbars",
				fmt.Sprintf("--window-size=%d,%d", width, shotHeight), "--screenshot="+shot, base+"/")
			img := decodePNG(t, shot)
			if got := img.Bounds().Dx(); got != width {
				t.Fatalf("screenshot %d px wide, want %d", got, width)
			}
			// The state badge of the down row is drawn in the "down" red
			// (#cf222e, text and border), and the row around it has ink.
			red := countPixels(img, *res.DownBadge, func(r, g, b uint8) bool {
				return near(r, 0xcf, 48) && near(g, 0x22, 48) && near(b, 0x2e, 48)
			})
			if red < 15 {
				t.Errorf("the down member's state badge at %+v has %d red pixels in the screenshot, want it drawn", *res.DownBadge, red)
			}
			if ink := countPixels(img, *res.DownRow, func(r, g, b uint8) bool {
				return int(r)+int(g)+int(b) < 3*140 // text, not background
			}); ink < 100 {
				t.Errorf("the down member's row at %+v has %d dark pixels in the screenshot: blank", *res.DownRow, ink)
			}
			if t.Failed() {
				t.Logf("layout: %+v\ndown row %+v, badge %+v\nscreenshot %s", res, *res.DownRow, *res.DownBadge, shot)
			}
		})
	}
}

// parseLayout finds pre#layout in a DOM dump and decodes it.
func parseLayout(t *testing.T, dom string) layoutResult {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "pre" {
			continue
		}
		for _, a := range n.Attr {
			if a.Key == "id" && a.Val == "layout" && n.FirstChild != nil {
				var res layoutResult
				if err := json.Unmarshal([]byte(n.FirstChild.Data), &res); err != nil {
					t.Fatalf("layout result %q: %v", n.FirstChild.Data, err)
				}
				return res
			}
		}
	}
	t.Fatalf("no layout measured (the wrapper's script did not run):\n%s", dom)
	return layoutResult{}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	return img
}

// countPixels counts the pixels of img inside b that match.
func countPixels(img image.Image, b box, match func(r, g, bl uint8) bool) int {
	n := 0
	rect := image.Rect(int(b.Left), int(b.Top), int(b.Right+0.5), int(b.Bottom+0.5)).Intersect(img.Bounds())
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		for x := rect.Min.X; x < rect.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if match(uint8(r>>8), uint8(g>>8), uint8(bl>>8)) {
				n++
			}
		}
	}
	return n
}

func near(v, want uint8, tol int) bool {
	d := int(v) - int(want)
	return d >= -tol && d <= tol
}
