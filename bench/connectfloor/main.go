// Command connectfloor measures the least CPU a TCP health check can cost on
// this machine: it opens and resets connections at a fixed rate with
// nothing else around them (no scheduler, no timers, no result handling),
// and prints its own CPU use. bench/healthscale.sh runs it next to dnslb so
// that dnslb's figure can be read against this floor.
//
//	go run ./bench/connectfloor -port 5340 -first 127.2.0.1 -count 10000 -rate 10000 -seconds 20
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	port := flag.Int("port", 5340, "TCP port")
	first := flag.String("first", "127.2.0.1", "first IPv4 address")
	count := flag.Int("count", 10000, "number of consecutive addresses")
	rate := flag.Int("rate", 10000, "connections per second")
	seconds := flag.Int("seconds", 20, "how long to run")
	flag.Parse()
	start, err := netip.ParseAddr(*first)
	if err != nil || !start.Is4() {
		fmt.Fprintln(os.Stderr, "connectfloor: -first must be an IPv4 address")
		os.Exit(2)
	}
	addrs := make([]unix.SockaddrInet4, *count)
	for i, a := 0, start; i < *count; i, a = i+1, a.Next() {
		addrs[i] = unix.SockaddrInet4{Port: *port, Addr: a.As4()}
	}

	// Connections go out in bursts every 10 ms, as the scheduler's probe
	// grid sends them.
	const step = 10 * time.Millisecond
	perStep := max(*rate/int(time.Second/step), 1)
	tick := time.NewTicker(step)
	defer tick.Stop()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	began := time.Now()
	n, failed := 0, 0
	for range *seconds * int(time.Second/step) {
		<-tick.C
		for range perStep {
			if err := connectReset(&addrs[n%len(addrs)]); err != nil {
				failed++
			}
			n++
		}
	}
	elapsed := time.Since(began)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	user := time.Duration(after.Utime.Nano() - before.Utime.Nano())
	sys := time.Duration(after.Stime.Nano() - before.Stime.Nano())
	fmt.Printf("connect floor: %d connections in %.0f s (%d failed): %.1f %% of one core (user %.1f, kernel %.1f), %.1f µs each\n",
		n, elapsed.Seconds(), failed, 100*(user+sys).Seconds()/elapsed.Seconds(),
		100*user.Seconds()/elapsed.Seconds(), 100*sys.Seconds()/elapsed.Seconds(),
		float64((user+sys).Microseconds())/float64(n))
}

// connectReset makes the system calls a TCP check cannot do without:
// socket, linger 0 (reset on close, no TIME_WAIT), non-blocking connect and
// close. On loopback the handshake completes within the connect call.
func connectReset(sa *unix.SockaddrInet4) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		return err
	}
	if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return err
	}
	return nil
}
