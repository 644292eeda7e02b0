//go:build linux

package healthcheck

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWatch10k opens 10,000 connection watches against loopback
// listeners (100 ports; the connections wait in the accept queues, so the
// accepting side costs this process nothing), measures what they cost
// while idle, then closes the listeners, which resets every connection, and
// waits until every watch has fired. One op is that whole cycle.
//
//	bytes/target:        Go heap + goroutine stacks per watch, idle
//	kernel-bytes/target: TCP socket slab of both ends (/proc/slabinfo)
//	open-cpu-us/target:  CPU to open one watch (connect, epoll or goroutine)
//	fire-cpu-us/target:  CPU to notice one reset and fire
//	idle-cpu-%:          CPU of 10,000 idle watches, in % of one core
func BenchmarkWatch10k(b *testing.B) {
	for _, impl := range []struct {
		name string
		new  func() watcher
	}{
		{"epoll", newWatcher},
		{"goroutine", func() watcher { return &connWatcher{} }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			var bytes, kbytes, openCPU, fireCPU, idleCPU float64
			for range b.N {
				r := watchCycle(b, impl.new())
				bytes += r.bytes
				kbytes += r.kbytes
				openCPU += r.openCPU
				fireCPU += r.fireCPU
				idleCPU += r.idleCPU
			}
			n := float64(b.N)
			b.ReportMetric(bytes/n, "bytes/target")
			b.ReportMetric(kbytes/n, "kernel-bytes/target")
			b.ReportMetric(openCPU/n, "open-cpu-us/target")
			b.ReportMetric(fireCPU/n, "fire-cpu-us/target")
			b.ReportMetric(idleCPU/n, "idle-cpu-%")
		})
	}
}

type watchCycleResult struct{ bytes, kbytes, openCPU, fireCPU, idleCPU float64 }

func watchCycle(b *testing.B, w watcher) watchCycleResult {
	b.Helper()
	const ports, perPort = 100, 100
	const n = ports * perPort
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	var listeners []net.Listener
	var addrs []netip.AddrPort
	for range ports {
		l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		listeners = append(listeners, l)
		addrs = append(addrs, netip.MustParseAddrPort(l.Addr().String()))
	}
	stops := make([]func(), 0, n)
	var fired atomic.Int64
	done := make(chan struct{})
	fire := func() {
		if fired.Add(1) == n {
			close(done)
		}
	}

	heap0, k0 := goMem(b), kernelMem(b)
	cpu0 := cpuTime(b)
	for i := range n {
		stop, err := w.watch(addrs[i%ports], fire)
		if err != nil {
			b.Fatal(err)
		}
		stops = append(stops, stop)
	}
	cpu1 := cpuTime(b)
	// Let every connect complete and every goroutine block in Read.
	time.Sleep(500 * time.Millisecond)
	cpu2 := cpuTime(b)
	time.Sleep(time.Second)
	cpu3 := cpuTime(b)
	heap1, k1 := goMem(b), kernelMem(b)
	if f := fired.Load(); f != 0 {
		b.Fatalf("%d watches fired while idle", f)
	}

	cpu4 := cpuTime(b)
	for _, l := range listeners {
		_ = l.Close() // resets the queued connections
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatalf("%d of %d watches fired", fired.Load(), n)
	}
	cpu5 := cpuTime(b)
	for _, stop := range stops {
		stop()
	}
	w.close()
	runtime.KeepAlive(stops)
	return watchCycleResult{
		bytes:   float64(heap1-heap0) / n,
		kbytes:  float64(k1-k0) / n,
		openCPU: float64((cpu1 - cpu0).Microseconds()) / n,
		fireCPU: float64((cpu5 - cpu4).Microseconds()) / n,
		idleCPU: 100 * float64(cpu3-cpu2) / float64(time.Second),
	}
}

// goMem returns the live heap and the goroutine stacks, after a GC.
func goMem(b *testing.B) int64 {
	b.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

// kernelMem returns the kernel's memory in TCP sockets (the "TCP" slab:
// active objects × object size), or 0 if unreadable. Both ends of a
// loopback connection count; so do other processes' sockets.
func kernelMem(b *testing.B) int64 {
	b.Helper()
	f, err := os.Open("/proc/slabinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[0] != "TCP" {
			continue
		}
		active, _ := strconv.ParseInt(fields[1], 10, 64)
		size, _ := strconv.ParseInt(fields[3], 10, 64)
		return active * size
	}
	return 0
}
