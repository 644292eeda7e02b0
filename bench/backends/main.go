// Command backends listens on TCP at several loopback addresses so that
// dnslb's health checks have something to connect to during a benchmark.
//
//	go run ./bench/backends -port 5330 -addrs 127.0.1.1,...,127.0.1.8
//	go run ./bench/backends -port 5340 -any -spin [-hold]
//
// The listeners are plain TCP, as a web server's are (Go's listeners
// default to MPTCP, whose fallback costs the connecting side work a real
// backend would not cause). With -any one wildcard listener answers for
// every loopback address. With -spin it accepts in a busy loop instead of
// sleeping: on loopback every connection is processed on the prober's CPU,
// and waking a sleeping acceptor on the other CPU would charge the prober
// an inter-processor interrupt that a remote backend never costs it. With
// -spin -hold it keeps each connection open until the peer closes or resets
// it, as a server does with idle connections (dnslb's connection watches).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	port := flag.Int("port", 5330, "TCP port")
	addrs := flag.String("addrs", "127.0.1.1,127.0.1.2,127.0.1.3,127.0.1.4,127.0.1.5,127.0.1.6,127.0.1.7,127.0.1.8", "comma-separated addresses")
	count := flag.Int("count", 0, "instead of -addrs: this many consecutive addresses from -first")
	first := flag.String("first", "127.2.0.1", "first address for -count")
	any := flag.Bool("any", false, "instead of -addrs or -count: one listener on every address")
	spin := flag.Bool("spin", false, "accept in a busy loop (uses a whole CPU)")
	hold := flag.Bool("hold", false, "with -spin: keep connections open until the peer ends them")
	flag.Parse()
	list := strings.Split(*addrs, ",")
	switch {
	case *any:
		list = []string{"0.0.0.0"}
	case *count > 0:
		a, err := netip.ParseAddr(*first)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		list = list[:0]
		for range *count {
			list = append(list, a.String())
			a = a.Next()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	var files []*os.File // kept open: each holds a descriptor acceptSpinning uses
	var fds []int
	for _, a := range list {
		ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(a, fmt.Sprint(*port)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer ln.Close()
		if *spin {
			f, err := ln.(*net.TCPListener).File() // a blocking duplicate
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fd := int(f.Fd()) // Fd makes it blocking: undone next
			if err := unix.SetNonblock(fd, true); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			files, fds = append(files, f), append(fds, fd)
			continue
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	if *spin {
		go acceptSpinning(ctx, fds, *hold)
	}
	fmt.Println("backends listening on", len(list), "addresses, port", *port)
	<-ctx.Done()
	runtime.KeepAlive(files)
}

// acceptSpinning accepts and closes connections on the non-blocking
// listening descriptors fds, never sleeping, until ctx is done. With hold
// it keeps them and closes each once the peer has closed or reset it
// (checked every 100 ms).
func acceptSpinning(ctx context.Context, fds []int, hold bool) {
	runtime.LockOSThread()
	var held []int
	sweep := time.Now()
	for ctx.Err() == nil {
		if hold && time.Since(sweep) > 100*time.Millisecond {
			sweep = time.Now()
			var b [64]byte
			kept := held[:0]
			for _, fd := range held {
				n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT)
				if errors.Is(err, unix.EAGAIN) || n > 0 {
					kept = append(kept, fd)
					continue
				}
				_ = unix.Close(fd)
			}
			held = kept
		}
		for _, fd := range fds {
			for {
				nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ECONNABORTED) {
					break
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "accept:", err)
					os.Exit(1)
				}
				if hold {
					held = append(held, nfd)
					continue
				}
				_ = unix.Close(nfd)
			}
		}
	}
}
