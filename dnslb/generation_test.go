package dnslb

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/internal/dnstest"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// blockingFS is a directory whose zone file blocks on open while armed, as a
// hung network mount does.
type blockingFS struct {
	fs.FS
	mu      sync.Mutex
	armed   bool
	release chan struct{}
	entered chan struct{}
}

func newBlockingFS(dir string) *blockingFS {
	return &blockingFS{FS: os.DirFS(dir), release: make(chan struct{}), entered: make(chan struct{}, 16)}
}

func (b *blockingFS) arm() {
	b.mu.Lock()
	b.armed = true
	b.mu.Unlock()
}

func (b *blockingFS) Open(name string) (fs.File, error) {
	b.mu.Lock()
	armed := b.armed
	b.mu.Unlock()
	if armed {
		b.entered <- struct{}{}
		<-b.release
	}
	return b.FS.Open(name)
}

// newBlockedRuntime starts a Runtime whose zone reads can be made to
// block (bfs.arm), with a short reload timeout. The caller stops it.
func newBlockedRuntime(t *testing.T, timeout time.Duration) (*Runtime, *blockingFS, string) {
	t.Helper()
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	bfs := newBlockingFS(dir)
	fc.fsys = bfs
	rt, err := NewRuntime(RuntimeOptions{Load: fc.load, Log: zerolog.Nop(), ReloadTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rt, bfs, dir
}

// A zone read that blocks holds no lock the API, metrics or shutdown need:
// they answer while it hangs, the reload fails after its timeout with the
// old data still served, further reloads are refused until the read
// returns, and Shutdown returns at once.
func TestBlockedReloadDoesNotWedge(t *testing.T) {
	rt, bfs, dir := newBlockedRuntime(t, 300*time.Millisecond)
	stopped := false
	defer func() {
		close(bfs.release)
		if !stopped {
			rt.Shutdown(context.Background())
		}
	}()

	writeZone(t, dir, "2", "new A 192.0.2.99\n")
	bfs.arm()
	reloaded := make(chan error, 1)
	go func() { reloaded <- rt.Reload() }()
	<-bfs.entered // the reload is stuck in the read

	// Everything an operator uses still answers.
	if len(rt.Pools()) != 1 || len(rt.Zones()) != 1 {
		t.Fatal("pools or zones missing while a reload hangs")
	}
	if _, err := rt.Metrics().Registry.Gather(); err != nil {
		t.Fatal(err)
	}
	if err := rt.SetOverride(netip.MustParseAddr("192.0.2.10"), admin.OverrideDrain, time.Time{}, "test"); err != nil {
		t.Fatal(err)
	}
	if resp := askRT(t, rt, "example.test.", dns.TypeSOA); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("not answering while a reload hangs: %v", resp)
	}

	err := <-reloaded
	if err == nil || !strings.Contains(err.Error(), "took longer than 300ms") {
		t.Fatalf("blocked reload returned %v", err)
	}
	if _, last := rt.LastReload(); last == nil {
		t.Error("LastReload does not show the timeout")
	}
	if soa := askRT(t, rt, "example.test.", dns.TypeSOA).Answer[0].(*dns.SOA); soa.Serial != 1 {
		t.Fatalf("serial %d after a failed reload, want the old 1", soa.Serial)
	}
	// The stuck read has not returned: another reload is refused, not
	// stacked behind it.
	if err := rt.Reload(); !errors.Is(err, errReloadBusy) {
		t.Fatalf("second reload while the first is stuck: %v", err)
	}

	// A reload waiting for a stuck build does not hold up Shutdown.
	go func() { reloaded <- rt.Reload() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		rt.Shutdown(ctx)
		close(done)
	}()
	select {
	case <-done:
		stopped = true
	case <-ctx.Done():
		t.Fatal("Shutdown waited for a blocked reload")
	}
}

// Once the read returns, reloads work again.
func TestReloadAfterStuckReadReturns(t *testing.T) {
	rt, bfs, dir := newBlockedRuntime(t, 200*time.Millisecond)
	defer rt.Shutdown(context.Background())
	writeZone(t, dir, "2", "new A 192.0.2.99\n")
	bfs.arm()
	if err := rt.Reload(); err == nil {
		t.Fatal("blocked reload succeeded")
	}
	bfs.mu.Lock()
	bfs.armed = false
	bfs.mu.Unlock()
	close(bfs.release)
	dnstest.Until(t, 10*time.Second, "the abandoned build finishing", func() bool { return !rt.building.Load() })
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if soa := askRT(t, rt, "example.test.", dns.TypeSOA).Answer[0].(*dns.SOA); soa.Serial != 2 {
		t.Fatalf("serial %d, want 2", soa.Serial)
	}
}

// Every problem of a failed reload is logged once, with its file and line
// as fields.
func TestReloadLogsEachProblemOnce(t *testing.T) {
	dir := t.TempDir()
	writeZone(t, dir, "1", "")
	fc := baseConfig(dir)
	logs := &logLines{}
	rt := newTestRuntime(t, dir, fc, zerolog.New(logs))
	writeZone(t, dir, "2", "bad A 1.2.3.999\n")
	err := rt.Reload()
	if err == nil {
		t.Fatal("broken zone reloaded")
	}
	ps := ProblemsOf(err)
	if len(ps) != 1 || ps[0].Line != 7 || !strings.HasSuffix(ps[0].File, "z.zone") {
		t.Fatalf("problems %+v", ps)
	}
	n := 0
	logs.mu.Lock()
	for _, l := range logs.lines {
		if strings.Contains(l, "1.2.3.999") {
			n++
			if !strings.Contains(l, `"line":7`) || !strings.Contains(l, `"file":"`) {
				t.Errorf("log line without file and line fields: %s", l)
			}
		}
	}
	logs.mu.Unlock()
	if n != 1 {
		t.Fatalf("the problem was logged %d times", n)
	}
}
