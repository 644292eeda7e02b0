package integration

// Helpers of the operating tests (operate_test.go): a dnslb server in a
// config directory of its own, with its admin API, that a test can edit,
// signal, stop and start again on the same directory (state file), plus
// admin API, CLI, /metrics and log helpers.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// opZoneName is the zone file's name in the config directory; the config
// names it relative to itself, as an operator writes it.
const opZoneName = "example.test.zone"

// opZone renders the test zone with serial and records. The records start
// on line opFirstRecordLine of the file.
func opZone(serial uint32, records string) string {
	return fmt.Sprintf(`$ORIGIN example.test.
$TTL 3600
@       IN SOA  ns1.example.test. hostmaster.example.test. ( %d 7200 900 1209600 300 )
        IN NS   ns1.example.test.
ns1     IN A    192.0.2.53
`, serial) + records
}

const opFirstRecordLine = 6

// opServer is one dnslb under test with its own config directory. Stop and
// Start act on the same directory, so drains and health survive through the
// state file as they do for an operator.
type opServer struct {
	t         *testing.T
	dir       string
	cfgPath   string
	cfgTmpl   string // config with ADMIN_ADDR for the admin address
	dnsAddr   string
	adminAddr string
	serveArgs []string // more `dnslb serve` flags for the next Start
	p         *proc
	gen       int       // processes started so far
	startedAt time.Time // when the current process was started
	logs      []*proc   // every process started, for failure output
	http      *http.Client
	env       []string   // added to the server's environment; ADMIN_ADDR is replaced
	token     string     // admin.token, sent by getJSON and metrics (reads need it when set)
	cm        *configMap // set by asConfigMap: config and zone are published as a ConfigMap volume
}

// newOpServer writes zone and config into a fresh directory and starts
// dnslb. cfg is the YAML config; ADMIN_ADDR in it is replaced by the admin
// address picked at run time. opts change the server before anything is
// written (asConfigMap).
func newOpServer(t *testing.T, zone, cfg string, opts ...func(*opServer)) *opServer {
	t.Helper()
	return newOpServerEnv(t, zone, cfg, nil, opts...)
}

// newOpServerEnv is newOpServer with env (KEY=value, ADMIN_ADDR replaced
// by the admin address) added to the server's environment.
func newOpServerEnv(t *testing.T, zone, cfg string, env []string, opts ...func(*opServer)) *opServer {
	t.Helper()
	o := &opServer{t: t, dir: t.TempDir(), cfgTmpl: cfg, http: &http.Client{Timeout: 30 * time.Second}, env: env}
	o.cfgPath = filepath.Join(o.dir, "dnslb.yaml")
	for _, opt := range opts {
		opt(o)
	}
	o.writeZone(zone)
	t.Cleanup(func() {
		if o.p != nil {
			o.p.stop()
		}
		if t.Failed() {
			for i, p := range o.logs {
				out := p.out.String()
				if len(out) > 60000 {
					out = "…" + out[len(out)-60000:]
				}
				t.Logf("dnslb process %d output:\n%s", i+1, out)
			}
		}
	})
	o.Start()
	return o
}

func (o *opServer) writeConfig() {
	o.t.Helper()
	cfg := strings.ReplaceAll(o.cfgTmpl, "ADMIN_ADDR", o.adminAddr)
	if o.cm != nil {
		o.cm.set(filepath.Base(o.cfgPath), cfg)
		return
	}
	writeFileAtomic(o.t, o.cfgPath, cfg)
}

// SetConfig replaces the config on disk (the running server's watcher may
// pick it up).
func (o *opServer) SetConfig(cfg string) {
	o.t.Helper()
	o.cfgTmpl = cfg
	o.writeConfig()
}

// writeZone replaces the zone file atomically (temp file and rename, as
// many editors do), so that no reload can read a half-written file.
func (o *opServer) writeZone(content string) {
	o.t.Helper()
	if o.cm != nil {
		o.cm.set(opZoneName, content)
		return
	}
	writeFileAtomic(o.t, filepath.Join(o.dir, opZoneName), content)
}

// editZoneInPlace rewrites the zone file in place (truncate and write, as
// `cat > file` or some editors do).
func (o *opServer) editZoneInPlace(content string) {
	o.t.Helper()
	if err := os.WriteFile(filepath.Join(o.dir, opZoneName), []byte(content), 0o644); err != nil {
		o.t.Fatal(err)
	}
}

func writeFileAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// Start runs `dnslb serve --config DIR/dnslb.yaml --listen ADDR` (plus
// serveArgs) and waits until it answers DNS over UDP and TCP and its admin
// API says /healthz ok.
// A restarted server gets the same ports when they are free.
func (o *opServer) Start() {
	o.t.Helper()
	if o.p != nil && !o.p.hasExited() {
		o.t.Fatal("opServer.Start: already running")
	}
	var lastOut string
	for attempt := 0; attempt < startAttempts; attempt++ {
		if o.dnsAddr == "" || attempt > 0 {
			o.dnsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(o.t))
			o.adminAddr = fmt.Sprintf("127.0.0.1:%d", freePort(o.t))
		}
		o.writeConfig()
		started := time.Now()
		var env []string
		for _, kv := range o.env {
			env = append(env, strings.ReplaceAll(kv, "ADMIN_ADDR", o.adminAddr))
		}
		p, err := startProcEnv(o.t, env, dnslbBin, append([]string{"serve", "--config", o.cfgPath, "--listen", o.dnsAddr}, o.serveArgs...)...)
		if err != nil {
			o.t.Fatalf("starting dnslb: %v", err)
		}
		o.startedAt = started
		o.gen++
		o.logs = append(o.logs, p)
		o.p = p
		err = waitAnswering(p, o.dnsAddr, "example.test.")
		if err == nil {
			err = o.waitAdmin()
		}
		if err != nil {
			p.stop()
			lastOut = p.out.String()
			if addrInUse(lastOut) {
				continue
			}
			o.t.Fatalf("dnslb on %s (admin %s): %v\nconfig:\n%s\ndnslb output:\n%s", o.dnsAddr, o.adminAddr, err,
				strings.ReplaceAll(o.cfgTmpl, "ADMIN_ADDR", o.adminAddr), lastOut)
		}
		return
	}
	o.t.Fatalf("dnslb: no free ports after %d attempts; last output:\n%s", startAttempts, lastOut)
}

func (o *opServer) waitAdmin() error {
	deadline := time.Now().Add(startupDeadline)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if o.p.hasExited() {
			return fmt.Errorf("exited before the admin API answered: %v", o.p.err)
		}
		resp, err := c.Get("http://" + o.adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(pollStep) // poll interval
	}
	return fmt.Errorf("admin API on %s: no /healthz 200 within %v", o.adminAddr, startupDeadline)
}

// Term sends SIGTERM and waits for the exit, up to within; it returns the
// time the exit took and the exit error (nil for status 0). A process that
// does not exit in time is killed and the test fails.
func (o *opServer) Term(within time.Duration) (time.Duration, error) {
	o.t.Helper()
	start := time.Now()
	if err := o.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		o.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-o.p.exited:
		return time.Since(start), o.p.err
	case <-time.After(within):
		o.p.stop()
		o.t.Fatalf("dnslb did not exit within %v of SIGTERM", within)
		return 0, nil
	}
}

// Restart stops the server with SIGTERM (it must exit 0) and starts a new
// one on the same directory.
func (o *opServer) Restart() {
	o.t.Helper()
	if took, err := o.Term(stopDeadline + 3*time.Second); err != nil {
		o.t.Fatalf("dnslb exited with %v after SIGTERM (took %v)", err, took)
	}
	o.Start()
}

// Signal sends sig to the running server.
func (o *opServer) Signal(sig syscall.Signal) {
	o.t.Helper()
	if err := o.p.cmd.Process.Signal(sig); err != nil {
		o.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Log is the current process's output so far.
func (o *opServer) Log() string { return o.p.out.String() }

// logLine is one JSON log line.
type logLine map[string]any

func (l logLine) str(k string) string {
	s, _ := l[k].(string)
	return s
}

// LogLines parses the current process's JSON log lines (others are skipped).
func (o *opServer) LogLines() []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(o.Log()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// findLog returns the JSON log lines whose message contains msg.
func (o *opServer) findLog(msg string) []logLine {
	var out []logLine
	for _, l := range o.LogLines() {
		if strings.Contains(l.str("message"), msg) {
			out = append(out, l)
		}
	}
	return out
}

// do sends an admin API request; token "" sends no Authorization header.
func (o *opServer) do(method, path, token string, body []byte) (int, []byte) {
	o.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+o.adminAddr+path, rd)
	if err != nil {
		o.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := o.http.Do(req)
	if err != nil {
		o.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		o.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// getJSON GETs path, wants 200 and decodes the JSON body into v, rejecting
// fields v does not know (the schema check).
func (o *opServer) getJSON(path string, v any) {
	o.t.Helper()
	code, data := o.do("GET", path, o.token, nil)
	if code != http.StatusOK {
		o.t.Fatalf("GET %s: HTTP %d: %s", path, code, data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		o.t.Fatalf("GET %s: decoding %T: %v\n%s", path, v, err, data)
	}
}

// metrics scrapes /metrics and parses it with the Prometheus text parser.
func (o *opServer) metrics() map[string]*dto.MetricFamily {
	o.t.Helper()
	code, data := o.do("GET", "/metrics", o.token, nil)
	if code != http.StatusOK {
		o.t.Fatalf("GET /metrics: HTTP %d: %s", code, data)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		o.t.Fatalf("parsing /metrics: %v\n%s", err, data)
	}
	return mfs
}

// metricSum sums the series of family name whose labels include want
// (counter and gauge values; histogram sample counts) and reports how many
// series matched.
func metricSum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	mf := mfs[name]
	if mf == nil {
		return 0, 0
	}
	sum, n := 0.0, 0
	for _, m := range mf.GetMetric() {
		if !labelsMatch(m, want) {
			continue
		}
		n++
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			sum += float64(m.GetHistogram().GetSampleCount())
		case dto.MetricType_UNTYPED:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, n
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// histograms returns the histogram series of name matching want.
func histograms(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Histogram {
	var out []*dto.Histogram
	if mf := mfs[name]; mf != nil && mf.GetType() == dto.MetricType_HISTOGRAM {
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, want) {
				out = append(out, m.GetHistogram())
			}
		}
	}
	return out
}

// reloads is the sum of dnslb_reloads_total over its results.
func (o *opServer) reloads() float64 {
	o.t.Helper()
	v, _ := metricSum(o.metrics(), "dnslb_reloads_total", nil)
	return v
}

// cliResult is the outcome of one dnslb CLI run.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs `dnslb ARGS...` (the caller passes --admin) with a bound.
func runCLI(t testing.TB, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(dnslbBin, args...)
	// The environment must not choose the server for us.
	cmd.Env = append(os.Environ(), "DNSLB_ADMIN=", "DNSLB_ADMIN_TOKEN=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("dnslb %s: no exit within 30s", strings.Join(args, " "))
	}
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("dnslb %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// cli runs a dnslb admin command against this server.
func (o *opServer) cli(args ...string) cliResult {
	o.t.Helper()
	return runCLI(o.t, append(args, "--admin", o.adminAddr)...)
}
