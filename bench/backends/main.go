// Command backends listens on TCP at several loopback addresses so that
// dnslb's health checks have something to connect to during a benchmark.
//
//	go run ./bench/backends -port 5330 -addrs 127.0.1.1,...,127.0.1.8
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	port := flag.Int("port", 5330, "TCP port")
	addrs := flag.String("addrs", "127.0.1.1,127.0.1.2,127.0.1.3,127.0.1.4,127.0.1.5,127.0.1.6,127.0.1.7,127.0.1.8", "comma-separated addresses")
	count := flag.Int("count", 0, "instead of -addrs: this many consecutive addresses from -first")
	first := flag.String("first", "127.2.0.1", "first address for -count")
	flag.Parse()
	list := strings.Split(*addrs, ",")
	if *count > 0 {
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
	for _, a := range list {
		ln, err := net.Listen("tcp", net.JoinHostPort(a, fmt.Sprint(*port)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer ln.Close()
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
	fmt.Println("backends listening on", len(list), "addresses, port", *port)
	<-ctx.Done()
}
